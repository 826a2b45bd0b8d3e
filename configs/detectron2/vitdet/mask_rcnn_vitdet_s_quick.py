"""ViTDet ViT-S on the built-in COCO-format data, on CPU in minutes: the same model and recipe,
256-pixel LSJ crops, fewer RoIs and proposals, 30 iterations of 2 images."""
from .mask_rcnn_vitdet_s_100ep_moco import dataloader, lr_multiplier, model, moco_load_check, optimizer, train

image_size = 256
dataloader.train.mapper.augmentations[1].target_height = image_size
dataloader.train.mapper.augmentations[1].target_width = image_size
dataloader.train.mapper.augmentations[2].crop_size = (image_size, image_size)
dataloader.test.mapper.augmentations[0].short_edge_length = image_size
dataloader.test.mapper.augmentations[0].max_size = image_size
dataloader.train.total_batch_size = 2
dataloader.train.num_workers = dataloader.test.num_workers = 0
model.backbone.net.img_size = image_size
model.backbone.square_pad = image_size
model.backbone.net.drop_path_rate = 0.0
model.proposal_generator.pre_nms_topk = (300, 200)
model.proposal_generator.post_nms_topk = (100, 50)
model.roi_heads.batch_size_per_image = 64
model.roi_heads.num_classes = 20  # the built-in set's classes (COCO has 80)
# a few dozen iterations leave scores near 1/21, under the 0.05 default: keep every detection so
# that AP is measured (a NaN otherwise, and no segm group at all)
model.roi_heads.box_predictor.test_score_thresh = 0.0

train.amp.enabled = False
train.max_iter = 30
train.eval_period = 0  # only after the last iteration
train.checkpointer.period = 30
train.log_period = 3  # 10 loss points
lr_multiplier.scheduler.milestones = [20, 26]
lr_multiplier.scheduler.num_updates = train.max_iter
lr_multiplier.warmup_length = 5 / train.max_iter
