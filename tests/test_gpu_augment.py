"""--aug gpu (pretrain/gpu_augment.py) on CPU tensors: each op against torchvision's functional op
and the fast pipeline's on the same parameters, whole views against the fast pipeline's, and the
parameter distributions against the reference torchvision pipeline's (fixed seeds).

Tolerances, in uint8 levels (max abs / mean abs difference):
- decode: torchvision's libjpeg-turbo against PIL's: 0 / 0;
- crop + resize against PIL's crop + BILINEAR resize (the reference): 1 / 0.25; against the fast
  pipeline's when it does not decode at a reduced size (then PIL's own): the same;
- brightness, contrast, saturation, hue against torchvision's float ops: 0.5 (we round to levels);
  against OpenCV: 0 / 0, 1 / 0.1, 1 / 0.1 and 6 / 0.5 (OpenCV's 8-bit HSV rounds the hue to 1/256);
- grayscale 1 / 0.05, Gaussian blur 1 / 0.1 (OpenCV's fixed-point kernel), solarize and flip 0 / 0;
- whole views on the built-in images (no reduced decode at crop 64): every view's mean below 3,
  the mean over views below 1, fewer than 1% of pixels more than 8 levels off.
"""
import os

import cv2
import numpy as np
import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image, ImageFilter
from scipy import stats

from mocodata.validate import DataError, image_folder
from pretrain import augment as A
from pretrain import gpu_augment as G

CPU = torch.device("cpu")


@pytest.fixture
def image():
    rng = np.random.default_rng(0)  # smooth colours, like a photo, so rounding is the only difference
    return cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (160, 120), interpolation=cv2.INTER_CUBIC)


def chw(img):
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()


def factor(*v):
    return torch.tensor(v).view(-1, 1, 1, 1)


def diff(a, b):
    d = (torch.as_tensor(np.asarray(a)).float() - torch.as_tensor(np.asarray(b)).float()).abs()
    return d.max().item(), d.mean().item()


JITTER_CASES = [(G.brightness, TF.adjust_brightness, 0, 1.3), (G.contrast, TF.adjust_contrast, 1, 0.7),
                (G.saturation, TF.adjust_saturation, 2, 1.4), (G.hue, TF.adjust_hue, 3, 0.08),
                (G.hue, TF.adjust_hue, 3, -0.1)]


@pytest.mark.parametrize("ours, tv, op, f", JITTER_CASES)
def test_jitter_ops_are_torchvision_s_rounded_to_levels(image, ours, tv, op, f):
    x = chw(image)
    assert diff(ours(x.clone(), factor(f)), tv(x / 255, f) * 255)[0] <= 0.5 + 1e-3


@pytest.mark.parametrize("ours, tv, op, f", JITTER_CASES)
def test_jitter_ops_match_the_fast_pipeline(image, ours, tv, op, f):
    worst = {0: (0, 0), 1: (1, 0.1), 2: (1, 0.1), 3: (6, 0.5)}[op]
    d = diff(ours(chw(image), factor(f)), chw(A.color_jitter(image, [op], [f] * 4)))
    assert d[0] <= worst[0] and d[1] <= worst[1], d


def test_batched_ops_use_each_image_s_own_factors_and_order(image):
    x = torch.cat([chw(image), chw(image[::-1]), chw(image[:, ::-1])])
    orders, factors = [[3, 1, 0, 2], [0, 1, 2, 3], [2, 3, 1, 0]], [[1.2, 0.8, 1.3, 0.05], [0.7, 1.4, 0.6, -0.1],
                                                                  [1.0, 1.1, 1.2, 0.02]]
    rows = [G.pack((160, 120), (0, 0, 160, 120), dict(order=o, factors=f, gray=k == 1, sigma=[None, 1.5, 0.4][k],
                                                      solarize=k == 2, flip=k != 1))
            for k, (o, f) in enumerate(zip(orders, factors))]
    out = G.photometric(x.clone(), torch.tensor(rows, dtype=torch.float64))
    for k in range(3):
        one = x[k:k + 1].clone()
        for op in orders[k]:
            one = G.JITTER[op][0](one, factor(factors[k][op]))
        one = G.grayscale(one).round().expand_as(one) if k == 1 else one
        one = G.gaussian_blur(one, torch.tensor([[None, 1.5, 0.4][k]])) if k else one
        one = torch.where(one >= 128, 255 - one, one) if k == 2 else one
        one = one.flip(-1) if k != 1 else one
        assert torch.equal(out[k:k + 1], one), k


def test_other_ops_match_the_fast_pipeline_and_pil(image):
    x = chw(image)
    gray = G.grayscale(x).round()
    assert diff(gray[0, 0], A.gray(image))[0] <= 1 and diff(gray[0, 0], A.gray(image))[1] < 0.05
    assert diff(gray[0, 0], TF.rgb_to_grayscale(x / 255)[0, 0] * 255)[0] <= 0.5 + 1e-3
    for sigma in (0.1, 0.5, 1.2, 2.0):  # blur: OpenCV's kernel, taps 3 to 13
        d = diff(G.gaussian_blur(x, torch.tensor([sigma])), chw(cv2.GaussianBlur(image, (0, 0), sigma)))
        assert d[0] <= 1 and d[1] < 0.1, (sigma, d)
    d = diff(G.gaussian_blur(x, torch.tensor([1.5]))[0].permute(1, 2, 0),
             Image.fromarray(image).filter(ImageFilter.GaussianBlur(1.5)))  # the reference: PIL's box approximation
    assert d[1] < 1.0
    row = G.pack((160, 120), (0, 0, 160, 120), dict(order=None, gray=False, sigma=None, solarize=True, flip=True))
    out = G.photometric(x.clone(), torch.tensor([row], dtype=torch.float64))
    assert torch.equal(out, chw(cv2.LUT(image, A.SOLARIZE)[:, ::-1]))


def test_decode_and_crop_resize_match_pil(tmp_path):
    rng = np.random.default_rng(1)
    big = cv2.resize(rng.integers(0, 256, (10, 14, 3), dtype=np.uint8), (700, 500), interpolation=cv2.INTER_CUBIC)
    jpg, png = str(tmp_path / "a.jpg"), str(tmp_path / "b.png")
    Image.fromarray(big).save(jpg, quality=90)
    Image.fromarray(big).save(png)
    data = [torch.from_numpy(np.fromfile(p, dtype=np.uint8)) for p in (jpg, png)]
    sizes = torch.tensor([[700, 500]] * 2, dtype=torch.float64)
    decoded = G.decode([jpg, png], data, sizes, CPU)
    for img, p in zip(decoded, (jpg, png)):
        pil = Image.open(p).convert("RGB")
        assert diff(img.permute(1, 2, 0), pil) == (0, 0)
        for box, crop in [((10, 20, 600, 450), 64), ((300, 100, 90, 120), 224), ((0, 0, 700, 500), 32)]:
            x, y, w, h = box
            ours = G.crop_resize([img], [box], crop)[0].permute(1, 2, 0)
            d = diff(ours, pil.crop((x, y, x + w, y + h)).resize((crop, crop), Image.BILINEAR))
            assert d[0] <= 1 and d[1] < 0.25, (box, d)
    box = (100, 50, 300, 260)  # shrinking less than 2x: the fast pipeline decodes at full size too
    with Image.open(jpg) as img:
        img, [scaled] = A.decode(img, [box], 160)
        fast = A.resized_crop(img, scaled, 160)
    d = diff(G.crop_resize(decoded[:1], [box], 160)[0].permute(1, 2, 0), fast)
    assert d[0] <= 1 and d[1] < 0.25, d


def test_a_corrupt_file_is_named(tmp_path, image):
    good, bad = str(tmp_path / "good.jpg"), str(tmp_path / "bad.jpg")
    Image.fromarray(image).save(good)
    raw = bytearray(open(good, "rb").read())
    raw[len(raw) // 2:len(raw) // 2 + 2] = b"\xff\xc0"  # a second SOF marker in the scan; the header is intact
    open(bad, "wb").write(bytes(raw))
    t = G.GpuTwoCrops("mocov2", 32, 0.2)
    batch = t.collate([t(p, np.random.default_rng(0)) for p in (good, bad)])
    with pytest.raises(DataError, match="bad.jpg"):
        t.apply(batch, CPU)


@pytest.fixture(scope="module")
def demo_paths(demo_root):
    return [p for p, _ in image_folder(os.path.join(demo_root, "imagenet", "train"))[0]]


@pytest.mark.parametrize("method", ["mocov2", "mocov3"])
def test_whole_views_match_the_fast_pipeline(demo_paths, method):
    """Same (seed, epoch, index): the same draws (the generators end in the same state) and views
    equal up to the decoders', resizers' and HSV rounding differences."""
    fast, gpu = A.FastTwoCrops(method, 64, 0.08), G.GpuTwoCrops(method, 64, 0.08)
    items, means, far = [], [], []
    keys = [(epoch, i) for epoch in range(3) for i in range(len(demo_paths))]
    for epoch, i in keys:
        path = demo_paths[i]
        r1, r2 = np.random.default_rng([0, epoch, i]), np.random.default_rng([0, epoch, i])
        items.append(gpu(path, r1))
        f = fast(path, r2)
        assert r1.bit_generator.state == r2.bit_generator.state
        items[-1] = items[-1] + (f,)
    q, k = gpu.apply(gpu.collate([it[:3] for it in items]), CPU)
    assert q.dtype == torch.uint8 and q.shape == (len(keys), 3, 64, 64) == k.shape
    for i, it in enumerate(items):
        for ours, theirs in ((q[i], it[3][0]), (k[i], it[3][1])):
            d = (ours.float() - theirs.float()).abs()
            means.append(d.mean().item())
            far.append((d > 8).float().mean().item())
    assert max(means) < 3 and np.mean(means) < 1 and np.mean(far) < 0.01, (max(means), np.mean(means), np.mean(far))


def reference_draws(view, n, seed, size=(500, 375)):
    """The torchvision reference's own parameter draws (its transforms' get_params and p)."""
    rrc, jitter, grayscale, blur, solarize, flip = view.transforms[:6]
    cj = jitter.transforms[0]
    torch.manual_seed(seed)
    img = torch.zeros(3, size[1], size[0])
    rows = []
    for _ in range(n):
        y, x, h, w = T.RandomResizedCrop.get_params(img, rrc.scale, rrc.ratio)
        order, *factors = T.ColorJitter.get_params(cj.brightness, cj.contrast, cj.saturation, cj.hue)
        rows.append([w * h / (size[0] * size[1]), np.log(w / h), *factors, tuple(order.tolist())])
    return rows, dict(jitter=jitter.p, gray=grayscale.p, blur=blur.p, solarize=solarize.p, flip=flip.p)


@pytest.mark.parametrize("method", ["mocov2", "mocov3"])
def test_parameters_are_equal_in_law_to_the_reference(tmp_path, method):
    """KS tests on crop area, log aspect ratio and the jitter factors, chi-square on the 24 orders,
    binomial tests on each probability; seeds fixed, so the p-values are too (threshold 0.01)."""
    path = str(tmp_path / "x.jpg")
    Image.fromarray(np.zeros((375, 500, 3), np.uint8)).save(path)
    n, crop_min = 3000, 0.08
    t = G.GpuTwoCrops(method, 224, crop_min)
    ours = torch.cat([t(path, np.random.default_rng([7, 0, i]))[2] for i in range(n)])  # both views
    for v, recipe in enumerate(A.recipe(method)):
        mine, ref = ours[v::2].numpy(), A.torchvision_view(224, crop_min, **recipe)
        rows, p = reference_draws(ref, n, seed=v)
        w, h = mine[:, G.C["w"]], mine[:, G.C["h"]]
        assert stats.ks_2samp(w * h / (500 * 375), [r[0] for r in rows]).pvalue > 0.01
        assert stats.ks_2samp(np.log(w / h), [r[1] for r in rows]).pvalue > 0.01
        on = mine[:, G.C["jitter"]] > 0
        for k, name in enumerate(["brightness", "contrast", "saturation", "hue"]):
            assert stats.ks_2samp(mine[on, G.C[name]], [r[2 + k] for r in rows]).pvalue > 0.01, name
        orders = [tuple(int(o) for o in row[G.C["o0"]:G.C["o3"] + 1]) for row in mine[on]]
        perms = sorted(set(r[6] for r in rows))
        assert len(perms) == 24
        table = [[orders.count(q) for q in perms], [[r[6] for r in rows].count(q) for q in perms]]
        assert stats.chi2_contingency(table).pvalue > 0.01
        counts = dict(jitter=on.sum(), gray=(mine[:, G.C["gray"]] > 0).sum(), blur=(mine[:, G.C["sigma"]] > 0).sum(),
                      solarize=(mine[:, G.C["solarize"]] > 0).sum(), flip=(mine[:, G.C["flip"]] > 0).sum())
        for name, count in counts.items():
            prob = p[name]
            assert (count == n * prob) if prob in (0, 1) else stats.binomtest(int(count), n, prob).pvalue > 0.01, name
        sigma = mine[mine[:, G.C["sigma"]] > 0, G.C["sigma"]]
        assert stats.ks_2samp(sigma, np.random.default_rng(v).uniform(*ref.transforms[3].transforms[0].sigma, n)).pvalue > 0.01


def test_blur_with_sigma_zero_is_the_identity(image):
    x = torch.cat([chw(image), chw(image[::-1])])
    out = G.gaussian_blur(x, torch.tensor([0.0, 1.3]))
    assert torch.equal(out[0], x[0]) and torch.equal(out[1:], G.gaussian_blur(x[1:], torch.tensor([1.3])))


@pytest.mark.parametrize("ahead", [False, True])
def test_views_equal_apply_in_line_or_ahead_in_a_thread(demo_paths, tmp_path, ahead):
    """The thread path is CUDA's; here on CPU tensors: the same views, in order, and a worker
    error raised in the training loop, naming the file."""
    t = G.GpuTwoCrops("mocov3", 32, 0.08)
    batches = [t.collate([t(p, np.random.default_rng([1, 0, i])) for i, p in enumerate(demo_paths[j:j + 4])])
               for j in (0, 4, 8)]
    made = list(G.views(batches, CPU, ahead))
    assert len(made) == 3 and all(torch.equal(a, b) for m, b3 in zip(made, batches) for a, b in zip(m, t.apply(b3, CPU)))
    plain = [(torch.zeros(1), torch.ones(1))]
    assert list(G.views(plain, CPU, ahead)) == plain
    bad = tmp_path / "bad.jpg"
    raw = bytearray(open(demo_paths[0], "rb").read())
    raw[len(raw) // 2:len(raw) // 2 + 2] = b"\xff\xc0"
    bad.write_bytes(bytes(raw))
    batches[2] = t.collate([t(str(bad), np.random.default_rng(0))])
    with pytest.raises(DataError, match="bad.jpg"):
        list(G.views(batches, CPU, ahead))
