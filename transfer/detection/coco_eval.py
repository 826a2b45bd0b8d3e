"""COCOEvaluator with faster-coco-eval's C++ COCOeval in place of pycocotools'.

detectron2's own fast evaluator (COCOeval_opt) is native code that the registry install lacks;
faster-coco-eval is a drop-in with the same numbers (tests/test_coco_eval.py checks to 1e-4,
tools/bench_coco_eval.py prints both times).
"""
import contextlib
import copy

from detectron2.evaluation import COCOEvaluator
from detectron2.evaluation import coco_evaluation
from faster_coco_eval import COCO as FasterCOCO
from faster_coco_eval import COCOeval_faster


def faster_cocoeval(coco_gt, coco_dt, iou_type):
    """Same call as pycocotools' COCOeval(coco_gt, coco_dt, iou_type), on pycocotools objects."""
    gt = FasterCOCO(copy.deepcopy(coco_gt.dataset))
    # the raw results, without the fields pycocotools' loadRes derived from them
    keep = ("image_id", "category_id", "score", "bbox" if iou_type == "bbox" else "segmentation")
    dt = gt.loadRes([{k: a[k] for k in keep} for a in coco_dt.dataset["annotations"]])
    return COCOeval_faster(gt, dt, iou_type, print_function=print)


class FastCOCOEvaluator(COCOEvaluator):
    def __init__(self, dataset_name, output_dir=None):
        super().__init__(dataset_name, output_dir=output_dir, use_fast_impl=True)

    def evaluate(self, img_ids=None):
        with swapped(coco_evaluation, "COCOeval_opt", faster_cocoeval):
            return super().evaluate(img_ids)


@contextlib.contextmanager
def swapped(module, name, value):
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)
