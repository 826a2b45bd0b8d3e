"""Speed and memory of the frozen-feature evaluators, on random data (no images, no weights):

    python tools/bench_classification.py [--quick] [--device cpu|cuda]

- feature extraction: img/s of a random-init ResNet-50 at 224 (gap; feat1-5 in one pass);
- kNN: a random bank (1,281,167 x 2048 ImageNet-sized; --quick 65,536) against 50,000 queries
  (--quick 2,000), k = 10/20/100/200, 1000 classes: wall time, and peak RSS (VmHWM) over the
  RSS once bank and queries exist, i.e. what the chunked search adds;
- SVM: VOC07 full-recipe wall time for one layer, all cores against one (trainval/test sizes and
  feature width of feat5 at 5011/4952 x 8192; --quick 600/600 x 2048 and 5 classes).
Prints one line per figure and a JSON summary (timing and memory: tools/bench_harness.py).
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_harness import interleaved, measure, print_json, status_kb  # noqa: E402
from transfer.classification import backbone, knn, svm  # noqa: E402


def bench_extraction(device, batch, iters):
    model = backbone.load_backbone(None, "resnet50").to(device)
    x = torch.randn(batch, 3, 224, 224, device=device)
    variants = {"+".join(layers): lambda layers=layers: backbone.extract(model, x, layers)
                for layers in (("gap",), backbone.RESNET_LAYERS)}
    times, _ = interleaved(variants, 1, device, repeats=iters)
    out = {name: batch / t[0] for name, t in times.items()}
    for name, rate in out.items():
        print(f"extraction {name}: {rate:.1f} img/s ({device}, batch {batch})")
    return out


def bench_knn(n_bank, n_query, device, bank_chunk, query_chunk):
    rng = np.random.default_rng(0)
    bank = rng.standard_normal((n_bank, 2048), dtype=np.float32)
    labels = rng.integers(0, 1000, n_bank)
    queries = rng.standard_normal((n_query, 2048), dtype=np.float32)
    qlabels = rng.integers(0, 1000, n_query)
    before = status_kb("VmRSS") / 2 ** 20
    res, wall, _, extra = measure(lambda: knn.knn_classify(bank, labels, queries, qlabels, [10, 20, 100, 200], 0.07,
                                                           1000, bank_chunk, query_chunk, device))
    extra /= 2 ** 30
    print(f"knn {n_bank} x 2048 bank, {n_query} queries, k=10/20/100/200 ({device}): {wall:.1f} s, "
          f"RSS with bank+queries {before:.2f} GiB, peak {before + extra:.2f} GiB (+{extra:.2f} GiB); "
          f"top-1 at k=20 {res[20][0]:.2f}% (chance 0.1%)")
    return {"bank": n_bank, "queries": n_query, "seconds": wall, "rss_gib": before, "peak_gib": before + extra,
            "added_gib": extra}


def bench_svm(n_train, n_test, dim, classes, n_jobs):
    rng = np.random.default_rng(0)
    Y = lambda n: rng.choice([1, 0, 0, 0, 0, -1], size=(n, 20)).astype(np.int32)  # noqa: E731
    Ytr, Yte = Y(n_train), Y(n_test)
    # features that carry the labels weakly, so the SVMs converge like on real features
    proj = 0.1 * rng.standard_normal((20, dim)).astype(np.float32)
    X = lambda Yl: (Yl.clip(0) @ proj + 3 * rng.standard_normal((len(Yl), dim), dtype=np.float32))  # noqa: E731
    Xtr, Xte = svm.normalize(X(Ytr)), svm.normalize(X(Yte))
    cfg = {"costs": [1.0, 10.0, 100.0], "cv_folds": 3, "n_jobs": n_jobs}
    r, wall, _, _ = measure(lambda: svm.run_full(Xtr, Ytr, Xte, Yte, list(range(classes)), cfg, 0, print))
    print(f"svm full recipe, {classes} classes x 19 costs, {n_train}/{n_test} x {dim}, n_jobs {n_jobs}: "
          f"{wall:.1f} s (mAP {r['mAP']:.1f})")
    return wall


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--skip", nargs="*", default=[], choices=["extraction", "knn", "svm"])
    args = p.parse_args(argv)
    q = args.quick
    out = {"device": args.device, "cpus": os.cpu_count(), "quick": q}
    if "extraction" not in args.skip:
        out["extraction_img_s"] = bench_extraction(args.device, 8 if q else 64, 2 if q else 10)
    if "knn" not in args.skip:
        out["knn"] = bench_knn(65536 if q else 1281167, 2000 if q else 50000, args.device, 65536, 1024)
    if "svm" not in args.skip:
        size = (600, 600, 2048, 5) if q else (5011, 4952, 8192, 20)
        out["svm_seconds"] = {"all_cores": bench_svm(*size, n_jobs=-1), "one_core": bench_svm(*size, n_jobs=1)}
    print_json(out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
