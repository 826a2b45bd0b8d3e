"""Per-image results of an evaluation, so that two checkpoints can be compared image by image
(transfer/compare.py): a paired test needs to know which images each got right, not only how many.

Each run that can writes RUN/per_image.npz beside final_metrics.json (numpy's npz, written atomically):

    ids      (N,) str     the evaluation images in evaluation order: the path under the split folder
                          ('class/x.jpg'), the VOC image id, or the segmentation image's name
    labels   (N,) int     true class (top-1 tasks); (N, C) int, 1 present / 0 absent / -1 difficult (VOC07 SVM)
    one array per metric it can recompute, named as the metric in final_metrics.json, flat
    ('knn/top1_k20', 'accuracy/top1', 'feat3/top1', 'svm/mAP_feat5', 'svm_lowshot/mAP_feat5_k8', 'sem_seg/mIoU'):
      .../top1...  (N,) int          predicted class (top-1 accuracy)
      .../mAP...   (N, C) float      SVM decision value per class, NaN for a class the run skipped;
                   (S, N, C)          low-shot: one per sample, at the cost the run reports
      .../mIoU     (N, 2, C) int64   per image and class: intersecting and union pixel counts

`metric(name, data, W)` recomputes a metric for image weights W (B, N), each row the number of times
each image is drawn in one bootstrap resample; W = 1 gives the run's own number.
"""
import os

import numpy as np

from mococore.files import atomic_write

FILE = "per_image.npz"


def kind(name):
    """'top1', 'ap' or 'iou': what a metric's per-image array holds; None for metrics without one."""
    if name.endswith("mIoU"):
        return "iou"
    if "/mAP" in name:
        return "ap"
    if name.split("/")[-1].startswith("top1"):
        return "top1"
    return None


def write(run_dir, ids, labels, arrays):
    """RUN/per_image.npz with ids, labels (None for segmentation) and {metric name: array}, atomically."""
    ids = np.asarray([str(i) for i in ids])
    out = {"ids": ids, **({"labels": np.asarray(labels)} if labels is not None else {})}
    for name, a in arrays.items():
        if kind(name) is None:
            raise ValueError(f"per-image array '{name}': not a top-1, mAP or mIoU metric")
        a = np.asarray(a)
        if a.shape[a.ndim - 2 if kind(name) == "ap" else 0] != len(ids):  # the images' axis
            raise ValueError(f"per-image array '{name}' of shape {a.shape} for {len(ids)} images")
        out[name] = a
    path = os.path.join(run_dir, FILE)

    def save(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would add '.npz' to a name
            np.savez(f, **out)

    atomic_write(path, save)
    return path


def read(run_dir):
    """{'ids', 'labels', metric: array} of RUN/per_image.npz; None when the run wrote none."""
    path = os.path.join(run_dir, FILE)
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable per-image file ({type(e).__name__}: {e})") from None


def draw(n, count, rng):
    """Image weights (count, n): each row the multiplicities of n images drawn with replacement."""
    idx = rng.integers(0, n, (count, n)) + np.arange(count)[:, None] * n
    return np.bincount(idx.ravel(), minlength=count * n).reshape(count, n).astype(np.float32)  # exact below 2^24


def metric(name, data, W):
    """(B,) values in percent of metric `name` under image weights W (B, N)."""
    W = np.atleast_2d(np.asarray(W))
    a = data[name]
    if kind(name) == "top1":
        return 100.0 * (W @ (a == data["labels"]).astype(W.dtype)).astype(np.float64) / W.sum(1, dtype=np.float64)
    if kind(name) == "iou":
        W = W.astype(np.float64)  # pixel counts: beyond float32's exact integers
        inter, union = W @ a[:, 0].astype(np.float64), W @ a[:, 1].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, inter / union, np.nan)  # mmseg: a class never seen nor predicted is NaN
        return 100.0 * nanmean(iou)
    if kind(name) == "ap":
        scores = a if a.ndim == 3 else a[None]
        return np.mean([mean_ap(data["labels"], s, W) for s in scores], axis=0)
    raise KeyError(f"'{name}' has no per-image form")


def nanmean(x):
    """Row means over the non-NaN entries; NaN for a row with none (no warning)."""
    ok = ~np.isnan(x)
    with np.errstate(invalid="ignore"):
        return np.where(ok, x, 0).sum(1) / ok.sum(1)


def mean_ap(labels, scores, W):
    """(B,) 100 x mean over classes of weighted_ap; classes with NaN scores (skipped by the run) left out."""
    classes = [c for c in range(labels.shape[1]) if not np.isnan(scores[:, c]).any()]
    aps = [weighted_ap(labels[:, c], scores[:, c], W) for c in classes]
    return 100.0 * nanmean(np.stack(aps, 1))


def weighted_ap(target, scores, W):
    """(B,) VOC07 SVM AP (transfer.classification.svm.voc07_ap: the precision envelope, difficult
    images dropped) of each weighting of the images. An image drawn w times is w tied images in a
    row: they add w x its recall at the envelope's precision where the run of copies ends. Precision
    rises only at a positive, so the envelope is the running maximum, from the end, of the precision
    at the positives. NaN for a weighting without positives."""
    keep = np.flatnonzero(target != -1)
    order = keep[np.argsort(scores[keep])[::-1]]  # voc07_ap's order (ties as it breaks them)
    at = np.flatnonzero(target[order] > 0)  # the positives' ranks
    if not len(at):
        return np.full(len(W), np.nan)
    w = W[:, order]
    seen = np.cumsum(w, 1)[:, at]  # images (with multiplicity) down to each positive
    ctp = np.cumsum(w[:, at], 1)  # positives down to each positive
    with np.errstate(invalid="ignore", divide="ignore"):
        envelope = np.maximum.accumulate(np.where(seen > 0, ctp / seen, 0.0)[:, ::-1], 1)[:, ::-1]
        return np.where(ctp[:, -1] > 0, (w[:, at] * envelope).sum(1) / ctp[:, -1], np.nan)
