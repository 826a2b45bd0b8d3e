# The mocov3_vit linear probe on the built-in data, on CPU in seconds: same model and optimiser, 64 px crops,
# 8 images a batch, 6 epochs, evaluated every 2 epochs (points for the curves).
_base_ = ['./linear_mocov3_vit.py']
_train = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
_test = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=73, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=64),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False, dataset=dict(pipeline=_train))
val_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False, dataset=dict(pipeline=_test))
test_dataloader = val_dataloader
param_scheduler = [dict(type='CosineAnnealingLR', T_max=6, by_epoch=True, begin=0, end=6)]
train_cfg = dict(max_epochs=6, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=3))
