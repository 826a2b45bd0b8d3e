"""One dataclass config, presets for the published recipes, command-line overrides.

Presets follow moco `main_moco.py --mlp --moco-t 0.2 --aug-plus --cos` (v2) and moco-v3
CONFIG.md (v3). The learning rate is `base_lr * batch_size / 256`, as both references scale it.
"""
import argparse
import dataclasses
import json
import os


class ConfigError(ValueError):
    """A config that cannot run; run.py prints it and exits 2."""


@dataclasses.dataclass
class Config:
    method: str = "mocov2"  # mocov2 | mocov3
    arch: str = "resnet50"  # resnet50 | resnet18 | vit_small | vit_base
    data: str = ""  # ImageFolder root (<class>/*.jpg); default: the built-in set
    knn_data: str = ""  # labelled held-out ImageFolder for the kNN monitor; default: ../val beside data
    out: str = "output/pretrain"
    epochs: int = 200
    batch_size: int = 256  # global, over all processes
    base_lr: float = 0.03  # lr = base_lr * batch_size / 256
    optimizer: str = "sgd"  # sgd (v2) | lars (v3 ResNet) | adamw (v3 ViT)
    weight_decay: float = 1e-4
    moco_m: float = 0.999  # v2: key encoder momentum; v3: starting momentum
    moco_m_cos: bool = False  # v3: m rises to 1 on a half-cosine
    T: float = 0.2
    K: int = 65536  # v2 queue size
    dim: int = 128
    mlp_dim: int = 2048
    stop_grad_conv1: bool = False  # v3 ViT: random, frozen patch projection
    crop: int = 224
    crop_min: float = 0.2
    aug: str = "fast"  # fast (OpenCV, uint8) | torchvision (the plain PIL reference)
    warmup_epochs: int = 0
    seed: int = 0
    workers: int = 8  # data loading processes per training process
    amp: bool = True  # bf16 autocast (GPU only)
    channels_last: bool = True  # (GPU, ResNet only)
    save_minutes: float = 30.0  # also checkpoint every this many minutes inside an epoch
    knn_every: int = 1  # epochs between kNN evaluations (0: never)
    print_freq: int = 10

    @property
    def lr(self):
        return self.base_lr * self.batch_size / 256


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
    # the built-in ImageFolder on a CPU in a couple of minutes; a ResNet-50 so the suite can use it
    "tiny": dict(epochs=2, batch_size=16, K=64, crop=64, workers=2, print_freq=5, save_minutes=5.0),
}


def parser():
    p = argparse.ArgumentParser(description="MoCo v2 / v3 pretraining")
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--slurm", action="store_true", help="submit to SLURM through submitit instead of running")
    p.add_argument("--nodes", type=int, default=1, help="SLURM: nodes")
    p.add_argument("--gpus-per-node", type=int, default=8, help="SLURM: GPUs (= processes) per node")
    p.add_argument("--partition", default="", help="SLURM: partition")
    p.add_argument("--timeout-min", type=int, default=72 * 60, help="SLURM: job time limit")
    for f in dataclasses.fields(Config):
        name = f"--{f.name.replace('_', '-')}"
        if f.type is bool or isinstance(f.default, bool):
            p.add_argument(name, action=argparse.BooleanOptionalAction, default=None)
        else:
            p.add_argument(name, type=type(f.default), default=None)
    return p


def from_args(args):
    """The preset, then every option given on the command line."""
    cfg = Config(**PRESETS[args.preset])
    for f in dataclasses.fields(Config):
        if getattr(args, f.name, None) is not None:
            setattr(cfg, f.name, getattr(args, f.name))
    check(cfg)
    return cfg


def check(cfg):
    archs = ("resnet50", "resnet18", "vit_small", "vit_base")
    if cfg.arch not in archs:
        raise ConfigError(f"unknown architecture '{cfg.arch}' (one of {', '.join(archs)})")
    if cfg.method not in ("mocov2", "mocov3"):
        raise ConfigError(f"unknown method '{cfg.method}' (mocov2, mocov3)")
    if cfg.method == "mocov2" and cfg.arch.startswith("vit"):
        raise ConfigError("MoCo v2 is defined for ResNets; use --method mocov3 for a ViT")
    if cfg.optimizer not in ("sgd", "lars", "adamw"):
        raise ConfigError(f"unknown optimizer '{cfg.optimizer}' (sgd, lars, adamw)")
    if cfg.aug not in ("fast", "torchvision"):
        raise ConfigError(f"unknown augmentation pipeline '{cfg.aug}' (fast, torchvision)")
    if cfg.method == "mocov2" and cfg.K % cfg.batch_size:
        raise ConfigError(f"queue size K={cfg.K} must be a multiple of the batch size {cfg.batch_size} "
                         "(the queue is updated one global batch at a time)")


def write(cfg, out):
    """The resolved config, beside the checkpoints."""
    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, "config.json.tmp")
    with open(tmp, "w") as f:
        json.dump(dataclasses.asdict(cfg), f, indent=1)
    os.replace(tmp, os.path.join(out, "config.json"))
