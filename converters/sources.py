"""Read any common MoCo checkpoint and return its backbone in torchvision / timm names.

    arch, state_dict, report = read_backbone(path, source="auto")

Layouts (PROTOCOLS.md section 1): ours and official MoCo v1/v2 (`module.encoder_q.*`), official
MoCo v3 ResNet and ViT (`module.base_encoder.*`), mmselfsup/mmpretrain full models and extracted
backbones (`backbone.*` or bare), torchvision ResNet-50 and timm ViT state dicts. Every key is
either kept, or dropped by a named rule; anything else is an error, never a silent skip.
"""
import os
import pickle
import re
import zipfile

import torch


class ConversionError(ValueError):
    """A checkpoint that cannot be converted; str(e) names the file and the reason."""


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
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Weights only load failed" in str(e):
            raise ConversionError(f"{path}: this pickle needs code execution to load; if you trust "
                                  "its origin, pass --trust-pickle") from None
        raise ConversionError(f"{path}: not a PyTorch checkpoint ({e})") from None
    except Exception as e:  # torch/pickle raise many types for bytes that are not a checkpoint
        kind = "truncated or corrupted" if zipfile.is_zipfile(path) or "EOF" in repr(e) else "not a PyTorch checkpoint"
        raise ConversionError(f"{path}: {kind} ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None


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


MMPRETRAIN_VIT = [  # mmpretrain VisionTransformer -> timm names
    (r"^patch_embed\.projection\.", "patch_embed.proj."),
    (r"^layers\.(\d+)\.ln1\.", r"blocks.\1.norm1."),
    (r"^layers\.(\d+)\.ln2\.", r"blocks.\1.norm2."),
    (r"^layers\.(\d+)\.ffn\.layers\.0\.0\.", r"blocks.\1.mlp.fc1."),
    (r"^layers\.(\d+)\.ffn\.layers\.1\.", r"blocks.\1.mlp.fc2."),
    (r"^layers\.(\d+)\.attn\.", r"blocks.\1.attn."),
    (r"^ln1\.", "norm."),
]


def to_timm_vit(sd):
    out = {}
    for k, v in sd.items():
        for pattern, repl in MMPRETRAIN_VIT:
            k = re.sub(pattern, repl, k)
        out[k] = v
    return out


def arch_of(encoder):
    if "patch_embed.proj.weight" in encoder or "patch_embed.projection.weight" in encoder:
        return "vit"
    if "conv1.weight" in encoder and "layer4.0.conv1.weight" in encoder:
        return "resnet50"
    return None


def check_resnet50(sd, path):
    """Every ResNet-50 backbone tensor present with its shape; nothing else."""
    import torchvision

    ref = {k: v.shape for k, v in torchvision.models.resnet50().state_dict().items() if not k.startswith("fc.")}
    missing = [k for k in ref if k not in sd and not k.endswith("num_batches_tracked")]
    extra = [k for k in sd if k not in ref]
    wrong = [f"{k} {tuple(sd[k].shape)} != {tuple(s)}" for k, s in ref.items() if k in sd and sd[k].shape != s]
    if missing or extra or wrong:
        raise ConversionError(f"{path}: not a ResNet-50 backbone: {len(missing)} missing (e.g. {missing[:2]}), "
                              f"{len(extra)} unexpected (e.g. {extra[:2]}), shape mismatches {wrong[:2]}")


def read_backbone(path, source="auto", trust_pickle=False):
    """Returns (arch, backbone state dict in torchvision/timm names, report dict)."""
    obj = load_checkpoint(path, trust_pickle)
    sd = tensors_of(obj, path)
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
    report = {"source": detected, "auto_detected": source == "auto", "arch": arch,
              "tensors_in": len(sd), "dropped": len(dropped), "dropped_prefixes": sorted({d.split(".")[0 if not d.startswith("module.") else 1] for d in dropped})}
    return arch, encoder, report
