"""Weighted kNN on frozen features, as dino eval_knn.py `knn_classifier` = mmselfsup knn_eval
(facebookresearch/dino eval_knn.py; Wu et al. 2018, arXiv:1805.01978): L2-normalised features, cosine similarity, the top-k train images
vote with weight exp(sim / T), T = 0.07, summed one-hot over the classes of the data (dino and
mmselfsup default to 1000), top-1 and top-5, one row per k (`knn/top1_k20`, `knn/top5_k20`).

    python -m transfer.classification.knn --config configs/classification/knn_imagenet.yaml \
        --data-root ROOT --work-dir RUN [--weights CKPT]

Memory (`neighbours`): the bank is walked in chunks of `bank_chunk` rows, each normalised on its
own (no normalised copy of the whole bank, dino#161); queries go in chunks of `query_chunk`.
Beyond the bank and query arrays themselves, the peak is
    bank_chunk x D (normalised chunk) + query_chunk x bank_chunk (similarities)
    + Q x D (normalised queries) + Q x max(k) x 12 bytes (running top-k)
all float32: 65536 x 2048 + 1024 x 65536 + 50000 x 2048 floats + 120 MB = 1.3 GB for ImageNet.
Top-5 counts a class only if it got a vote (dino sorts the summed votes, so classes without a vote
tie at 0 in any order); top-5 is top-min(5, k, classes).
Refused before any work: k larger than the bank (the quick config lists only the k that fit),
train/val class lists that differ, an empty class folder.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from transfer import perimage
from transfer.runner import entry
from mococore.images import IMAGE_EXTS, image_folder as list_image_folder
from mococore.knn import vote as weighted_vote
from transfer.classification import BadInput, build_cfg, build_model, need_keys, parser, write_results
from transfer.classification import backbone, features

TASK = "knn"
KEYS = ("train_dir", "val_dir", "layer", "preprocess", "k", "temperature", "batch_size", "workers",
        "bank_chunk", "query_chunk")


def image_folder(root, what):
    """(paths, labels, classes) of <root>/<class>/<image>; BadInput names the folder at fault."""
    if not os.path.isdir(root):
        raise BadInput(f"{root}: missing {what} folder (expected {root}/<class>/<image>.jpg); check --data-root")
    samples, classes, empty = list_image_folder(root)
    if not classes:
        raise BadInput(f"{root}: no class folders in the {what} folder (expected {root}/<class>/<image>.jpg)")
    if empty:
        raise BadInput(f"{os.path.join(root, empty[0])}: empty class folder (no {'/'.join(IMAGE_EXTS)} images); "
                       "remove the folder or add its images, in train and val alike")
    return [p for p, _ in samples], np.array([i for _, i in samples], np.int64), classes


def check_data(cfg, root):
    train = image_folder(os.path.join(root, cfg["train_dir"]), "train")
    val = image_folder(os.path.join(root, cfg["val_dir"]), "val")
    if train[2] != val[2]:
        only_t, only_v = sorted(set(train[2]) - set(val[2])), sorted(set(val[2]) - set(train[2]))
        raise BadInput(f"{os.path.join(root, cfg['val_dir'])}: its class folders differ from "
                       f"{os.path.join(root, cfg['train_dir'])} (only in train: {only_t[:5]}, only in val: "
                       f"{only_v[:5]}); the class index of an image comes from its folder, so both need the same list")
    too_big = [k for k in cfg["k"] if k > len(train[0])]
    if too_big:
        raise BadInput(f"k {too_big} in {cfg['_path']} is larger than the bank of {len(train[0])} train images; "
                       "list only k that fit (the quick config does)")
    return train, val


@torch.no_grad()
def neighbours(bank, queries, kmax, bank_chunk=65536, query_chunk=1024, device="cpu"):
    """(sims, idx), each (Q, kmax) sorted descending: the most cosine-similar bank rows per query."""
    q = F.normalize(torch.as_tensor(queries).to(device, torch.float32), dim=1)
    best_s = torch.full((len(q), kmax), -math.inf, device=device)
    best_i = torch.zeros((len(q), kmax), dtype=torch.long, device=device)
    for start in range(0, len(bank), bank_chunk):
        b = F.normalize(torch.as_tensor(bank[start:start + bank_chunk]).to(device, torch.float32), dim=1)
        for qs in range(0, len(q), query_chunk):
            s, i = (q[qs:qs + query_chunk] @ b.T).topk(min(kmax, len(b)), dim=1)
            cat_s = torch.cat([best_s[qs:qs + query_chunk], s], 1)
            cat_i = torch.cat([best_i[qs:qs + query_chunk], i + start], 1)
            top_s, pos = cat_s.topk(kmax, dim=1)
            best_s[qs:qs + query_chunk], best_i[qs:qs + query_chunk] = top_s, cat_i.gather(1, pos)
    return best_s, best_i


def ranked(sims, idx, train_labels, k, T, num_classes):
    """(score, class), each (Q, min(5, k, classes)), of the largest votes of the first k neighbours:
    sum_j exp(sim_j / T) * onehot(label_j)."""
    probs = weighted_vote(sims[:, :k], train_labels[idx[:, :k]], num_classes, T)
    return probs.topk(min(5, k, num_classes), dim=1)


def vote(sims, idx, train_labels, test_labels, k, T, num_classes):
    """(top1, top5) in percent for the first k neighbours."""
    score, pred = ranked(sims, idx, train_labels, k, T, num_classes)
    hit = (pred == test_labels[:, None]) & (score > 0)
    return 100.0 * hit[:, 0].float().mean().item(), 100.0 * hit.any(1).float().mean().item()


def knn_classify(train_feats, train_labels, test_feats, test_labels, ks, T, num_classes, bank_chunk=65536,
                 query_chunk=1024, device="cpu"):
    """{k: (top1, top5)} for every k, from one neighbour search at max(ks)."""
    sims, idx = neighbours(train_feats, test_feats, max(ks), bank_chunk, query_chunk, device)
    tl = torch.as_tensor(train_labels, device=device)
    vl = torch.as_tensor(test_labels, device=device)
    return {k: vote(sims, idx, tl, vl, k, T, num_classes) for k in ks}


def prepare(args):
    """Everything checked before any work: config, data, weights, layer. Raises BadInput."""
    cfg = build_cfg(args.config)
    need_keys(cfg, KEYS, args.config)
    cfg["_path"] = args.config
    train, val = check_data(cfg, args.data_root)
    model = build_model(args, [cfg["layer"]], cfg["preprocess"])
    return cfg, train, val, model


def main(argv=None):
    args = parser(__doc__.split("\n")[0]).parse_args(argv)
    cfg, train, val, model = prepare(args)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    wkey = features.weights_key(args.weights, args.arch, args.seed)
    cache = args.features_dir or os.path.join(args.work_dir, "features")
    layer, common = cfg["layer"], dict(pre=cfg["preprocess"], cache_dir=cache, batch_size=cfg["batch_size"],
                                       workers=cfg["workers"])
    bank = features.get(model, wkey, train[0], train[1], "train", [layer], **common)[layer]
    query = features.get(model, wkey, val[0], val[1], "val", [layer], **common)[layer]
    sims, idx = neighbours(bank.feats, query.feats, max(cfg["k"]), cfg["bank_chunk"], cfg["query_chunk"], device)
    tl, vl = torch.as_tensor(bank.labels, device=device), torch.as_tensor(query.labels, device=device)
    res = {k: vote(sims, idx, tl, vl, k, cfg["temperature"], len(train[2])) for k in cfg["k"]}
    metrics = {"knn": {f"top{n}_k{k}": v for k, (t1, t5) in res.items() for n, v in ((1, t1), (5, t5))}}
    for k, (t1, t5) in res.items():
        print(f"{k}-NN: top-1 {t1:.2f}, top-5 {t5:.2f}")
    # the top-1 class of every image at every k, for paired comparisons (transfer/perimage.py)
    preds = {f"knn/top1_k{k}": ranked(sims, idx, tl, k, cfg["temperature"], len(train[2]))[1][:, 0].cpu().numpy()
             for k in cfg["k"]}
    val_dir = os.path.join(args.data_root, cfg["val_dir"])
    perimage.write(args.work_dir, [os.path.relpath(p, val_dir) for p in val[0]], query.labels, preds)
    write_results(args.work_dir, TASK, metrics, facts(cfg, args, model, train, val, device))
    return 0


def facts(cfg, args, model, train, val, device):
    from transfer.fingerprint import versions

    return dict(layer=cfg["layer"], preprocess=cfg["preprocess"], k=list(cfg["k"]), temperature=cfg["temperature"],
                normalise="l2", vote="sum exp(sim/T) one-hot", num_classes=len(train[2]), train_images=len(train[0]),
                val_images=len(val[0]), arch="vit" if backbone.is_vit(model) else "resnet50",
                weights=args.weights or "random init", seed=args.seed, device=device, versions=versions(),
                **({"pos_embed": model.pos_embed_note} if hasattr(model, "pos_embed_note") else {}))


if __name__ == "__main__":
    sys.exit(entry(main))
