# ImageNet as class folders, DeiT's fine-tuning pipeline as mmpretrain writes it
# (configs/_base_/datasets/imagenet_bs64_swin_224.py): RandomResizedCrop 224 bicubic + flip,
# RandAugment rand-m9-mstd0.5-inc1 (timm 'increasing' policies, 2 ops), RandomErasing 0.25 (per-pixel
# random fill); val Resize 256 bicubic, CenterCrop 224. The runner sets data_root and num_classes.
data_dir = 'imagenet'
data_preprocessor = dict(num_classes=1000, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         to_rgb=True)
_bgr_mean = [103.53, 116.28, 123.675]
_bgr_std = [57.375, 57.12, 58.395]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
         magnitude_std=0.5, hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02, max_area_ratio=1 / 3,
         fill_color=_bgr_mean, fill_std=_bgr_std),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64, num_workers=8, persistent_workers=True,
    dataset=dict(type='CustomDataset', data_root='data/imagenet', data_prefix='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=64, num_workers=8, persistent_workers=True,
    dataset=dict(type='CustomDataset', data_root='data/imagenet', data_prefix='val', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
val_evaluator = dict(type='TopkAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
