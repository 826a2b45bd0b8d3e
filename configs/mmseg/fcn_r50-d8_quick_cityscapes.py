# The Cityscapes FCN protocol on the built-in data, on CPU in about a minute: same model, 96 crops.
_base_ = ['./fcn_r50-d8_4xb2-40k_cityscapes-769x769_moco.py']
crop_size = (96, 96)
model = dict(data_preprocessor=dict(size=crop_size), test_cfg=dict(mode='slide', crop_size=crop_size, stride=(64, 64)))
_train = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(256, 128), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
_test = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=_train))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=_test))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=40, val_interval=40)
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=40, by_epoch=False)]
default_hooks = dict(logger=dict(interval=4), checkpoint=dict(interval=20))  # a loss point every 4 iterations
