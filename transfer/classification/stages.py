"""The Feature1-Feature5 linear heads of mmselfsup 0.x (mmselfsup 0.x
mmselfsup/models/utils/multi_pooling.py and heads/multi_cls_head.py) as modules in
mmpretrain's own registries, so that a config builds them like any mmpretrain model:

    ResNetStages     mmpretrain's ResNet that also returns the stem (conv1+BN+ReLU, before the max pool)
    StagePool        AvgPool2d per stage to the fixed grid (mmselfsup multi_pooling 'specified')
    StageLinearHead  per stage BN2d(affine=False) on the pooled map, flatten, Linear; losses summed
    StageAccuracy    top-k of every stage (`feat1/top1` ...)
    ClippedLighting  mmpretrain's PCA Lighting, clipped to the pixel range before the cast back to uint8
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModule
from mmpretrain.datasets.transforms import Lighting
from mmpretrain.evaluation import Accuracy
from mmpretrain.models import ClsHead, ResNet
from mmpretrain.registry import METRICS, MODELS, TRANSFORMS


@MODELS.register_module()
class ResNetStages(ResNet):
    """(stem, res2, res3, res4, res5): the stem output is taken before the max pool, as mmselfsup 0.x's
    feat1; mmpretrain's `out_indices` can only name res2-res5."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.deep_stem:
            raise ValueError("ResNetStages: feat1 is the 7x7 conv1+BN+ReLU stem; deep_stem has none")

    def forward(self, x):
        x = self.relu(self.norm1(self.conv1(x)))
        outs = [x]
        x = self.maxpool(x)
        for name in self.res_layers:
            x = getattr(self, name)(x)
            outs.append(x)
        return tuple(outs)


@MODELS.register_module()
class StagePool(BaseModule):
    """One AvgPool2d(kernel, stride, padding) per stage: 224 inputs give grids 12/6/4/3/2."""

    def __init__(self, pools):
        super().__init__()
        self.pools = nn.ModuleList(nn.AvgPool2d(k, s, p) for k, s, p in pools)

    def forward(self, feats):
        if len(feats) != len(self.pools):
            raise ValueError(f"StagePool: {len(feats)} feature maps for {len(self.pools)} pools")
        return tuple(pool(f) for pool, f in zip(self.pools, feats))


@MODELS.register_module()
class StageLinearHead(ClsHead):
    """A linear classifier per stage; its loss is `loss_<stage>` each (MMEngine sums every loss key),
    its prediction the last stage's, with every stage's scores in `stage_scores` for StageAccuracy."""

    def __init__(self, num_classes, channels, in_dims, stages, norm_cfg=dict(type="BN", momentum=0.1, affine=False),
                 init_cfg=dict(type="Normal", std=0.01, layer="Linear"), **kwargs):
        super().__init__(init_cfg=init_cfg, **kwargs)
        if not len(channels) == len(in_dims) == len(stages):
            raise ValueError(f"StageLinearHead: {len(stages)} stages, {len(channels)} channels, {len(in_dims)} in_dims")
        self.stages = tuple(stages)
        self.norms = nn.ModuleList(build_norm_layer(norm_cfg, c)[1] for c in channels)
        self.fcs = nn.ModuleList(nn.Linear(d, num_classes) for d in in_dims)

    def forward(self, feats):
        return [fc(norm(x).flatten(1)) for x, norm, fc in zip(feats, self.norms, self.fcs)]

    def loss(self, feats, data_samples, **kwargs):
        target = torch.cat([ds.gt_label for ds in data_samples])
        return {f"loss_{s}": self.loss_module(score, target, avg_factor=len(target), **kwargs)
                for s, score in zip(self.stages, self(feats))}

    def predict(self, feats, data_samples=None):
        probs = torch.stack([F.softmax(s, dim=1) for s in self(feats)], dim=1).detach()  # (N, stages, C)
        out = super()._get_predictions(probs[:, -1], data_samples)
        for ds, p in zip(out, probs):
            ds.set_field(p, "stage_scores")
        return out


def topk_accuracy(scores, target, topk):
    """[top-k accuracy in %] for each k; with k or fewer classes every label is among the top k (100%),
    where mmpretrain's Accuracy raises (the built-in data has 4-10 classes)."""
    scores = scores.float()
    if max(topk) > scores.size(1):  # columns that are never the label
        scores = F.pad(scores, (0, max(topk) - scores.size(1)), value=-float("inf"))
    return [float(a[0]) for a in Accuracy.calculate(scores, target, topk=topk, thrs=(None,))]


@METRICS.register_module()
class TopkAccuracy(Accuracy):
    """mmpretrain's Accuracy (`accuracy/top1`, `accuracy/top5`) over any number of classes (topk_accuracy)."""

    def compute_metrics(self, results):
        scores = torch.stack([r["pred_score"] for r in results])
        target = torch.cat([r["gt_label"] for r in results])
        return {f"top{k}": a for k, a in zip(self.topk, topk_accuracy(scores, target, self.topk))}


@METRICS.register_module()
class StageAccuracy(BaseMetric):
    """Top-k accuracy of each stage's classifier: {'feat1/top1': ..., 'feat5/top5': ...}."""

    def __init__(self, stages, topk=(1, 5), **kwargs):
        super().__init__(**kwargs)
        self.stages, self.topk = tuple(stages), tuple(topk)

    def process(self, data_batch, data_samples):
        for ds in data_samples:
            self.results.append((ds["stage_scores"].cpu(), ds["gt_label"].cpu()))

    def compute_metrics(self, results):
        scores = torch.stack([r[0] for r in results])  # (N, stages, C)
        target = torch.cat([r[1] for r in results])
        out = {}
        for i, stage in enumerate(self.stages):
            for k, acc in zip(self.topk, topk_accuracy(scores[:, i], target, self.topk)):
                out[f"{stage}/top{k}"] = acc
        return out


@TRANSFORMS.register_module()
class ClippedLighting(Lighting):
    """mmselfsup 0.x applied Lighting to float [0, 1] tensors; mmpretrain applies it to uint8 images and
    casts back unclipped, so a dark pixel pushed to -3 wraps to 253. Clip, then cast."""

    def transform(self, results):
        img = results["img"]
        results["img"] = img.astype(np.float32)
        results = super().transform(results)
        results["img"] = np.clip(results["img"], 0, 255).astype(img.dtype)
        return results
