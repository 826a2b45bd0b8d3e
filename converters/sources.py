"""Read any common MoCo checkpoint and return its backbone in torchvision / timm names.

    arch, state_dict, report = read_backbone(path, source="auto")

Layouts (the key names of each repository's checkpoints): ours and official MoCo v1/v2 (`module.encoder_q.*`), official
MoCo v3 ResNet and ViT (`module.base_encoder.*`), mmselfsup/mmpretrain full models and extracted
backbones (`backbone.*` or bare), torchvision ResNet-50 and timm ViT state dicts (any ViT size: the
report names it, vit_small / vit_base / vit_large, and the head count where the source records
it). Wrapper prefixes (torch.compile's `_orig_mod.`, a bare DataParallel `module.`) are removed by
rule and reported. Every key is either kept, or dropped by a named rule; anything else, a file
that is not a checkpoint, or NaN/Inf weights, is an error naming the file, never a silent skip.
"""
import os
import pickle
import re

import torch

from converters.safe_pickle import detectron2_kind, read_numpy_pickle
from converters import ConversionError  # noqa: F401  (read from here by the CLIs)
from converters.vit_layout import check_vit, heads_from, is_vit, to_timm_vit, vit_arch, vit_shape


# source name: (prefix of the encoder we keep, prefixes dropped on purpose)
SOURCES = {
    "moco_v2": ("module.encoder_q.", ("module.encoder_k.", "module.queue", "module.queue_ptr")),
    "moco_v3": ("module.base_encoder.", ("module.momentum_encoder.", "module.predictor.")),
    "mmselfsup": ("backbone.", ("neck.", "head.", "momentum_encoder.", "target_generator.",
                                "data_preprocessor.", "predictor.", "projector.")),
    "torchvision": ("", ()),
    "timm": ("", ()),
}
HEADS = ("fc.", "head.", "heads.", "head_dist.", "fc_norm.")  # classifier/projector of the encoder


def load_checkpoint(path, trust_pickle=False):
    """torch.load with weights_only=True; every failure becomes a ConversionError naming `path`."""
    check_readable(path)
    kind = detectron2_kind(read_numpy_pickle(path))
    if kind:
        raise ConversionError(f"{path}: this is already {kind} weights (converted: numpy arrays under "
                              "'model'), not a pretraining checkpoint; give the pretraining checkpoint instead")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Weights only load failed" in str(e):
            raise ConversionError(f"{path}: this pickle needs code execution to load; if you trust "
                                  "its origin, pass --trust-pickle") from None
        raise ConversionError(f"{path}: not a PyTorch checkpoint ({e})") from None
    except Exception as e:  # torch/pickle raise many types for bytes that are not a checkpoint
        kind = "truncated or corrupted" if starts_as_zip(path) or "EOF" in repr(e) else "not a PyTorch checkpoint"
        raise ConversionError(f"{path}: {kind} ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None


def starts_as_zip(path):
    """A zip's first bytes survive truncation, which loses its central directory (at the end)."""
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def check_readable(path):
    if not os.path.lexists(path):
        raise ConversionError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ConversionError(f"{path}: is a directory, not a checkpoint file; give the checkpoint file inside it")
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: not a regular file (a broken link, a pipe or a device); give a checkpoint file")
    if not os.access(path, os.R_OK):
        raise ConversionError(f"{path}: cannot be read (permission denied)")
    if os.path.getsize(path) == 0:
        raise ConversionError(f"{path}: empty file (0 bytes): the copy or download did not finish")


def tensors_of(obj, path):
    """The state dict inside a checkpoint object: 'state_dict', 'model', or the object itself."""
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise ConversionError(f"{path}: no state dict found (expected a dict of tensors)")
    sd = {k: v for k, v in obj.items() if torch.is_tensor(v)}
    if not sd:
        raise ConversionError(f"{path}: the checkpoint holds no tensors")
    return sd


def normalise_keys(sd, path):
    """Wrappers that only add a prefix, removed by explicit rule and reported: torch.compile's
    `_orig_mod.` (a whole dotted component, wherever it sits) and a bare DataParallel/DDP dict
    (every key under `module.`, but none under a MoCo encoder we know)."""
    notes = []
    n = sum(1 for k in sd if re.search(r"(^|\.)_orig_mod\.", k))
    if n:
        sd = rename(sd, lambda k: re.sub(r"(^|\.)_orig_mod\.", r"\1", k), path)
        notes.append(f"removed torch.compile's '_orig_mod.' from {n} keys")
    moco = tuple(p for p, _ in SOURCES.values() if p.startswith("module."))
    if all(k.startswith("module.") for k in sd) and not any(k.startswith(moco) for k in sd):
        sd = rename(sd, lambda k: k[len("module."):], path)
        notes.append(f"removed DataParallel's leading 'module.' from all {len(sd)} keys")
    return sd, notes


def rename(sd, fn, path):
    out = {fn(k): v for k, v in sd.items()}
    if len(out) != len(sd):
        raise ConversionError(f"{path}: removing a wrapper prefix makes two keys the same; the file mixes "
                              "wrapped and unwrapped copies of the model")
    return out


def detect_source(sd, obj=None):
    keys = list(sd)
    if isinstance(obj, dict) and "mm" in str(obj.get("author", "")):
        return "mmselfsup"  # an extracted backbone: torchvision names, mmselfsup's wrapper
    if any(k.startswith("module.encoder_q.") for k in keys):
        return "moco_v2"
    if any(k.startswith("module.base_encoder.") for k in keys):
        return "moco_v3"
    if any(k.startswith("backbone.") for k in keys):
        return "mmselfsup"
    if any(k.startswith(("blocks.", "patch_embed.proj")) for k in keys):
        return "timm"
    if "conv1.weight" in sd and any(k.startswith("layer1.") for k in keys):
        return "torchvision"
    if any(k.startswith(("layers.", "patch_embed.projection")) for k in keys):
        return "mmselfsup"  # an extracted mmpretrain ViT backbone, keys without 'backbone.'
    return None


def split_encoder(sd, source, path):
    """Keep the encoder's keys (prefix removed), drop the named extras; returns (encoder, dropped)."""
    keep, drops = SOURCES[source]
    if source == "mmselfsup" and not any(k.startswith("backbone.") for k in sd):
        keep = ""  # extracted backbone
    encoder, dropped, unmatched = {}, [], []
    for k, v in sd.items():
        if keep and k.startswith(keep):
            name = k[len(keep):]
            (dropped.append(k) if name.startswith(HEADS) else encoder.__setitem__(name, v))
        elif k.startswith(drops):
            dropped.append(k)
        elif not keep:
            (dropped.append(k) if k.startswith(HEADS) else encoder.__setitem__(k, v))
        else:
            unmatched.append(k)
    if unmatched:
        raise ConversionError(f"{path}: {len(unmatched)} keys match no rule for a {source} checkpoint "
                              f"(e.g. {unmatched[:3]})")
    if not encoder:
        raise ConversionError(f"{path}: no encoder found under '{keep}' ({source}); nothing to convert")
    return encoder, dropped


def arch_of(encoder):
    """'resnet50', a ViT size name ('vit_small', 'vit_base', 'vit_large', 'vit_huge', 'vit' for
    other sizes), or None."""
    if is_vit(encoder):
        shape = vit_shape(encoder)
        return vit_arch(shape) if shape else "vit"
    if "conv1.weight" in encoder and "layer4.0.conv1.weight" in encoder:
        return "resnet50"
    return None


def check_resnet50(sd, path):
    """Every ResNet-50 backbone tensor present with its shape; nothing else."""
    import torchvision

    with torch.device("meta"):  # shapes only: no memory, no init time
        ref = {k: v.shape for k, v in torchvision.models.resnet50().state_dict().items() if not k.startswith("fc.")}
    missing = [k for k in ref if k not in sd and not k.endswith("num_batches_tracked")]
    extra = [k for k in sd if k not in ref]
    wrong = [f"{k} {tuple(sd[k].shape)} != {tuple(s)}" for k, s in ref.items() if k in sd and sd[k].shape != s]
    if missing or extra or wrong:
        raise ConversionError(f"{path}: not a ResNet-50 backbone: {len(missing)} missing (e.g. {missing[:2]}), "
                              f"{len(extra)} unexpected (e.g. {extra[:2]}), shape mismatches {wrong[:2]}")


def check_finite(sd, path):
    """NaN/Inf weights load without a word downstream and surface later as 'diverged'."""
    # a NaN or Inf anywhere makes the sum non-finite: one cheap pass; the exact count then rules
    # out a sum that merely overflowed
    maybe = [k for k, v in sd.items() if v.is_floating_point() and not torch.isfinite(v.sum(dtype=torch.float32))]
    counts = {k: int((~torch.isfinite(sd[k])).sum()) for k in maybe}
    bad = [(k, n, sd[k].numel()) for k, n in counts.items() if n]
    if bad:
        k, n, total = bad[0]
        raise ConversionError(f"{path}: {len(bad)} tensors hold NaN or Inf values (first: {k}, {n} of {total} "
                              "values): the pretraining diverged or the file is damaged; convert an earlier checkpoint")


def check_not_ours(obj, path):
    meta = obj.get("meta") if isinstance(obj, dict) else None
    if isinstance(meta, dict) and meta.get("author") == "moco-transfer":
        mmpretrain = meta.get("format") == "mmpretrain"
        name, tool = ("mmpretrain", "to_mmpretrain") if mmpretrain else ("MMSegmentation", "to_mmseg")
        raise ConversionError(f"{path}: this is already {name} weights (written by converters/{tool}.py); "
                              "give the pretraining checkpoint instead")


def describe(arch, encoder, obj):
    """The architecture facts of the report: ViT size and head count (with where it came from)."""
    if arch == "resnet50":
        return {}
    shape = vit_shape(encoder)
    heads, where = heads_from(obj, shape)
    return {"vit": shape, "num_heads": heads, "num_heads_from": where}


def read_backbone(path, source="auto", trust_pickle=False):
    """Returns (arch, backbone state dict in torchvision/timm names, report dict)."""
    obj = load_checkpoint(path, trust_pickle)
    check_not_ours(obj, path)
    sd, notes = normalise_keys(tensors_of(obj, path), path)
    detected = detect_source(sd, obj) if source == "auto" else source
    if detected not in SOURCES:
        raise ConversionError(f"{path}: unrecognised checkpoint layout (first keys: {list(sd)[:4]}); "
                              f"pass --source one of {sorted(SOURCES)}")
    encoder, dropped = split_encoder(sd, detected, path)
    if any(k.startswith(("layers.", "patch_embed.projection")) for k in encoder):
        encoder = to_timm_vit(encoder)
    arch = arch_of(encoder)
    if arch is None:
        raise ConversionError(f"{path}: the {detected} encoder is neither a ResNet-50 nor a ViT "
                              f"(keys: {list(encoder)[:4]})")
    if arch == "resnet50":
        check_resnet50(encoder, path)
    else:
        check_vit(encoder, path)
    check_finite(encoder, path)
    report = {"source": detected, "auto_detected": source == "auto", "arch": arch, "tensors_in": len(sd),
              "dropped": len(dropped), "dropped_prefixes": sorted({prefix_of(d) for d in dropped}), "notes": notes,
              "dtypes": sorted({str(v.dtype).replace("torch.", "") for v in encoder.values()}),
              **describe(arch, encoder, obj)}
    return arch, encoder, report


def prefix_of(key):
    """'momentum_encoder', 'queue', 'encoder_q.fc', 'neck': what a dropped key belonged to."""
    parts = key.split(".")[1:] if key.startswith("module.") else key.split(".")
    return ".".join(parts[:2]) if parts[0] in ("encoder_q", "base_encoder", "backbone") and len(parts) > 2 else parts[0]
