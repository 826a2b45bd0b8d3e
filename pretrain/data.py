"""ImageFolder loading for two-crop pretraining, resumable at any iteration.

The sampler yields (epoch, index) pairs: the permutation depends on (seed, epoch) only, and each
sample's augmentation on (seed, epoch, index) only. A run resumed at iteration i of an epoch
therefore sees exactly the batches the uninterrupted run saw, whatever the number of workers.
"""
import os

import cv2
import numpy as np
import torch

from mocodata.validate import DataError, image_folder
from pretrain.augment import two_crop_transform


class TwoCropDataset(torch.utils.data.Dataset):
    def __init__(self, root, cfg):
        self.samples, _ = image_folder(root)
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
                                         pin_memory=torch.cuda.is_available(),
                                         persistent_workers=False)
    return loader, sampler

