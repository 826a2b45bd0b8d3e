"""Weighted kNN accuracy of the backbone's features (InstDisc/DINO monitor: k=20, T=0.07).

A cheap signal that pretraining learns something, where a labelled held-out split exists. The
memory bank is a fixed random subset of the training set, the queries a fixed subset of the
held-out split. Both are decoded and centre-cropped once, on first use, and kept in memory as
uint8 tensors (3 x crop x crop bytes each: 10k + 5k images at 224 px are 2.3 GB), so each later
evaluation is forward passes only. The subsets are capped by a share of the epoch's images, so
that the monitor stays a few percent of an epoch on small sets too (ImageNet: 10k and 5k).
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

from mococore.knn import vote
from mocodata.validate import image_folder
from pretrain.augment import normalize

_CACHE = {}  # (root, crop, size) -> (uint8 N x 3 x crop x crop, labels, class names)


def backbone_features(encoder, x):
    """Pooled features before the projector: timm ViT's pre-logits or a torchvision ResNet's pool."""
    if hasattr(encoder, "forward_features"):
        return encoder.forward_head(encoder.forward_features(x), pre_logits=True)
    return torch.flatten(nn.Sequential(*list(encoder.children())[:-1])(x), 1)


def subset(samples, limit):
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(samples), generator=g)[:limit].sort().values.tolist()
    return [samples[i] for i in idx]


def centre_crop(path, crop):
    """uint8 CHW: shorter side to crop * 256/224, centre crop (the linear-eval transform)."""
    resize = crop * 256 // 224
    with Image.open(path) as img:
        if img.format == "JPEG":  # decode at a reduced size where libjpeg can (DCT scaling)
            img.draft("RGB", (resize, resize))
        img = T.CenterCrop(crop)(T.Resize(resize)(img.convert("RGB")))
        return torch.from_numpy(np.asarray(img).transpose(2, 0, 1).copy())


def crops(root, crop, size):
    """The cached uint8 crops, labels and class names of a fixed subset of an ImageFolder."""
    key = (root, crop, size)
    if key not in _CACHE:
        samples, classes = image_folder(root)
        samples = subset(samples, size)
        _CACHE[key] = (torch.stack([centre_crop(p, crop) for p, _ in samples]),
                       torch.tensor([c for _, c in samples]), classes)
    return _CACHE[key]


@torch.no_grad()
def embed(encoder, images, device, batch=256, amp="none", channels_last=False):
    feats = []
    for s in range(0, len(images), batch):
        x = normalize(images[s:s + batch].to(device))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp in ("bf16", "fp16")):
            feats.append(F.normalize(backbone_features(encoder, x).float(), dim=1).cpu())
    return torch.cat(feats)


def knn_predict(bank, bank_labels, feats, num_classes, k=20, T=0.07):
    """Class scores: sum over the k nearest (cosine) bank entries of exp(sim / T)."""
    sim = feats @ bank.T
    top, idx = sim.topk(min(k, bank.shape[0]), dim=1)
    return vote(top, bank_labels[idx], num_classes, T).argmax(1)


def sizes(epoch_images, bank_size=10000, val_size=5000):
    """(bank, queries): at most a fifth and a tenth of the images one epoch trains on. A training
    image costs about 8 forward passes (two crops: forward, backward = 2 forwards, momentum encoder),
    a monitored one a single forward without autograd: 3/10 of the images x 1/8 ~ 4% of the compute
    (each run logs the measured share: '% of the epoch')."""
    return min(bank_size, max(1, epoch_images // 5)), min(val_size, max(1, epoch_images // 10))


def knn_accuracy(encoder, train_root, val_root, crop, device, epoch_images=10 ** 9, amp="none",
                 channels_last=False):
    """Top-1 (%) of a weighted kNN on the held-out split, or None without two classes."""
    n_bank, n_val = sizes(epoch_images)
    bank_images, bank_labels, classes = crops(train_root, crop, n_bank)
    val_images, labels, val_classes = crops(val_root, crop, n_val)
    if len(classes) < 2 or val_classes != classes:
        return None
    was_training = encoder.training
    encoder.eval()
    bank = embed(encoder, bank_images, device, amp=amp, channels_last=channels_last)
    feats = embed(encoder, val_images, device, amp=amp, channels_last=channels_last)
    encoder.train(was_training)
    pred = knn_predict(bank, bank_labels, feats, len(classes))
    return 100.0 * (pred == labels).float().mean().item()
