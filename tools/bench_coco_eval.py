"""Prints COCO evaluation time with pycocotools and with faster-coco-eval, and the largest
difference between their 12 summary numbers (a benchmark, not a test).

    python tools/bench_coco_eval.py [--scale 10]      # the built-in COCO val set, x scale images
"""
import argparse
import contextlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mocodata.builtin import DemoSizes, make_demo  # noqa: E402
from transfer.detection.coco_eval import evaluate_both, imperfect_results  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scale", type=float, default=10.0, help="images relative to the demo's 24")
    args = p.parse_args()
    from pycocotools.coco import COCO

    root = make_demo(os.path.join("output", "bench", f"coco_x{args.scale:g}"), DemoSizes().scaled(args.scale))
    with contextlib.redirect_stdout(None):
        gt = COCO(os.path.join(root, "coco", "annotations", "instances_val2017.json"))
    results = imperfect_results(gt)
    print(f"{len(gt.imgs)} images, {len(gt.anns)} objects, {len(results)} detections")
    for iou_type in ("bbox", "segm"):
        ref, t_ref, fast, t_fast = evaluate_both(gt, results, iou_type)
        worst = max(abs(a - b) for a, b in zip(ref, fast))
        print(f"{iou_type}: pycocotools {t_ref:.2f} s, faster-coco-eval {t_fast:.2f} s ({t_ref / t_fast:.1f}x); "
              f"AP {ref[0]:.4f} vs {fast[0]:.4f}, largest difference over the 12 stats {worst:.2e}")


if __name__ == "__main__":
    main()
