"""One epoch of MoCo pretraining, its schedules and its health checks (mae `engine_pretrain.py`)."""
import json
import logging
import math
import time

import torch

from pretrain import gpu_augment
from pretrain.augment import normalize

logger = logging.getLogger("pretrain")


class Diverged(RuntimeError):
    """A NaN/Inf loss; the last good checkpoint on disk is kept as it is."""


def lr_at(cfg, epoch):
    """Linear warmup, then half-cosine to 0 (moco-v3 `adjust_learning_rate`, every iteration;
    moco v2's `--cos` steps once per epoch, so v2 holds the epoch's value)."""
    if cfg.method == "mocov2":
        epoch = math.floor(epoch)
    if epoch < cfg.warmup_epochs:
        return cfg.lr * epoch / cfg.warmup_epochs
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / (cfg.epochs - cfg.warmup_epochs)))


def momentum_at(cfg, epoch):
    """MoCo v3 `--moco-m-cos`: m rises from moco_m to 1 on a half-cosine; constant otherwise."""
    if not cfg.moco_m_cos:
        return cfg.moco_m
    return 1.0 - 0.5 * (1.0 + math.cos(math.pi * epoch / cfg.epochs)) * (1.0 - cfg.moco_m)


class Health:
    """Running mean/variance (EMA) of the loss and the gradient norm. The MoCo v3 paper's
    instability shows as loss spikes and gradient-norm jumps: these are logged as warnings."""

    def __init__(self, beta=0.98, warmup=20, loss_sigmas=6.0, grad_ratio=5.0):
        self.beta, self.warmup, self.loss_sigmas, self.grad_ratio = beta, warmup, loss_sigmas, grad_ratio
        self.state = dict(n=0, loss_mean=0.0, loss_var=0.0, grad_mean=0.0, spikes=0)

    def update(self, loss, grad_norm):
        """Returns a warning text, or None."""
        s, warn = self.state, None
        if s["n"] >= self.warmup:
            sigma = math.sqrt(s["loss_var"]) + 1e-8
            if loss > s["loss_mean"] + self.loss_sigmas * sigma:
                warn = f"loss spike: {loss:.4f} against a running mean of {s['loss_mean']:.4f} (+{(loss - s['loss_mean']) / sigma:.1f} sigma)"
            elif grad_norm > self.grad_ratio * s["grad_mean"]:
                warn = f"gradient-norm jump: {grad_norm:.3g}, {grad_norm / s['grad_mean']:.1f}x its running mean"
        if warn:
            s["spikes"] += 1
        b = self.beta if s["n"] else 0.0
        delta = loss - s["loss_mean"]
        s["loss_mean"] += (1 - b) * delta
        s["loss_var"] = b * (s["loss_var"] + (1 - b) * delta * delta)
        s["grad_mean"] = b * s["grad_mean"] + (1 - b) * grad_norm
        s["n"] += 1
        return warn


def grad_norm(params):
    grads = [p.grad for p in params if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads).item() if grads else 0.0  # one fused kernel per dtype/device


AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def make_scaler(cfg, device):
    """moco-v3's GradScaler for fp16 (its state goes to the checkpoint under 'scaler'); a disabled
    one otherwise, whose state is empty, so every checkpoint has the official keys."""
    return torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")


def step(model, x1, x2, opt, cfg, m, device, scaler=None):
    """Forward, backward, update: returns (loss, gradient norm before clipping)."""
    scaler = scaler or make_scaler(cfg, device)
    x1, x2 = (normalize(x.to(device, non_blocking=True)) for x in (x1, x2))
    if cfg.channels_last and not cfg.arch.startswith("vit"):
        x1, x2 = (x.contiguous(memory_format=torch.channels_last) for x in (x1, x2))
    with torch.autocast(device.type, dtype=AMP_DTYPES.get(cfg.amp, torch.bfloat16), enabled=cfg.amp in AMP_DTYPES):
        loss = model(x1, x2, m)
    if not torch.isfinite(loss):
        raise Diverged(f"the loss is {loss.item()}")
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)  # the norm (and clipping) of the true gradient; a no-op when disabled
    params = [p for g in opt.param_groups for p in g["params"]]
    gn = grad_norm(params)
    if cfg.clip_grad:
        torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
    scaler.step(opt)  # fp16: skipped when a gradient overflowed, and the scale lowered
    scaler.update()
    return loss.item(), gn


def train_one_epoch(model, loader, sampler, opt, cfg, epoch, ctx):
    """ctx: device, scaler, health, writer (TensorBoard or None), log (a JSON-lines file or None),
    save(epoch, it), rank. Iterations already done in this epoch (a resumed run) are skipped by the sampler."""
    model.train()
    n, start = sampler.iters, sampler.start
    t0, last_save, seen = time.time(), time.time(), 0
    for i, (x1, x2) in enumerate(gpu_augment.views(loader, ctx["device"]), start=start):
        e = epoch + i / n
        lr, m = lr_at(cfg, e), momentum_at(cfg, e)
        for g in opt.param_groups:
            g["lr"] = lr
        try:
            loss, gn = step(model, x1, x2, opt, cfg, m, ctx["device"], ctx["scaler"])
        except Diverged as err:
            raise Diverged(f"{err} at epoch {epoch} iteration {i}; stopped, the last good checkpoint is kept "
                           f"(lower the learning rate or see the MoCo v3 paper on instability)") from None
        if not math.isfinite(gn) and cfg.amp == "fp16":  # GradScaler skipped this update, lowered its scale
            warn = f"gradient overflow in fp16, update skipped (loss scale now {ctx['scaler'].get_scale():g})"
        elif not math.isfinite(gn):
            raise Diverged(f"the gradient norm is {gn} at epoch {epoch} iteration {i}; stopped, the last good "
                           "checkpoint is kept (lower the learning rate)")
        else:
            warn = ctx["health"].update(loss, gn)
        if warn:
            logger.warning(f"epoch {epoch} iteration {i}: {warn}")
        seen += cfg.batch_size
        it = epoch * n + i
        if ctx["rank"] == 0:
            record = dict(epoch=epoch, iter=i, step=it, loss=loss, lr=lr, moco_m=m, grad_norm=gn)
            if ctx["writer"]:
                for k in ("loss", "lr", "moco_m", "grad_norm"):
                    ctx["writer"].add_scalar(f"train/{k}", record[k], it)
            if ctx["log"]:
                ctx["log"].write(json.dumps(record) + "\n")
        if i % cfg.print_freq == 0 or i == n - 1:
            rate = seen / (time.time() - t0)
            left = ((n - i - 1) + (cfg.epochs - epoch - 1) * n) * cfg.batch_size / rate
            logger.info(f"epoch {epoch} [{i + 1}/{n}] loss {loss:.4f} lr {lr:.4g} m {m:.4f} grad {gn:.3g} "
                        f"{rate:.1f} img/s, epoch eta {(n - i - 1) * cfg.batch_size / rate:.0f}s, "
                        f"run eta {left / 60:.1f} min")
        if i < n - 1 and time.time() - last_save >= cfg.save_minutes * 60:
            ctx["save"](epoch, i + 1)
            last_save = time.time()
