# ADE20K UperNet, MoCo v3 ViT-L/16 (1024 wide, 24 blocks, 16 heads): the ViT-B recipe with the larger
# encoder, tapped after blocks 7/11/15/23 as BEiT's ViT-L UperNet config does (microsoft/unilm
# beit/semantic_segmentation/configs/beit/upernet/upernet_beit_large_24_512_slide_160k_ade20k.py);
# the heads keep their widths.
# Not published for ViT-L: the MAE paper (A.4) says only that the lr was searched per entry, and
# neither mmseg (configs/mae: ViT-B only) nor facebookresearch/mae (no segmentation code) gives its
# ViT-L layer decay, lr or drop path. Decision: layer decay 0.75, MAE's own ViT-B -> ViT-L step
# (FINETUNE.md: 0.65 -> 0.75; the ViT-B 0.65 here is that same value), since 0.65 over 24 blocks
# would leave the first block at 0.65 ** 24 = 3e-5 of the lr; lr 1e-4 and drop path 0.1 are kept
# from ViT-B (BEiT's ViT-L config: lr 2e-5, layer decay 0.95, drop path 0.2, for BEiT weights).
_base_ = ['./upernet_vit-b16_mln_8xb2-160k_ade20k-512x512_moco.py']
embed_dims, num_layers, layer_decay = 1024, 24, 0.75
model = dict(
    backbone=dict(embed_dims=embed_dims, num_layers=num_layers, num_heads=16, out_indices=(7, 11, 15, 23)),
    neck=dict(in_channels=[embed_dims] * 4, out_channels=embed_dims),
    decode_head=dict(in_channels=[embed_dims] * 4),
    auxiliary_head=dict(in_channels=embed_dims))


def _layer_decay(n, decay):
    # the base's rule (_base_/upernet_vit_mln_moco.py) for 24 blocks: block i at decay ** (n - i), the
    # embeddings at decay ** (n + 1), no weight decay on 1-D tensors
    keys = {f'backbone.{k}': dict(lr_mult=decay ** (n + 1), decay_mult=0.)
            for k in ('cls_token', 'pos_embed', 'patch_embed.projection.bias')}
    keys['backbone.patch_embed.'] = dict(lr_mult=decay ** (n + 1))
    for i in range(n):
        keys[f'backbone.layers.{i}.'] = dict(lr_mult=decay ** (n - i))
        for p in ('ln1.', 'ln2.', 'attn.attn.in_proj_bias', 'attn.attn.out_proj.bias', 'ffn.layers.0.0.bias',
                  'ffn.layers.1.bias'):
            keys[f'backbone.layers.{i}.{p}'] = dict(lr_mult=decay ** (n - i), decay_mult=0.)
    return keys


optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(_delete_=True, **_layer_decay(num_layers, layer_decay))))
