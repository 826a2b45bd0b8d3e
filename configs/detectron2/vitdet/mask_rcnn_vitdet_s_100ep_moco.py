"""ViTDet Mask R-CNN, ViT-S (MoCo v3: 384 wide, 12 blocks, 12 heads), COCO, 100 epochs.

ViTDet publishes B/L/H; this is the ViT-B recipe with the ViT-S encoder. Heads: MoCo v3's ViT-S has
12 heads (DeiT's has 6); the count changes no tensor shape, so a wrong one loads silently.
"""
from .mask_rcnn_vitdet_b_100ep_moco import dataloader, lr_multiplier, model, moco_load_check, optimizer, train

model.backbone.net.embed_dim = 384
model.backbone.net.num_heads = 12
