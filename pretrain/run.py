"""MoCo v2 / v3 pretraining: setup, checkpoints and the epoch loop (the step is in engine.py).

    python pretrain/run.py --preset tiny                                    # CPU, built-in data
    python pretrain/run.py --preset mocov2_200ep --data /imagenet/train     # one GPU
    torchrun --nproc_per_node 8 pretrain/run.py --preset mocov3_r50_100ep --data /imagenet/train
    torchrun --nnodes 2 --node_rank R --master_addr HOST --master_port 29500 --nproc_per_node 8 pretrain/run.py ...
    python pretrain/run.py --preset mocov3_vit_small --data ... --slurm --nodes 4 --gpus-per-node 8 --partition P

Checkpoints use the official key layouts (`module.encoder_q.*` for v2, `module.base_encoder.*`
for v3), hold plain tensors (`torch.load(weights_only=True)`), are replaced atomically at every
epoch end and every `--save-minutes`, and a run restarted with the same `--out` continues exactly
where the last checkpoint left it (`--resume PATH` to start from another file).
"""
import dataclasses
import logging
import os
import sys
from functools import partial

import torch
import torch.distributed as dist

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pretrain import config, data, engine, knn, moco, vit  # noqa: E402
from pretrain.lars import LARS  # noqa: E402

logger = logging.getLogger("pretrain")


def build_model(cfg):
    import torchvision

    if cfg.arch.startswith("vit"):
        base = partial(getattr(vit, cfg.arch), img_size=cfg.crop, stop_grad_conv1=cfg.stop_grad_conv1)
    else:  # moco-v3 zero-initialises the last BN of each residual block; moco v2 does not
        base = partial(getattr(torchvision.models, cfg.arch), zero_init_residual=cfg.method == "mocov3")
    if cfg.method == "mocov2":
        return moco.MoCoV2(base, dim=cfg.dim, K=cfg.K, m=cfg.moco_m, T=cfg.T, mlp_hidden=cfg.mlp_dim)
    return moco.MoCoV3(base, dim=cfg.dim, mlp_dim=cfg.mlp_dim, T=cfg.T)


def build_optimizer(cfg, model):
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "lars":
        return LARS(params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=0.9)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)


def setup_distributed():
    """torchrun and submitit set RANK/WORLD_SIZE/LOCAL_RANK; without them this is one process."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    device = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank() if world > 1 else 0), world, device


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a killed run never leaves a truncated checkpoint


def checkpoint_state(cfg, model, opt, health, epoch, it):
    """The official layout plus what an exact resume needs; `epoch`/`iter` say where to go on."""
    inner = model.module if hasattr(model, "module") else model
    return {"epoch": epoch, "iter": it, "arch": cfg.arch, "config": dataclasses.asdict(cfg),
            "state_dict": {f"module.{k}": v for k, v in inner.state_dict().items()},
            "optimizer": opt.state_dict(), "health": dict(health.state)}


def load_resume(path, cfg, model, opt, health):
    """(epoch, iteration) to continue from; a damaged or foreign file is an error naming it."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        inner = model.module if hasattr(model, "module") else model
        inner.load_state_dict({k[len("module."):]: v for k, v in ck["state_dict"].items()})
        opt.load_state_dict(ck["optimizer"])
        health.state.update(ck.get("health", {}))
        changed = config_changes(ck.get("config", {}), cfg)
    except Exception as e:
        raise data.DataError(path, f"cannot resume from this checkpoint ({type(e).__name__}: "
                                   f"{str(e).splitlines()[0][:300]})") from None
    if changed:
        logger.warning(f"resuming {path} with a different recipe: {'; '.join(changed)}")
    return ck["epoch"], ck.get("iter", 0)


def config_changes(saved, cfg):
    """'key: saved -> now' for the recipe fields that differ (logistics like workers or out do not count)."""
    logistics = {"out", "workers", "print_freq", "save_minutes", "knn_every", "knn_data", "data"}
    now = dataclasses.asdict(cfg)
    return [f"{k}: {saved[k]} -> {now[k]}" for k in now if k in saved and k not in logistics and saved[k] != now[k]]


def setup_logging(out, rank):
    logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    logger.handlers.clear()
    fmt = logging.Formatter("[%(asctime)s %(levelname)s] %(message)s", "%H:%M:%S")
    handlers = [logging.StreamHandler(sys.stdout)] + ([logging.FileHandler(os.path.join(out, "log.txt"))] if rank == 0 else [])
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
    logger.propagate = False


def knn_root(cfg, data_root):
    if cfg.knn_data:
        return cfg.knn_data
    val = os.path.join(os.path.dirname(os.path.normpath(data_root)), "val")
    return val if os.path.isdir(val) else None


def wrap(model, cfg, world, device):
    model.to(device)
    if device.type == "cuda" and cfg.channels_last and not cfg.arch.startswith("vit"):
        model.to(memory_format=torch.channels_last)
    if world > 1:
        if cfg.method == "mocov3" and device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # as moco-v3 does
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return model


def train(cfg, resume=""):
    """Runs (or continues) a pretraining run; returns the checkpoint path."""
    from mocodata.builtin import default_demo_root, make_demo

    config.check(cfg)
    rank, world, device = setup_distributed()
    data_root = cfg.data or os.path.join(make_demo(default_demo_root()), "imagenet", "train")
    loader, sampler = data.two_crop_loader(data_root, cfg, rank, world)
    os.makedirs(cfg.out, exist_ok=True)
    setup_logging(cfg.out, rank)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    opt = build_optimizer(cfg, model)
    health = engine.Health()
    ckpt_path = os.path.join(cfg.out, "checkpoint.pth")
    if os.path.exists(ckpt_path):  # this run's own state is newer than any --resume it started from
        if resume and os.path.abspath(resume) != os.path.abspath(ckpt_path):
            logger.warning(f"--resume {resume} ignored: {ckpt_path} holds this run's newer state")
        resume = ckpt_path
    start_epoch, start_iter = load_resume(resume, cfg, model, opt, health) if resume else (0, 0)
    if resume:
        logger.info(f"resumed from {resume} at epoch {start_epoch} iteration {start_iter}")
    model = wrap(model, cfg, world, device)
    if rank == 0:
        config.write(cfg, cfg.out)
    run_epochs(cfg, model, loader, sampler, opt, health, (start_epoch, start_iter), data_root, rank, device, ckpt_path)
    return ckpt_path


def run_epochs(cfg, model, loader, sampler, opt, health, start, data_root, rank, device, ckpt_path):
    from torch.utils.tensorboard import SummaryWriter

    def save(epoch, it):
        if rank == 0:
            save_atomic(checkpoint_state(cfg, model, opt, health, epoch, it), ckpt_path)

    writer = SummaryWriter(os.path.join(cfg.out, "tb")) if rank == 0 else None
    log = open(os.path.join(cfg.out, "log.jsonl"), "a") if rank == 0 else None
    ctx = dict(device=device, health=health, writer=writer, log=log, save=save, rank=rank)
    val_root = knn_root(cfg, data_root)
    logger.info(f"{cfg.method} {cfg.arch}: {sampler.iters} iterations/epoch x {cfg.epochs} epochs, "
                f"batch {cfg.batch_size}, lr {cfg.lr:.4g}, {cfg.optimizer}, on {device}; out {cfg.out}")
    try:
        for epoch in range(start[0], cfg.epochs):
            sampler.set_epoch(epoch, start[1] if epoch == start[0] else 0)
            engine.train_one_epoch(model, loader, sampler, opt, cfg, epoch, ctx)
            save(epoch + 1, 0)
            if rank == 0 and val_root and cfg.knn_every and (epoch + 1) % cfg.knn_every == 0:
                inner = model.module if hasattr(model, "module") else model
                encoder = inner.encoder_q if cfg.method == "mocov2" else inner.base_encoder
                acc = knn.knn_accuracy(encoder, data_root, val_root, cfg.crop, device)
                if acc is not None:
                    logger.info(f"epoch {epoch}: kNN top-1 {acc:.2f}% on {val_root}")
                    writer.add_scalar("eval/knn_top1", acc, epoch + 1)
            if dist.is_initialized():
                dist.barrier()
    finally:
        if writer:
            writer.close()
        if log:
            log.close()


def main(argv=None):
    p = config.parser()
    p.add_argument("--resume", default="", help="checkpoint to start from when OUT has none (OUT/checkpoint.pth wins)")
    args = p.parse_args(argv)
    try:
        cfg = config.from_args(args)
        if args.slurm:
            from pretrain import slurm

            slurm.submit(cfg, args, train)
            return 0
        print(f"checkpoint: {train(cfg, args.resume)}")
    except (config.ConfigError, data.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except engine.Diverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
