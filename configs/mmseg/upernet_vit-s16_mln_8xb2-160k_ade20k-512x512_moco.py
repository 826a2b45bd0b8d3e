# ADE20K UperNet, MoCo v3 ViT-S/16 (384 wide, 12 heads: MoCo v3's, DeiT's ViT-S has 6): the ViT-B
# recipe with the smaller encoder; the heads keep their widths.
_base_ = ['./upernet_vit-b16_mln_8xb2-160k_ade20k-512x512_moco.py']
model = dict(
    backbone=dict(embed_dims=384, num_heads=12),
    neck=dict(in_channels=[384] * 4, out_channels=384),
    decode_head=dict(in_channels=[384] * 4),
    auxiliary_head=dict(in_channels=384))
