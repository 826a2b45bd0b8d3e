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


def imperfect_results(gt, seed=0):
    """COCO results (bbox and segm) for `gt` (a pycocotools COCO) with every kind of error an
    evaluator must weigh: shifted boxes and masks, wrong classes, duplicates, misses, random scores."""
    import numpy as np
    from pycocotools import mask as mask_util

    rng = np.random.default_rng(seed)
    results = []
    for ann in gt.dataset["annotations"]:
        if rng.random() < 0.15:  # a miss
            continue
        img = gt.imgs[ann["image_id"]]
        m = gt.annToMask(ann)
        for _ in range(1 + int(rng.random() < 0.2)):  # sometimes a duplicate
            dx, dy = rng.integers(-4, 5, 2)
            shifted = np.asfortranarray(np.roll(m, (int(dy), int(dx)), axis=(0, 1)))
            x, y, w, h = ann["bbox"]
            cat = ann["category_id"] if rng.random() > 0.1 else int(rng.choice(list(gt.cats)))
            rle = mask_util.encode(shifted)
            rle["counts"] = rle["counts"].decode()
            results.append({"image_id": img["id"], "category_id": cat, "score": float(rng.random()),
                            "bbox": [float(x + dx), float(y + dy), float(w * rng.uniform(0.8, 1.2)),
                                     float(h * rng.uniform(0.8, 1.2))], "segmentation": rle})
    return results


def evaluate_both(gt, results, iou_type):
    """(pycocotools stats, faster-coco-eval stats, seconds each) for the same results."""
    import time

    from pycocotools.cocoeval import COCOeval

    # as detectron2 does: mask AP from results without boxes (else the box area sets small/medium/large)
    other = "segmentation" if iou_type == "bbox" else "bbox"
    results = [{k: v for k, v in r.items() if k != other} for r in results]
    out = []
    for make in (lambda dt: COCOeval(gt, dt, iou_type), lambda dt: faster_cocoeval(gt, dt, iou_type)):
        with contextlib.redirect_stdout(None):
            t0 = time.perf_counter()
            dt = gt.loadRes(copy.deepcopy(results))
            ev = make(dt)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            out += [list(ev.stats), time.perf_counter() - t0]
    return out
