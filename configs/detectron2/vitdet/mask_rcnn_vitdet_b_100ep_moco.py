"""ViTDet Mask R-CNN, ViT-B, COCO, 100 epochs: detectron2 projects/ViTDet/configs/COCO/
mask_rcnn_vitdet_b_100ep.py (and its common/coco_loader_lsj.py), for a MoCo v3 ViT-B.

The model is detectron2's own model_zoo common/models/mask_rcnn_vitdet.py (simple feature pyramid,
window attention with global blocks 2/5/8/11, relative positions, LN heads); only the pretrained
weights differ: run with `--weights vit_b.pkl` (converters/to_detectron2.py of the MoCo v3 checkpoint).
"""
from functools import partial

import detectron2.data.transforms as T
from detectron2 import model_zoo
from detectron2.config import LazyCall as L
from detectron2.modeling.backbone.vit import get_vit_lr_decay_rate
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

# Large-scale jitter at 1024 (coco_loader_lsj.py): flip, resize 0.1-2.0, crop 1024; test 1024
image_size = 1024
dataloader = model_zoo.get_config("common/data/coco.py").dataloader
dataloader.train.mapper.augmentations = [
    L(T.RandomFlip)(horizontal=True),  # flip first
    L(T.ResizeScale)(min_scale=0.1, max_scale=2.0, target_height=image_size, target_width=image_size),
    L(T.FixedSizeCrop)(crop_size=(image_size, image_size), pad=False),
]
dataloader.train.mapper.image_format = "RGB"
dataloader.train.mapper.recompute_boxes = True  # boxes from the cropped masks
dataloader.train.total_batch_size = 64
dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=image_size, max_size=image_size)]

model = model_zoo.get_config("common/models/mask_rcnn_vitdet.py").model  # ViT-B, 12 heads, drop path 0.1

train = model_zoo.get_config("common/train.py").train
train.amp.enabled = True
train.ddp.fp16_compression = True
train.init_checkpoint = ""  # the runner's --weights

# 100 epochs = 184375 iterations x 64 images / 118k images
train.max_iter = 184375
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(values=[1.0, 0.1, 0.01], milestones=[163889, 177546],
                                         num_updates=train.max_iter),
    warmup_length=250 / train.max_iter,
    warmup_factor=0.001,
)

# AdamW lr 1e-4, wd 0.1 (common/optim.py), layer-wise lr decay 0.7 over 12 blocks, no decay on pos_embed
optimizer = model_zoo.get_config("common/optim.py").AdamW
optimizer.params.lr_factor_func = partial(get_vit_lr_decay_rate, num_layers=12, lr_decay_rate=0.7)
optimizer.params.overrides = {"pos_embed": {"weight_decay": 0.0}}

# what ViTDet adds to the pretrained ViT by design (read by the runner's load check): relative
# position tables (zero-initialised) and the simple feature pyramid; pos_embed (224-grid + cls
# slot) is loaded as it is and interpolated to the input in forward
moco_load_check = dict(new=[r"^backbone\.net\.blocks\.\d+\.attn\.rel_pos_[hw]$", r"^backbone\.simfp_\d\."],
                       resized=[])
