"""`linear-sweep`: the linear probe of the checkpoint's recipe at 13 learning rates at once, one frozen
backbone forward per batch feeding every head (dinov2 eval/linear.py `setup_linear_classifiers`: one
Linear per (learning rate, feature variant), one optimizer param group each, the heads' losses summed).

    python -m transfer.classification.sweep --config configs/mmpretrain/linear_mocov2_r50.py \
        --data-root /data --work-dir out/linear-sweep --weights backbone_mmpretrain.pth

It takes the `linear` protocol's own config and changes three things, so that every head follows the
recipe otherwise (pipeline, batch, epochs, schedule, SGD momentum, init) by construction:
- the head: `SweepLinearHead`, one Linear per learning rate (ViT: per learning rate and feature
  variant, the class token and the class token + mean patch token, dinov2's `use_avgpool`);
- the optimizer: lr x factor per head (`paramwise_cfg` lr_mult), the factors of transfer/protocols.py
  (13 log-spaced, a tenth to ten times the recipe's lr: MoCo v2's 30 lies outside dinov2's 1e-5..0.1);
- the data: training on 90% of train; the head is chosen on the other 10% (transfer/classification/
  holdout.py; dinov2 chooses on the validation set, which this protocol never does). The validation
  set is read once, after the choice, by the chosen head alone. It is not refit on all of train.

Why mmpretrain and not a torch loop: the `linear` protocol is an mmpretrain model trained by MMEngine's
Runner; a sweep that is the same model with a wider head keeps its data pipeline, schedulers,
checkpoints, resume and backbone checks unchanged, and costs one module (the head) and this runner.

Writes RUN/final_metrics.json ({'accuracy': {'top1', 'top5'}, 'sweep': {'lr', 'holdout_top1'}}),
RUN/per_image.npz (the chosen head's top-1 class per validation image), RUN/sweep.json (every head's lr,
variant and holdout accuracy) and RUN/split/{fit,holdout}.txt.
"""
import copy
import os
import sys

import torch
import torch.nn as nn
from mmengine.registry import DefaultScope
from mmpretrain.models import ClsHead
from mmpretrain.registry import DATASETS, MODELS

from mococore.files import atomic_text
from transfer import mmengine_run, protocols
from transfer.runner import entry, finish
from transfer.classification import BadInput, atomic_json, holdout, linear, mmrun, predictions

TASK = "linear-sweep"
FACTS = protocols.get(TASK).facts  # lr_factors, holdout_fraction, holdout_seed, vit_variants


@MODELS.register_module()
class SweepLinearHead(ClsHead):
    """One Linear(in, classes) per (feature variant, lr factor), N(0, 0.01) like the recipe's head.
    Loss: the sum of the heads' cross-entropies (each head's gradient is its own, so with one param group
    per head this trains each as if alone). Prediction: every head's scores in `stage_scores` (for
    StageAccuracy on the holdout), or only the `chosen` head's as `pred_score` once it is set.
    norm: BatchNorm1d keyword arguments (a quick ViT probe's ClsBatchNormNeck, moved here): each variant's
    input standardised before its Linears, as the probe's neck does to the class token."""

    def __init__(self, num_classes, in_channels, lr_factors, variants=("gap",), norm=None,
                 init_cfg=dict(type="Normal", layer="Linear", std=0.01, bias=0.0), **kwargs):
        super().__init__(init_cfg=init_cfg, **kwargs)
        dims = {"gap": in_channels, "cls": in_channels, "cls+avgpool": 2 * in_channels}
        self.heads = [(v, f) for v in variants for f in lr_factors]
        self.fcs = nn.ModuleList(nn.Linear(dims[v], num_classes) for v, _ in self.heads)
        self.norms = nn.ModuleDict({v: nn.BatchNorm1d(dims[v], **norm) for v in variants}) if norm else None
        self.chosen = None

    def names(self):
        return [f"{v}_lr{i:02d}" for i, (v, _) in enumerate(self.heads)]

    def forward(self, feats):
        x = feats[-1]
        if x.dim() == 3:  # ViT tokens after the final LayerNorm (out_type 'raw'): dinov2 create_linear_input
            cls = x[:, 0]
            inputs = {"cls": cls, "cls+avgpool": torch.cat([cls, x[:, 1:].mean(1)], dim=1)}
        else:
            inputs = {"gap": x}
        if self.norms is not None:
            inputs = {v: bn(inputs[v]) for v, bn in self.norms.items()}
        return [fc(inputs[v]) for (v, _), fc in zip(self.heads, self.fcs)]

    def loss(self, feats, data_samples, **kwargs):
        target = torch.cat([ds.gt_label for ds in data_samples])
        return {"loss": sum(self.loss_module(s, target, avg_factor=len(target), **kwargs) for s in self(feats))}

    def predict(self, feats, data_samples=None):
        scores = self(feats)
        if self.chosen is not None:
            return self._get_predictions(scores[self.chosen], data_samples)
        out = self._get_predictions(scores[0], data_samples)
        probs = torch.stack([s.softmax(1) for s in scores], dim=1).detach()  # (N, heads, C)
        for ds, p in zip(out, probs):
            ds.set_field(p, "stage_scores")
        return out


def to_sweep(cfg, factors, vit_variants):
    """The linear config with the sweep's head, per-head learning rates and holdout evaluator."""
    head, is_vit = cfg.model.head, cfg.model.backbone.type in mmrun.VIT_TYPES
    norm = None
    if is_vit:
        cfg.model.backbone.out_type = "raw"  # all tokens after the final LayerNorm: class token and patch tokens
        neck = cfg.model.get("neck") or {}
        if neck.get("type") == "ClsBatchNormNeck":  # raw tokens cannot pass it: each head input is normalised
            norm, cfg.model.neck = dict(affine=neck.get("affine", False), eps=neck.get("eps", 1e-6)), None
    variants = list(vit_variants) if is_vit else ["gap"]
    cfg.model.head = dict(type="SweepLinearHead", num_classes=head.num_classes, in_channels=head.in_channels,
                          lr_factors=list(factors), variants=variants, loss=head.loss, init_cfg=head.init_cfg,
                          **({"norm": norm} if norm else {}))
    n = len(factors)
    cfg.optim_wrapper.paramwise_cfg = dict(custom_keys={f"head.fcs.{i}.": dict(lr_mult=factors[i % n])
                                                        for i in range(n * len(variants))})
    names = SweepLinearHead(2, 2, factors, variants).names()
    cfg.val_evaluator = dict(type="StageAccuracy", stages=names, topk=(1, 5))
    return [dict(name=name, variant=v, lr=cfg.optim_wrapper.optimizer.lr * f)
            for name, (v, f) in zip(names, [(v, f) for v in variants for f in factors])]


def build_cfg(config, overrides=()):
    """The runner contract: the `linear` config with the sweep's heads (the data split comes at run time)."""
    cfg = mmrun.build_cfg(config, overrides)
    to_sweep(cfg, FACTS["lr_factors"], FACTS["vit_variants"])
    return cfg


def write_split(cfg, work_dir, fraction, seed):
    """Train on `fit`, choose on `holdout`: both lists of mmpretrain's own listing of train/ (its order and
    labels), written as ann files under RUN/split/; the validation loader keeps val/ for the final test."""
    with DefaultScope.overwrite_default_scope("mmpretrain"):  # not the scope an earlier runner left current
        listing = DATASETS.build(dict(cfg.train_dataloader.dataset, pipeline=[]))
    fit, held = holdout.split(len(listing), fraction, seed)
    if len(held) == 0 or len(fit) == 0:
        raise BadInput(f"--data-root: {cfg.data_dir}/train/ has {len(listing)} images; the {fraction:.0%} holdout "
                       f"that chooses the head needs at least {int(round(1 / fraction))}")
    prefix = listing.img_prefix
    paths = {}
    for name, idx in (("fit", fit), ("holdout", held)):
        lines = [f"{os.path.relpath(listing.get_data_info(i)['img_path'], prefix)} "
                 f"{listing.get_data_info(i)['gt_label']}\n" for i in idx]
        paths[name] = os.path.join(work_dir, "split", f"{name}.txt")
        atomic_text(paths[name], "".join(lines))
    classes = dict(classes=listing.CLASSES)
    cfg.train_dataloader.dataset.update(ann_file=paths["fit"], metainfo=classes)
    test = cfg.val_dataloader
    cfg.val_dataloader = copy.deepcopy(test)
    cfg.val_dataloader.dataset.update(data_prefix=cfg.train_dataloader.dataset.data_prefix,
                                      ann_file=paths["holdout"], metainfo=classes)
    cfg.test_dataloader = test
    return len(fit), len(held)


def main(argv=None):
    args = mmrun.parser(__doc__.split("\n")[0]).parse_args(argv)
    cfg, expected = mmrun.run_cfg(args, tasks=("linear",), recipes=linear.RECIPES)
    recipe_cfg = copy.deepcopy(cfg)
    heads = to_sweep(cfg, FACTS["lr_factors"], FACTS["vit_variants"])
    sizes = write_split(cfg, args.work_dir, FACTS["holdout_fraction"], FACTS["holdout_seed"])

    def facts(world_size):  # the recipe's facts (the probe's config, before the heads) and the sweep's
        return dict(linear.facts(recipe_cfg, world_size, args), **FACTS, heads=len(heads), fit_images=sizes[0],
                    holdout_images=sizes[1])

    runner = mmengine_run.start(cfg, TASK, facts, mmengine_run.BackboneCheck(args.weights, expected, frozen=True))
    runner.train()
    scores = runner.val()  # the holdout: {name/top1, name/top5} of every head
    i = holdout.best([scores[f"{h['name']}/top1"] for h in heads])
    mmengine_run.unwrap(runner.model).head.chosen = i  # from here on only the chosen head predicts
    runner.logger.info(f"chosen on the holdout: {heads[i]['name']} lr {heads[i]['lr']:g} "
                       f"(top-1 {scores[heads[i]['name'] + '/top1']:.2f})")
    for h in heads:
        h.update(holdout_top1=scores[f"{h['name']}/top1"], holdout_top5=scores[f"{h['name']}/top5"])
    if runner.rank == 0:  # the choice is on disk before the validation set is opened
        atomic_json(os.path.join(args.work_dir, "sweep.json"), {"chosen": heads[i]["name"], "heads": heads})
    metrics = runner.test()  # the validation set, read once, by the chosen head
    if runner.rank == 0:
        predictions.write(args.work_dir, runner.test_loop.evaluator)  # per_image.npz, as the linear runner
        final = mmrun.nest(metrics)
        final["sweep"] = {"lr": heads[i]["lr"], "holdout_top1": heads[i]["holdout_top1"]}
        finish(args.work_dir, final)
    return 0


if __name__ == "__main__":
    sys.exit(entry(main))
