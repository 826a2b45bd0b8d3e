"""Two-crop augmentations: MoCo v2's aug+ and MoCo v3's asymmetric BYOL-style pair."""
import os

import torch
from PIL import ImageFilter, ImageOps
from torchvision import datasets, transforms as T

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class GaussianBlur:
    def __init__(self, sigma=(0.1, 2.0)):
        self.sigma = sigma

    def __call__(self, img):
        s = torch.empty(1).uniform_(*self.sigma).item()
        return img.filter(ImageFilter.GaussianBlur(radius=s))


class Solarize:
    def __call__(self, img):
        return ImageOps.solarize(img)


def base(crop, crop_min, blur_p, solarize_p):
    return T.Compose([
        T.RandomResizedCrop(crop, scale=(crop_min, 1.0)),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2 if solarize_p is not None else 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([GaussianBlur()], p=blur_p),
        T.RandomApply([Solarize()], p=solarize_p or 0.0),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize(MEAN, STD),
    ])


class TwoCrops:
    def __init__(self, t1, t2):
        self.t1, self.t2 = t1, t2

    def __call__(self, x):
        return self.t1(x), self.t2(x)


def two_crop_transform(method, crop, crop_min):
    if method == "mocov2":  # aug+: the same pipeline for both crops
        t = base(crop, crop_min, blur_p=0.5, solarize_p=None)
        return TwoCrops(t, t)
    # MoCo v3: blur 1.0 / 0.1, solarize 0 / 0.2
    return TwoCrops(base(crop, crop_min, 1.0, 0.0), base(crop, crop_min, 0.1, 0.2))


def two_crop_loader(root, cfg):
    if not os.path.isdir(root):
        raise SystemExit(f"error: {root}: missing data folder (expected <root>/<class>/<image>.jpg)")
    try:
        ds = datasets.ImageFolder(root, two_crop_transform(cfg.method, cfg.crop, cfg.crop_min))
    except (FileNotFoundError, RuntimeError) as e:
        raise SystemExit(f"error: {root}: {e}")
    if len(ds) < cfg.batch_size:
        raise SystemExit(f"error: {root}: {len(ds)} images, fewer than one batch of {cfg.batch_size}")
    per_process = cfg.batch_size // (torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1)
    return torch.utils.data.DataLoader(
        ds, batch_size=per_process, shuffle=True, num_workers=cfg.workers, drop_last=True,
        collate_fn=lambda b: tuple(torch.stack([s[0][j] for s in b]) for j in range(2)))
