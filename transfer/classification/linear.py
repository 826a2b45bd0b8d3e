"""Linear probes on a frozen backbone through mmpretrain and MMEngine's Runner: `linear` (the recipe of the
checkpoint's method) and `linear-stages` (mmselfsup 0.x's Feature1-Feature5 heads, ImageNet or Places205).

    python -m transfer.classification.linear --config configs/mmpretrain/linear_mocov2_r50.py \
        --data-root /data --work-dir out/linear --weights backbone_mmpretrain.pth [--launcher pytorch]

Writes RUN/final_metrics.json ({'accuracy': {'top1', 'top5'}}, or {'feat1': {...}, ... 'feat5': {...}})
and RUN/fingerprint.json (the facts, and every deviation from the recipe's official values). The backbone
is checked tensor by tensor before the first iteration, and again after the last: it must not change.
"""
import sys

from transfer.classification import mmrun

# The official recipes, from the sources named (CLASSIFICATION.md sections 1 and 2).
LINEAR = dict(trained="head", backbone_eval=True, head_init_std=0.01, optimizer="SGD", momentum=0.9,
              nesterov=False, weight_decay=0.0, train_crop=224, test_resize=256, test_crop=224, num_classes=1000)
RECIPES = {
    # moco main_lincls.py
    "mocov2_r50": dict(LINEAR, features="res5 GAP", lr=30.0, images_per_update=256, epochs=100,
                       schedule="step x0.1 at [60, 80]"),
    # moco-v3 main_lincls.py + CONFIG.md: lr = 0.1 (R50) / 3 (ViT) x 1024 / 256
    "mocov3_r50": dict(LINEAR, features="res5 GAP", lr=0.4, images_per_update=1024, epochs=90,
                       schedule="cosine to 0 per epoch"),
    "mocov3_vit": dict(LINEAR, features="class token after the final LayerNorm", lr=12.0, images_per_update=1024,
                       epochs=90, schedule="cosine to 0 per epoch"),
}
STAGES = dict(trained="head", backbone_eval=True, head_init_std=0.01, optimizer="SGD", momentum=0.9, nesterov=True,
              weight_decay=0.0001, images_per_update=256, bn_images=256, lr=0.01,
              pools=[[10, 10, 4], [16, 8, 0], [13, 5, 0], [8, 3, 0], [6, 1, 0]],
              head_norm="BN2d affine=False momentum 0.1 (synchronised)")
RECIPES.update({
    # mmselfsup 0.x configs/benchmarks/classification/imagenet/resnet50_mhead_linear-8xb32-steplr-90e_in1k.py
    "mhead_imagenet": dict(STAGES, num_classes=1000, epochs=90, schedule="step x0.1 at [30, 60, 90]", train_crop=224,
                           color_jitter=[0.4, 0.4, 0.4, 0.0], lighting=0.1, test_resize=256, test_crop=224),
    # mmselfsup 0.x configs/benchmarks/classification/places205/resnet50_mhead_8xb32-steplr-28e_places205.py
    "mhead_places205": dict(STAGES, epochs=28, schedule="step x0.1 at [7, 14, 21]", train_crop=None,
                            train_resize=256, train_center_crop=256, train_random_crop=224, color_jitter=None,
                            lighting=None, test_resize=256, test_crop=224, num_classes=205),
})


def backbone_frozen(backbone):
    """Every block frozen (no gradient, eval mode): ResNet frozen_stages 4, ViT frozen_stages = depth."""
    if backbone.type in mmrun.VIT_TYPES:
        return backbone.get("frozen_stages", -1) == mmrun.config_vit_arch(backbone)["num_layers"]
    return backbone.get("frozen_stages", -1) == 4


def features(model):
    bb, neck = model.backbone, model.get("neck") or {}
    if bb.type in mmrun.VIT_TYPES:
        cls = bb.get("out_type", "cls_token") == "cls_token" and bb.get("final_norm", True)
        return "class token after the final LayerNorm" if cls else "other"
    return "res5 GAP" if neck.get("type") == "GlobalAveragePooling" and bb.get("out_indices") == (3,) else "other"


def facts(cfg, world_size, args):
    """(this run's facts, the official facts of its recipe)."""
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
    return out, RECIPES[cfg.recipe]


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
    sys.exit(main())
