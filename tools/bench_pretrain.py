"""Prints pretraining throughput on this machine (a benchmark, not a test).

    python tools/bench_pretrain.py [--images 200] [--steps 3] [--device cpu|cuda]

1. The two-crop augmentation, per core (one process, one thread): the fast OpenCV pipeline
   against the plain torchvision/PIL one, same recipe, on ImageNet-sized JPEGs (about 500x375,
   written here with photo-like texture), for MoCo v2 (aug+) and MoCo v3 (asymmetric).
2. The training step (forward, backward, update) of MoCo v2 R50 and MoCo v3 R50 / ViT-S at 224 px.
"""
import argparse
import os
import sys
import tempfile
import time

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pretrain import augment, config, engine, run  # noqa: E402


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


def images_per_s(transform, paths):
    rng = np.random.default_rng(0)
    transform(paths[0], rng)  # warm up
    t0 = time.perf_counter()
    for p in paths:
        transform(p, rng)
    return len(paths) / (time.perf_counter() - t0)


def bench_augment(n):
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as d:
        paths = write_jpegs(d, n)
        print(f"two-crop augmentation, 1 core, {n} JPEGs of ~500x375, crop 224 (images/s, 2 crops each):")
        for method, crop_min in (("mocov2", 0.2), ("mocov3", 0.08)):
            plain = images_per_s(augment.TorchvisionTwoCrops(method, 224, crop_min), paths)
            fast = images_per_s(augment.FastTwoCrops(method, 224, crop_min), paths)
            print(f"  {method}: torchvision/PIL {plain:6.1f}   fast {fast:6.1f}   speed-up {fast / plain:.2f}x")


def bench_step(preset, arch, batch, steps, device):
    cfg = config.Config(**config.PRESETS[preset])
    cfg.arch, cfg.batch_size, cfg.K = arch, batch, max(cfg.K // cfg.batch_size, 1) * batch
    torch.manual_seed(0)
    model = run.wrap(run.build_model(cfg), cfg, 1, device)
    opt = run.build_optimizer(cfg, model)
    x = torch.randint(0, 256, (batch, 3, cfg.crop, cfg.crop), dtype=torch.uint8)
    engine.step(model, x, x, opt, cfg, cfg.moco_m, device)  # warm up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        engine.step(model, x, x, opt, cfg, cfg.moco_m, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / steps
    print(f"  {preset:18s} {arch:10s} batch {batch:4d}: {dt * 1000:8.1f} ms/step, {batch / dt:7.1f} img/s")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    bench_augment(args.images)
    torch.set_num_threads(os.cpu_count())
    device = torch.device(args.device)
    print(f"training step on {device} ({torch.get_num_threads()} threads), 224 px"
          f"{', bf16 autocast, channels_last' if device.type == 'cuda' else ''}:")
    for preset, arch in (("mocov2_200ep", "resnet50"), ("mocov3_r50_100ep", "resnet50"), ("mocov3_vit_small", "vit_small")):
        bench_step(preset, arch, args.batch, args.steps, device)


if __name__ == "__main__":
    main()
