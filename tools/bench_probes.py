"""Cost of the derived probes against what they replace, on synthetic data (no images to download):

    python tools/bench_probes.py [--quick] [--device cpu|cuda] [--threads N] [--skip sweep logreg extraction]

- sweep: one training step of `linear-sweep` (13 heads, lr 0.1x-10x) against the `linear` probe (1 head),
  both the mmpretrain models of the MoCo v2 recipe built from configs/mmpretrain/linear_mocov2_r50.py
  through their runners' build_cfg, 1000 classes, 224 px synthetic images, same batch; interleaved rounds
  (min and median). Input decoding and augmentation are left out (the same for both), so the heads' share
  here is an upper bound of theirs in a real run.
- logreg: our L-BFGS (transfer/classification/logreg.py) against scikit-learn's LogisticRegression(lbfgs)
  on the same features (Gaussian classes; --quick 10,000 train x 128-d, 100 classes; >= 10,000 validation
  rows), the same objective (mean CE + ||W||^2 / (2 C n)), tolerance, iteration cap, float64 and threads:
  (a) one C, accuracy and time; (b) the sweep over the C grid, ours warm-started in increasing C against
  scikit-learn fitting each C from scratch (--quick: every 4th of dinov2's 45 values).
- extraction: img/s of logreg's feature cache (tools/bench_data.py's JPEGs, resize 224 bicubic, crop 224,
  random ResNet-50) written to a memory-mapped .npy.
Prints one line per figure and a JSON summary (timing: tools/bench_harness.py).
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_data import write_jpegs  # noqa: E402
from bench_harness import interleaved, low_mid, measure, print_json, ratios  # noqa: E402
from transfer.classification import holdout, logreg  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def probe_model(kind, device):
    """(model, optim_wrapper) of the linear probe ('one') or the sweep ('sweep'), as their runners build them."""
    import logging

    from mmengine.logging import MMLogger
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.registry import MODELS

    from transfer.classification import mmrun, sweep

    MMLogger.get_current_instance().setLevel(logging.WARNING)  # one line per parameter group otherwise
    path = os.path.join(REPO, "configs", "mmpretrain", "linear_mocov2_r50.py")
    cfg = sweep.build_cfg(path) if kind == "sweep" else mmrun.build_cfg(path)
    model = MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor)).to(device)
    model.init_weights()
    model.train()
    return model, build_optim_wrapper(model, cfg.optim_wrapper)


def bench_sweep(device, batch, steps, rounds):
    from mmpretrain.structures import DataSample

    g = torch.Generator().manual_seed(0)
    data = dict(inputs=[torch.randint(0, 256, (3, 224, 224), dtype=torch.uint8, generator=g) for _ in range(batch)],
                data_samples=[DataSample().set_gt_label(int(i)) for i in torch.randint(0, 1000, (batch,), generator=g)])
    arms = {k: probe_model(k, device) for k in ("one", "sweep")}
    steps_of = {k: lambda m=model, o=opt: m.train_step(data, o) for k, (model, opt) in arms.items()}
    times, _ = interleaved(steps_of, rounds, device, repeats=steps)  # interleaved: a busy machine slows both alike
    heads = len(arms["sweep"][0].head.fcs)
    out = {k: dict(zip(("min_s", "median_s"), low_mid(v))) for k, v in times.items()}
    ratio = ratios(times["sweep"], times["one"])
    out.update(heads=heads, batch=batch, ratio_min=ratio[0], ratio_median=ratio[1])
    print(f"sweep: one training step at 224 px, batch {batch}, 1000 classes ({device}): 1 head "
          f"{out['one']['min_s']:.3f} s, {heads} heads {out['sweep']['min_s']:.3f} s (min of {rounds}); "
          f"ratio {out['ratio_min']:.3f} (min) / {out['ratio_median']:.3f} (median)")
    return out


def features(n, d, classes, rng, means):
    y = rng.integers(0, classes, n)
    return (means[y] + rng.standard_normal((n, d))).astype(np.float32), y


def sklearn_fit(X, y, C, tol, max_iter):
    from sklearn.linear_model import LogisticRegression

    m, seconds, _, _ = measure(lambda: LogisticRegression(C=C, solver="lbfgs", tol=tol, max_iter=max_iter).fit(X, y))
    return m, seconds


def bench_logreg(n_train, n_val, d, classes, grid, C, tol, max_iter, device, threads):
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    means = 0.35 * rng.standard_normal((classes, d))  # overlapping classes: accuracy well below 100%
    Xtr, ytr = features(n_train, d, classes, rng, means)
    Xva, yva = features(n_val, d, classes, rng, means)
    X64 = Xtr.astype(np.float64)  # scikit-learn's lbfgs computes in float64, as the protocol does
    rows = lambda X, y, idx: logreg.Rows(X, y, idx, device, torch.float64, 65536, 8)  # noqa: E731
    train, val = rows(Xtr, ytr, np.arange(n_train)), rows(Xva, yva, np.arange(n_val))
    say = f"{n_train} x {d} train, {n_val} val, {classes} classes, float64, tol {tol:g}, max_iter {max_iter}, " \
          f"{threads} threads"
    with threadpool_limits(threads):
        fit = lambda: logreg.fit(train, classes, C, None, max_iter, tol, memory=10)  # noqa: E731
        (W, b, it), ours_s, _, _ = measure(fit, device)
        ours_acc = logreg.accuracy(val, W, b, (1,))[0]
        sk, sk_s = sklearn_fit(X64, ytr, C, tol, max_iter)
        sk_acc = 100 * sk.score(Xva.astype(np.float64), yva)
        print(f"logreg at C {C:g} ({say}): ours {ours_s:.2f} s ({it} it., {device}) top-1 {ours_acc:.2f}; "
              f"scikit-learn {sk_s:.2f} s ({int(sk.n_iter_[0])} it., cpu) top-1 {sk_acc:.2f}; "
              f"difference {ours_acc - sk_acc:+.2f} points")
        fit_idx, held_idx = holdout.split(n_train)
        sweep = lambda: logreg.sweep(rows(Xtr, ytr, fit_idx), rows(Xtr, ytr, held_idx), classes, grid,  # noqa: E731
                                     max_iter, tol, 10, log=lambda *_: None)
        (path, best), warm_s, _, _ = measure(sweep, device)
        cold_s, cold = 0.0, []
        for c in grid:
            m, s = sklearn_fit(X64[fit_idx], ytr[fit_idx], c, tol, max_iter)
            cold_s += s
            cold.append(100 * m.score(X64[held_idx], ytr[held_idx]))
    print(f"logreg sweep over {len(grid)} C ({grid[0]:.0e}..{grid[-1]:.0e}) on 90% of train: ours warm-started "
          f"{warm_s:.1f} s ({sum(i for _, _, i in path)} it.), scikit-learn from scratch {cold_s:.1f} s; "
          f"ratio {warm_s / cold_s:.3f}; holdout top-1 at the chosen C: ours {best[0]:.2f} (C {best[1]:.3g}), "
          f"scikit-learn's best {max(cold):.2f} (C {grid[cold.index(max(cold))]:.3g})")
    return dict(setting=say, C=C, ours_s=ours_s, ours_top1=ours_acc, ours_iter=it, sklearn_s=sk_s, sklearn_top1=sk_acc,
                top1_difference=ours_acc - sk_acc, sweep_values=len(grid), sweep_warm_s=warm_s,
                sweep_sklearn_cold_s=cold_s, sweep_ratio=warm_s / cold_s, device=str(device))


def bench_extraction(device, n, batch):
    from transfer.classification import backbone

    cfg = {"preprocess": {"resize": 224, "crop": 224, "interpolation": "bicubic"}, "batch_size": batch, "workers": 0}
    model = backbone.load_backbone(None, "resnet50").to(device)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(tmp, n)  # ImageNet-like sizes, JPEG
        X, seconds, _, _ = measure(lambda: logreg.cached_features(model, "bench", (paths,), "bench", "gap", cfg,
                                                                  os.path.join(tmp, "f"), log=lambda *_: None), device)
        rate = n / seconds
        assert isinstance(X, np.memmap) and X.shape == (n, 2048)
    print(f"extraction to a memory-mapped cache (decode, resize 224 bicubic, crop 224, R50 GAP; {device}, batch "
          f"{batch}): {rate:.1f} img/s")
    return rate


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="for torch and scikit-learn alike")
    p.add_argument("--skip", nargs="*", default=[], choices=["sweep", "logreg", "extraction"])
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"error: --device {args.device}: this machine has no CUDA GPU", file=sys.stderr)
        return 2
    q, dev = args.quick, torch.device(args.device)
    out = {"device": args.device, "threads": args.threads, "quick": q}
    if "sweep" not in args.skip:
        out["sweep"] = bench_sweep(dev, 8 if q else (256 if dev.type == "cuda" else 32), 1 if q else 3, 3)
    if "logreg" not in args.skip:
        grid = logreg.c_grid({"start": -6, "stop": 5, "num": 45})
        size = (10000, 10000, 128, 100) if q else (50000, 10000, 512, 1000)
        out["logreg"] = bench_logreg(*size, grid[::4] if q else grid, 1.0, 1e-5, 1000, dev, args.threads)
    if "extraction" not in args.skip:
        out["extraction_img_s"] = bench_extraction(dev, 16 if q else 512, 8 if q else 64)
    print_json(out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
