"""Convert a MoCo (or torchvision / mmselfsup / timm) checkpoint to an mmpretrain backbone.

    python converters/to_mmpretrain.py ckpt.pth [-o out.pth] [--source auto] [--num-heads H] [--force]

ResNet-50 -> mmpretrain's `ResNet` (torchvision names, kept as they are);
ViT -> mmpretrain's `VisionTransformer` / `MoCoV3ViT` (the inverse of converters/sources.py MMPRETRAIN_VIT).
Written as `{'state_dict': backbone tensors, 'meta': {arch, num_heads, ...}}` for the backbone's
Pretrained init_cfg; `vit_arch(sd, num_heads)` is the mmpretrain `arch` dict that holds exactly them.
"""
import re
import sys

import torch

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, __file__.rsplit("/converters/", 1)[0])

from converters.cli import run  # noqa: E402
from converters.sources import ConversionError  # noqa: E402

FORMAT = "mmpretrain"  # meta['format']: what the classification runners accept as --weights
VIT_RULES = [  # timm -> mmpretrain VisionTransformer; attn.qkv / attn.proj, cls_token, pos_embed keep their names
    (r"^patch_embed\.proj\.", "patch_embed.projection."),
    (r"^blocks\.(\d+)\.norm1\.", r"layers.\1.ln1."),
    (r"^blocks\.(\d+)\.norm2\.", r"layers.\1.ln2."),
    (r"^blocks\.(\d+)\.mlp\.fc1\.", r"layers.\1.ffn.layers.0.0."),
    (r"^blocks\.(\d+)\.mlp\.fc2\.", r"layers.\1.ffn.layers.1."),
    (r"^blocks\.(\d+)\.attn\.", r"layers.\1.attn."),
    (r"^norm\.", "ln1."),  # the final LayerNorm
]
VIT_KEEP = ("cls_token", "pos_embed")


def vit_to_mmpretrain(sd, path=""):
    out, unmatched = {}, []
    for k, v in sd.items():
        name = k
        for pattern, repl in VIT_RULES:
            name = re.sub(pattern, repl, name)
        (out.__setitem__(name, v) if name != k or k in VIT_KEEP else unmatched.append(k))
    if unmatched:
        raise ConversionError(f"{path}: {len(unmatched)} ViT tensors match no mmpretrain name (e.g. {unmatched[:3]})")
    return out


def convert(arch, sd, path=""):
    out = {k: v.detach().clone() for k, v in sd.items()} if arch == "resnet50" else vit_to_mmpretrain(sd, path)
    if not out:
        raise ConversionError(f"{path}: zero tensors converted")
    return out


def vit_arch(sd, num_heads):
    """mmpretrain's `arch` dict for converted ViT tensors: the shape from the tensors, the heads given
    (they change no shape: MoCo v3's ViT-S has 12, DeiT's 6)."""
    width = sd["patch_embed.projection.weight"].shape[0]
    depth = 1 + max(int(m.group(1)) for m in map(re.compile(r"^layers\.(\d+)\.").match, sd) if m)
    return dict(embed_dims=int(width), num_layers=depth, num_heads=int(num_heads),
                feedforward_channels=int(sd["layers.0.ffn.layers.0.0.weight"].shape[0]))


def save(sd, path, meta=None):
    with open(path, "wb") as f:  # a file object: torch.save derives an archive name from a path and refuses some
        torch.save({"state_dict": sd, "meta": {"author": "moco-transfer", "format": FORMAT, **(meta or {})}}, f)


def hint(report):
    if "vit" not in report:
        return ""
    return ("mmpretrain: the classification runners build VisionTransformer/MoCoV3ViT with arch {embed_dims, "
            f"num_layers, num_heads={report.get('num_heads') or '?'}, feedforward_channels}} from this file")


def main(argv=None):
    return run(argv, __doc__.split("\n")[0], "_mmpretrain.pth", convert, save, hint=hint)


if __name__ == "__main__":
    sys.exit(main())
