"""The fast OpenCV pipeline against torchvision's PIL operations it replaces."""
import glob
import math
import os

import cv2
import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image, ImageFilter, ImageOps

from pretrain import augment as A


@pytest.fixture
def image():
    rng = np.random.default_rng(0)  # smooth colours, like a photo, so rounding is the only difference
    return cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (160, 120), interpolation=cv2.INTER_CUBIC)


def diff(a, b):
    d = np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int))
    return d.max(), d.mean()


def test_photometric_ops_match_torchvision(image):
    pil = Image.fromarray(image)
    gray3 = cv2.cvtColor(A.gray(image), cv2.COLOR_GRAY2RGB)
    mean = np.full_like(image, int(A.gray(image).mean() + 0.5))
    assert diff(A.blend(image, np.zeros_like(image), 1.3), TF.adjust_brightness(pil, 1.3))[0] <= 1
    assert diff(A.blend(image, mean, 0.7), TF.adjust_contrast(pil, 0.7))[0] <= 1
    assert diff(A.blend(image, gray3, 1.4), TF.adjust_saturation(pil, 1.4))[0] <= 1
    assert diff(A.gray(image), pil.convert("L"))[0] <= 1
    assert diff(cv2.LUT(image, A.SOLARIZE), ImageOps.solarize(pil))[0] == 0
    assert diff(cv2.GaussianBlur(image, (0, 0), 1.5), pil.filter(ImageFilter.GaussianBlur(1.5)))[1] < 1.0
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL)
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + round(0.08 * 255)).astype(np.uint8)
    assert diff(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL), TF.adjust_hue(pil, 0.08))[1] < 2.0  # HSV rounding


def test_crop_box_follows_random_resized_crop():
    rng = np.random.default_rng(0)
    for _ in range(500):
        x, y, cw, ch = A.crop_box(rng, 500, 375, (0.2, 1.0))
        assert 0 <= x <= 500 - cw and 0 <= y <= 375 - ch
        assert 0.2 * 0.9 <= cw * ch / (500 * 375) <= 1.0
        assert 3 / 4 * 0.95 <= cw / ch <= 4 / 3 * 1.05
    assert A.crop_box(rng, 1000, 10, (0.9, 1.0)) == (493, 0, 13, 10)  # fallback: central crop at ratio 4/3


def textured_jpeg(path, w, h, seed=0):
    """A photo-like texture with real JPEG entropy (tools/bench_data.py write_jpegs' recipe, larger)."""
    rng = np.random.default_rng(seed)
    smooth = cv2.resize(rng.integers(0, 256, (h // 16, w // 16, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    Image.fromarray(np.clip(smooth + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def test_crop_resize_matches_pil_s_through_the_reduced_decode(demo_root, tmp_path):
    """decode() + resized_crop() against torchvision's F.resized_crop on the fully decoded PIL image
    (crop at the box, BILINEAR with antialiasing), per crop, max / mean abs difference in uint8
    levels: 0 / 0 when the JPEG decodes at full size; at 1/2, 1/4, 1/8 (libjpeg's DCT scaling,
    not an antialiasing filter) at most 40 / 4 per crop and a mean under 2 over the crops."""
    demo = os.path.join(demo_root, "imagenet", "train")
    builtin = sorted(glob.glob(os.path.join(demo, "*", "*.jpg")))[::4] + \
        sorted(glob.glob(os.path.join(demo_root, "VOC2007", "JPEGImages", "*.jpg")))[:6]
    textured = [textured_jpeg(str(tmp_path / "t.jpg"), 1200, 900)]
    rng, seen, reduced = np.random.default_rng(0), set(), []
    for paths, crops, n in ((builtin, (224, 64, 32), 2), (textured, (224, 64), 12)):
        for path, crop in [(p, c) for p in paths for c in crops]:
            full = Image.open(path).convert("RGB")
            for _ in range(n):
                boxes = [A.crop_box(rng, *full.size, (0.08, 1.0)) for _ in range(2)]
                with Image.open(path) as img:
                    img, scaled = A.decode(img, boxes, crop)
                    ours = [A.resized_crop(img, box, crop) for box in scaled]
                    reduction = round(full.size[0] / img.size[0])
                seen.add(reduction)
                for (x, y, w, h), got in zip(boxes, ours):
                    d = diff(got, full.crop((x, y, x + w, y + h)).resize((crop, crop), Image.BILINEAR))
                    if reduction == 1:
                        assert d == (0, 0), (path, crop, (x, y, w, h), d)
                    else:
                        assert d[0] <= 40 and d[1] < 4, (path, crop, reduction, (x, y, w, h), d)
                        reduced.append(d[1])
    assert seen == {1, 2, 4, 8} and len(reduced) > 40, (seen, len(reduced))
    assert np.mean(reduced) < 2, np.mean(reduced)


def test_two_views_follow_the_recipes(tmp_path):
    path = str(tmp_path / "x.jpg")
    Image.fromarray(np.full((80, 100, 3), 128, np.uint8)).save(path)
    v2, v3 = A.recipe("mocov2"), A.recipe("mocov3")
    assert v2[0] == v2[1] and v2[0]["blur_p"] == 0.5 and v2[0]["jitter"] == (0.4, 0.4, 0.4, 0.1)
    assert (v3[0]["blur_p"], v3[0]["solarize_p"], v3[1]["blur_p"], v3[1]["solarize_p"]) == (1.0, 0.0, 0.1, 0.2)
    crops = A.FastTwoCrops("mocov3", 32, 0.08)(path, np.random.default_rng(0))
    assert [c.shape for c in crops] == [(3, 32, 32)] * 2 and crops[0].dtype == torch.uint8
    x = A.normalize(torch.stack(crops))
    torch.testing.assert_close(x[:, 0].mean(), torch.tensor((128 / 255 - 0.485) / 0.229), atol=0.25, rtol=0)
    assert math.isclose(A.normalize(torch.zeros(1, 3, 1, 1)).sum().item(), 0.0)  # float input untouched
