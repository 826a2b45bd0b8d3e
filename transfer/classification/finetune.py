"""End-to-end fine-tuning of a MoCo v3 ViT-S/B/L on ImageNet, DeiT's recipe as MoCo v3 used it, through
mmpretrain and MMEngine's Runner (facebookresearch/deit main.py; Chen et al. 2021, arXiv:2104.02057, appendix).

    python -m transfer.classification.finetune --config configs/mmpretrain/finetune_vit_base.py \
        --data-root /data --work-dir out/ft --weights vit_mmpretrain.pth [--launcher pytorch]

Writes RUN/final_metrics.json ({'accuracy': {'top1', 'top5'}}, of the EMA weights, as mmpretrain
evaluates them) and RUN/fingerprint.json. ResNet-50 fine-tuning: no recipe in the sources we follow
(MoCo v2 publishes none: mmselfsup's table says '/'), so there is no config for it.
"""
import sys

from transfer import protocols
from transfer.runner import entry
from transfer.classification import mmrun
from transfer.classification.mmrun import build_cfg  # noqa: F401  (the runner contract)

RECIPES = {k: v for k, v in protocols.RECIPES.items() if k.startswith("mocov3_vit_")}  # the fine-tune recipes


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
    """This run's facts; the fingerprint compares them with its recipe's in transfer/protocols.py."""
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
    return out


def main(argv=None):
    return mmrun.main(argv, __doc__.split("\n")[0], facts, tasks=("finetune",), recipes=RECIPES, frozen=False)


if __name__ == "__main__":
    sys.exit(entry(main))
