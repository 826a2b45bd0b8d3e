"""Prints pretraining speed ratios on this machine, with peak memory (a benchmark, not a test).

    python tools/bench_pretrain.py            # minutes on a GPU; on a 2-core CPU over half an hour (ViT-L)
    python tools/bench_pretrain.py --quick    # about one minute: fewer images, rounds and presets

Every comparison runs its variants in interleaved rounds (A B A B ...), so a machine that gets
busier or quieter affects both alike; each prints min and median seconds, the ratio of both, and
the peak memory of one round (CPU: resident set growth, sampled; GPU: torch's peak allocation).
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
import statistics
import sys
import tempfile
import threading
import time

import cv2
import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision import transforms as T

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
        views = [official_view(0.08, (0.4, 0.4, 0.2, 0.1), 1.0, 0.0), official_view(0.08, (0.4, 0.4, 0.2, 0.1), 0.1, 0.2)]

    def load(path, rng=None):
        with open(path, "rb") as f:
            img = Image.open(f).convert("RGB")
        return [v(img) for v in views]
    return load


# --- measurement ------------------------------------------------------------------------------

class PeakMemory:
    """Peak growth of memory during a block: torch's peak allocation on a GPU, else the resident set
    sampled every millisecond (/proc/self/statm)."""

    def __init__(self, device):
        self.device, self.peak = device, 0

    def rss(self):
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        self.base, self.done = self.rss(), False
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def sample(self):
        while not self.done:
            self.peak = max(self.peak, self.rss() - self.base)
            time.sleep(0.001)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
        else:
            self.done = True
            self.thread.join()


def interleaved(variants, rounds, device):
    """{name: (seconds per round list, peak bytes)} from rounds of every variant in turn."""
    times, peaks = {k: [] for k in variants}, {k: 0 for k in variants}
    for fn in variants.values():
        fn()  # warm up
    for _ in range(rounds):
        for name, fn in variants.items():
            with PeakMemory(device) as mem:
                t0 = time.perf_counter()
                fn()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - t0)
            peaks[name] = max(peaks[name], mem.peak)
    return times, peaks


def report(title, times, peaks, per):
    """One line per variant: per-item min/median ms and peak MB; ratios against the first."""
    print(title)
    names = list(times)
    base = names[0]
    for name in names:
        lo, med = min(times[name]) / per, statistics.median(times[name]) / per
        ratio = ""
        if name != base:
            ratio = (f"   speed-up over {base}: {min(times[base]) / min(times[name]):.2f}x (min), "
                     f"{statistics.median(times[base]) / statistics.median(times[name]):.2f}x (median)")
        print(f"  {name:28s} min {lo * 1000:8.2f} ms  median {med * 1000:8.2f} ms  peak {peaks[name] / 2**20:7.1f} MB{ratio}")


# --- the two benchmarks -----------------------------------------------------------------------

def write_jpegs(folder, n, seed=0):
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        w, h = int(rng.integers(400, 600)), int(rng.integers(300, 450))
        smooth = cv2.resize(rng.integers(0, 256, (h // 16, w // 16, 3), dtype=np.uint8), (w, h),
                            interpolation=cv2.INTER_CUBIC)
        img = np.clip(smooth + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)  # texture: real JPEG entropy
        paths.append(os.path.join(folder, f"{i}.jpg"))
        cv2.imwrite(paths[-1], img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    return paths


def bench_augment(n, rounds):
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as d:
        paths = write_jpegs(d, n)
        for method, crop_min in (("mocov2", 0.2), ("mocov3", 0.08)):
            rng = np.random.default_rng(0)
            variants = {f"official {method} (PIL)": lambda t=official(method): [t(p) for p in paths],
                        "ours, fast (OpenCV)": lambda t=augment.FastTwoCrops(method, 224, crop_min): [t(p, rng) for p in paths],
                        "ours, --aug gpu on the CPU": lambda t=gpu_augment.GpuTwoCrops(method, 224, crop_min):
                            t.apply(t.collate([t(p, rng) for p in paths]), torch.device("cpu"))}
            times, peaks = interleaved(variants, rounds, torch.device("cpu"))
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
