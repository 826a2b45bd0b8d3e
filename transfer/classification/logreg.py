"""`logreg`: dinov2's logistic-regression evaluation (dinov2 eval/log_regression.py) on frozen features,
solved with L-BFGS in torch instead of cuML, the regularisation swept with warm starts.

    python -m transfer.classification.logreg --config configs/classification/logreg_imagenet.yaml \
        --data-root ROOT --work-dir RUN [--weights CKPT] [--device cuda]

The protocol, each value from dinov2 eval/log_regression.py (the config holds them):
- features extracted once: short side 224 bicubic, centre crop 224 (`make_classification_eval_transform(
  resize_size=224)`); ResNet-50 res5 GAP, ViT class token after the final LayerNorm. Not the kNN/SVM
  cache: their preprocessing differs (256/224 bilinear, 256/squash 224);
- multinomial logistic regression, L2 penalty, intercept not penalised, float64; for each
  C = 10 ** linspace(-6, 5, 45) (`C_POWER_RANGE`), up to 1000 iterations (`DEFAULT_MAX_ITER`), tolerance 1e-12;
- C chosen by top-1 on a held-out 10% of train (holdout.py: its `torch.manual_seed(0)` permutation),
  then the model refit at that C on all of train and evaluated once on val.
The objective is scikit-learn's and cuML's (its `penalty_normalized` default): mean cross-entropy
+ lambda / 2 ||W||^2 with lambda = 1 / (C n), n the images it is fitted on.

Differences from dinov2, each for speed and none in the objective: C values are fitted in increasing order,
each starting from the previous solution (warm start; the optimum is the same, the objective being
strictly convex in W), and the refit starts from the holdout fit at the chosen C. torch's L-BFGS
(strong Wolfe) allows 25 line-search steps where cuML allows 50; `lbfgs_memory` is cuML's default 5.

Memory: the features are a memory-mapped float32 .npy (`<features>/<split>_<layer>.npy`), written
batch by batch during extraction and read `chunk_rows` rows at a time, converted to float64 on the
device chunk by chunk; they are kept on the device between L-BFGS steps only when they fit in
`resident_gib` of GPU memory (ImageNet at 2048-d: 21 GB in float64, kept on an 80 GB GPU); on a CPU only
up to CPU_RESIDENT_GIB, beyond which they are read from the page cache at every step, which is why a CPU is
for small sets. Peak beyond that: chunk_rows x (D + 2 classes) float64 plus the weights (classes x D) and
L-BFGS's 2 x memory copies of them.
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from mococore.files import atomic_text, atomic_write, read_json
from transfer import perimage
from transfer.runner import entry
from transfer.classification import BadInput, build_cfg, build_model, need_keys, parser, write_results
from transfer.classification import features, holdout, knn

TASK = "logreg"
CPU_RESIDENT_GIB = 2
KEYS = ("train_dir", "val_dir", "layer", "preprocess", "c_powers", "max_iter", "tol", "lbfgs_memory", "dtype",
        "holdout_fraction", "holdout_seed", "batch_size", "workers", "chunk_rows", "resident_gib")


def c_grid(powers):
    """dinov2's C values: 10 ** torch.linspace(start, stop, num) in float32, as it computes them."""
    return [float(c) for c in 10 ** torch.linspace(powers["start"], powers["stop"], powers["num"])]


class Rows:
    """The rows `idx` of a (memory-mapped) feature array and their labels, as (x, y) device chunks."""

    def __init__(self, feats, labels, idx, device, dtype, chunk_rows, resident_gib):
        self.feats, self.labels, self.idx = feats, np.asarray(labels), np.asarray(idx)
        self.device, self.dtype, self.chunk_rows = device, dtype, chunk_rows
        self.n, self.dim = len(self.idx), feats.shape[1]
        # on a CPU a resident float64 copy doubles the page-cached features in RAM: only for small sets
        budget = resident_gib if torch.device(device).type == "cuda" else min(resident_gib, CPU_RESIDENT_GIB)
        fits = self.n * self.dim * torch.empty((), dtype=dtype).element_size() <= budget * 2 ** 30
        self.resident = list(self.read()) if fits else None

    def read(self):
        for s in range(0, self.n, self.chunk_rows):
            i = self.idx[s:s + self.chunk_rows]
            x = torch.from_numpy(np.asarray(self.feats[i], np.float32)).to(self.device, self.dtype)
            yield x, torch.from_numpy(self.labels[i]).to(self.device)

    def __iter__(self):
        return iter(self.resident) if self.resident is not None else self.read()


def fit(rows, num_classes, C, init=None, max_iter=1000, tol=1e-12, memory=5, change_tol=None):
    """(W, b, iterations): argmin mean CE(x W^T + b) + 1 / (2 C n) ||W||^2 by L-BFGS from `init` (zeros).
    Stops at max|gradient| <= tol (scikit-learn's gtol), a loss change below change_tol (default 64 eps,
    scikit-learn's ftol; cuML's default delta = tol / 100 is the same 1e-14 at dinov2's tol), or max_iter."""
    W = torch.zeros(num_classes, rows.dim, dtype=rows.dtype, device=rows.device) if init is None else init[0].clone()
    b = torch.zeros(num_classes, dtype=rows.dtype, device=rows.device) if init is None else init[1].clone()
    W.requires_grad_(True)
    b.requires_grad_(True)
    lam = 1.0 / (C * rows.n)
    change_tol = 64 * torch.finfo(rows.dtype).eps if change_tol is None else change_tol
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=max_iter, max_eval=max_iter * 25, tolerance_grad=tol,
                            tolerance_change=change_tol, history_size=memory, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        total = 0.0
        for x, y in rows:  # one chunk's graph at a time: memory is one chunk's logits
            loss = F.cross_entropy(x @ W.T + b, y, reduction="sum") / rows.n
            loss.backward()
            total += loss.item()
        reg = 0.5 * lam * (W * W).sum()
        reg.backward()
        return total + reg.item()

    opt.step(closure)
    return W.detach(), b.detach(), opt.state[opt._params[0]]["n_iter"]


@torch.no_grad()
def accuracy(rows, W, b, topk=(1, 5)):
    """[top-k accuracy in %] over the rows."""
    hits = torch.zeros(len(topk), dtype=torch.float64)
    for x, y in rows:
        pred = (x @ W.T + b).topk(min(max(topk), W.shape[0]), dim=1).indices
        for j, k in enumerate(topk):
            hits[j] += (pred[:, :k] == y[:, None]).any(1).sum().item()
    return [100.0 * h.item() / max(rows.n, 1) for h in hits]


def sweep(fit_rows, held_rows, num_classes, Cs, max_iter, tol, memory, log=print):
    """[(C, holdout top-1, iterations)] over Cs in increasing order, each fit warm-started from the previous
    one, and the (W, b) at the best C."""
    out, state, best = [], None, None
    for C in sorted(Cs):
        start = time.time()
        W, b, n_iter = fit(fit_rows, num_classes, C, state, max_iter, tol, memory)
        state = (W, b)
        top1 = accuracy(held_rows, W, b, (1,))[0]
        out.append((C, top1, n_iter))
        if best is None or top1 > best[0]:  # the first C that reaches the max, as dinov2
            best = (top1, C, W, b)
        log(f"logreg: C {C:.3g} holdout top-1 {top1:.2f} ({n_iter} iterations, {time.time() - start:.1f} s)")
    return out, best


def cached_features(model, wkey, items, split, layer, cfg, cache_dir, log=print):
    """The (N, D) float32 features of the images, memory-mapped from `<cache>/<split>_<layer>.npy` (written
    batch by batch at the first run; the key beside it says which weights, preprocessing and images)."""
    from numpy.lib.format import open_memmap

    paths = items[0]
    key = features.cache_key(wkey, cfg["preprocess"], layer, paths)
    path = os.path.join(cache_dir, f"{split}_{layer}.npy")
    meta = path[:-4] + ".key.json"
    if os.path.isfile(path) and read_json(meta)[0] == {"key": key}:
        log(f"features: {split} {layer} read from {path}")
        return np.load(path, mmap_mode="r")

    def extract(tmp):  # a killed run never leaves a half file under the cache name
        arr = features.run_extraction(model, paths, [layer], cfg["preprocess"], split, cfg["batch_size"],
                                      cfg["workers"], log, alloc=lambda _, shape: open_memmap(tmp, "w+", np.float32,
                                                                                               shape))[layer]
        arr.flush()

    atomic_write(path, extract)
    atomic_text(meta, json.dumps({"key": key}))
    return np.load(path, mmap_mode="r")


def check_config(cfg, path):
    need_keys(cfg, KEYS, path)
    p = cfg["c_powers"]
    if not (isinstance(p, dict) and set(p) == {"start", "stop", "num"} and isinstance(p["num"], int) and p["num"] > 0):
        raise BadInput(f"--config {path}: c_powers {p} is not {{start: S, stop: E, num: N}} "
                       "(dinov2: start -6, stop 5, num 45)")
    if cfg["dtype"] not in ("float64", "float32"):
        raise BadInput(f"--config {path}: dtype {cfg['dtype']!r} is not float64 (dinov2) or float32")
    if not 0 < cfg["holdout_fraction"] < 1:
        raise BadInput(f"--config {path}: holdout_fraction {cfg['holdout_fraction']} is not between 0 and 1")


def prepare(args):
    """Everything checked before any work: config, data, device, weights, layer. Raises BadInput."""
    cfg = build_cfg(args.config)
    check_config(cfg, args.config)
    cfg["_path"] = args.config
    train, val = knn.check_data({**cfg, "k": []}, args.data_root)  # the same class folders as kNN's
    n_held = int(len(train[0]) * cfg["holdout_fraction"] + 1e-9)
    if n_held == 0:
        raise BadInput(f"{os.path.join(args.data_root, cfg['train_dir'])}: {len(train[0])} images; the "
                       f"{cfg['holdout_fraction']:.0%} holdout that chooses C needs at least "
                       f"{int(np.ceil(1 / cfg['holdout_fraction']))}")
    if args.device and args.device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"--device {args.device}: this machine has no CUDA GPU; leave --device out or use cpu")
    if args.device and not args.device.startswith(("cuda", "cpu")):
        raise BadInput(f"--device {args.device}: one of cpu, cuda, cuda:N")
    model = build_model(args, [cfg["layer"]], cfg["preprocess"])
    return cfg, train, val, model


def main(argv=None):
    args = parser(__doc__.split("\n")[0]).parse_args(argv)
    cfg, train, val, model = prepare(args)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)
    wkey = features.weights_key(args.weights, args.arch, args.seed)
    cache = args.features_dir or os.path.join(args.work_dir, "features")
    layer = cfg["layer"]
    Xtr = cached_features(model, wkey, train, "train", layer, cfg, cache)
    dtype = getattr(torch, cfg["dtype"])
    rows = lambda X, y, idx: Rows(X, y, idx, device, dtype, cfg["chunk_rows"], cfg["resident_gib"])  # noqa: E731
    fit_idx, held_idx = holdout.split(len(train[0]), cfg["holdout_fraction"], cfg["holdout_seed"])
    classes = len(train[2])
    iters = dict(max_iter=cfg["max_iter"], tol=cfg["tol"], memory=cfg["lbfgs_memory"])
    start = time.time()
    path, best = sweep(rows(Xtr, train[1], fit_idx), rows(Xtr, train[1], held_idx), classes, c_grid(cfg["c_powers"]),
                       **iters)
    _, C, W, b = best
    W, b, _ = fit(rows(Xtr, train[1], np.arange(len(train[0]))), classes, C, (W, b), **iters)  # refit on all train
    print(f"logreg: chose C {C:.4g} on the holdout; refit on all {len(train[0])} train images", flush=True)
    Xva = cached_features(model, wkey, val, "val", layer, cfg, cache)  # the validation set, read after the choice
    top1, top5 = accuracy(rows(Xva, val[1], np.arange(len(val[0]))), W, b)
    print(f"logreg: C {C:.4g} (holdout top-1 {best[0]:.2f}); val top-1 {top1:.2f}, top-5 {top5:.2f}; "
          f"sweep and refit {time.time() - start:.1f} s on {device}")
    # log10 C: the report prints two decimals, and the chosen C is often below 0.005
    metrics = {"logreg": {"top1": top1, "top5": top5, "log10_C": float(np.log10(C)), "holdout_top1": best[0]}}
    # the top-1 class of every val image, for paired comparisons (transfer/perimage.py)
    pred = torch.cat([(x @ W.T + b).argmax(1).cpu() for x, _ in rows(Xva, val[1], np.arange(len(val[0])))])
    val_dir = os.path.join(args.data_root, cfg["val_dir"])
    perimage.write(args.work_dir, [os.path.relpath(p, val_dir) for p in val[0]], val[1], {"logreg/top1": pred.numpy()})
    write_results(args.work_dir, TASK, metrics, facts(cfg, args, train, val, device, path, len(held_idx), C))
    return 0


def facts(cfg, args, train, val, device, path, n_held, C):
    from transfer.fingerprint import versions

    return dict(layer=cfg["layer"], preprocess=cfg["preprocess"], c_powers=cfg["c_powers"], max_iter=cfg["max_iter"],
                tol=cfg["tol"], chosen_C=C, lbfgs_memory=cfg["lbfgs_memory"], dtype=cfg["dtype"],
                holdout_fraction=cfg["holdout_fraction"], holdout_seed=cfg["holdout_seed"], refit_on_all_train=True,
                holdout_images=n_held, num_classes=len(train[2]), train_images=len(train[0]), val_images=len(val[0]),
                sweep=[dict(C=c, holdout_top1=t, iterations=i) for c, t, i in path], device=str(device),
                weights=args.weights or "random init", seed=args.seed, versions=versions())


if __name__ == "__main__":
    sys.exit(entry(main))
