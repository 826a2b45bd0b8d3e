"""One dataclass config, presets for the published recipes, command-line overrides and their checks.

Presets follow moco `main_moco.py --mlp --moco-t 0.2 --aug-plus --cos` (v2), moco-v3 CONFIG.md
(v3 ResNet-50, ViT-S/B) and mmselfsup/mmpretrain `mocov3_vit-large-p16_64xb64-amp-coslr-300e_in1k`
(ViT-L). The learning rate is `base_lr * batch_size / 256` for both methods: moco-v3 scales it so;
moco v2 takes `--lr 0.03` as given at its batch of 256, which is the same number there (other
batches follow the linear scaling rule). The effective lr is written to config.json.
"""
import argparse
import dataclasses
import json
import math
import os

from mococore.errors import UserError
from mococore.files import replace_atomically, text_writer


class ConfigError(UserError):
    """A config that cannot run; run.py prints it and exits 2."""


CHOICES = dict(
    method=("mocov2", "mocov3"),
    arch=("resnet50", "resnet18", "vit_small", "vit_base", "vit_large"),
    optimizer=("sgd", "lars", "adamw"),
    aug=("fast", "torchvision", "gpu"),
    amp=("auto", "fp16", "bf16", "none"),
)


@dataclasses.dataclass
class Config:
    method: str = "mocov2"
    arch: str = "resnet50"
    data: str = ""
    knn_data: str = ""
    out: str = "output/pretrain"
    epochs: int = 200
    batch_size: int = 256
    base_lr: float = 0.03
    optimizer: str = "sgd"
    weight_decay: float = 1e-4
    moco_m: float = 0.999
    moco_m_cos: bool = False
    T: float = 0.2
    K: int = 65536
    bn_splits: int = 1
    dim: int = 128
    mlp_dim: int = 2048
    stop_grad_conv1: bool = False
    crop: int = 224
    crop_min: float = 0.2
    aug: str = "fast"
    warmup_epochs: int = 0
    clip_grad: float = 0.0
    seed: int = 0
    workers: int = 8
    amp: str = "auto"
    channels_last: bool = None  # None: on for a ResNet on GPU, off otherwise
    save_minutes: float = 30.0
    knn_every: int = 1
    print_freq: int = 10

    @property
    def lr(self):
        return self.base_lr * self.batch_size / 256


# --help text of every field: what it is, its unit; the default and the choices are appended
HELP = dict(
    method="mocov2: queue of K negatives, MLP head (He et al. 2020); mocov3: predictor, symmetric loss, "
           "in-batch negatives (Chen et al. 2021)",
    arch="backbone: torchvision ResNet or the MoCo v3 ViT (patch 16; vit_large: 24 blocks, width 1024, 16 heads)",
    data="training ImageFolder root (<root>/<class>/<image>); empty: the built-in demo set",
    knn_data="labelled held-out ImageFolder for the kNN monitor; empty: <data>/../val when it exists",
    out="output folder: checkpoint.pth, config.json, log.txt, log.jsonl, tb/ (one run at a time)",
    epochs="training epochs (>= 1)",
    batch_size="global batch in images, over all processes (>= 1)",
    base_lr="learning rate at batch 256; the run uses lr = base_lr * batch_size / 256 for MoCo v2 and v3 "
            "(moco v2 takes its 0.03 as given at batch 256: the same lr there); the effective lr is in config.json",
    optimizer="sgd (momentum 0.9; MoCo v2), lars (MoCo v3 ResNet), adamw (MoCo v3 ViT)",
    weight_decay="weight decay (>= 0)",
    moco_m="momentum of the key/momentum encoder, in [0, 1] (v3: its starting value)",
    moco_m_cos="MoCo v3 only: m rises from --moco-m to 1 on a half-cosine over training",
    T="softmax temperature (> 0)",
    K="MoCo v2 queue size in keys, a multiple of --batch-size",
    bn_splits="MoCo v2: BN statistics over this many parts of each process's batch, to emulate that many "
              "GPUs' ShuffleBN on one (moco's CIFAR-10 demo uses 8; 1: plain BN, as on 8 real GPUs)",
    dim="output width of the projection head",
    mlp_dim="hidden width of the MoCo v3 projector and predictor (MoCo v2's hidden width is the "
            "backbone's feature width, as in moco builder.py)",
    stop_grad_conv1="ViT: keep the patch projection at its random init (the MoCo v3 stability fix)",
    crop="crop side in pixels (ResNet >= 32; ViT: a multiple of 16)",
    crop_min="smallest crop area as a fraction of the image, in (0, 1]",
    aug="fast: OpenCV on uint8 in the loader workers; torchvision: the references' PIL pipeline; gpu: the "
        "workers read the files, decoding and augmenting run batched on the training device",
    warmup_epochs="epochs of linear lr warmup (fractional lr steps per iteration), < --epochs",
    clip_grad="clip the global gradient norm to this value (0: off; mmselfsup's ViT-L recipe uses 5)",
    seed="seed of the initialisation, the data order and every augmentation (>= 0)",
    workers="data loading processes per training process (>= 0; 0 loads in the training process)",
    amp="mixed precision: fp16 (autocast + GradScaler, as moco-v3; GPU only), bf16 (autocast; on CPU an "
        "opt-in fast path), none (fp32), auto (bf16 on GPU, fp32 on CPU)",
    channels_last="NHWC memory format for ResNets; default: on GPU yes, on CPU no (opt in with --channels-last)",
    save_minutes="also checkpoint every this many minutes inside an epoch (>= 0; 0: every iteration)",
    knn_every="epochs between kNN evaluations (0: never)",
    print_freq="iterations between log lines (>= 1)",
)

V3_R50 = dict(method="mocov3", optimizer="lars", batch_size=4096, weight_decay=1e-6, moco_m=0.99, moco_m_cos=True,
              T=1.0, dim=256, mlp_dim=4096, warmup_epochs=10, crop_min=0.2)
V3_VIT = dict(method="mocov3", optimizer="adamw", epochs=300, batch_size=4096, base_lr=1.5e-4, weight_decay=0.1,
              moco_m=0.99, moco_m_cos=True, T=0.2, dim=256, mlp_dim=4096, warmup_epochs=40, crop_min=0.08,
              stop_grad_conv1=True)
PRESETS = {
    "mocov2_200ep": dict(),
    "mocov3_r50_100ep": dict(V3_R50, epochs=100, base_lr=0.6),
    "mocov3_r50_300ep": dict(V3_R50, epochs=300, base_lr=0.3),
    "mocov3_r50_1000ep": dict(V3_R50, epochs=1000, base_lr=0.3, weight_decay=1.5e-6, moco_m=0.996),
    "mocov3_vit_small": dict(V3_VIT, arch="vit_small"),
    "mocov3_vit_base": dict(V3_VIT, arch="vit_base"),
    # mmpretrain mocov3_vit-large-p16_64xb64-amp-coslr-300e_in1k: 64 x 64 = 4096 images, AdamW lr 2.4e-3
    # (= 1.5e-4 x 4096 / 256), wd 0.1, 40 warmup epochs, T 0.2, base_momentum 0.01 (m = 0.99, cosine),
    # fp16 with a dynamic loss scale, gradient norm clipped to 5
    "mocov3_vit_large": dict(V3_VIT, arch="vit_large", amp="fp16", clip_grad=5.0),
    # the built-in ImageFolder on a CPU in a couple of minutes; a ResNet-50 so the suite can use it
    "tiny": dict(epochs=2, batch_size=16, K=64, crop=64, workers=2, print_freq=5, save_minutes=5.0),
    # make demo (tools/demo.py): the built-in ImageFolder on 2 CPU cores in a few minutes. 64 px crops as the
    # quick kNN/linear configs; m 0.99 (0.999 would leave the key encoder near its random init after ~60
    # iterations); K 128 (K 256 > one epoch of keys kept the loss flat). Whether it beats random init on kNN
    # is tests/test_demo.py's slow test
    "demo": dict(epochs=8, batch_size=32, K=128, crop=64, moco_m=0.99, base_lr=0.48, workers=2, print_freq=7,
                 save_minutes=5.0),
}


def help_text(f):
    default = f.default if f.default is not None else "auto"
    choices = f" (one of: {', '.join(CHOICES[f.name])})" if f.name in CHOICES else ""
    return f"{HELP[f.name]}{choices}; default {default}, or the preset's value"


def parser():
    p = argparse.ArgumentParser(description="MoCo v2 / v3 pretraining. Each option below overrides the "
                                            "--preset's value.")
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS),
                   help="a published recipe (or tiny: the built-in data on a CPU in minutes); default tiny")
    p.add_argument("--slurm", action="store_true", help="submit to SLURM through submitit instead of running")
    p.add_argument("--nodes", type=int, default=1, help="SLURM: nodes; default 1")
    p.add_argument("--gpus-per-node", type=int, default=8, help="SLURM: GPUs (= processes) per node; default 8")
    p.add_argument("--partition", default="", help="SLURM: partition; default: the cluster's")
    p.add_argument("--timeout-min", type=int, default=72 * 60, help="SLURM: job time limit in minutes; default 4320")
    for f in dataclasses.fields(Config):
        name = f"--{f.name.replace('_', '-')}"
        if f.name in ("channels_last",) or isinstance(f.default, bool):
            p.add_argument(name, action=argparse.BooleanOptionalAction, default=None, help=help_text(f))
        else:
            p.add_argument(name, type=type(f.default), default=None, choices=CHOICES.get(f.name),
                           metavar=None if f.name in CHOICES else f.name.upper(), help=help_text(f))
    return p


def from_args(args):
    """The preset, then every option given on the command line."""
    cfg = Config(**PRESETS[args.preset])
    for f in dataclasses.fields(Config):
        if getattr(args, f.name, None) is not None:
            setattr(cfg, f.name, getattr(args, f.name))
    check(cfg)
    return cfg


def flag(name):
    return f"--{name.replace('_', '-')}"


# (field, test, what it must be): the numeric ranges; each failure names the flag
RANGES = [
    ("epochs", lambda v: v >= 1, "at least 1"),
    ("batch_size", lambda v: v >= 1, "at least 1"),
    ("base_lr", lambda v: v >= 0, "0 or more"),
    ("weight_decay", lambda v: v >= 0, "0 or more"),
    ("moco_m", lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("T", lambda v: v > 0, "above 0 (it divides the logits)"),
    ("K", lambda v: v >= 1, "at least 1"),
    ("bn_splits", lambda v: v >= 1, "at least 1"),
    ("dim", lambda v: v >= 1, "at least 1"),
    ("mlp_dim", lambda v: v >= 1, "at least 1"),
    ("crop_min", lambda v: 0 < v <= 1, "in (0, 1]"),
    ("warmup_epochs", lambda v: v >= 0, "0 or more"),
    ("clip_grad", lambda v: v >= 0, "0 (off) or more"),
    ("seed", lambda v: v >= 0, "0 or more"),
    ("workers", lambda v: v >= 0, "0 or more"),
    ("save_minutes", lambda v: v >= 0, "0 or more"),
    ("knn_every", lambda v: v >= 0, "0 (never) or more"),
    ("print_freq", lambda v: v >= 1, "at least 1"),
]


def check_ranges(cfg):
    for name, ok, what in RANGES:
        v = getattr(cfg, name)
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{flag(name)} {v}: must be a finite number, {what}")
        if not ok(v):
            raise ConfigError(f"{flag(name)} {v}: must be {what}")
    vit = cfg.arch.startswith("vit")
    if vit and cfg.crop % 16 or cfg.crop < (16 if vit else 32):
        need = "a multiple of the ViT's patch size 16" if vit else "at least 32 (a ResNet downsamples 32x)"
        raise ConfigError(f"--crop {cfg.crop}: must be {need}")
    if cfg.warmup_epochs and cfg.warmup_epochs >= cfg.epochs:
        raise ConfigError(f"--warmup-epochs {cfg.warmup_epochs}: must be below --epochs {cfg.epochs} "
                          "(the lr would never leave its warmup); lower it or set it to 0")


def check(cfg):
    """Everything about the config alone that would make the run fail or mean something else."""
    for name, choices in CHOICES.items():
        if getattr(cfg, name) not in choices:
            raise ConfigError(f"{flag(name)} '{getattr(cfg, name)}': unknown (one of {', '.join(choices)})")
    check_ranges(cfg)
    if cfg.method == "mocov2" and cfg.arch.startswith("vit"):
        raise ConfigError("--arch: MoCo v2 is defined for ResNets; use --method mocov3 for a ViT")
    if cfg.method == "mocov2" and cfg.moco_m_cos:
        raise ConfigError("--moco-m-cos: MoCo v2 keeps its key-encoder momentum constant (moco main_moco.py); "
                          "drop the flag or use --method mocov3")
    if cfg.method == "mocov2" and cfg.K % cfg.batch_size:
        raise ConfigError(f"--K: queue size K={cfg.K} must be a multiple of the batch size {cfg.batch_size} "
                          "(the queue is updated one global batch at a time)")
    if cfg.bn_splits > 1 and cfg.method != "mocov2":
        raise ConfigError("--bn-splits: emulates MoCo v2's ShuffleBN; MoCo v3 takes its negatives from its own "
                          "batch, so its BN leaks nothing. Drop the flag or use --method mocov2")
    if cfg.bn_splits > 1 and cfg.batch_size % cfg.bn_splits:
        raise ConfigError(f"--bn-splits {cfg.bn_splits}: must divide --batch-size {cfg.batch_size} (per process)")
    if cfg.stop_grad_conv1 and not cfg.arch.startswith("vit"):
        raise ConfigError("--stop-grad-conv1: only a ViT has a patch projection to freeze; drop the flag")


def check_device(cfg, device):
    """What the machine must offer for this config (device: torch.device)."""
    if cfg.amp == "fp16" and device.type != "cuda":
        raise ConfigError(f"--amp fp16: needs a GPU (this process runs on {device}); use --amp bf16 or none")


def resolve(cfg, device):
    """'auto' choices made for this device, so that config.json says what the run did."""
    if cfg.amp == "auto":
        cfg.amp = "bf16" if device.type == "cuda" else "none"
    if cfg.channels_last is None:
        cfg.channels_last = device.type == "cuda" and not cfg.arch.startswith("vit")
    return cfg


def write(cfg, out):
    """The resolved config beside the checkpoints, with the effective lr the run uses (an OSError as it came)."""
    text = json.dumps(dict(dataclasses.asdict(cfg), lr=cfg.lr), indent=1)
    replace_atomically({os.path.join(out, "config.json"): text_writer(text)})
