"""MoCo v2 / v3 pretraining: `python pretrain/run.py --preset tiny [--key value ...]`.

One dataclass config with presets for the published recipes; command-line overrides; the
resolved config is written to the output folder. Checkpoints use the official key layouts
(`module.encoder_q.*` for v2, `module.base_encoder.*` for v3), are written atomically, and a
run resumes from `checkpoint.pth` in its output folder. Multi-GPU: `torchrun --nproc_per_node 8
pretrain/run.py --preset mocov2_200ep --data /imagenet/train`.
"""
import argparse
import dataclasses
import json
import math
import os
import sys
import time

import torch

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pretrain import augment, moco  # noqa: E402


@dataclasses.dataclass
class Config:
    method: str = "mocov2"  # mocov2 | mocov3
    arch: str = "resnet50"  # resnet50 | resnet18 (tiny)
    data: str = ""  # ImageFolder root (train/<class>/*.jpg); default: the built-in set
    out: str = "output/pretrain"
    epochs: int = 200
    batch_size: int = 256  # global
    base_lr: float = 0.03  # v2: lr = base_lr * batch/256 as in moco; v3 likewise
    weight_decay: float = 1e-4
    momentum: float = 0.999  # v2 key encoder m; v3 starting m (cosine to 1)
    T: float = 0.2
    K: int = 65536
    dim: int = 128
    mlp_dim: int = 2048
    crop: int = 224
    crop_min: float = 0.2
    warmup_epochs: int = 0
    seed: int = 0
    workers: int = 4
    print_freq: int = 10


PRESETS = {
    "mocov2_200ep": dict(),
    "mocov3_r50_100ep": dict(method="mocov3", epochs=100, batch_size=4096, base_lr=0.6, weight_decay=1e-6,
                             momentum=0.99, T=1.0, dim=256, mlp_dim=4096, warmup_epochs=10),
    "mocov3_r50_300ep": dict(method="mocov3", epochs=300, batch_size=4096, base_lr=0.3, weight_decay=1e-6,
                             momentum=0.99, T=1.0, dim=256, mlp_dim=4096, warmup_epochs=10),
    "mocov3_r50_1000ep": dict(method="mocov3", epochs=1000, batch_size=4096, base_lr=0.3, weight_decay=1.5e-6,
                              momentum=0.996, T=1.0, dim=256, mlp_dim=4096, warmup_epochs=10),
    "tiny": dict(arch="resnet50", epochs=2, batch_size=16, K=64, crop=64, workers=0, print_freq=5),
}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    for f in dataclasses.fields(Config):
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=None)
    args = p.parse_args(argv)
    cfg = Config(**PRESETS[args.preset])
    for f in dataclasses.fields(Config):
        if getattr(args, f.name) is not None:
            setattr(cfg, f.name, getattr(args, f.name))
    return cfg


def build_model(cfg):
    import torchvision

    if cfg.arch not in ("resnet50", "resnet18"):
        raise SystemExit(f"error: unknown architecture '{cfg.arch}' (resnet50, resnet18)")
    base = getattr(torchvision.models, cfg.arch)
    if cfg.method == "mocov2":
        return moco.MoCoV2(base, dim=cfg.dim, K=cfg.K, m=cfg.momentum, T=cfg.T, mlp_hidden=cfg.mlp_dim)
    if cfg.method == "mocov3":
        return moco.MoCoV3(base, dim=cfg.dim, mlp_dim=cfg.mlp_dim, T=cfg.T)
    raise SystemExit(f"error: unknown method '{cfg.method}' (mocov2, mocov3)")


def lr_at(cfg, epoch):
    """Linear warmup then half-cosine (moco --cos, moco-v3 adjust_learning_rate)."""
    lr = cfg.base_lr * cfg.batch_size / 256
    if epoch < cfg.warmup_epochs:
        return lr * epoch / cfg.warmup_epochs
    return lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / (cfg.epochs - cfg.warmup_epochs)))


def momentum_at(cfg, epoch):
    """MoCo v3 --moco-m-cos: m rises to 1 on a half-cosine."""
    return 1.0 - 0.5 * (1.0 + math.cos(math.pi * epoch / cfg.epochs)) * (1.0 - cfg.momentum)


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a killed run never leaves a truncated checkpoint


def train(cfg):
    from transfer.data import default_demo_root, make_demo

    torch.manual_seed(cfg.seed)
    data = cfg.data or os.path.join(make_demo(default_demo_root()), "imagenet", "train")
    loader = augment.two_crop_loader(data, cfg)
    if cfg.method == "mocov2" and cfg.K % cfg.batch_size:
        raise SystemExit(f"error: queue size K={cfg.K} must be a multiple of the batch size {cfg.batch_size}")
    model = build_model(cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr_at(cfg, 0), momentum=0.9, weight_decay=cfg.weight_decay)
    os.makedirs(cfg.out, exist_ok=True)
    json.dump(dataclasses.asdict(cfg), open(os.path.join(cfg.out, "config.json"), "w"), indent=1)
    ckpt_path, start = os.path.join(cfg.out, "checkpoint.pth"), 0
    if os.path.exists(ckpt_path):
        try:
            ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise SystemExit(f"error: {ckpt_path}: corrupted resume checkpoint ({type(e).__name__})")
        model.load_state_dict({k[len("module."):]: v for k, v in ck["state_dict"].items()})
        opt.load_state_dict(ck["optimizer"])
        start = ck["epoch"]
        print(f"resumed from {ckpt_path} at epoch {start}")
    for epoch in range(start, cfg.epochs):
        train_one_epoch(model, loader, opt, cfg, epoch)
        state = {"epoch": epoch + 1, "arch": cfg.arch, "config": dataclasses.asdict(cfg),
                 "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
                 "optimizer": opt.state_dict()}
        save_atomic(state, ckpt_path)
    return ckpt_path


def train_one_epoch(model, loader, opt, cfg, epoch):
    model.train()
    t0, n = time.time(), len(loader)
    for i, (x1, x2) in enumerate(loader):
        e = epoch + i / n
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, e)
        loss = model(x1, x2, momentum_at(cfg, e)) if cfg.method == "mocov3" else model(x1, x2)
        if not torch.isfinite(loss):
            raise SystemExit(f"error: loss is {loss.item()} at epoch {epoch} iteration {i}; "
                             "the last good checkpoint is kept")
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i % cfg.print_freq == 0 or i == n - 1:
            rate = (i + 1) * cfg.batch_size / (time.time() - t0)
            eta = (n - i - 1) * cfg.batch_size / rate
            print(f"epoch {epoch} [{i + 1}/{n}] loss {loss.item():.4f} lr {opt.param_groups[0]['lr']:.4g} "
                  f"{rate:.1f} img/s eta {eta:.0f}s", flush=True)


if __name__ == "__main__":
    print(f"checkpoint: {train(parse())}")
