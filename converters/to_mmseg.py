"""Convert a MoCo (or torchvision / mmselfsup / timm) checkpoint to an MMSegmentation backbone.

    python converters/to_mmseg.py ckpt.pth [-o out.pth] [--source auto] [--force]

ResNet-50 -> the 7x7-stem `ResNet` of FCN R50-D8 (torchvision names, kept as they are);
ViT -> mmseg's `VisionTransformer` (mmseg tools/model_converters/vit2mmseg.py rules).
Written as `{'state_dict': backbone tensors, 'meta': {arch, num_heads, ...}}`, for the backbone's
Pretrained init_cfg, under the name given (mmengine reads any name). The ViT report line prints
the VisionTransformer(...) arguments (patch_bias=True: timm's patch projection has a bias).
"""
import re
import sys

import torch

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, __file__.rsplit("/converters/", 1)[0])

from converters.cli import run  # noqa: E402
from converters.sources import ConversionError  # noqa: E402

VIT_RULES = [  # timm -> mmseg VisionTransformer, in order
    (r"^norm\.", "ln1."),
    (r"^patch_embed\.proj\.", "patch_embed.projection."),
    (r"^blocks\.(\d+)\.norm(\d)\.", r"layers.\1.ln\2."),
    (r"^blocks\.(\d+)\.mlp\.fc1\.", r"layers.\1.ffn.layers.0.0."),
    (r"^blocks\.(\d+)\.mlp\.fc2\.", r"layers.\1.ffn.layers.1."),
    (r"^blocks\.(\d+)\.attn\.qkv\.", r"layers.\1.attn.attn.in_proj_"),
    (r"^blocks\.(\d+)\.attn\.proj\.", r"layers.\1.attn.attn.out_proj."),
]


def vit_to_mmseg(sd):
    out = {}
    for k, v in sd.items():
        name = k
        for pattern, repl in VIT_RULES:
            name = re.sub(pattern, repl, name)
        out[name] = v
    return out


def convert(arch, sd, path=""):
    out = {k: v.detach().clone() for k, v in sd.items()} if arch == "resnet50" else vit_to_mmseg(sd)
    if not out:
        raise ConversionError(f"{path}: zero tensors converted")
    return out


def save(sd, path, meta=None):
    with open(path, "wb") as f:  # a file object: torch.save derives an archive name from a path and refuses some
        torch.save({"state_dict": sd, "meta": {"author": "moco-transfer", **(meta or {})}}, f)


def hint(report):
    if "vit" not in report:
        return ""
    v = report["vit"]
    return (f"mmseg: VisionTransformer(img_size={v['grid'] * v['patch']}, patch_size={v['patch']}, "
            f"embed_dims={v['width']}, num_layers={v['depth']}, num_heads={report['num_heads'] or '?'}, "
            "patch_bias=True, final_norm=True, norm_cfg=dict(type='LN', eps=1e-6))")


def main(argv=None):
    # any output name works: mmengine's load_checkpoint reads a local file with torch.load, whatever its name
    return run(argv, __doc__.split("\n")[0], "_mmseg.pth", convert, save, hint=hint)


if __name__ == "__main__":
    sys.exit(main())
