# The mocov2_r50 linear probe on the built-in data, on CPU in seconds: same model and optimiser, 64 px crops,
# 8 images a batch, 6 epochs, evaluated every 2 epochs (points for the curves). The lr follows the batch by the
# linear scaling rule (Goyal et al. 2017, arXiv:1706.02677): moco main_lincls.py's 30 is for 256 images per
# update, so 30 x 8 / 256 here; lr 30 at 8 images made the loss climb to 1e5. The fingerprint lists both as
# deviations from the recipe, and `lr_scaling` says why.
_base_ = ['./linear_mocov2_r50.py']
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
lr_scaling = 'linear: 30 x 8 / 256 (the recipe lr is for 256 images per update)'
optim_wrapper = dict(optimizer=dict(lr=30. * 8 / 256))
train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False, dataset=dict(pipeline=_train))
val_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False, dataset=dict(pipeline=_test))
test_dataloader = val_dataloader
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[4, 5], gamma=0.1)]
train_cfg = dict(max_epochs=6, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=3))
