"""ViTDet ViT-L on fewer GPUs: 16 images per update instead of the paper's 64 (64 GPUs x 1 image;
detectron2's trainer has no gradient accumulation to keep 64 on fewer cards).

Decision: keep the epochs and scale the learning rate linearly with the batch (the moco#11 rule for
fewer GPUs), as the ViT-S/B low-GPU configs do: 16 images, AdamW lr 2.5e-5, 4x the iterations,
milestones and warmup. Any GPU count that divides 16 runs it; the memory a ViT-L needs per image was
not measured here (ViT-B: about 80 GB for 1 x 16 with AMP).
"""
from .mask_rcnn_vitdet_l_100ep_moco import dataloader, lr_multiplier, model, moco_load_check, optimizer, train

SCALE = 64 // 16
dataloader.train.total_batch_size = 16
optimizer.lr = 1e-4 / SCALE
train.max_iter = 184375 * SCALE
lr_multiplier.scheduler.milestones = [163889 * SCALE, 177546 * SCALE]
lr_multiplier.scheduler.num_updates = train.max_iter
lr_multiplier.warmup_length = 250 * SCALE / train.max_iter
