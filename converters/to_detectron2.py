"""Convert a MoCo (or torchvision / mmselfsup / timm) checkpoint to Detectron2 weights.

    python converters/to_detectron2.py ckpt.pth [-o out.pkl] [--source auto] [--force]

ResNet-50 -> the `.pkl` that serves both R50-C4 and R50-FPN (moco's
detection/convert-pretrain-to-detectron2.py, with the head dropped); ViT -> the ViTDet
backbone layout (`backbone.net.*`). Every key is renamed by a rule, or the run stops. The
output must be named *.pkl (detectron2 picks its reader by the name); bfloat16 tensors are stored
as float32 (numpy has none; exact); 'meta' records arch and num_heads, and the report line prints
the ViT(...) arguments ViTDet needs.
"""
import pickle
import re
import sys

import torch

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, __file__.rsplit("/converters/", 1)[0])

from converters.cli import run  # noqa: E402
from converters.sources import ConversionError  # noqa: E402

RESNET_RULES = [  # applied in order to torchvision names
    (r"^layer(\d)", lambda m: f"res{int(m.group(1)) + 1}"),
    (r"bn(\d)", r"conv\1.norm"),
    (r"downsample\.0", "shortcut"),
    (r"downsample\.1", "shortcut.norm"),
]


def to_numpy(v):
    # numpy has no bfloat16; float32 holds every bf16 value exactly
    v = v.detach().cpu()
    return (v.float() if v.dtype == torch.bfloat16 else v).numpy()


def resnet_to_detectron2(sd):
    out = {}
    for k, v in sd.items():
        name = k if k.startswith("layer") else "stem." + k
        for pattern, repl in RESNET_RULES:
            name = re.sub(pattern, repl, name)
        out[name] = to_numpy(v)
    return out


def vit_to_vitdet(sd):
    """timm ViT -> detectron2 ViTDet (`backbone.net.*`): no cls token, no final norm; pos_embed
    keeps its cls slot (ViT(pretrain_use_cls_token=True) drops it and resizes)."""
    out = {}
    for k, v in sd.items():
        if k == "cls_token" or k.startswith("norm."):
            continue
        out["backbone.net." + k] = to_numpy(v)
    return out


def convert(arch, sd, path=""):
    out = resnet_to_detectron2(sd) if arch == "resnet50" else vit_to_vitdet(sd)
    if not out:
        raise ConversionError(f"{path}: zero tensors converted")
    return out


def save(model, path, meta=None):
    # __author__ stops detectron2 from treating the file as a Caffe2 pickle (which renames '_');
    # the checkpointer ignores other keys, so 'meta' (arch, num_heads) travels along for people
    with open(path, "wb") as f:
        pickle.dump({"model": model, "__author__": "moco-transfer", "matching_heuristics": True,
                     "meta": dict(meta or {})}, f)


def hint(report):
    notes = []
    if "bfloat16" in report["dtypes"]:
        notes.append("bfloat16 tensors stored as float32 (numpy has no bfloat16; exact)")
    if "vit" in report:
        v = report["vit"]
        notes.append(f"ViTDet: ViT(embed_dim={v['width']}, depth={v['depth']}, num_heads={report['num_heads'] or '?'}, "
                     f"patch_size={v['patch']}, pretrain_img_size={v['grid'] * v['patch']}, "
                     "pretrain_use_cls_token=True)")
    return "\n  ".join(notes)


def main(argv=None):
    return run(argv, __doc__.split("\n")[0], ".pkl", convert, save, required_suffix=".pkl", hint=hint)


if __name__ == "__main__":
    sys.exit(main())
