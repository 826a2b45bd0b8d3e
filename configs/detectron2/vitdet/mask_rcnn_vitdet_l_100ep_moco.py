"""ViTDet Mask R-CNN, ViT-L, COCO, 100 epochs: projects/ViTDet/configs/COCO/mask_rcnn_vitdet_l_100ep.py."""
from functools import partial

from detectron2.modeling.backbone.vit import get_vit_lr_decay_rate

from .mask_rcnn_vitdet_b_100ep_moco import dataloader, lr_multiplier, model, moco_load_check, optimizer, train

model.backbone.net.embed_dim = 1024
model.backbone.net.depth = 24
model.backbone.net.num_heads = 16
model.backbone.net.drop_path_rate = 0.4
# global attention in blocks 5, 11, 17, 23
model.backbone.net.window_block_indexes = [i for i in range(24) if i % 6 != 5]
optimizer.params.lr_factor_func = partial(get_vit_lr_decay_rate, lr_decay_rate=0.8, num_layers=24)
