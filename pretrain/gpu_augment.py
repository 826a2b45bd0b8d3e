"""`--aug gpu`: the two-crop recipes of augment.py, decoded and augmented on the training device.

Data loading is the bottleneck of two-crop pretraining (moco#33): the `fast` CPU pipeline gives
a few hundred images/s per core. Here the loader workers only read each file's bytes and draw the
sample's parameters from its (seed, epoch, index) generator with augment.py's own functions
(`crop_box`, `draw_view`: the same rng calls, so a sample's crops and photometric parameters are
exactly those of `--aug fast`); the device does the pixel work, batched:

    t = GpuTwoCrops(method, crop, crop_min)     # method: mocov2 | mocov3 (augment.recipe)
    item = t(path, rng)                         # loader worker: (path, bytes uint8 1-D, params (2, P))
    batch = t.collate([item, ...])              # DataLoader collate_fn: dict(paths, data, params, crop)
    view_q, view_k = t.apply(batch, device)     # on `device`: uint8 (N, 3, crop, crop) each
                                                # (the same as gpu_augment.apply(batch, device))
    for view_q, view_k in views(loader, device): ...   # what engine.train_one_epoch iterates: on
                                                # CUDA the next batch made in a thread while this one trains

`apply` decodes the JPEGs with `torchvision.io.decode_jpeg(list, device=device)` (nvJPEG on
CUDA, libjpeg-turbo on CPU); other formats (PNG) decode on the CPU (`decode_image`) and are
moved. Then per view, in the reference's order (moco `main_moco.py` aug+, moco-v3
`main_moco.py`): crop + resize (bilinear with antialiasing, PIL's filter: one
`interpolate` call per crop, as the images differ in size), colour jitter (brightness, contrast,
saturation, hue as torchvision's functional ops define them, each image's own order and factors),
grayscale, Gaussian blur (per-image sigma, OpenCV's kernel size for uint8 images as in the fast
pipeline: round(6 sigma + 1) | 1 taps, reflected border), solarize, flip. Values are rounded to
uint8 levels after each op, as PIL and OpenCV do, and returned as uint8 so that augment.normalize
applies on the device as for `fast`.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.io import ImageReadMode, decode_image, decode_jpeg

from mocodata.validate import DataError
from pretrain.augment import crop_box, draw_view, recipe

# one row of params per view: the header size, the crop box, jitter on/off, its order (4 ops)
# and factors (indexed by op: brightness, contrast, saturation, hue), grayscale, blur sigma
# (0: no blur), solarize, flip
COLUMNS = ["width", "height", "x", "y", "w", "h", "jitter", "o0", "o1", "o2", "o3",
           "brightness", "contrast", "saturation", "hue", "gray", "sigma", "solarize", "flip"]
C = {name: i for i, name in enumerate(COLUMNS)}
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision rgb_to_grayscale (ITU-R 601-2 luma)
BLUR_RADIUS = 6  # OpenCV's uint8 kernel at the largest sigma, 2.0: round(6 * 2 + 1) | 1 = 13 taps


def pack(size, box, p):
    jitter = p["order"] is not None
    order, factors = (p["order"], p["factors"]) if jitter else ([0, 1, 2, 3], [1.0, 1.0, 1.0, 0.0])
    return [*size, *box, jitter, *order, *factors, p["gray"], p["sigma"] or 0.0, p["solarize"], p["flip"]]


class GpuTwoCrops:
    def __init__(self, method, crop, crop_min):
        self.views, self.crop, self.crop_min = recipe(method), crop, crop_min

    def __call__(self, path, rng):
        """Loader side: the file's bytes and both views' parameters, drawn as FastTwoCrops draws them."""
        with Image.open(path) as img:  # the header only, for the crop boxes
            size = img.size
        boxes = [crop_box(rng, *size, (self.crop_min, 1.0)) for _ in self.views]
        params = [pack(size, box, draw_view(rng, **view)) for box, view in zip(boxes, self.views)]
        data = torch.from_numpy(np.fromfile(path, dtype=np.uint8))
        return path, data, torch.tensor(params, dtype=torch.float64)

    def collate(self, items):
        """Keeps the variable-length byte tensors as a list; the batch carries all `apply` needs."""
        paths, data, params = zip(*items)
        return dict(paths=list(paths), data=list(data), params=torch.stack(params), crop=self.crop)

    def apply(self, batch, device):
        return apply(batch, device)


def apply(batch, device):
    """Device side: (view_q, view_k), uint8 NCHW on `device`."""
    images = decode(batch["paths"], batch["data"], batch["params"][:, 0], device)
    p = batch["params"].transpose(0, 1).reshape(-1, len(COLUMNS))  # all first views, then all second
    x = crop_resize(images + images, p[:, C["x"]:C["h"] + 1].long().tolist(), batch["crop"])
    x = photometric(x, p).to(torch.uint8)
    return x[:len(images)], x[len(images):]


def views(loader, device, ahead=None):
    """(view_q, view_k) per batch of `loader`. A batch of the loader-made pipelines (fast,
    torchvision) passes as it is; a gpu batch (a dict, `GpuTwoCrops.collate`) is decoded and
    augmented here. On CUDA (`ahead`) one batch ahead, in a thread on its own stream, so that the
    per-crop Python loop and the decoder overlap the previous step (which waits for its loss on
    the GPU); on a CPU in line, as a thread would only compete for the same cores."""
    if not (device.type == "cuda" if ahead is None else ahead):
        yield from (apply(b, device) if isinstance(b, dict) else b for b in loader)
        return
    stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def make(batch):  # a thread's current device is cuda:0 whatever the main thread's: set it
        if stream is None:
            return (*apply(batch, device), None)
        with torch.cuda.device(device), torch.cuda.stream(stream):
            return (*apply(batch, device), stream.record_event())

    def ready(future):
        q, k, event = future.result()  # re-raises the thread's error (a DataError naming the file)
        if event is not None:  # the step's stream waits for the views and keeps their memory
            current = torch.cuda.current_stream(device)
            current.wait_event(event)
            q.record_stream(current)
            k.record_stream(current)
        return q, k

    with ThreadPoolExecutor(1) as pool:
        pending = None
        for batch in loader:
            if not isinstance(batch, dict):
                yield batch
                continue
            following = pool.submit(make, batch)
            if pending is not None:
                yield ready(pending)
            pending = following
        if pending is not None:
            yield ready(pending)


def is_jpeg(data):
    return data[:2].numpy().tobytes() == b"\xff\xd8"  # the SOI marker


def decode(paths, data, params, device):
    """RGB uint8 CHW per file on `device`; each checked against the size its header gave."""
    jpeg = [i for i, d in enumerate(data) if is_jpeg(d)]
    out, sizes = [None] * len(data), params[:, [C["width"], C["height"]]].long().tolist()
    try:  # one batched call: nvJPEG on CUDA
        for i, img in zip(jpeg, decode_jpeg([data[i] for i in jpeg], mode=ImageReadMode.RGB, device=device)
                          if jpeg else []):
            out[i] = img
    except RuntimeError:  # one file the device decoder cannot read: find it, or fall back for it
        for i in jpeg:
            out[i] = decode_one(paths[i], data[i], device)
    for i in range(len(data)):
        if out[i] is None:
            out[i] = decode_one(paths[i], data[i], device)
        w, h = sizes[i]
        if tuple(out[i].shape) != (3, h, w):
            raise DataError(paths[i], f"decodes to {tuple(out[i].shape[1:])[::-1]} pixels, and its header says "
                                      f"{w}x{h}; re-encode the file")
    return out


def decode_one(path, data, device):
    """On the device when it can; on the CPU otherwise (PNG; JPEGs nvJPEG refuses, e.g. CMYK)."""
    if is_jpeg(data):
        try:
            return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
        except RuntimeError:
            pass
    try:
        return decode_image(data, mode=ImageReadMode.RGB).to(device)
    except RuntimeError as e:
        raise DataError(path, f"unreadable image ({str(e).splitlines()[0][:200]})") from None


def crop_resize(images, boxes, size):
    """Each box of its image resized to size x size with PIL's antialiased bilinear filter (torch's
    `antialias=True`); one call per crop, since the images and boxes differ in size."""
    out = torch.empty(len(boxes), 3, size, size, device=images[0].device)
    for j, (img, (x, y, w, h)) in enumerate(zip(images, boxes)):
        out[j] = F.interpolate(img[None, :, y:y + h, x:x + w].float(), size=(size, size), mode="bilinear",
                               antialias=True, align_corners=False)[0]
    return out.round_().clamp_(0, 255)


def photometric(x, p):
    """Float uint8 levels (N, 3, H, W), each op on the images whose parameters turn it on."""
    def on(mask, fn, *columns):
        idx = torch.nonzero(mask).squeeze(1)
        if len(idx):
            i = idx.to(x.device)
            x[i] = fn(x[i], *(p[idx, c].float().to(x.device).view(-1, 1, 1, 1) for c in columns))

    jitter = p[:, C["jitter"]] > 0
    for k in range(4):  # step k applies, to each image, the op its drawn order puts there
        for op, (fn, column) in enumerate(JITTER):
            on(jitter & (p[:, C[f"o{k}"]] == op), fn, C[column])
    on(p[:, C["gray"]] > 0, lambda v: grayscale(v).round().expand_as(v))
    x = gaussian_blur(x, p[:, C["sigma"]].float().to(x.device))  # all images: a fixed shape for cuDNN
    on(p[:, C["solarize"]] > 0, lambda v: torch.where(v >= 128, 255 - v, v))  # PIL ImageOps.solarize(128)
    on(p[:, C["flip"]] > 0, lambda v: v.flip(-1))
    return x


def grayscale(x):
    r, g, b = x.unbind(1)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).unsqueeze(1)


def blend(a, b, f):
    """torchvision _blend: f * a + (1 - f) * b, clipped (then rounded to a level, as PIL does)."""
    return (f * a + (1 - f) * b).clamp_(0, 255).round_()


def brightness(x, f):
    return blend(x, torch.zeros_like(x), f)


def contrast(x, f):
    return blend(x, grayscale(x).mean(dim=(1, 2, 3), keepdim=True), f)


def saturation(x, f):
    return blend(x, grayscale(x), f)


def hue(x, shift):
    """torchvision adjust_hue: to HSV, hue + shift (in turns) modulo 1, back to RGB."""
    rgb = x / 255
    r, g, b = rgb.unbind(1)
    v, c = rgb.amax(1), rgb.amax(1) - rgb.amin(1)
    safe = torch.where(c > 0, c, torch.ones_like(c))
    h = torch.where(v == r, (g - b) / safe, torch.where(v == g, (b - r) / safe + 2, (r - g) / safe + 4))
    h = (torch.where(c > 0, h, torch.zeros_like(h)) / 6 + shift[:, 0]) % 1.0
    s = c / torch.where(v > 0, v, torch.ones_like(v))
    k = (torch.tensor([5.0, 3.0, 1.0], device=x.device).view(1, 3, 1, 1) + 6 * h.unsqueeze(1)) % 6
    out = v.unsqueeze(1) * (1 - s.unsqueeze(1) * torch.clamp(torch.minimum(k, 4 - k), 0, 1))
    return (out * 255).clamp_(0, 255).round_()


JITTER = [(brightness, "brightness"), (contrast, "contrast"), (saturation, "saturation"), (hue, "hue")]


def gaussian_blur(x, sigma):
    """Per-image sigma (0: the image as it is), separable, border reflected without repeating the
    edge (OpenCV's default): cv2.GaussianBlur(img, (0, 0), sigma) on uint8 has round(6 sigma + 1) | 1
    taps. Every image goes through the convolution, so that its shape is the batch's whatever the
    number blurred (cudnn.benchmark tunes once per shape)."""
    n, ch, hgt, wid = x.shape
    sigma = sigma.view(-1, 1)
    radius = (torch.round(6 * sigma + 1).long() | 1) // 2
    taps = torch.arange(-BLUR_RADIUS, BLUR_RADIUS + 1, device=x.device).view(1, -1)
    w = torch.exp(-taps.float() ** 2 / (2 * sigma.clamp(min=1e-3) ** 2)) * (taps.abs() <= radius)
    w = torch.where(sigma > 0, w, (taps == 0).float())
    w = (w / w.sum(1, keepdim=True)).repeat_interleave(ch, 0)  # one kernel per channel: (n * ch, taps)
    y = F.pad(x, [BLUR_RADIUS] * 4, mode="reflect").reshape(1, n * ch, hgt + 2 * BLUR_RADIUS, -1)
    y = F.conv2d(y, w[:, None, :, None], groups=n * ch)
    y = F.conv2d(y, w[:, None, None, :], groups=n * ch)
    return y.reshape(n, ch, hgt, wid).clamp_(0, 255).round_()
