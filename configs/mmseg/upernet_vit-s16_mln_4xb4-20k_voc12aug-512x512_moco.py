# VOC12aug UperNet, MoCo v3 ViT-S/16 (12 heads): the ViT-B recipe with the smaller encoder.
_base_ = ['./upernet_vit-b16_mln_4xb4-20k_voc12aug-512x512_moco.py']
model = dict(
    backbone=dict(embed_dims=384, num_heads=12),
    neck=dict(in_channels=[384] * 4, out_channels=384),
    decode_head=dict(in_channels=[384] * 4),
    auxiliary_head=dict(in_channels=384))
