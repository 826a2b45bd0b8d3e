"""End-to-end fine-tuning of a MoCo v3 ViT-S/B/L on ImageNet, DeiT's recipe as MoCo v3 used it, through
mmpretrain and MMEngine's Runner (CLASSIFICATION.md section 5).

    python -m transfer.classification.finetune --config configs/mmpretrain/finetune_vit_base.py \
        --data-root /data --work-dir out/ft --weights vit_mmpretrain.pth [--launcher pytorch]

Writes RUN/final_metrics.json ({'accuracy': {'top1', 'top5'}}, of the EMA weights, as mmpretrain
evaluates them) and RUN/fingerprint.json. ResNet-50 fine-tuning: no recipe in the sources we follow
(MoCo v2 publishes none: mmselfsup's table says '/'), so there is no config for it.
"""
import sys

from transfer.classification import mmrun

# mmpretrain configs/mocov3/benchmarks/vit-{base,large}-p16_8xb64-coslr-*e_in1k.py (= DeiT main.py
# defaults with MoCo v3's epochs); ViT-S: 300 epochs (moco-v3#19), MoCo v3's 12 heads.
DEIT = dict(optimizer="AdamW", lr=5e-4, weight_decay=0.05, no_decay=["bias", "cls_token", "norm", "pos_embed"],
            clip_grad=5.0, images_per_update=512, label_smoothing=0.1, mixup=0.8, cutmix=1.0,
            randaugment="rand-m9-mstd0.5-inc1", random_erase=0.25, ema_momentum_per_update=4e-5, train_crop=224,
            test_resize=256, test_crop=224, num_classes=1000, trained="all",
            schedule="linear warmup 5 ep from x0.001, then cosine to 1e-05 per iteration")

RECIPES = {
    "mocov3_vit_small": dict(DEIT, epochs=300, drop_path=0.1, num_heads=12),
    "mocov3_vit_base": dict(DEIT, epochs=150, drop_path=0.1, num_heads=12),
    "mocov3_vit_large": dict(DEIT, epochs=100, drop_path=0.5, num_heads=16),
}


def no_decay(paramwise):
    """What the optimiser leaves without weight decay, by the paramwise_cfg rules."""
    names = [k.strip(".") for k, v in paramwise.get("custom_keys", {}).items() if v.get("decay_mult", 1) == 0]
    names += ["norm"] if paramwise.get("norm_decay_mult", 1) == 0 else []
    names += ["bias"] if paramwise.get("bias_decay_mult", 1) == 0 else []
    return sorted(names)


def augment_facts(cfg):
    pipe = cfg.train_dataloader.dataset.pipeline
    ra, erase = mmrun.pipeline_step(pipe, "RandAugment"), mmrun.pipeline_step(pipe, "RandomErasing")
    mix = {a["type"]: a["alpha"] for a in cfg.model.get("train_cfg", {}).get("augments", [])}
    inc = "-inc1" if ra.get("policies") == "timm_increasing" else ""
    return dict(randaugment=f"rand-m{ra['magnitude_level']}-mstd{ra['magnitude_std']}{inc}" if ra else None,
                random_erase=erase.get("erase_prob"), mixup=mix.get("Mixup"), cutmix=mix.get("CutMix"),
                label_smoothing=cfg.model.head.loss.get("label_smooth_val"))


def facts(cfg, world_size, args):
    """(this run's facts, the official facts of its recipe)."""
    out = mmrun.common_facts(cfg, world_size, args.seed, args.weights)
    ow, bb = cfg.optim_wrapper, cfg.model.backbone
    accumulate = ow.get("accumulative_counts", 1)
    ema = next((h for h in cfg.get("custom_hooks", []) if h["type"] == "EMAHook"), None)
    # EMAHook steps every iteration: per optimiser update that is 1 - (1 - m)^accumulate
    ema_update = round(1 - (1 - ema["momentum"]) ** accumulate, 7) if ema else None
    frozen = bb.get("frozen_stages", -1) > 0
    out.update(no_decay=no_decay(ow.get("paramwise_cfg", {})), clip_grad=(ow.get("clip_grad") or {}).get("max_norm"),
               drop_path=bb.get("drop_path_rate", 0.0), ema_momentum_per_update=ema_update,
               num_heads=mmrun.config_vit_arch(bb)["num_heads"], trained="some frozen" if frozen else "all",
               **augment_facts(cfg))
    return out, RECIPES[cfg.recipe]


def main(argv=None):
    return mmrun.main(argv, __doc__.split("\n")[0], facts, tasks=("finetune",), recipes=RECIPES, frozen=False)


if __name__ == "__main__":
    sys.exit(main())
