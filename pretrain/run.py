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
import json
import logging
import os
import signal
import sys
import time
from functools import partial

import torch
import torch.distributed as dist

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mococore.errors import UserError  # noqa: E402
from mococore.files import lock_folder, replace_atomically  # noqa: E402
from pretrain import config, data, engine, knn, moco, outputs, vit  # noqa: E402
from pretrain.lars import LARS  # noqa: E402

logger = logging.getLogger("pretrain")


def build_model(cfg):
    import torchvision

    if cfg.arch.startswith("vit"):
        base = partial(getattr(vit, cfg.arch), img_size=cfg.crop, stop_grad_conv1=cfg.stop_grad_conv1)
    else:  # moco-v3 zero-initialises the last BN of each residual block; moco v2 does not
        norm = partial(moco.SplitBatchNorm, splits=cfg.bn_splits) if cfg.bn_splits > 1 else None
        base = partial(getattr(torchvision.models, cfg.arch), zero_init_residual=cfg.method == "mocov3",
                       norm_layer=norm)
    if cfg.method == "mocov2":
        return moco.MoCoV2(base, dim=cfg.dim, K=cfg.K, m=cfg.moco_m, T=cfg.T)
    return moco.MoCoV3(base, dim=cfg.dim, mlp_dim=cfg.mlp_dim, T=cfg.T)


def build_optimizer(cfg, model):
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "lars":
        return LARS(params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=0.9)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)


def setup_distributed():
    """torchrun and submitit set RANK/WORLD_SIZE/LOCAL_RANK; without them this is one process. Under
    torchrun a process group is made even for one process (DDP of one, as the official launchers do)."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    device = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
    if (world > 1 or "TORCHELASTIC_RUN_ID" in os.environ) and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank() if dist.is_initialized() else 0), world, device


def save_atomic(obj, path):
    """A killed run never leaves a truncated checkpoint; a full disk or Ctrl-C keeps the previous one
    and leaves no temporary file behind."""
    def write(tmp):
        with open(tmp, "wb") as f:  # through a Python file, as before: its errors carry strerror
            torch.save(obj, f)

    try:
        replace_atomically({path: write})
    except (OSError, RuntimeError) as e:  # torch's zip writer reports a short write as RuntimeError
        raise outputs.write_failed(path, e, path) from None


def checkpoint_state(cfg, model, opt, scaler, health, epoch, it):
    """The official layout (moco-v3 adds 'scaler') plus what an exact resume needs."""
    inner = model.module if hasattr(model, "module") else model
    return {"epoch": epoch, "iter": it, "arch": cfg.arch, "config": dataclasses.asdict(cfg),
            "state_dict": {f"module.{k}": v for k, v in inner.state_dict().items()},
            "optimizer": opt.state_dict(), "scaler": scaler.state_dict(), "health": dict(health.state)}


def read_checkpoint(path, cfg):
    """The checkpoint dict of a file this run can continue from, or a DataError naming it."""
    if os.path.isdir(path):
        raise data.DataError(path, "a folder, not a checkpoint file: give the checkpoint.pth inside it")
    if not os.path.isfile(path):
        raise data.DataError(path, "no such checkpoint file")
    if os.path.getsize(path) == 0:
        raise data.DataError(path, "an empty file (0 bytes), not a checkpoint; delete it or give another one")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        if is_detectron2_pickle(path):
            raise data.DataError(path, f"a Detectron2 weights file (numpy arrays under 'model', as "
                                       f"converters/to_detectron2.py writes), not a pretraining checkpoint: "
                                       f"{CONVERTED}") from None
        raise data.DataError(path, f"cannot be read as a checkpoint: truncated or another format "
                                   f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    meta = ck.get("meta") if isinstance(ck, dict) else None
    if isinstance(meta, dict) and meta.get("author") == "moco-transfer":
        raise data.DataError(path, f"{meta.get('format', 'MMSegmentation')} weights written by converters/, not a "
                                   f"pretraining checkpoint: {CONVERTED}")
    if not isinstance(ck, dict) or not {"epoch", "state_dict", "optimizer"} <= ck.keys():
        raise data.DataError(path, "not a pretraining checkpoint (it has no epoch, state_dict and optimizer)")
    method = ck.get("config", {}).get("method", cfg.method)
    if (ck.get("arch"), method) != (cfg.arch, cfg.method):
        raise data.DataError(path, f"a {method} {ck.get('arch')} checkpoint, and this run is {cfg.method} {cfg.arch}: "
                                   "give the --preset/--method/--arch it was trained with, or another --out")
    return ck


CONVERTED = ("the converters go one way, from a pretraining checkpoint to a framework's weights, and keep "
             "only the backbone (no optimizer, queue or heads): --resume the checkpoint.pth it was converted from")


def is_detectron2_pickle(path):
    """A plain pickle (not torch's zip) with the keys detectron2's checkpointer reads beside 'model'
    (detectron2/checkpoint/c2_model_loading.py, as converters/to_detectron2.py writes them); its
    last bytes hold them, after the arrays, so nothing is unpickled."""
    with open(path, "rb") as f:
        if f.read(1) != b"\x80":  # pickle protocol 2 or later; torch's zip starts with PK
            return False
        f.seek(max(0, os.path.getsize(path) - (1 << 16)))
        tail = f.read()
    return b"matching_heuristics" in tail or b"__author__" in tail


def load_resume(ck, path, cfg, model, opt, scaler, health):
    """(epoch, iteration) to continue from, with every weight and state loaded strictly."""
    try:
        model.load_state_dict({k[len("module."):]: v for k, v in ck["state_dict"].items()})
        opt.load_state_dict(ck["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise data.DataError(path, f"does not fit this model ({str(e).splitlines()[0][:200]} ...): trained with "
                                   "another --dim/--mlp-dim/--optimizer? Give the same options") from None
    if cfg.amp == "fp16" and ck.get("scaler"):  # an fp32/bf16 checkpoint has an empty one
        scaler.load_state_dict(ck["scaler"])
    health.state.update(ck.get("health", {}))
    changed = config_changes(ck.get("config", {}), cfg)
    if changed:
        logger.warning(f"resuming {path} with a different recipe: {'; '.join(changed)}")
    return ck["epoch"], ck.get("iter", 0)


def config_changes(saved, cfg):
    """'key: saved -> now' for the recipe fields that differ (logistics like workers or out do not count)."""
    logistics = {"out", "workers", "print_freq", "save_minutes", "knn_every", "knn_data", "data"}
    now = dataclasses.asdict(cfg)
    return [f"{k}: {saved[k]} -> {now[k]}" for k in now if k in saved and k not in logistics and saved[k] != now[k]]


def check_out(out):
    """--out must be a folder this process can create or write, before anything is trained."""
    parent = out
    while not os.path.exists(parent):
        parent = os.path.dirname(os.path.abspath(parent))
    if not os.path.isdir(parent):
        raise data.DataError(out, f"{parent} is a file, not a folder: choose another --out")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise data.DataError(out, f"{parent} is not writable: choose a writable --out")


def take_lock(out):
    """An exclusive flock on OUT/.lock for this process's life (the kernel drops it if the process
    dies): a second run on the same --out would overwrite this one's checkpoints."""
    try:
        return lock_folder(out, "pretraining run")
    except UserError as e:  # '<path>: <problem>', as a DataError names it
        path, problem = str(e).split(": ", 1)
        raise data.DataError(path, problem.replace("output folder", "--out")) from None


def take_lock_every_rank(out, rank, world):
    """Rank 0 takes the lock and every rank learns the outcome: a refused run stops on all of them
    (the others would wait in their first collective for the process group's timeout)."""
    lock, refused = None, None
    if rank == 0:
        try:
            lock = take_lock(out)
        except data.DataError as e:
            refused = (e.path, e.problem)
    if world > 1:
        box = [refused]
        dist.broadcast_object_list(box, src=0)
        refused = box[0]
    if refused:
        raise data.DataError(*refused)
    return lock


def setup_logging(out, rank, ckpt):
    logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    logger.handlers.clear()
    fmt = logging.Formatter("[%(asctime)s %(levelname)s] %(message)s", "%H:%M:%S")
    handlers = [logging.StreamHandler(sys.stdout)] + ([outputs.LogFile(os.path.join(out, "log.txt"), ckpt)] if rank == 0 else [])
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
    logger.propagate = False


def knn_root(cfg, data_root):
    """The kNN monitor's held-out split: --knn-data (checked now), else ../val beside the data if any."""
    if cfg.knn_data:
        classes, val_classes = data.image_folder(data_root)[1], data.image_folder(cfg.knn_data)[1]
        if classes != val_classes:
            raise data.DataError(cfg.knn_data, f"its {len(val_classes)} classes are not the {len(classes)} of "
                                               f"{data_root}: the kNN monitor needs the same class folders")
        return cfg.knn_data
    val = os.path.join(os.path.dirname(os.path.normpath(data_root)), "val")
    return val if os.path.isdir(val) else None


def wrap(model, cfg, world, device):
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: as moco main_moco.py sets it
    model.to(device)
    if cfg.channels_last and not cfg.arch.startswith("vit"):
        model.to(memory_format=torch.channels_last)
    if dist.is_initialized():
        if cfg.method == "mocov3" and device.type == "cuda" and world > 1:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # as moco-v3 does
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return model


def cpu_notes(cfg, device):
    """The CPU fast path is opt-in and only pays on CPUs with native bf16 (AVX512-BF16 or AMX)."""
    native = any(getattr(torch.cpu, f, lambda: False)() for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    if device.type == "cpu" and cfg.amp == "bf16" and not native:
        return ["--amp bf16 on a CPU without native bf16 (AVX512-BF16/AMX): emulated, likely slower than fp32"]
    return []


def builtin_train():
    """The built-in ImageFolder, made on first use (imported here: it needs pycocotools, which a run on
    the user's own --data does not)."""
    from mocodata.builtin import default_demo_root, make_demo

    return os.path.join(make_demo(default_demo_root()), "imagenet", "train")


def prepare(cfg, resume, rank, world, device):
    """Every check that can refuse the run, before anything is written: config for this device,
    data, --out, the checkpoint to continue from. Returns what the run needs."""
    config.check_device(config.resolve(cfg, device), device)
    if cfg.channels_last and cfg.arch.startswith("vit"):
        raise config.ConfigError("--channels-last: a ViT has no convolutional feature maps to lay out; drop the flag")
    if cfg.bn_splits > 1 and (cfg.batch_size // world) % cfg.bn_splits:
        raise config.ConfigError(f"--bn-splits {cfg.bn_splits}: must divide each process's batch "
                                 f"({cfg.batch_size} / {world} processes = {cfg.batch_size // world})")
    check_out(cfg.out)
    data_root = cfg.data or builtin_train()
    loader, sampler = data.two_crop_loader(data_root, cfg, rank, world)
    val_root = knn_root(cfg, data_root)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    opt = build_optimizer(cfg, model)
    scaler, health = engine.make_scaler(cfg, device), engine.Health()
    own, notes = os.path.join(cfg.out, "checkpoint.pth"), cpu_notes(cfg, device)
    if os.path.exists(own):  # this run's own state is newer than any --resume it started from
        if resume and os.path.abspath(resume) != os.path.abspath(own):
            notes.append(f"--resume {resume} ignored: {own} holds this run's newer state")
        resume = own
    start = (0, 0)
    if resume:
        start = load_resume(read_checkpoint(resume, cfg), resume, cfg, model, opt, scaler, health)
    return dict(loader=loader, sampler=sampler, model=model, opt=opt, scaler=scaler, health=health,
                start=start, resume=resume, notes=notes, data_root=data_root, val_root=val_root, ckpt_path=own)


class Interrupted(Exception):
    """Ctrl-C: str(e) says what is on disk and how to continue (exit 130, as a shell reports SIGINT)."""


def interrupted(ckpt, saved):
    if saved is None and os.path.exists(ckpt):
        return f"interrupted: {ckpt} is intact; run the same command again to continue from it"
    if saved is None:
        return ("interrupted before the first checkpoint (it is written at the end of epoch 1 and every "
                "--save-minutes): nothing to continue from; the same command starts over")
    return (f"interrupted: {ckpt} is intact (epoch {saved[0]}, iteration {saved[1]}); run the same command "
            "again to continue from it")


def train(cfg, resume=""):
    """Runs (or continues) a pretraining run; returns the checkpoint path."""
    config.check(cfg)
    rank, world, device = setup_distributed()
    ckpt, run, lock = os.path.join(cfg.out, "checkpoint.pth"), {}, None
    try:
        run = prepare(cfg, resume, rank, world, device)
        run["saved"] = run["start"] if run["resume"] == ckpt else None
        lock = take_lock_every_rank(cfg.out, rank, world)
        setup_logging(cfg.out, rank, ckpt)
        for note in run["notes"]:
            logger.warning(note)
        if run["resume"]:
            logger.info(f"resumed from {run['resume']} at epoch {run['start'][0]} iteration {run['start'][1]}")
        model = wrap(run["model"], cfg, world, device)
        if rank == 0:
            try:
                config.write(cfg, cfg.out)
            except OSError as e:
                raise outputs.write_failed(os.path.join(cfg.out, "config.json"), e, ckpt) from None
        run_epochs(cfg, model, run, rank, device)
    except KeyboardInterrupt:
        raise Interrupted(interrupted(ckpt, run.get("saved"))) from None
    finally:
        if lock is not None:
            os.close(lock)
    return ckpt


def monitor(cfg, model, run, epoch, epoch_s, writer, log):
    """The kNN top-1 of the backbone, with its cost (seconds, % of the epoch) in the logs."""
    inner = model.module if hasattr(model, "module") else model
    encoder = inner.encoder_q if cfg.method == "mocov2" else inner.base_encoder
    t0 = time.time()
    acc = knn.knn_accuracy(encoder, run["data_root"], run["val_root"], cfg.crop, next(encoder.parameters()).device,
                           run["sampler"].iters * cfg.batch_size, cfg.amp, cfg.channels_last)
    cost = time.time() - t0
    if acc is not None:
        logger.info(f"epoch {epoch}: kNN top-1 {acc:.2f}% on {run['val_root']} ({cost:.2f}s, "
                    f"{100 * cost / epoch_s:.1f}% of the epoch's {epoch_s:.1f}s)")
        writer.add_scalar("eval/knn_top1", acc, epoch + 1)
        log.write(json.dumps(dict(epoch=epoch, knn_top1=acc, knn_s=cost, epoch_s=epoch_s,
                                  knn_share=cost / epoch_s)) + "\n")


def group():
    return f", process group {dist.get_backend()} x{dist.get_world_size()}" if dist.is_initialized() else ""


def run_epochs(cfg, model, run, rank, device):
    sampler, opt, ckpt_path = run["sampler"], run["opt"], run["ckpt_path"]

    def save(epoch, it):
        if rank == 0:
            save_atomic(checkpoint_state(cfg, model, opt, run["scaler"], run["health"], epoch, it), ckpt_path)
            run["saved"] = (epoch, it)

    writer = outputs.Board(os.path.join(cfg.out, "tb"), ckpt_path) if rank == 0 else None
    log = outputs.JsonLines(os.path.join(cfg.out, "log.jsonl"), ckpt_path) if rank == 0 else None
    ctx = dict(device=device, scaler=run["scaler"], health=run["health"], writer=writer, log=log, save=save, rank=rank)
    logger.info(f"{cfg.method} {cfg.arch}: {sampler.iters} iterations/epoch x {cfg.epochs} epochs, batch "
                f"{cfg.batch_size}, lr {cfg.lr:.4g}, {cfg.optimizer}, amp {cfg.amp}, on {device}{group()}; "
                f"out {cfg.out}")
    start = run["start"]
    try:
        for epoch in range(start[0], cfg.epochs):
            sampler.set_epoch(epoch, start[1] if epoch == start[0] else 0)
            t0 = time.time()
            engine.train_one_epoch(model, run["loader"], sampler, opt, cfg, epoch, ctx)
            epoch_s = time.time() - t0
            save(epoch + 1, 0)
            if rank == 0 and run["val_root"] and cfg.knn_every and (epoch + 1) % cfg.knn_every == 0:
                monitor(cfg, model, run, epoch, epoch_s, writer, log)
            if dist.is_initialized():
                dist.barrier()
    except BaseException:  # its error is the one to report: closing may fail again on a full disk
        for f in (writer, log):
            try:
                f and f.close()
            except data.DataError:
                pass
        raise
    if writer:
        writer.close()
    if log:
        log.close()


def main(argv=None):
    p = config.parser()
    p.add_argument("--resume", default="", metavar="PATH",
                   help="checkpoint to start from when OUT has none (OUT/checkpoint.pth wins); default: none")
    args = p.parse_args(argv)
    # SIGTERM (kill, SLURM preemption) ends the run as Ctrl-C does: the loader's workers are shut down,
    # which frees OUT/.lock (they inherit it when forked), so the same command can continue at once
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        cfg = config.from_args(args)
        if args.slurm:
            from pretrain import slurm

            slurm.submit(cfg, args, train)
            return 0
        print(f"checkpoint: {train(cfg, args.resume)}")
    except UserError as e:  # a ConfigError, a DataError
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # a DataError raised in a data-loading worker
        if data.from_worker(e) is None:
            raise
        print(f"error: {data.from_worker(e)}", file=sys.stderr)
        return 2
    except engine.Diverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except Interrupted as e:
        print(e, file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
