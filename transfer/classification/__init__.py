"""Frozen-feature classification evaluators (kNN, VOC07 SVMs, the linear probes), and the plumbing their
runners share: the command line, the YAML config, the feature runners' checks and the results files.

    backbone.py   load_backbone(path_or_None, arch) -> eval-mode model; extract(model, x, layers)
    features.py   extraction once per (weights, preprocessing, split, layer), cached as .npz
    knn.py        runner: weighted kNN (dino eval_knn.py = mmselfsup knn_eval)
    svm.py        runner: VOC07 linear SVMs and low-shot SVMs (fssb / mmselfsup svm_voc07 tools)

A runner: `python -m transfer.classification.knn --config CFG --data-root ROOT --work-dir RUN
--seed N [--weights CKPT] [--num-heads H] [--features-dir DIR]` writes RUN/final_metrics.json
({group: {metric: value}}) and RUN/fingerprint.json.
"""
import os

import yaml

from mococore.files import atomic_json  # noqa: F401  (the runners import it from here)
from transfer import BadInput  # noqa: F401  (the runners import it from here too)
from transfer import runner


def parser(description):
    """The runner contract's command line (transfer/runner.py; no override flag: every recipe value is in
    the YAML), plus the feature runners' own flags."""
    p = runner.parser(description, "YAML under configs/classification/", "the data root (see README for the layout)",
                      "pretraining checkpoint, any layout converters.sources reads (random init when left out)")
    p.add_argument("--arch", default=None, help="architecture of a random init (resnet50, vit_small, vit_base)")
    p.add_argument("--num-heads", type=int, default=None, help="ViT heads, when the checkpoint does not record them")
    p.add_argument("--features-dir", default=None, help="feature cache shared between runs (default RUN/features)")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    return p


def load_config(path):
    """The YAML config; `base: other.yaml` (same folder) is read first and overridden key by key."""
    if not os.path.isfile(path):
        raise BadInput(f"--config {path}: no such file; give one of configs/classification/*.yaml")
    try:
        cfg = yaml.safe_load(open(path)) or {}
    except yaml.YAMLError as e:
        raise BadInput(f"--config {path}: not valid YAML ({str(e).splitlines()[0]}); fix the file") from None
    if not isinstance(cfg, dict):
        raise BadInput(f"--config {path}: expected a mapping of recipe keys, got {type(cfg).__name__}")
    if "base" in cfg:
        base = load_config(os.path.join(os.path.dirname(path), cfg.pop("base")))
        cfg = {**base, **cfg}
    return cfg


def build_cfg(config, overrides=()):
    """The recipe as the kNN and SVM runners read it. They take no overrides: every recipe value is in the YAML."""
    if overrides:
        raise BadInput(f"overrides {' '.join(map(str, overrides))}: the kNN and SVM runners take none; "
                       f"write the change into a copy of {config}")
    return load_config(config)


def need_keys(cfg, keys, path):
    missing = [k for k in keys if k not in cfg]
    if missing:
        raise BadInput(f"--config {path}: missing recipe keys {missing}; every recipe value is in the config "
                       "(see configs/classification/)")


def check_preprocess(pre, path):
    ok = (isinstance(pre, dict) and isinstance(pre.get("resize"), int) and ("crop" in pre) != ("squash" in pre)
          and isinstance(pre.get("crop", pre.get("squash")), int) and pre.get("interpolation") in ("bilinear", "bicubic"))
    if not ok:
        raise BadInput(f"--config {path}: preprocess {pre} is not {{resize: N, crop: N | squash: N, interpolation: "
                       "bilinear | bicubic}} (kNN: resize 256, crop 224; SVM: resize 256, squash 224)")


def build_model(args, layers, pre):
    """The backbone of --weights (random init from --seed when none), checked against the config's
    layers and input size; BadInput names the flag or the config at fault."""
    import torch

    from converters.sources import ConversionError
    from transfer.classification import backbone

    def check(model):  # a model, or an arch name: a random model is checked before it is built
        try:
            backbone.check_layers(model, layers)
            backbone.check_input(model, layers, pre.get("crop", pre.get("squash")))
        except ValueError as e:
            raise BadInput(f"--config {args.config}: {e}") from None

    check_preprocess(pre, args.config)
    if args.weights is None:
        check(args.arch or "resnet50")
    torch.manual_seed(args.seed)
    try:
        model = backbone.load_backbone(args.weights, args.arch, args.num_heads,
                                       img_size=pre.get("crop", pre.get("squash")))
    except (ConversionError, ValueError) as e:
        raise BadInput(f"--weights {args.weights}: {e}" if args.weights else f"--arch {args.arch}: {e}") from None
    check(model)
    return model


def write_results(run_dir, task, metrics, facts):
    """RUN/fingerprint.json then RUN/final_metrics.json (the runner contract's finish)."""
    from transfer.runner import finish

    finish(run_dir, metrics, task, facts)
