_lighting = dict(
    alphastd=0.1,
    eigval=[
        55.4625,
        4.794,
        1.1475,
    ],
    eigvec=[
        [
            -0.5836,
            -0.6948,
            0.4203,
        ],
        [
            -0.5808,
            -0.0045,
            -0.814,
        ],
        [
            -0.5675,
            0.7192,
            0.4009,
        ],
    ],
    to_rgb=False,
    type='ClippedLighting')
_train = [
    dict(type='LoadImageFromFile'),
    dict(backend='pillow', scale=224, type='RandomResizedCrop'),
    dict(direction='horizontal', prob=0.5, type='RandomFlip'),
    dict(type='PackInputs'),
]
data_dir = 'iNaturalist2018'
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
    checkpoint=dict(interval=1, max_keep_ckpts=3, type='CheckpointHook'),
    logger=dict(interval=100, type='LoggerHook'),
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
model = dict(
    backbone=dict(
        depth=50,
        frozen_stages=4,
        num_stages=4,
        out_indices=(
            0,
            1,
            2,
            3,
        ),
        style='pytorch',
        type='ResNetStages'),
    head=dict(
        channels=[
            64,
            256,
            512,
            1024,
            2048,
        ],
        in_dims=[
            9216,
            9216,
            8192,
            9216,
            8192,
        ],
        init_cfg=dict(bias=0.0, layer='Linear', std=0.01, type='Normal'),
        loss=dict(type='CrossEntropyLoss'),
        norm_cfg=dict(affine=False, momentum=0.1, type='SyncBN'),
        num_classes=8142,
        stages=[
            'feat1',
            'feat2',
            'feat3',
            'feat4',
            'feat5',
        ],
        type='StageLinearHead'),
    neck=dict(
        pools=[
            (
                10,
                10,
                4,
            ),
            (
                16,
                8,
                0,
            ),
            (
                13,
                5,
                0,
            ),
            (
                8,
                3,
                0,
            ),
            (
                6,
                1,
                0,
            ),
        ],
        type='StagePool'),
    type='ImageClassifier')
optim_wrapper = dict(
    optimizer=dict(
        lr=0.01, momentum=0.9, nesterov=True, type='SGD', weight_decay=0.0001),
    type='OptimWrapper')
param_scheduler = [
    dict(
        by_epoch=True,
        gamma=0.1,
        milestones=[
            24,
            48,
            72,
        ],
        type='MultiStepLR'),
]
randomness = dict(deterministic=False, seed=0)
recipe = 'mhead_inat18'
resume = False
task = 'linear-stages'
test_cfg = dict()
test_dataloader = dict(
    batch_size=64,
    dataset=dict(
        ann_file='meta/val.txt',
        data_prefix='',
        data_root='data/imagenet',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(backend='pillow', edge='short', scale=256, type='ResizeEdge'),
            dict(crop_size=224, type='CenterCrop'),
            dict(type='PackInputs'),
        ],
        type='CustomDataset'),
    num_workers=8,
    persistent_workers=True,
    sampler=dict(shuffle=False, type='DefaultSampler'))
test_evaluator = dict(
    stages=[
        'feat1',
        'feat2',
        'feat3',
        'feat4',
        'feat5',
    ],
    topk=(
        1,
        5,
    ),
    type='StageAccuracy')
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(backend='pillow', edge='short', scale=256, type='ResizeEdge'),
    dict(crop_size=224, type='CenterCrop'),
    dict(type='PackInputs'),
]
train_cfg = dict(max_epochs=84, type='EpochBasedTrainLoop', val_interval=10)
train_dataloader = dict(
    batch_size=256,
    dataset=dict(
        ann_file='meta/train.txt',
        data_prefix='',
        data_root='data/imagenet',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(backend='pillow', scale=224, type='RandomResizedCrop'),
            dict(direction='horizontal', prob=0.5, type='RandomFlip'),
            dict(type='PackInputs'),
        ],
        type='CustomDataset'),
    num_workers=8,
    persistent_workers=True,
    sampler=dict(shuffle=True, type='DefaultSampler'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(backend='pillow', scale=224, type='RandomResizedCrop'),
    dict(direction='horizontal', prob=0.5, type='RandomFlip'),
    dict(type='PackInputs'),
]
val_cfg = dict()
val_dataloader = dict(
    batch_size=64,
    dataset=dict(
        ann_file='meta/val.txt',
        data_prefix='',
        data_root='data/imagenet',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(backend='pillow', edge='short', scale=256, type='ResizeEdge'),
            dict(crop_size=224, type='CenterCrop'),
            dict(type='PackInputs'),
        ],
        type='CustomDataset'),
    num_workers=8,
    persistent_workers=True,
    sampler=dict(shuffle=False, type='DefaultSampler'))
val_evaluator = dict(
    stages=[
        'feat1',
        'feat2',
        'feat3',
        'feat4',
        'feat5',
    ],
    topk=(
        1,
        5,
    ),
    type='StageAccuracy')
vis_backends = [
    dict(type='LocalVisBackend'),
]
visualizer = dict(
    type='UniversalVisualizer', vis_backends=[
        dict(type='LocalVisBackend'),
    ])
