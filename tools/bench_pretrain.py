"""Prints pretraining speed ratios on this machine, with peak memory (a benchmark, not a test).

    python tools/bench_pretrain.py            # minutes on a GPU; on a 2-core CPU over half an hour (ViT-L)
    python tools/bench_pretrain.py --quick    # about one minute: fewer images, rounds and presets

Every comparison runs its variants in interleaved rounds (A B A B ...), so a machine that gets
busier or quieter affects both alike; each prints min and median seconds, the ratio of both, and
the peak memory of one round (CPU: resident set growth; GPU: torch's peak allocation), through
tools/bench_harness.py; the JPEGs come from tools/bench_data.py.
1. The two-crop augmentation on one core: the official pipelines, written here from their
   definitions (moco `main_moco.py --aug-plus` with `moco.loader.GaussianBlur`; moco-v3
   `main_moco.py` augmentation1/2 with its GaussianBlur and Solarize; ImageFolder's PIL loader),
   against our fast OpenCV pipeline and the --aug gpu code on CPU tensors (the whole batch in one
   call), on ImageNet-sized JPEGs (about 500x375, photo-like texture).
2. The training step (forward, backward, update) of each preset at tiny sizes, fp32 against the
   opt-in CPU fast path (--amp bf16 --channels-last), or bf16 against fp16 on a GPU.
"""
import argparse
import os
import random
import sys
import tempfile

import cv2
import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision import transforms as T

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_data import write_jpegs  # noqa: E402
from bench_harness import interleaved, report  # noqa: E402
from pretrain import augment, config, engine, gpu_augment, run  # noqa: E402


# --- the official pipelines, from their definitions -------------------------------------------

class OfficialBlur:
    """moco.loader.GaussianBlur: PIL GaussianBlur with radius ~ U(0.1, 2.0)."""

    def __call__(self, x):
        return x.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))


def official_view(crop_min, jitter, blur_p, solarize_p):
    ops = [T.RandomResizedCrop(224, scale=(crop_min, 1.0)), T.RandomApply([T.ColorJitter(*jitter)], p=0.8),
           T.RandomGrayscale(p=0.2), T.RandomApply([OfficialBlur()], p=blur_p)]
    if solarize_p:  # moco-v3 moco.loader.Solarize: ImageOps.solarize (threshold 128)
        ops.append(T.RandomApply([ImageOps.solarize], p=solarize_p))
    ops += [T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(augment.MEAN, augment.STD)]
    return T.Compose(ops)


def official(method):
    """path -> two crops, as the reference ImageFolder + TwoCropsTransform produce them."""
    if method == "mocov2":  # aug+: one pipeline, applied twice
        views = [official_view(0.2, (0.4, 0.4, 0.4, 0.1), 0.5, 0.0)] * 2
    else:  # BYOL's asymmetric pair, ViT crop-min 0.08
        views = [official_view(0.08, (0.4, 0.4, 0.2, 0.1), 1.0, 0.0),
                 official_view(0.08, (0.4, 0.4, 0.2, 0.1), 0.1, 0.2)]

    def load(path, rng=None):
        with open(path, "rb") as f:
            img = Image.open(f).convert("RGB")
        return [v(img) for v in views]
    return load


# --- the two benchmarks -----------------------------------------------------------------------

def bench_augment(n, rounds):
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as d:
        paths = write_jpegs(d, n)
        for method, crop_min in (("mocov2", 0.2), ("mocov3", 0.08)):
            rng = np.random.default_rng(0)
            variants = {f"official {method} (PIL)": lambda t=official(method): [t(p) for p in paths],
                        "ours, fast (OpenCV)":
                            lambda t=augment.FastTwoCrops(method, 224, crop_min): [t(p, rng) for p in paths],
                        "ours, --aug gpu on the CPU": lambda t=gpu_augment.GpuTwoCrops(method, 224, crop_min):
                            t.apply(t.collate([t(p, rng) for p in paths]), torch.device("cpu"))}
            times, peaks = interleaved(variants, rounds)
            report(f"two-crop augmentation {method}, 1 core, {n} JPEGs ~500x375 -> 2 x 224 px, {rounds} rounds "
                   f"(per image):", times, peaks, n)


def step_variants(preset, batch, crop, device, arms):
    """{name: one training step} for a preset at tiny sizes, one model per arm (amp, channels_last)."""
    out = {}
    for amp, cl in arms:
        cfg = config.Config(**config.PRESETS[preset])
        cfg.batch_size, cfg.crop, cfg.amp = batch, crop, amp
        cfg.K = max(cfg.K // batch, 1) * batch
        cfg.channels_last = cl and not cfg.arch.startswith("vit")
        torch.manual_seed(0)
        model = run.wrap(run.build_model(cfg), cfg, 1, device)
        opt, scaler = run.build_optimizer(cfg, model), engine.make_scaler(cfg, device)
        x = torch.randint(0, 256, (batch, 3, crop, crop), dtype=torch.uint8)
        name = f"{amp}{' + channels_last' if cfg.channels_last else ''}"
        out[name] = lambda m=model, o=opt, c=cfg, s=scaler: engine.step(m, x, x, o, c, c.moco_m, device, s)
    return out


def bench_steps(presets, batch, crop, rounds, device):
    arms = [("bf16", True), ("fp16", True)] if device.type == "cuda" else [("none", False), ("bf16", True)]
    torch.set_num_threads(os.cpu_count())
    for preset in presets:
        times, peaks = interleaved(step_variants(preset, batch, crop, device, arms), rounds, device)
        report(f"training step {preset} ({config.PRESETS[preset].get('arch', 'resnet50')}), batch {batch}, "
               f"{crop} px, on {device} ({torch.get_num_threads()} threads), {rounds} rounds (per step):",
               times, peaks, 1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="about one minute: 24 images, 3 rounds, two presets at 32 px")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    args = p.parse_args()
    n, rounds = (24, 3) if args.quick else (100, 5)
    presets = ["tiny", "mocov3_vit_small"] if args.quick else \
        [k for k in config.PRESETS if k not in ("mocov3_r50_300ep", "mocov3_r50_1000ep")]  # same model as 100ep
    bench_augment(n, rounds)
    device = torch.device(args.device)
    crop = 224 if device.type == "cuda" else 32 if args.quick else 64
    bench_steps(presets, 4 if args.quick else 8, crop, rounds, device)


if __name__ == "__main__":
    main()
