"""The top-1 class of every evaluation image, from the mmpretrain runners (linear, linear-stages, finetune),
written to per_image.npz (transfer/perimage.py) for paired comparisons between checkpoints.

An MMEngine metric, so that MMEngine gathers the images of every GPU as it does for the accuracy;
`add_to` puts it beside the config's own test metrics and `write` saves what it collected.
"""
import os

from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS

from transfer import perimage


@METRICS.register_module()
class PerImageTop1(BaseMetric):
    """Per image: its path under the split folder ('class/x.jpg'), true class, and top-1 class of each head
    (`names`: the top-1 metric each head reports, e.g. 'accuracy/top1' or 'feat1/top1' ... 'feat5/top1')."""

    def __init__(self, names, **kwargs):
        super().__init__(**kwargs)
        self.names, self.rows = tuple(names), []

    def process(self, data_batch, data_samples):
        for ds in data_samples:
            scores = ds["stage_scores"] if "stage_scores" in ds else ds["pred_score"][None]  # (heads, classes)
            image = "/".join(ds["img_path"].replace(os.sep, "/").split("/")[-2:])
            self.results.append((image, int(ds["gt_label"][0]), scores.argmax(-1).tolist()))

    def compute_metrics(self, results):
        self.rows = sorted(results)  # by image: the same order whatever the number of GPUs
        return {}


def add_to(evaluator):
    """The config's test metric(s), then PerImageTop1 for the top-1 metrics they report."""
    metrics = list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]
    names = [f"{s}/top1" for m in metrics if m["type"] == "StageAccuracy" for s in m["stages"]] or ["accuracy/top1"]
    return metrics + [dict(type="PerImageTop1", names=names)]


def write(run_dir, evaluator):
    """RUN/per_image.npz from the PerImageTop1 metric of a finished test loop's evaluator."""
    metric = next(m for m in evaluator.metrics if isinstance(m, PerImageTop1))
    ids, labels, preds = zip(*metric.rows)
    return perimage.write(run_dir, ids, labels, {name: [p[i] for p in preds] for i, name in enumerate(metric.names)})
