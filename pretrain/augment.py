"""Two-crop augmentations: MoCo v2's aug+ and MoCo v3's asymmetric BYOL-style pair.

Two implementations of the same recipe:
- `torchvision`: the references' PIL pipeline, kept as the yardstick (moco `main_moco.py`,
  moco-v3 `moco/loader.py`);
- `fast` (default): the JPEG decoded at a reduced size when the crop allows it (libjpeg's DCT
  scaling), crop + resize with PIL's filter over the exact box, then OpenCV on uint8 arrays,
  returning uint8 CHW tensors; `normalize` runs on the batch,
  on the training device. Data loading is the bottleneck of two-crop pretraining (moco#33).
Both draw every random number from one seeded generator per sample, so a sample's crops depend
only on (seed, epoch, index): resuming mid-epoch reproduces the uninterrupted run exactly.
"""
import math
import random

import cv2
import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision import transforms as T

from mococore.norm import MEAN, STD  # noqa: E402


def recipe(method):
    """Per-crop probabilities (blur, solarize) and jitter strengths of each method's two views."""
    if method == "mocov2":  # aug+: one pipeline for both crops
        view = dict(jitter=(0.4, 0.4, 0.4, 0.1), blur_p=0.5, solarize_p=0.0)
        return [view, view]
    jitter = (0.4, 0.4, 0.2, 0.1)  # moco-v3: BYOL's views
    return [dict(jitter=jitter, blur_p=1.0, solarize_p=0.0), dict(jitter=jitter, blur_p=0.1, solarize_p=0.2)]


# --- the plain torchvision/PIL reference ---------------------------------------------------

class GaussianBlur:
    def __init__(self, sigma=(0.1, 2.0)):
        self.sigma = sigma

    def __call__(self, img):
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(*self.sigma)))


def torchvision_view(crop, crop_min, jitter, blur_p, solarize_p):
    return T.Compose([
        T.RandomResizedCrop(crop, scale=(crop_min, 1.0)),
        T.RandomApply([T.ColorJitter(*jitter)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([GaussianBlur()], p=blur_p),
        T.RandomApply([ImageOps.solarize], p=solarize_p),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize(MEAN, STD),
    ])


class TorchvisionTwoCrops:
    def __init__(self, method, crop, crop_min):
        self.views = [torchvision_view(crop, crop_min, **v) for v in recipe(method)]

    def __call__(self, path, rng):
        seed = int(rng.integers(2**31))
        random.seed(seed)  # torchvision draws from torch's and Python's global generators
        torch.manual_seed(seed)
        with open(path, "rb") as f:
            img = Image.open(f).convert("RGB")
        return [v(img) for v in self.views]


# --- the fast OpenCV pipeline --------------------------------------------------------------

def crop_box(rng, w, h, scale, ratio=(3 / 4, 4 / 3)):
    """torchvision's RandomResizedCrop.get_params: (x, y, cw, ch)."""
    for _ in range(10):
        area = w * h * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1)), cw, ch
    aspect = w / h  # fallback: the central crop at the nearest allowed ratio
    cw, ch = (w, int(round(w / ratio[0]))) if aspect < ratio[0] else (
        (int(round(h * ratio[1])), h) if aspect > ratio[1] else (w, h))
    return (w - cw) // 2, (h - ch) // 2, cw, ch


def decode(img, boxes, crop):
    """An opened, not yet loaded image and the boxes in its pixels -> the decoded RGB image and the
    boxes in its pixels, as (x0, y0, x1, y1) floats. A JPEG decodes at 1/2, 1/4 or 1/8 size when
    every crop still has at least `crop` pixels a side (libjpeg's DCT scaling: the speed of `fast`
    on large images); the boxes keep their fractions, so the crops cover the reference's pixels."""
    w, h = img.size
    smallest = min(min(cw, ch) for _, _, cw, ch in boxes)
    scale = 1.0
    if img.format == "JPEG" and smallest >= 2 * crop:
        drafted = img.draft("RGB", (w * crop // smallest, h * crop // smallest))
        if drafted is not None:  # pixel i of the 1/s image covers [i s, (i + 1) s): the last is partial
            scale = drafted[1][2] / w
    img.load()
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    return rgb, [(x * scale, y * scale, (x + cw) * scale, (y + ch) * scale) for x, y, cw, ch in boxes]


def resized_crop(img, box, crop):
    """torchvision's F.resized_crop on a PIL image (crop, then bilinear with antialiasing: PIL's
    resize) for a box in fractional pixels: the smallest whole-pixel crop around it, resampled over
    the exact box. A whole-pixel box gives the reference's pixels exactly."""
    x0, y0, x1, y1 = box
    left, top = math.floor(x0), math.floor(y0)
    right, bottom = min(math.ceil(x1), img.size[0]), min(math.ceil(y1), img.size[1])
    region = img.crop((left, top, right, bottom))
    resized = region.resize((crop, crop), Image.BILINEAR, box=(x0 - left, y0 - top, x1 - left, y1 - top))
    return np.asarray(resized)


def gray(img):
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def blend(img, other, factor):
    """PIL ImageEnhance: factor * img + (1 - factor) * other, clipped to uint8."""
    return cv2.addWeighted(img, factor, other, 1.0 - factor, 0.0)


def color_jitter(img, order, factors):
    """torchvision's ColorJitter: brightness, contrast, saturation, hue in the drawn order."""
    for op in order:
        f = factors[op]
        if op == 0:
            img = blend(img, np.zeros_like(img), f)
        elif op == 1:
            mean = np.full_like(img, int(gray(img).mean() + 0.5))
            img = blend(img, mean, f)
        elif op == 2:
            img = blend(img, cv2.cvtColor(gray(img), cv2.COLOR_GRAY2RGB), f)
        else:
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL)  # hue in 0..255
            shift = int(round(f * 255))
            hsv[..., 0] = (hsv[..., 0].astype(np.int16) + shift).astype(np.uint8)  # wraps around
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)
    return img


SOLARIZE = np.where(np.arange(256) < 128, np.arange(256), 255 - np.arange(256)).astype(np.uint8)


def draw_view(rng, jitter, blur_p, solarize_p):
    """One view's random parameters, in the reference's order of operations. Every pipeline that
    draws from `rng` (fast, gpu) calls this, so a sample's parameters are the same in each.
    order: the jitter ops (0 brightness, 1 contrast, 2 saturation, 3 hue) or None when jitter is
    off; factors[op]: its factor (hue: a shift in turns); sigma: the blur's, or None."""
    p = dict(order=None, factors=None, gray=False, sigma=None, solarize=False, flip=False)
    if rng.random() < 0.8:
        b, c, s, h = jitter
        bounds = [(1 - b, 1 + b), (1 - c, 1 + c), (1 - s, 1 + s), (-h, h)]
        p["order"], p["factors"] = [int(op) for op in rng.permutation(4)], [0.0] * 4
        for op in p["order"]:
            p["factors"][op] = rng.uniform(*bounds[op])
    p["gray"] = rng.random() < 0.2
    if rng.random() < blur_p:
        p["sigma"] = rng.uniform(0.1, 2.0)
    p["solarize"] = rng.random() < solarize_p
    p["flip"] = rng.random() < 0.5
    return p


def fast_view(img, p):
    if p["order"] is not None:
        img = color_jitter(img, p["order"], p["factors"])
    if p["gray"]:
        img = cv2.cvtColor(gray(img), cv2.COLOR_GRAY2RGB)
    if p["sigma"] is not None:
        img = cv2.GaussianBlur(img, (0, 0), p["sigma"])
    if p["solarize"]:
        img = cv2.LUT(img, SOLARIZE)
    if p["flip"]:
        img = img[:, ::-1]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


class FastTwoCrops:
    def __init__(self, method, crop, crop_min):
        self.views, self.crop, self.crop_min = recipe(method), crop, crop_min

    def __call__(self, path, rng):
        with Image.open(path) as img:  # the header gives the size; decoding waits for the crops
            boxes = [crop_box(rng, *img.size, (self.crop_min, 1.0)) for _ in self.views]
            img, boxes = decode(img, boxes, self.crop)
            crops = [resized_crop(img, box, self.crop) for box in boxes]
        return [fast_view(c, draw_view(rng, **view)) for c, view in zip(crops, self.views)]


def normalize(x):
    """uint8 NCHW from the fast pipeline -> float, ImageNet mean/std; float input passes as is."""
    if x.dtype != torch.uint8:
        return x
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1) * 255
    return (x.float() - mean) / std


def two_crop_transform(method, crop, crop_min, aug="fast"):
    return (FastTwoCrops if aug == "fast" else TorchvisionTwoCrops)(method, crop, crop_min)
