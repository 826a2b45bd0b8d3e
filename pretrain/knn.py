"""Weighted kNN accuracy of the backbone's features (InstDisc/DINO monitor: k=20, T=0.07).

A cheap signal that pretraining learns something, where a labelled held-out split exists. The
memory bank is a fixed random subset of the training set (10k images) so that the check stays
fast on ImageNet.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

from pretrain.augment import MEAN, STD
from mocodata.validate import image_folder


def backbone_features(encoder, x):
    """Pooled features before the projector: timm ViT's pre-logits or a torchvision ResNet's pool."""
    if hasattr(encoder, "forward_features"):
        return encoder.forward_head(encoder.forward_features(x), pre_logits=True)
    return torch.flatten(nn.Sequential(*list(encoder.children())[:-1])(x), 1)


def subset(samples, limit):
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(samples), generator=g)[:limit].sort().values.tolist()
    return [samples[i] for i in idx]


@torch.no_grad()
def embed(encoder, samples, crop, device, batch=64):
    t = T.Compose([T.Resize(crop * 256 // 224), T.CenterCrop(crop), T.ToTensor(), T.Normalize(MEAN, STD)])
    feats, labels = [], []
    for s in range(0, len(samples), batch):
        chunk = samples[s:s + batch]
        x = torch.stack([t(Image.open(p).convert("RGB")) for p, _ in chunk]).to(device)
        feats.append(F.normalize(backbone_features(encoder, x).float(), dim=1).cpu())
        labels += [c for _, c in chunk]
    return torch.cat(feats), torch.tensor(labels)


def knn_predict(bank, bank_labels, feats, num_classes, k=20, T=0.07):
    """Class scores: sum over the k nearest (cosine) bank entries of exp(sim / T)."""
    sim = feats @ bank.T
    top, idx = sim.topk(min(k, bank.shape[0]), dim=1)
    votes = torch.zeros(feats.shape[0], num_classes)
    votes.scatter_add_(1, bank_labels[idx], (top / T).exp())
    return votes.argmax(1)


def knn_accuracy(encoder, train_root, val_root, crop, device, bank_size=10000, val_size=5000):
    """Top-1 (%) of a weighted kNN on the held-out split, or None without two classes."""
    train, classes = image_folder(train_root)
    val, val_classes = image_folder(val_root)
    if len(classes) < 2 or val_classes != classes:
        return None
    was_training = encoder.training
    encoder.eval()
    bank, bank_labels = embed(encoder, subset(train, bank_size), crop, device)
    feats, labels = embed(encoder, subset(val, val_size), crop, device)
    encoder.train(was_training)
    pred = knn_predict(bank, bank_labels, feats, len(classes))
    return 100.0 * (pred == labels).float().mean().item()
