# Feature1-Feature5 on Places205, mmselfsup 0.x
# configs/benchmarks/classification/places205/resnet50_mhead_8xb32-steplr-28e_places205.py: 205 classes
# (places205/{train,val}/<class>/); Resize 256 (short side), CenterCrop 256, RandomCrop 224, flip;
# test Resize 256, CenterCrop 224; the same heads and optimiser; 28 epochs, x0.1 at 7, 14, 21.
_base_ = ['./linear-stages_r50.py']
recipe = 'mhead_places205'
data_dir = 'places205'
model = dict(head=dict(num_classes=205))
_train = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=256),
    dict(type='RandomCrop', crop_size=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=_train))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[7, 14, 21], gamma=0.1)]
train_cfg = dict(max_epochs=28, val_interval=4)
