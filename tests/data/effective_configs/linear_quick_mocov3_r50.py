_test = [
    dict(type='LoadImageFromFile'),
    dict(backend='pillow', edge='short', scale=73, type='ResizeEdge'),
    dict(crop_size=64, type='CenterCrop'),
    dict(type='PackInputs'),
]
_train = [
    dict(type='LoadImageFromFile'),
    dict(backend='pillow', scale=64, type='RandomResizedCrop'),
    dict(direction='horizontal', prob=0.5, type='RandomFlip'),
    dict(type='PackInputs'),
]
data_dir = 'imagenet'
data_preprocessor = dict(
    mean=[
        123.675,
        116.28,
        103.53,
    ],
    num_classes=1000,
    std=[
        58.395,
        57.12,
        57.375,
    ],
    to_rgb=True)
default_hooks = dict(
    checkpoint=dict(interval=3, max_keep_ckpts=3, type='CheckpointHook'),
    logger=dict(interval=1, type='LoggerHook'),
    param_scheduler=dict(type='ParamSchedulerHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    timer=dict(type='IterTimerHook'),
    visualization=dict(enable=False, type='VisualizationHook'))
default_scope = 'mmpretrain'
env_cfg = dict(
    cudnn_benchmark=False,
    dist_cfg=dict(backend='nccl'),
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))
load_from = None
log_level = 'INFO'
lr_scaling = 'measured: 0.001 for 8 images per update on BN-standardised features (the recipe lr 0.4 is for 1024 on raw features)'
model = dict(
    backbone=dict(
        depth=50,
        frozen_stages=4,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch',
        type='ResNet'),
    head=dict(
        in_channels=2048,
        init_cfg=dict(bias=0.0, layer='Linear', std=0.01, type='Normal'),
        loss=dict(type='CrossEntropyLoss'),
        num_classes=1000,
        type='LinearClsHead'),
    neck=[
        dict(type='GlobalAveragePooling'),
        dict(
            affine=False,
            eps=1e-06,
            input_features=2048,
            type='ClsBatchNormNeck'),
    ],
    type='ImageClassifier')
optim_wrapper = dict(
    optimizer=dict(lr=0.001, momentum=0.9, type='SGD', weight_decay=0.0),
    type='OptimWrapper')
param_scheduler = [
    dict(T_max=6, begin=0, by_epoch=True, end=6, type='CosineAnnealingLR'),
]
randomness = dict(deterministic=False, seed=0)
recipe = 'mocov3_r50'
resume = False
task = 'linear'
test_cfg = dict()
test_dataloader = dict(
    batch_size=8,
    dataset=dict(
        data_prefix='val',
        data_root='data/imagenet',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(backend='pillow', edge='short', scale=73, type='ResizeEdge'),
            dict(crop_size=64, type='CenterCrop'),
            dict(type='PackInputs'),
        ],
        type='CustomDataset'),
    num_workers=0,
    persistent_workers=False,
    sampler=dict(shuffle=False, type='DefaultSampler'))
test_evaluator = dict(
    topk=(
        1,
        5,
    ), type='TopkAccuracy')
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(backend='pillow', edge='short', scale=256, type='ResizeEdge'),
    dict(crop_size=224, type='CenterCrop'),
    dict(type='PackInputs'),
]
train_cfg = dict(max_epochs=6, type='EpochBasedTrainLoop', val_interval=2)
train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        data_prefix='train',
        data_root='data/imagenet',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(backend='pillow', scale=64, type='RandomResizedCrop'),
            dict(direction='horizontal', prob=0.5, type='RandomFlip'),
            dict(type='PackInputs'),
        ],
        type='CustomDataset'),
    drop_last=True,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(shuffle=True, type='DefaultSampler'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(backend='pillow', scale=224, type='RandomResizedCrop'),
    dict(direction='horizontal', prob=0.5, type='RandomFlip'),
    dict(type='PackInputs'),
]
val_cfg = dict()
val_dataloader = dict(
    batch_size=8,
    dataset=dict(
        data_prefix='val',
        data_root='data/imagenet',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(backend='pillow', edge='short', scale=73, type='ResizeEdge'),
            dict(crop_size=64, type='CenterCrop'),
            dict(type='PackInputs'),
        ],
        type='CustomDataset'),
    num_workers=0,
    persistent_workers=False,
    sampler=dict(shuffle=False, type='DefaultSampler'))
val_evaluator = dict(
    topk=(
        1,
        5,
    ), type='TopkAccuracy')
vis_backends = [
    dict(type='LocalVisBackend'),
]
visualizer = dict(
    type='UniversalVisualizer', vis_backends=[
        dict(type='LocalVisBackend'),
    ])
