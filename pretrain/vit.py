"""The MoCo v3 ViT: timm's VisionTransformer with the paper's two stability changes.

- a fixed 2D sin-cos position embedding (stored as a frozen parameter, zero for the cls slot);
- `stop_grad_conv1`: the patch projection stays at its random init and is never trained.
Initialisation as moco-v3 `vits.py` (Q, K, V treated as three matrices for xavier). ViT-S has 12
heads here, as in the paper (DeiT's ViT-S has 6): the head count changes no tensor shape, so a
converter cannot tell; keep it in mind when loading elsewhere.
"""
import math
from functools import partial

import torch
import torch.nn as nn
from timm.models.vision_transformer import VisionTransformer


def sincos_2d(h, w, dim, temperature=10000.0):
    """(h*w, dim): [sin(x w), cos(x w), sin(y w), cos(y w)], w = temperature^(-i/(dim/4))."""
    assert dim % 4 == 0, "the 2D sin-cos embedding needs a width divisible by 4"
    grid_w, grid_h = torch.meshgrid(torch.arange(w, dtype=torch.float32), torch.arange(h, dtype=torch.float32),
                                    indexing="ij")
    omega = 1.0 / temperature ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    out_w = grid_w.flatten()[:, None] * omega[None]
    out_h = grid_h.flatten()[:, None] * omega[None]
    return torch.cat([out_w.sin(), out_w.cos(), out_h.sin(), out_h.cos()], dim=1)


class VisionTransformerMoCo(VisionTransformer):
    def __init__(self, stop_grad_conv1=False, **kwargs):
        super().__init__(**kwargs)
        h, w = self.patch_embed.grid_size
        pe = torch.cat([torch.zeros(1, self.embed_dim), sincos_2d(h, w, self.embed_dim)])
        self.pos_embed = nn.Parameter(pe[None], requires_grad=False)
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear):
                if "qkv" in name:  # Q, K, V as three separate matrices
                    val = math.sqrt(6.0 / (m.weight.shape[0] // 3 + m.weight.shape[1]))
                    nn.init.uniform_(m.weight, -val, val)
                else:
                    nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.cls_token, std=1e-6)
        proj = self.patch_embed.proj
        val = math.sqrt(6.0 / (3 * proj.kernel_size[0] * proj.kernel_size[1] + self.embed_dim))
        nn.init.uniform_(proj.weight, -val, val)
        nn.init.zeros_(proj.bias)
        if stop_grad_conv1:
            proj.weight.requires_grad = False
            proj.bias.requires_grad = False


def vit(embed_dim, depth, num_heads, **kwargs):
    kwargs.setdefault("patch_size", 16)
    return VisionTransformerMoCo(embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=4,
                                 qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), **kwargs)


def vit_small(**kwargs):
    return vit(384, 12, 12, **kwargs)


def vit_base(**kwargs):
    return vit(768, 12, 12, **kwargs)


def vit_large(**kwargs):
    """ViT-L/16 (mmpretrain MoCoV3ViT arch 'large'): 24 blocks, width 1024, 16 heads, MLP 4096."""
    return vit(1024, 24, 16, **kwargs)
