"""The ViT side of reading a checkpoint: timm names, the exact timm structure, size names, heads.

    sd = to_timm_vit(sd)                       # mmpretrain/mmselfsup names -> timm names
    shape = check_vit(sd, path)                # depth, width, patch, grid; raises on anything else
    arch = vit_arch(shape)                     # 'vit_small' | 'vit_base' | 'vit_large' | ... | 'vit'
    heads, where = heads_from(obj, shape)      # from the checkpoint's own metadata, or (None, why)
    model = build_timm_vit(sd, heads)          # a timm VisionTransformer holding exactly sd

The head count changes no tensor shape (ViT-S: 12 heads in MoCo v3, 6 in DeiT), so it can only
come from what the source wrote beside the weights.
"""
import re

import torch

MMPRETRAIN_VIT = [  # mmpretrain VisionTransformer -> timm names
    (r"^patch_embed\.projection\.", "patch_embed.proj."),
    (r"^layers\.(\d+)\.ln1\.", r"blocks.\1.norm1."),
    (r"^layers\.(\d+)\.ln2\.", r"blocks.\1.norm2."),
    (r"^layers\.(\d+)\.ffn\.layers\.0\.0\.", r"blocks.\1.mlp.fc1."),
    (r"^layers\.(\d+)\.ffn\.layers\.1\.", r"blocks.\1.mlp.fc2."),
    (r"^layers\.(\d+)\.attn\.", r"blocks.\1.attn."),
    (r"^ln1\.", "norm."),
]

# (depth, width) -> name; the sizes moco-v3 vits.py and the ViT paper define
SIZES = {(12, 384): "vit_small", (12, 768): "vit_base", (24, 1024): "vit_large", (32, 1280): "vit_huge"}

# arch names sources write beside the weights -> (depth, width, heads): moco-v3 vits.py, our
# pretrain/vit.py, and mmpretrain VisionTransformer.arch_zoo (whose 'small' is 8 x 768, 8 heads)
KNOWN_ARCHS = {
    "vit_small": (12, 384, 12), "vit_base": (12, 768, 12), "vit_large": (24, 1024, 16), "vit_huge": (32, 1280, 16),
    "mocov3-s": (12, 384, 12), "mocov3-small": (12, 384, 12), "b": (12, 768, 12), "base": (12, 768, 12),
    "l": (24, 1024, 16), "large": (24, 1024, 16), "h": (32, 1280, 16), "huge": (32, 1280, 16),
    "s": (8, 768, 8), "small": (8, 768, 8), "deit-t": (12, 192, 3), "deit-tiny": (12, 192, 3),
    "deit-s": (12, 384, 6), "deit-small": (12, 384, 6), "deit-b": (12, 768, 12), "deit-base": (12, 768, 12),
}


def to_timm_vit(sd):
    out = {}
    for k, v in sd.items():
        for pattern, repl in MMPRETRAIN_VIT:
            k = re.sub(pattern, repl, k)
        out[k] = v
    return out


def is_vit(sd):
    return "patch_embed.proj.weight" in sd or any(k.startswith("patch_embed.proj.") for k in sd)


def vit_shape(sd):
    """What the tensors say about the ViT; None where a key it needs is missing."""
    proj, pos = sd.get("patch_embed.proj.weight"), sd.get("pos_embed")
    if proj is None or proj.dim() != 4 or pos is None or pos.dim() != 3:
        return None
    depth = 1 + max((int(m.group(1)) for m in map(re.compile(r"^blocks\.(\d+)\.").match, sd) if m), default=-1)
    fc1 = sd.get("blocks.0.mlp.fc1.weight")
    grid = round((pos.shape[1] - 1) ** 0.5)
    return {"depth": depth, "width": int(proj.shape[0]), "patch": int(proj.shape[-1]), "grid": grid,
            "in_chans": int(proj.shape[1]), "mlp_ratio": (fc1.shape[0] / proj.shape[0]) if fc1 is not None else 4.0}


def timm_kwargs(shape, num_heads=None):
    """Keyword arguments of timm's VisionTransformer for this shape (LayerNorm eps 1e-6, timm's default)."""
    return dict(img_size=shape["grid"] * shape["patch"], patch_size=shape["patch"], in_chans=shape["in_chans"],
                embed_dim=shape["width"], depth=shape["depth"], num_heads=num_heads or 1,
                mlp_ratio=shape["mlp_ratio"], qkv_bias=True, num_classes=0)


def check_vit(sd, path):
    """Exactly the tensors of a timm VisionTransformer of the shape the tensors say (built on the
    meta device: no memory); returns that shape."""
    from converters import ConversionError
    from timm.models.vision_transformer import VisionTransformer

    shape = vit_shape(sd)
    if shape is None or shape["depth"] < 1:
        raise ConversionError(f"{path}: not a plain ViT: needs patch_embed.proj.weight (4-d), pos_embed (3-d) "
                              f"and blocks.N.* (keys: {list(sd)[:4]}); a conv stem is not supported")
    with torch.device("meta"):
        ref = {k: v.shape for k, v in VisionTransformer(**timm_kwargs(shape), weight_init="skip").state_dict().items()}
    missing = [k for k in ref if k not in sd]
    extra = [k for k in sd if k not in ref]
    wrong = [f"{k} {tuple(sd[k].shape)} != {tuple(s)}" for k, s in ref.items() if k in sd and sd[k].shape != s]
    if missing or extra or wrong:
        raise ConversionError(f"{path}: not a complete ViT ({shape['depth']} blocks x {shape['width']}): "
                              f"{len(missing)} missing (e.g. {missing[:2]}), {len(extra)} unexpected "
                              f"(e.g. {extra[:2]}), shape mismatches {wrong[:2]}")
    return shape


def vit_arch(shape):
    """'vit_small' / 'vit_base' / 'vit_large' / 'vit_huge' by depth and width; 'vit' for other sizes."""
    return SIZES.get((shape["depth"], shape["width"]), "vit")


def arch_names(obj):
    """(name, where) for every architecture name the checkpoint object carries."""
    if not isinstance(obj, dict):
        return []
    found = []
    cfg = obj.get("config")
    if isinstance(cfg, dict) and isinstance(cfg.get("num_heads"), int):
        found.append((cfg["num_heads"], "config['num_heads']"))
    if isinstance(cfg, dict) and isinstance(cfg.get("arch"), str):
        found.append((cfg["arch"], "config['arch']"))
    if isinstance(obj.get("arch"), str):
        found.append((obj["arch"], "'arch'"))
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    for key in ("cfg", "config"):  # mmengine / mmcv write the config text here
        text = meta.get(key) if isinstance(meta.get(key), str) else ""
        found += [(int(n), f"meta['{key}'] num_heads") for n in re.findall(r"num_heads\s*=\s*(\d+)", text)[:1]]
        found += [(a, f"meta['{key}'] arch") for a in re.findall(r"\barch\s*=\s*['\"]([\w-]+)['\"]", text)]
    return found


def heads_from(obj, shape):
    """(num_heads, "where it came from"), or (None, why not): only names whose size matches the tensors."""
    for name, where in arch_names(obj):
        if isinstance(name, int) and name > 0 and shape["width"] % name == 0:
            return name, where
        depth, width, heads = KNOWN_ARCHS.get(name, (None, None, None))
        if (depth, width) == (shape["depth"], shape["width"]):
            return heads, f"{where} {name!r}"
    return None, "not recorded in the checkpoint: set it to the pretraining's (ViT-S: 12 in MoCo v3, 6 in DeiT)"


def build_timm_vit(sd, num_heads):
    """A timm VisionTransformer (no classifier) holding exactly these timm-name tensors."""
    from timm.models.vision_transformer import VisionTransformer

    model = VisionTransformer(**timm_kwargs(vit_shape(sd), num_heads))
    model.load_state_dict(sd, strict=True)
    return model.eval()


# The input every ViT protocol here builds its model for: ViTDet's pretrain_img_size, mmpretrain's
# img_size (linear probe and fine-tuning), the kNN crop; the grid of the published MoCo v3 checkpoints.
TRANSFER_IMG_SIZE = 224


def sincos_pos_embed(grid, width):
    """MoCo v3's fixed 2-D sin-cos position embedding with its zero cls slot, (1, 1 + grid^2, width):
    moco-v3 vits.py build_2d_sincos_position_embedding, as mmpretrain carries it."""
    from mmpretrain.models.utils import build_2d_sincos_position_embedding

    return build_2d_sincos_position_embedding(grid, width, cls_token=True)


def resize_pos_embed(sd, img_size=TRANSFER_IMG_SIZE):
    """(sd, note): pos_embed on the grid of an img_size input; note says what was done, None when
    the grid already fits. MoCo v3's fixed sin-cos is written anew for that grid (exactly what a
    model pretrained at img_size holds); a learned one is interpolated as timm does
    (timm.layers.resample_abs_pos_embed: bicubic, the cls slot kept)."""
    shape = vit_shape(sd)
    grid = img_size // shape["patch"]
    pos = sd["pos_embed"]
    if shape["grid"] == grid:
        return sd, None
    was = f"{shape['grid']}x{shape['grid']}"
    if shape["width"] % 4 == 0 and torch.allclose(pos.float(), sincos_pos_embed(shape["grid"], shape["width"]),
                                                  atol=1e-4):
        new, how = sincos_pos_embed(grid, shape["width"]), "MoCo v3's fixed 2-D sin-cos, written for"
    else:
        from timm.layers import resample_abs_pos_embed

        new, how = resample_abs_pos_embed(pos.float(), [grid, grid], num_prefix_tokens=1), "interpolated (bicubic) to"
    note = (f"pos_embed: pretrained on a {was} grid ({shape['grid'] * shape['patch']} px); {how} the {grid}x{grid} "
            f"grid of {img_size} px, the input the transfer protocols build the ViT for")
    return dict(sd, pos_embed=new.to(pos.dtype)), note
