"""ImageFolder loading for two-crop pretraining, resumable at any iteration.

The sampler yields (epoch, index) pairs: the permutation depends on (seed, epoch) only, and each
sample's augmentation on (seed, epoch, index) only. A run resumed at iteration i of an epoch
therefore sees exactly the batches the uninterrupted run saw, whatever the number of workers.
Before any training the folder tree (symlink loops) and every image header (unreadable, truncated,
too small) are checked, so that bad data stops the run before it starts.
"""
import os

import cv2
import numpy as np
import torch

from mocodata.validate import DataError, image_folder, image_size
from pretrain.augment import two_crop_transform
from pretrain.gpu_augment import GpuTwoCrops

MIN_SIDE = 8  # pixels: a smaller image has nothing to crop, only to upsample
SCAN_LIMIT = 200_000  # image headers read before training; larger sets are checked as they load


def check_tree(root):
    """Refuses folder symlinks that reach a folder already in the tree: a link to `..` or to the
    root makes torchvision's walk (it follows links) go round until the path is too long, and a
    link to a sibling class counts its images twice under two labels. Links leaving the root (class
    folders on another disk) are fine."""
    seen = {os.path.realpath(root)}
    for d, dirs, _ in os.walk(root, followlinks=True):
        for name in list(dirs):
            path = os.path.join(d, name)
            real = os.path.realpath(path)
            if real in seen or real in ancestors(path):
                raise DataError(path, f"a folder symlink to {real}, which is already part of {root}: its images "
                                      "would be read again (or forever); remove the link")
            seen.add(real)


def ancestors(path):
    real = os.path.realpath(os.path.dirname(path))
    while True:
        yield real
        parent = os.path.dirname(real)
        if parent == real:
            return
        real = parent


def check_images(samples):
    """Every image readable, complete and at least MIN_SIDE a side, from its header (no decode)."""
    for path, _ in samples[:SCAN_LIMIT]:
        w, h = image_size(path)
        if min(w, h) < MIN_SIDE:
            raise DataError(path, f"a {w}x{h} image: at least {MIN_SIDE} pixels a side are needed; remove it")


def from_worker(err):
    """'<path>: <problem>' of a DataError raised in a loader worker, from the RuntimeError the
    DataLoader turns it into (it cannot rebuild a two-argument exception); None for other errors."""
    lines = [line for line in str(err).splitlines() if "DataError: " in line]
    return lines[-1].split("DataError: ", 1)[1] if str(err).startswith("Caught DataError") and lines else None


class TwoCropDataset(torch.utils.data.Dataset):
    def __init__(self, root, cfg):
        check_tree(root)
        self.samples, _ = image_folder(root)
        check_images(self.samples)
        if cfg.aug == "gpu":  # the workers read bytes and draw parameters; engine.views does the rest
            self.transform = GpuTwoCrops(cfg.method, cfg.crop, cfg.crop_min)
        else:
            self.transform = two_crop_transform(cfg.method, cfg.crop, cfg.crop_min, cfg.aug)
        self.seed = cfg.seed

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, key):
        epoch, i = key
        path = self.samples[i][0]
        rng = np.random.default_rng([self.seed, epoch, i])
        try:
            return tuple(self.transform(path, rng))
        except (OSError, ValueError, cv2.error) as e:
            raise DataError(path, f"unreadable image ({type(e).__name__}: {e})") from None


class ResumableSampler(torch.utils.data.Sampler):
    """This process's share of a (seed, epoch) permutation, from batch `start` on."""

    def __init__(self, n, batch_per_process, seed, rank=0, world=1):
        self.n, self.bpp, self.seed, self.rank, self.world = n, batch_per_process, seed, rank, world
        self.iters = n // (batch_per_process * world)  # full global batches; the rest is dropped
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch, start=0):
        self.epoch, self.start = epoch, start

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        perm = torch.randperm(self.n, generator=g)[: self.iters * self.bpp * self.world]
        mine = perm[self.rank::self.world].tolist()
        return iter([(self.epoch, i) for i in mine[self.start * self.bpp:]])

    def __len__(self):
        return (self.iters - self.start) * self.bpp


def worker_init(_):
    cv2.setNumThreads(1)  # one core per worker: OpenCV's own threads would oversubscribe


def two_crop_loader(root, cfg, rank=0, world=1):
    ds = TwoCropDataset(root, cfg)
    if cfg.batch_size % world:
        raise DataError("--batch-size", f"{cfg.batch_size} is not divisible by {world} processes")
    if len(ds) < cfg.batch_size:
        raise DataError(root, f"{len(ds)} images, fewer than one batch of {cfg.batch_size}")
    sampler = ResumableSampler(len(ds), cfg.batch_size // world, cfg.seed, rank, world)
    loader = torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size // world, sampler=sampler,
                                         num_workers=cfg.workers, drop_last=True, worker_init_fn=worker_init,
                                         collate_fn=getattr(ds.transform, "collate", None),
                                         pin_memory=torch.cuda.is_available(),
                                         persistent_workers=False)
    return loader, sampler

