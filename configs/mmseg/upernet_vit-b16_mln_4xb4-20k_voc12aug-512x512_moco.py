# VOC12aug UperNet, MoCo v3 ViT-B/16 (no published reference): the FCN VOC12aug protocol's data and
# length (4 GPUs x 4 images, 20k iterations, 512 crops, 21 classes) with the ADE20K UperNet model and
# optimiser (AdamW 1e-4, wd 0.05, layer decay 0.65, 1500 warmup iterations, poly 1.0).
_base_ = ['./_base_/upernet_vit_mln_moco.py', './_base_/pascal_voc12_aug.py',
          './_base_/upernet_schedule_160k_runtime.py']
moco_data_dir = 'VOC2012'
model = dict(decode_head=dict(num_classes=21), auxiliary_head=dict(num_classes=21))
train_dataloader = dict(batch_size=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=20000, by_epoch=False),
]
train_cfg = dict(max_iters=20000, val_interval=2000)
default_hooks = dict(checkpoint=dict(interval=2000))
