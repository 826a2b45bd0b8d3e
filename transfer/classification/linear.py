"""Linear probes on a frozen backbone through mmpretrain and MMEngine's Runner: `linear` (the recipe of the
checkpoint's method) and `linear-stages` (mmselfsup 0.x's Feature1-Feature5 heads, ImageNet or Places205).

    python -m transfer.classification.linear --config configs/mmpretrain/linear_mocov2_r50.py \
        --data-root /data --work-dir out/linear --weights backbone_mmpretrain.pth [--launcher pytorch]

Writes RUN/final_metrics.json ({'accuracy': {'top1', 'top5'}}, or {'feat1': {...}, ... 'feat5': {...}})
and RUN/fingerprint.json (the facts, and every deviation from the recipe's official values). The backbone
is checked tensor by tensor before the first iteration, and again after the last: it must not change.
"""
import sys

from transfer import protocols
from transfer.runner import entry
from transfer.classification import mmrun
from transfer.classification.mmrun import build_cfg  # noqa: F401  (the runner contract)

RECIPES = protocols.RECIPES  # the official facts of each recipe, in the protocol table


def backbone_frozen(backbone):
    """Every block frozen (no gradient, eval mode): ResNet frozen_stages 4, ViT frozen_stages = depth."""
    if backbone.type in mmrun.VIT_TYPES:
        return backbone.get("frozen_stages", -1) == mmrun.config_vit_arch(backbone)["num_layers"]
    return backbone.get("frozen_stages", -1) == 4


# what a neck after the features does to them, in the fingerprint's words ('BN affine=False': MAE's linear probe)
NECK_WORDS = {"ClsBatchNormNeck": lambda n: f"BN affine={n.get('affine', False)}"}


def features(model):
    """The head's input in words, e.g. 'res5 GAP', or 'res5 GAP, BN affine=False' with a normalising neck
    (a list of necks is one nn.Sequential: MMEngine build_model_from_cfg), 'class token after the final
    LayerNorm[, BN affine=False]' for a ViT; 'other' for anything else."""
    bb, neck = model.backbone, model.get("neck") or {}
    necks = list(neck) if isinstance(neck, (list, tuple)) else [neck]
    if bb.type in mmrun.VIT_TYPES:
        cls = bb.get("out_type", "cls_token") == "cls_token" and bb.get("final_norm", True)
        if not cls or any(n.get("type") not in NECK_WORDS for n in necks if n):
            return "other"
        return ", ".join(["class token after the final LayerNorm"] + [NECK_WORDS[n["type"]](n) for n in necks if n])
    if necks[0].get("type") != "GlobalAveragePooling" or bb.get("out_indices") != (3,):
        return "other"
    if any(n.get("type") not in NECK_WORDS for n in necks[1:]):
        return "other"
    return ", ".join(["res5 GAP"] + [NECK_WORDS[n["type"]](n) for n in necks[1:]])


def facts(cfg, world_size, args):
    """This run's facts; the fingerprint compares them with its recipe's in transfer/protocols.py."""
    head, opt = cfg.model.head, cfg.optim_wrapper.optimizer
    out = mmrun.common_facts(cfg, world_size, args.seed, args.weights)
    frozen = backbone_frozen(cfg.model.backbone)
    init = head.get("init_cfg") or {}
    out.update(trained="head" if frozen else "all", backbone_eval=frozen, head_init_std=init.get("std"),
               momentum=opt.get("momentum"), nesterov=opt.get("nesterov", False))
    if cfg.task == "linear":
        out["features"] = features(cfg.model)
    else:
        out.update(stage_facts(cfg, world_size))
    return out


def stage_facts(cfg, world_size):
    pipe, norm = cfg.train_dataloader.dataset.pipeline, cfg.model.head.norm_cfg
    jitter, light = mmrun.pipeline_step(pipe, "ColorJitter"), mmrun.pipeline_step(pipe, "ClippedLighting")
    synced = norm.type == "SyncBN"
    return dict(pools=[list(p) for p in cfg.model.neck.pools],
                head_norm=f"BN2d affine={norm.get('affine', True)} momentum {norm.get('momentum', 0.1)}"
                          + (" (synchronised)" if synced else ""),
                bn_images=cfg.train_dataloader.batch_size * (world_size if synced else 1),
                color_jitter=[jitter.get(k, 0.0) for k in ("brightness", "contrast", "saturation", "hue")]
                if jitter else None, lighting=light.get("alphastd"),
                train_resize=mmrun.pipeline_step(pipe, "ResizeEdge").get("scale"),
                train_center_crop=mmrun.pipeline_step(pipe, "CenterCrop").get("crop_size"),
                train_random_crop=mmrun.pipeline_step(pipe, "RandomCrop").get("crop_size"))


def main(argv=None):
    return mmrun.main(argv, __doc__.split("\n")[0], facts, tasks=("linear", "linear-stages"), recipes=RECIPES,
                      frozen=True)


if __name__ == "__main__":
    sys.exit(entry(main))
