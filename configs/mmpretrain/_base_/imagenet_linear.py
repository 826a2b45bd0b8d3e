# ImageNet as class folders (imagenet/{train,val}/<class>/*.jpg), the linear-probe pipeline of moco
# main_lincls.py: RandomResizedCrop 224 + flip; val Resize 256 (short side), CenterCrop 224; PIL bilinear.
# The runner sets data_root and num_classes from --data-root.
data_dir = 'imagenet'
data_preprocessor = dict(num_classes=1000, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32, num_workers=8, persistent_workers=True,
    dataset=dict(type='CustomDataset', data_root='data/imagenet', data_prefix='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=64, num_workers=8, persistent_workers=True,
    dataset=dict(type='CustomDataset', data_root='data/imagenet', data_prefix='val', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
# mmpretrain's Accuracy, which also answers top-5 when there are 5 classes or fewer (built-in data)
val_evaluator = dict(type='TopkAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
