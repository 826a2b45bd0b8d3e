# Feature1-Feature5 on the built-in iNaturalist 2018-layout set, on CPU in seconds: same model and heads,
# 96 px crops with pools that give the protocol's 12/6/4/3/2 grids at that size, 8 images a batch,
# 6 epochs (steps at the schedule's fractions 24/84, 48/84, 72/84), evaluated every 2.
_base_ = ['./linear-stages_r50_inat18.py']
model = dict(neck=dict(pools=[(4, 4, 0), (4, 4, 0), (3, 3, 0), (2, 2, 0), (2, 1, 0)]))
_train = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=96, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
_test = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=110, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=96),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False, dataset=dict(pipeline=_train))
val_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False, dataset=dict(pipeline=_test))
test_dataloader = val_dataloader
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[2, 4, 5], gamma=0.1)]
train_cfg = dict(max_epochs=6, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=3))
