"""Frozen features of an image list, extracted once and cached: `<cache>/<split>_<layer>.npz` holding
`feats` (N, D) float32, `labels`, `paths` and the `key` they were made under. The key is a hash of
the weights file (or 'random init' + arch + seed), the preprocessing, the layer and the image list,
so a second run with the same weights reads them back and anything else re-extracts.

    weights_key = features.weights_key(path_or_None, arch, seed)
    feats = features.get(model, weights_key, items, split, layers, preprocess, cache_dir)
    feats["feat5"].feats, .labels, .paths

Preprocessing (a dict from the config):
    {resize: 256, crop: 224}     kNN: short side 256, centre crop 224 (mmselfsup knn config, DINO)
    {resize: 256, squash: 224}   SVM: short side 256, then squashed to 224x224, no crop (fssb, mmselfsup)
plus `interpolation` (bilinear | bicubic); ImageNet mean/std normalisation.
"""
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from transfer.classification.backbone import extract

from mococore.files import atomic_write  # noqa: E402
from mococore.norm import MEAN, STD  # noqa: E402


@dataclass
class Features:
    feats: np.ndarray  # (N, D) float32
    labels: np.ndarray  # (N,) class index, or (N, C) VOC 1/0/-1
    paths: list


def transform(pre):
    import torchvision.transforms as T

    interp = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC}[pre["interpolation"]]
    steps = [T.Resize(pre["resize"], interpolation=interp)]
    if "crop" in pre:
        steps.append(T.CenterCrop(pre["crop"]))
    else:
        steps.append(T.Resize((pre["squash"], pre["squash"]), interpolation=interp))
    return T.Compose(steps + [T.ToTensor(), T.Normalize(MEAN, STD)])


class ImageList(torch.utils.data.Dataset):
    def __init__(self, paths, tf):
        self.paths, self.tf = paths, tf

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as im:
            return self.tf(im.convert("RGB"))


_HASHES = {}


def weights_key(path, arch, seed):
    """sha256 of the weights file (memoised per process), or the recipe of a random init."""
    if path is None:
        return f"random init {arch or 'resnet50'} seed {seed}"
    if path not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[path] = h.hexdigest()
    return _HASHES[path]


def cache_key(weights, pre, layer, paths):
    listing = hashlib.sha1("\n".join(paths).encode()).hexdigest()
    return json.dumps({"weights": weights, "preprocess": pre, "layer": layer, "images": listing}, sort_keys=True)


def cache_path(cache_dir, split, layer):
    return os.path.join(cache_dir, f"{split}_{layer}.npz")


def read_cached(cache_dir, split, layer, key):
    """The cached features, or None when missing or made under another key."""
    path = cache_path(cache_dir, split, layer)
    if not os.path.isfile(path):
        return None
    with np.load(path, allow_pickle=False) as z:
        return z["feats"] if str(z["key"]) == key else None


def write_cached(cache_dir, split, layer, key, f):
    atomic_write(cache_path(cache_dir, split, layer),  # a killed run never leaves a half file under the cache name
                 lambda tmp: np.savez(tmp, feats=f.feats, labels=f.labels, paths=np.array(f.paths), key=np.array(key)))


def get(model, weights, paths, labels, split, layers, pre, cache_dir, batch_size=64, workers=4, log=print):
    """{layer: Features}: cached layers are read back; the others come from one pass over the images."""
    keys = {layer: cache_key(weights, pre, layer, paths) for layer in layers}
    feats = {layer: read_cached(cache_dir, split, layer, keys[layer]) for layer in layers}
    todo = [layer for layer in layers if feats[layer] is None]
    if len(todo) < len(layers):
        log(f"features: {split} {[l for l in layers if l not in todo]} read from {cache_dir}")
    if todo:
        feats.update(run_extraction(model, paths, todo, pre, split, batch_size, workers, log))
    # labels always come from the caller: they are read afresh from the annotations each run
    out = {layer: Features(feats[layer], np.asarray(labels), list(paths)) for layer in layers}
    for layer in todo:
        write_cached(cache_dir, split, layer, keys[layer], out[layer])
    return out


def run_extraction(model, paths, layers, pre, split, batch_size, workers, log, alloc=None):
    """{layer: (N, D) float32 array}, one forward pass per batch for all layers; img/s and ETA.
    alloc(layer, shape) makes each array (default np.empty; logreg passes a memory-mapped .npy file)."""
    alloc = alloc or (lambda layer, shape: np.empty(shape, np.float32))
    device = next(model.parameters()).device
    loader = torch.utils.data.DataLoader(ImageList(paths, transform(pre)), batch_size=batch_size,
                                         num_workers=workers, pin_memory=device.type == "cuda")
    out, done, start, last = {}, 0, time.time(), 0.0
    for x in loader:
        f = extract(model, x.to(device, non_blocking=True), layers)
        for layer, v in f.items():
            if layer not in out:  # allocate once: 1.28M x 2048 float32 is 10 GB
                out[layer] = alloc(layer, (len(paths), v.shape[1]))
            out[layer][done:done + len(x)] = v.cpu().numpy()
        done += len(x)
        now = time.time()
        if now - last > 30 or done == len(paths):
            rate = done / max(now - start, 1e-9)
            log(f"features: {split} {done}/{len(paths)} img, {rate:.1f} img/s, ETA {(len(paths) - done) / rate:.0f} s")
            last = now
    sys.stdout.flush()
    return out
