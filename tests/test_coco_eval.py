"""FastCOCOEvaluator (faster-coco-eval inside detectron2's COCOEvaluator) against detectron2's reference
COCOEvaluator(use_fast_impl=False) (pycocotools): the same results dict (incl. per-category AP), the
same 12 numbers per task, the same coco_instances_results.json, on generated detections with every
kind of error, images without objects, images without detections, crowd regions and classes without
detections."""
import json
import math
import os

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_util

from transfer.detection import coco_eval
from transfer.detection.coco_eval import FastCOCOEvaluator

NAME = "coco_evalcheck"


@pytest.fixture(scope="module")
def coco_val(demo_root, tmp_path_factory):
    """The built-in COCO val set, its first two images without any object, as "coco_evalcheck"."""
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets import register_coco_instances

    with open(os.path.join(demo_root, "coco", "annotations", "instances_val2017.json")) as f:
        data = json.load(f)
    empty = {img["id"] for img in data["images"][:2]}
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] not in empty]
    path = str(tmp_path_factory.mktemp("coco") / "instances_evalcheck.json")
    with open(path, "w") as f:
        json.dump(data, f)
    for catalog in (DatasetCatalog, MetadataCatalog):
        if NAME in catalog.list():
            catalog.remove(NAME)
    register_coco_instances(NAME, {}, path, os.path.join(demo_root, "coco", "val2017"))
    dicts = DatasetCatalog.get(NAME)  # also sets the category-id mapping, as training does
    assert any(a.get("iscrowd") for d in dicts for a in d["annotations"])  # crowd regions are in
    assert sum(not d["annotations"] for d in dicts) == 2
    return dicts


def gt_mask(ann, h, w):
    seg = ann["segmentation"]
    if isinstance(seg, dict) and not isinstance(seg["counts"], list):  # compressed RLE (detectron2's crowd)
        return mask_util.decode(seg).astype(bool)
    rles = mask_util.frPyObjects(seg, h, w)
    return mask_util.decode(mask_util.merge(rles) if isinstance(rles, list) else rles).astype(bool)


def imperfect_outputs(dicts, seed, no_detections_for=(2, 5)):
    """Mask R-CNN-like outputs for the dataset: shifted masks and boxes, wrong classes, duplicates,
    misses, false positives, scores with ties, detections on crowd regions; every 4th image
    without detections, and none at all for the classes `no_detections_for`."""
    from detectron2.structures import Boxes, Instances

    rng = np.random.default_rng(seed)
    n_classes = 1 + max(a["category_id"] for d in dicts for a in d["annotations"])
    out = []
    for i, d in enumerate(dicts):
        h, w = d["height"], d["width"]
        boxes, classes, masks = [], [], []
        if i % 4 != 3:
            for a in d["annotations"]:
                if rng.random() < 0.15:  # a miss
                    continue
                m = gt_mask(a, h, w)
                for _ in range(1 + int(rng.random() < 0.25)):  # sometimes a duplicate
                    dx, dy = (int(v) for v in rng.integers(-3, 4, 2))
                    shifted = np.roll(m, (dy, dx), axis=(0, 1))
                    x, y, bw, bh = a["bbox"]
                    boxes.append([x + dx, y + dy, x + dx + bw * rng.uniform(0.8, 1.2), y + dy + bh * rng.uniform(0.8, 1.2)])
                    classes.append(a["category_id"] if rng.random() > 0.15 else int(rng.integers(n_classes)))
                    masks.append(shifted)
            for _ in range(int(rng.integers(0, 4))):  # false positives
                x0, y0 = rng.uniform(0, w - 8), rng.uniform(0, h - 8)
                x1, y1 = rng.uniform(x0 + 4, w), rng.uniform(y0 + 4, h)
                m = np.zeros((h, w), dtype=bool)
                m[int(y0):int(y1), int(x0):int(x1)] = True
                boxes.append([x0, y0, x1, y1])
                classes.append(int(rng.integers(n_classes)))
                masks.append(m)
        keep = [k for k, c in enumerate(classes) if c not in no_detections_for]
        inst = Instances((h, w))
        inst.pred_boxes = Boxes(torch.tensor([boxes[k] for k in keep], dtype=torch.float32).reshape(-1, 4))
        inst.scores = torch.tensor(rng.integers(1, 20, len(keep)) / 20, dtype=torch.float32)  # ties
        inst.pred_classes = torch.tensor([classes[k] for k in keep], dtype=torch.int64)
        inst.pred_masks = torch.from_numpy(np.array([masks[k] for k in keep], dtype=bool).reshape(-1, h, w))
        out.append(({"image_id": d["image_id"]}, {"instances": inst}))
    return out


def evaluate(evaluator, outputs):
    evaluator.reset()
    for inp, outp in outputs:
        evaluator.process([inp], [outp])
    return evaluator.evaluate()


def reference_run(outputs, monkeypatch, out_dir, **kwargs):
    """detectron2's COCOEvaluator with pycocotools; returns (results, {task: its 12 numbers})."""
    from detectron2.evaluation import COCOEvaluator, coco_evaluation

    stats, inner = {}, coco_evaluation._evaluate_predictions_on_coco

    def capture(coco_gt, coco_results, iou_type, **kw):
        ev = inner(coco_gt, coco_results, iou_type, **kw)
        stats[iou_type] = [float(s) for s in ev.stats]
        return ev
    with monkeypatch.context() as m:
        m.setattr(coco_evaluation, "_evaluate_predictions_on_coco", capture)
        res = evaluate(COCOEvaluator(NAME, output_dir=str(out_dir), use_fast_impl=False, **kwargs), outputs)
    return res, stats


def assert_same(ours, ref, tol):
    assert ours.keys() == ref.keys()
    for task in ref:
        assert ours[task].keys() == ref[task].keys()
        for k, v in ref[task].items():
            assert (math.isnan(v) and math.isnan(ours[task][k])) or abs(ours[task][k] - v) <= tol, (task, k)


@pytest.mark.parametrize("seed", [0, 1])
def test_same_numbers_and_files_as_detectron2_reference(coco_val, monkeypatch, tmp_path, seed):
    outputs = imperfect_outputs(coco_val, seed)
    ref, ref_stats = reference_run(outputs, monkeypatch, tmp_path / "ref")
    monkeypatch.setattr(coco_eval, "JSON_CHUNK", 7)  # the results file written in many chunks
    ev = FastCOCOEvaluator(NAME, output_dir=str(tmp_path / "ours"))
    ours = evaluate(ev, outputs)

    assert set(ref) == {"bbox", "segm"} and 10 < ref["bbox"]["AP"] < 90 and 10 < ref["segm"]["AP"] < 90
    names = [k for k in ref["bbox"] if k.startswith("AP-")]
    assert len(names) > 10 and sum(math.isnan(ref["bbox"][k]) or ref["bbox"][k] == 0 for k in names) >= 2
    assert_same(ours, ref, 1e-9)  # AP, AP50, ..., APl and every AP-<class>
    for task in ("bbox", "segm"):
        assert len(ev.coco_stats[task]) == 12
        assert max(abs(a - b) for a, b in zip(ev.coco_stats[task], ref_stats[task])) <= 1e-12
    for name in ("coco_instances_results.json",):
        assert open(tmp_path / "ours" / name).read() == open(tmp_path / "ref" / name).read()
    assert os.path.exists(tmp_path / "ours" / "instances_predictions.pth")
    # the boxes the mask task took out are back in the results the evaluator holds
    assert all("bbox" in r and isinstance(r["bbox"], list) for p in ev._predictions for r in p["instances"])


def test_no_detections_and_other_max_dets(coco_val, monkeypatch, tmp_path):
    outputs = imperfect_outputs(coco_val, 2)
    empty = [(inp, {"instances": outp["instances"][:0]}) for inp, outp in outputs]
    ref, _ = reference_run(empty, monkeypatch, tmp_path / "ref")
    assert_same(evaluate(FastCOCOEvaluator(NAME, output_dir=str(tmp_path / "ours")), empty), ref, 0)
    # max_dets_per_image other than 100: detectron2's own path
    ref, _ = reference_run(outputs, monkeypatch, tmp_path / "ref5", max_dets_per_image=5)
    ours = evaluate(FastCOCOEvaluator(NAME, output_dir=str(tmp_path / "ours5"), max_dets_per_image=5), outputs)
    assert_same(ours, ref, 1e-9)
