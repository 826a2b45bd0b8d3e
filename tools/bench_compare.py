"""Cost of transfer.compare's paired bootstrap at the evaluation sets' real sizes, on random per-image
results (no runs needed):

    python tools/bench_compare.py [--resamples 2000] [--seeds 1] [--quick]

- top-1: ImageNet val, 50,000 images (kNN, linear, fine-tuning);
- mAP: VOC07 test, 4,952 images x 20 classes (SVM); low-shot, 5 samples per k;
- mIoU: ADE20K val, 2,000 images x 150 classes; VOC12 val, 1,449 x 21; Cityscapes val, 500 x 19;
- COCO val size (5,000 images) for a per-image metric at that size: mAP over 80 classes.
Each line: seconds for one table row (both sides, every seed) and the peak RSS during it
(tools/bench_harness.py). Prints a JSON summary.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_harness import measure, print_json, status_kb  # noqa: E402
from transfer import compare  # noqa: E402


def top1(n, classes, rng):
    labels = rng.integers(0, classes, n)
    return {"ids": np.arange(n).astype(str), "labels": labels,
            "accuracy/top1": np.where(rng.random(n) < 0.7, labels, (labels + 1) % classes)}


def svm(n, classes, rng, samples=0):
    labels = rng.choice([1, 0, 0, 0, -1], (n, classes))
    shape = (samples, n, classes) if samples else (n, classes)
    return {"ids": np.arange(n).astype(str), "labels": labels,
            "svm/mAP_feat5": (labels + rng.normal(0, 1, shape)).astype(np.float32)}


def seg(n, classes, rng):
    union = rng.integers(0, 5000, (n, 2, classes))
    union[:, 0] = union[:, 1] * rng.random((n, classes))
    return {"ids": np.arange(n).astype(str), "sem_seg/mIoU": union}


CASES = [  # (name, metric, make, images, classes, extra)
    ("top-1, ImageNet val", "accuracy/top1", top1, 50000, 1000, {}),
    ("mAP, VOC07 test (SVM)", "svm/mAP_feat5", svm, 4952, 20, {}),
    ("mAP, VOC07 test, low-shot 5 samples", "svm/mAP_feat5", svm, 4952, 20, {"samples": 5}),
    ("mAP, COCO val size, 80 classes", "svm/mAP_feat5", svm, 5000, 80, {}),
    ("mIoU, ADE20K val", "sem_seg/mIoU", seg, 2000, 150, {}),
    ("mIoU, VOC12 val", "sem_seg/mIoU", seg, 1449, 21, {}),
    ("mIoU, Cityscapes val", "sem_seg/mIoU", seg, 500, 19, {}),
]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--resamples", type=int, default=2000)
    p.add_argument("--seeds", type=int, default=1, help="runs per side (3 or more: the seeds are resampled too)")
    p.add_argument("--quick", action="store_true", help="200 resamples")
    args = p.parse_args(argv)
    resamples = 200 if args.quick else args.resamples
    rng = np.random.default_rng(0)
    out = {}
    for name, metric, make, n, classes, extra in CASES:
        sides = [[make(n, classes, rng, **extra) for _ in range(args.seeds)] for _ in range(2)]
        before = status_kb("VmRSS") / 2 ** 20
        stats, sec, _, added = measure(lambda: compare.bootstrap(metric, sides, resamples, 0))
        peak = before + added / 2 ** 30
        out[name] = {"seconds": round(sec, 2), "images": n, "classes": classes, "resamples": resamples,
                     "seeds_per_side": args.seeds, "peak_rss_gib": round(peak, 2)}
        print(f"{name}: {n} images x {classes} classes, {resamples} resamples, {args.seeds} seed(s) a side: "
              f"{sec:.1f} s (peak RSS {peak:.2f} GiB; difference sd {np.std(stats[1] - stats[0]):.3f})", flush=True)
    print_json(out)


if __name__ == "__main__":
    main()
