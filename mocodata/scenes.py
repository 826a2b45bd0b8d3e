"""Small learnable scenes: objects of 20 classes on textured backgrounds, with exact masks.

Scenes (detection, segmentation): each class has its own shape, colour and texture, so a detector
can learn them in a few hundred iterations; sizes, positions, overlap and backgrounds vary.
ImageNet-style pictures (`centred_object`): a class is a shape and a texture; the colour is drawn
independently of the class from a few, so that only shape and texture tell the classes apart. Everything is drawn with numpy from a `np.random.Generator`, so a seed fixes
every pixel.
"""
import numpy as np

from mocodata.classes import VOC_CLASSES as CLASSES
SHAPES = ("box", "disc", "triangle", "diamond", "cross")
COLOURS = np.array([[220, 40, 40], [40, 180, 60], [50, 80, 220], [230, 200, 40]], np.float32)


def class_style(c):
    """Shape, colour and texture (stripe period or 0 for flat) of class index `c`."""
    return SHAPES[c % 5], COLOURS[c // 5], (0, 4, 6, 8)[(c // 5 + c) % 4]


def shape_mask(shape, h, w, cy, cx, ry, rx):
    """Boolean (h, w) mask of one shape centred at (cy, cx) with half sizes (ry, rx)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    dy, dx = (y - cy) / ry, (x - cx) / rx
    if shape == "box":
        return (np.abs(dy) <= 1) & (np.abs(dx) <= 1)
    if shape == "disc":
        return dy**2 + dx**2 <= 1
    if shape == "triangle":
        return (dy <= 1) & (dy >= -1) & (np.abs(dx) <= (dy + 1) / 2)
    if shape == "diamond":
        return np.abs(dy) + np.abs(dx) <= 1
    if shape == "cross":
        return ((np.abs(dy) <= 1) & (np.abs(dx) <= 0.35)) | ((np.abs(dx) <= 1) & (np.abs(dy) <= 0.35))
    raise ValueError(shape)


def paint(rng, img, mask, c):
    """Fills `mask` of the float image with class `c`'s colour and stripes, in place."""
    _, colour, period = class_style(c)
    h, w = mask.shape
    fill = colour * rng.uniform(0.8, 1.1) + rng.normal(0, 8, (h, w, 3))
    if period:  # odd classes have vertical stripes, even ones horizontal
        axis = np.arange(w)[None, :] if c % 2 else np.arange(h)[:, None]
        fill = fill * (0.65 + 0.35 * ((axis // period) % 2))[..., None]
    img[mask] = fill[mask]


def background(rng, h, w):
    """A smooth two-colour gradient with noise: varied, but never one of the class styles."""
    a, b = rng.uniform(60, 200, 3), rng.uniform(60, 200, 3)
    t = np.linspace(0, 1, w if rng.random() < 0.5 else h, dtype=np.float32)
    grad = a + (b - a) * t[:, None]
    img = np.broadcast_to(grad[None] if len(t) == w else grad[:, None], (h, w, 3)).copy()
    return img + rng.normal(0, 12, (h, w, 3))


def draw_scene(rng, h, w, max_objects=4, min_size=0.12, max_size=0.45, first_label=None):
    """`first_label` fixes the class of the first object, so that a split covers every class.
    Returns (image uint8 HxWx3, objects): each object a dict with `label` (class index) and
    `mask` (its visible pixels after later objects occlude it); objects fully hidden are dropped."""
    img = background(rng, h, w)
    objects = []
    for k in range(rng.integers(1, max_objects + 1)):
        c = int(rng.integers(len(CLASSES))) if k or first_label is None else first_label
        ry, rx = (rng.uniform(min_size, max_size, 2) * (h, w) / 2).clip(4)
        cy, cx = rng.uniform(ry * 0.5, h - ry * 0.5), rng.uniform(rx * 0.5, w - rx * 0.5)
        mask = shape_mask(class_style(c)[0], h, w, cy, cx, ry, rx)
        if mask.sum() < 16:
            continue
        paint(rng, img, mask, c)
        for o in objects:  # the new object occludes the earlier ones
            o["mask"] &= ~mask
        objects.append({"label": c, "mask": mask})
    objects = [o for o in objects if o["mask"].sum() >= 16]
    return img.clip(0, 255).astype(np.uint8), objects


def mask_box(mask):
    """Tight (x0, y0, x1, y1) box of a mask, in pixel-edge coordinates (x1, y1 exclusive)."""
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


TEXTURES = ("hstripes", "vstripes", "checks", "dots", "diagonal")


def object_style(c):
    """Shape and texture of ImageNet-style class `c` (0-24): every pair differs, and neither the
    shape nor the texture alone names the class (each is shared by several classes)."""
    return SHAPES[c % 5], TEXTURES[(c % 5 + c // 5) % 5]


def texture(kind, h, w, period, phase):
    """A 0/1 (h, w) pattern of `kind` with the given period and phase in pixels."""
    y, x = np.mgrid[0:h, 0:w]
    y, x = y + phase[0], x + phase[1]
    if kind == "hstripes":
        return (y // period) % 2
    if kind == "vstripes":
        return (x // period) % 2
    if kind == "checks":
        return (y // period + x // period) % 2
    if kind == "diagonal":
        return ((x + y) // period) % 2
    if kind == "dots":
        dy, dx = y % (2 * period) - period, x % (2 * period) - period
        return (dy**2 + dx**2 <= (0.6 * period) ** 2).astype(int)
    raise ValueError(kind)


def centred_object(rng, size, c):
    """An ImageNet-style picture: one object of class `c` (its shape and texture), large and roughly
    centred, on a grey gradient. Its colour is one of four, drawn independently of the class: colour says
    nothing about the class, and with few colours (and a grey background) it is no shortcut for telling
    pictures apart either, so MoCo learns shape and texture. The texture's period and phase vary too."""
    a, b = rng.uniform(70, 190, 2)
    grad = np.linspace(a, b, size, dtype=np.float32)
    grad = grad[None, :] if rng.random() < 0.5 else grad[:, None]
    img = np.broadcast_to(grad[..., None], (size, size, 3)) + rng.normal(0, 10, (size, size, 3))
    r = rng.uniform(0.28, 0.45, 2) * size
    cy, cx = size / 2 + rng.normal(0, size * 0.06, 2)
    shape, kind = object_style(c)
    mask = shape_mask(shape, size, size, cy, cx, r[0], r[1])
    light = COLOURS[rng.integers(len(COLOURS))] * rng.uniform(0.85, 1.1)
    dark = light * 0.35
    pattern = texture(kind, size, size, int(rng.integers(4, 7)), rng.integers(0, 12, 2))[..., None]
    fill = np.where(pattern == 1, dark, light) + rng.normal(0, 8, (size, size, 3))
    img = img.copy()
    img[mask] = fill[mask]
    return img.clip(0, 255).astype(np.uint8)
