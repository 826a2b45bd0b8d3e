"""faster-coco-eval as a drop-in for pycocotools: the same 12 numbers on the built-in COCO set."""
import contextlib
import os

import pytest
from pycocotools.coco import COCO

from transfer.detection.coco_eval import evaluate_both, imperfect_results


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_same_ap_as_pycocotools(demo_root, iou_type):
    with contextlib.redirect_stdout(None):
        gt = COCO(os.path.join(demo_root, "coco", "annotations", "instances_val2017.json"))
    ref, _, fast, _ = evaluate_both(gt, imperfect_results(gt), iou_type)
    assert 5 < 100 * ref[0] < 95  # an imperfect result: the comparison means something
    assert max(abs(a - b) for a, b in zip(ref, fast)) <= 1e-4
