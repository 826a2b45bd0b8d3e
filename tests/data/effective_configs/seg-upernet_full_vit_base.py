crop_size = (
    512,
    512,
)
data_preprocessor = dict(
    bgr_to_rgb=True,
    mean=[
        123.675,
        116.28,
        103.53,
    ],
    pad_val=0,
    seg_pad_val=255,
    size=(
        512,
        512,
    ),
    std=[
        58.395,
        57.12,
        57.375,
    ],
    type='SegDataPreProcessor')
data_root = 'data/VOCdevkit/VOC2012'
dataset_aug = dict(
    ann_file='ImageSets/Segmentation/aug.txt',
    data_prefix=dict(
        img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
    data_root='data/VOCdevkit/VOC2012',
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(
            keep_ratio=True,
            ratio_range=(
                0.5,
                2.0,
            ),
            scale=(
                2048,
                512,
            ),
            type='RandomResize'),
        dict(cat_max_ratio=0.75, crop_size=(
            512,
            512,
        ), type='RandomCrop'),
        dict(prob=0.5, type='RandomFlip'),
        dict(type='PhotoMetricDistortion'),
        dict(type='PackSegInputs'),
    ],
    type='PascalVOCDataset')
dataset_train = dict(
    ann_file='ImageSets/Segmentation/train.txt',
    data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
    data_root='data/VOCdevkit/VOC2012',
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(
            keep_ratio=True,
            ratio_range=(
                0.5,
                2.0,
            ),
            scale=(
                2048,
                512,
            ),
            type='RandomResize'),
        dict(cat_max_ratio=0.75, crop_size=(
            512,
            512,
        ), type='RandomCrop'),
        dict(prob=0.5, type='RandomFlip'),
        dict(type='PhotoMetricDistortion'),
        dict(type='PackSegInputs'),
    ],
    type='PascalVOCDataset')
dataset_type = 'PascalVOCDataset'
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=2000, type='CheckpointHook'),
    logger=dict(interval=50, log_metric_by_epoch=False, type='LoggerHook'),
    param_scheduler=dict(type='ParamSchedulerHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    timer=dict(type='IterTimerHook'),
    visualization=dict(type='SegVisualizationHook'))
default_scope = 'mmseg'
embed_dims = 768
env_cfg = dict(
    cudnn_benchmark=True,
    dist_cfg=dict(backend='nccl'),
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))
layer_decay = 0.65
load_from = None
log_level = 'INFO'
log_processor = dict(by_epoch=False)
moco_data_dir = 'VOC2012'
moco_load_check = dict(
    new=[], resized=[
        'pos_embed',
    ])
model = dict(
    auxiliary_head=dict(
        align_corners=False,
        channels=256,
        concat_input=False,
        dropout_ratio=0.1,
        in_channels=768,
        in_index=2,
        loss_decode=dict(
            loss_weight=0.4, type='CrossEntropyLoss', use_sigmoid=False),
        norm_cfg=dict(requires_grad=True, type='SyncBN'),
        num_classes=21,
        num_convs=1,
        type='FCNHead'),
    backbone=dict(
        act_cfg=dict(type='GELU'),
        attn_drop_rate=0.0,
        drop_path_rate=0.1,
        drop_rate=0.0,
        embed_dims=768,
        final_norm=True,
        img_size=(
            512,
            512,
        ),
        in_channels=3,
        init_cfg=None,
        interpolate_mode='bicubic',
        mlp_ratio=4,
        norm_cfg=dict(eps=1e-06, type='LN'),
        norm_eval=False,
        num_heads=12,
        num_layers=12,
        out_indices=(
            3,
            5,
            7,
            11,
        ),
        patch_bias=True,
        patch_size=16,
        qkv_bias=True,
        type='VisionTransformer',
        with_cls_token=True),
    data_preprocessor=dict(
        bgr_to_rgb=True,
        mean=[
            123.675,
            116.28,
            103.53,
        ],
        pad_val=0,
        seg_pad_val=255,
        size=(
            512,
            512,
        ),
        std=[
            58.395,
            57.12,
            57.375,
        ],
        type='SegDataPreProcessor'),
    decode_head=dict(
        align_corners=False,
        channels=512,
        dropout_ratio=0.1,
        in_channels=[
            768,
            768,
            768,
            768,
        ],
        in_index=[
            0,
            1,
            2,
            3,
        ],
        loss_decode=dict(
            loss_weight=1.0, type='CrossEntropyLoss', use_sigmoid=False),
        norm_cfg=dict(requires_grad=True, type='SyncBN'),
        num_classes=21,
        pool_scales=(
            1,
            2,
            3,
            6,
        ),
        type='UPerHead'),
    neck=dict(
        in_channels=[
            768,
            768,
            768,
            768,
        ],
        out_channels=768,
        scales=[
            4,
            2,
            1,
            0.5,
        ],
        type='MultiLevelNeck'),
    pretrained=None,
    test_cfg=dict(crop_size=(
        512,
        512,
    ), mode='slide', stride=(
        341,
        341,
    )),
    train_cfg=dict(),
    type='EncoderDecoder')
norm_cfg = dict(requires_grad=True, type='SyncBN')
num_layers = 12
optim_wrapper = dict(
    optimizer=dict(
        betas=(
            0.9,
            0.999,
        ), lr=0.0001, type='AdamW', weight_decay=0.05),
    paramwise_cfg=dict(
        bias_decay_mult=0.0,
        custom_keys=dict({
            'backbone.cls_token':
            dict(decay_mult=0.0, lr_mult=0.003697205891018715),
            'backbone.layers.0.':
            dict(lr_mult=0.005688009063105715),
            'backbone.layers.0.attn.attn.in_proj_bias':
            dict(decay_mult=0.0, lr_mult=0.005688009063105715),
            'backbone.layers.0.attn.attn.out_proj.bias':
            dict(decay_mult=0.0, lr_mult=0.005688009063105715),
            'backbone.layers.0.ffn.layers.0.0.bias':
            dict(decay_mult=0.0, lr_mult=0.005688009063105715),
            'backbone.layers.0.ffn.layers.1.bias':
            dict(decay_mult=0.0, lr_mult=0.005688009063105715),
            'backbone.layers.0.ln1.':
            dict(decay_mult=0.0, lr_mult=0.005688009063105715),
            'backbone.layers.0.ln2.':
            dict(decay_mult=0.0, lr_mult=0.005688009063105715),
            'backbone.layers.1.':
            dict(lr_mult=0.008750783174008792),
            'backbone.layers.1.attn.attn.in_proj_bias':
            dict(decay_mult=0.0, lr_mult=0.008750783174008792),
            'backbone.layers.1.attn.attn.out_proj.bias':
            dict(decay_mult=0.0, lr_mult=0.008750783174008792),
            'backbone.layers.1.ffn.layers.0.0.bias':
            dict(decay_mult=0.0, lr_mult=0.008750783174008792),
            'backbone.layers.1.ffn.layers.1.bias':
            dict(decay_mult=0.0, lr_mult=0.008750783174008792),
            'backbone.layers.1.ln1.':
            dict(decay_mult=0.0, lr_mult=0.008750783174008792),
            'backbone.layers.1.ln2.':
            dict(decay_mult=0.0, lr_mult=0.008750783174008792),
            'backbone.layers.10.':
            dict(lr_mult=0.42250000000000004),
            'backbone.layers.10.attn.attn.in_proj_bias':
            dict(decay_mult=0.0, lr_mult=0.42250000000000004),
            'backbone.layers.10.attn.attn.out_proj.bias':
            dict(decay_mult=0.0, lr_mult=0.42250000000000004),
            'backbone.layers.10.ffn.layers.0.0.bias':
            dict(decay_mult=0.0, lr_mult=0.42250000000000004),
            'backbone.layers.10.ffn.layers.1.bias':
            dict(decay_mult=0.0, lr_mult=0.42250000000000004),
            'backbone.layers.10.ln1.':
            dict(decay_mult=0.0, lr_mult=0.42250000000000004),
            'backbone.layers.10.ln2.':
            dict(decay_mult=0.0, lr_mult=0.42250000000000004),
            'backbone.layers.11.':
            dict(lr_mult=0.65),
            'backbone.layers.11.attn.attn.in_proj_bias':
            dict(decay_mult=0.0, lr_mult=0.65),
            'backbone.layers.11.attn.attn.out_proj.bias':
            dict(decay_mult=0.0, lr_mult=0.65),
            'backbone.layers.11.ffn.layers.0.0.bias':
            dict(decay_mult=0.0, lr_mult=0.65),
            'backbone.layers.11.ffn.layers.1.bias':
            dict(decay_mult=0.0, lr_mult=0.65),
            'backbone.layers.11.ln1.':
            dict(decay_mult=0.0, lr_mult=0.65),
            'backbone.layers.11.ln2.':
            dict(decay_mult=0.0, lr_mult=0.65),
            'backbone.layers.2.':
            dict(lr_mult=0.013462743344628911),
            'backbone.layers.2.attn.attn.in_proj_bias':
            dict(decay_mult=0.0, lr_mult=0.013462743344628911),
            'backbone.layers.2.attn.attn.out_proj.bias':
            dict(decay_mult=0.0, lr_mult=0.013462743344628911),
            'backbone.layers.2.ffn.layers.0.0.bias':
            dict(decay_mult=0.0, lr_mult=0.013462743344628911),
            'backbone.layers.2.ffn.layers.1.bias':
            dict(decay_mult=0.0, lr_mult=0.013462743344628911),
            'backbone.layers.2.ln1.':
            dict(decay_mult=0.0, lr_mult=0.013462743344628911),
            'backbone.layers.2.ln2.':
            dict(decay_mult=0.0, lr_mult=0.013462743344628911),
            'backbone.layers.3.':
            dict(lr_mult=0.02071191283789063),
            'backbone.layers.3.attn.attn.in_proj_bias':
            dict(decay_mult=0.0, lr_mult=0.02071191283789063),
            'backbone.layers.3.attn.attn.out_proj.bias':
            dict(decay_mult=0.0, lr_mult=0.02071191283789063),
            'backbone.layers.3.ffn.layers.0.0.bias':
            dict(decay_mult=0.0, lr_mult=0.02071191283789063),
            'backbone.layers.3.ffn.layers.1.bias':
            dict(decay_mult=0.0, lr_mult=0.02071191283789063),
            'backbone.layers.3.ln1.':
            dict(decay_mult=0.0, lr_mult=0.02071191283789063),
            'backbone.layers.3.ln2.':
            dict(decay_mult=0.0, lr_mult=0.02071191283789063),
            'backbone.layers.4.':
            dict(lr_mult=0.03186448128906251),
            'backbone.layers.4.attn.attn.in_proj_bias':
            dict(decay_mult=0.0, lr_mult=0.03186448128906251),
            'backbone.layers.4.attn.attn.out_proj.bias':
            dict(decay_mult=0.0, lr_mult=0.03186448128906251),
            'backbone.layers.4.ffn.layers.0.0.bias':
            dict(decay_mult=0.0, lr_mult=0.03186448128906251),
            'backbone.layers.4.ffn.layers.1.bias':
            dict(decay_mult=0.0, lr_mult=0.03186448128906251),
            'backbone.layers.4.ln1.':
            dict(decay_mult=0.0, lr_mult=0.03186448128906251),
            'backbone.layers.4.ln2.':
            dict(decay_mult=0.0, lr_mult=0.03186448128906251),
            'backbone.layers.5.':
            dict(lr_mult=0.049022278906250015),
            'backbone.layers.5.attn.attn.in_proj_bias':
            dict(decay_mult=0.0, lr_mult=0.049022278906250015),
            'backbone.layers.5.attn.attn.out_proj.bias':
            dict(decay_mult=0.0, lr_mult=0.049022278906250015),
            'backbone.layers.5.ffn.layers.0.0.bias':
            dict(decay_mult=0.0, lr_mult=0.049022278906250015),
            'backbone.layers.5.ffn.layers.1.bias':
            dict(decay_mult=0.0, lr_mult=0.049022278906250015),
            'backbone.layers.5.ln1.':
            dict(decay_mult=0.0, lr_mult=0.049022278906250015),
            'backbone.layers.5.ln2.':
            dict(decay_mult=0.0, lr_mult=0.049022278906250015),
            'backbone.layers.6.':
            dict(lr_mult=0.07541889062500001),
            'backbone.layers.6.attn.attn.in_proj_bias':
            dict(decay_mult=0.0, lr_mult=0.07541889062500001),
            'backbone.layers.6.attn.attn.out_proj.bias':
            dict(decay_mult=0.0, lr_mult=0.07541889062500001),
            'backbone.layers.6.ffn.layers.0.0.bias':
            dict(decay_mult=0.0, lr_mult=0.07541889062500001),
            'backbone.layers.6.ffn.layers.1.bias':
            dict(decay_mult=0.0, lr_mult=0.07541889062500001),
            'backbone.layers.6.ln1.':
            dict(decay_mult=0.0, lr_mult=0.07541889062500001),
            'backbone.layers.6.ln2.':
            dict(decay_mult=0.0, lr_mult=0.07541889062500001),
            'backbone.layers.7.':
            dict(lr_mult=0.11602906250000002),
            'backbone.layers.7.attn.attn.in_proj_bias':
            dict(decay_mult=0.0, lr_mult=0.11602906250000002),
            'backbone.layers.7.attn.attn.out_proj.bias':
            dict(decay_mult=0.0, lr_mult=0.11602906250000002),
            'backbone.layers.7.ffn.layers.0.0.bias':
            dict(decay_mult=0.0, lr_mult=0.11602906250000002),
            'backbone.layers.7.ffn.layers.1.bias':
            dict(decay_mult=0.0, lr_mult=0.11602906250000002),
            'backbone.layers.7.ln1.':
            dict(decay_mult=0.0, lr_mult=0.11602906250000002),
            'backbone.layers.7.ln2.':
            dict(decay_mult=0.0, lr_mult=0.11602906250000002),
            'backbone.layers.8.':
            dict(lr_mult=0.17850625000000003),
            'backbone.layers.8.attn.attn.in_proj_bias':
            dict(decay_mult=0.0, lr_mult=0.17850625000000003),
            'backbone.layers.8.attn.attn.out_proj.bias':
            dict(decay_mult=0.0, lr_mult=0.17850625000000003),
            'backbone.layers.8.ffn.layers.0.0.bias':
            dict(decay_mult=0.0, lr_mult=0.17850625000000003),
            'backbone.layers.8.ffn.layers.1.bias':
            dict(decay_mult=0.0, lr_mult=0.17850625000000003),
            'backbone.layers.8.ln1.':
            dict(decay_mult=0.0, lr_mult=0.17850625000000003),
            'backbone.layers.8.ln2.':
            dict(decay_mult=0.0, lr_mult=0.17850625000000003),
            'backbone.layers.9.':
            dict(lr_mult=0.274625),
            'backbone.layers.9.attn.attn.in_proj_bias':
            dict(decay_mult=0.0, lr_mult=0.274625),
            'backbone.layers.9.attn.attn.out_proj.bias':
            dict(decay_mult=0.0, lr_mult=0.274625),
            'backbone.layers.9.ffn.layers.0.0.bias':
            dict(decay_mult=0.0, lr_mult=0.274625),
            'backbone.layers.9.ffn.layers.1.bias':
            dict(decay_mult=0.0, lr_mult=0.274625),
            'backbone.layers.9.ln1.':
            dict(decay_mult=0.0, lr_mult=0.274625),
            'backbone.layers.9.ln2.':
            dict(decay_mult=0.0, lr_mult=0.274625),
            'backbone.patch_embed.':
            dict(lr_mult=0.003697205891018715),
            'backbone.patch_embed.projection.bias':
            dict(decay_mult=0.0, lr_mult=0.003697205891018715),
            'backbone.pos_embed':
            dict(decay_mult=0.0, lr_mult=0.003697205891018715)
        }),
        norm_decay_mult=0.0),
    type='AmpOptimWrapper')
param_scheduler = [
    dict(
        begin=0, by_epoch=False, end=1500, start_factor=1e-06,
        type='LinearLR'),
    dict(
        begin=1500,
        by_epoch=False,
        end=20000,
        eta_min=0.0,
        power=1.0,
        type='PolyLR'),
]
resume = False
test_cfg = dict(type='TestLoop')
test_dataloader = dict(
    batch_size=1,
    dataset=dict(
        ann_file='ImageSets/Segmentation/val.txt',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        data_root='data/VOCdevkit/VOC2012',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(keep_ratio=True, scale=(
                2048,
                512,
            ), type='Resize'),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs'),
        ],
        type='PascalVOCDataset'),
    num_workers=4,
    persistent_workers=True,
    sampler=dict(shuffle=False, type='DefaultSampler'))
test_evaluator = dict(
    iou_metrics=[
        'mIoU',
    ], type='IoUMetric')
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(keep_ratio=True, scale=(
        2048,
        512,
    ), type='Resize'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_cfg = dict(max_iters=20000, type='IterBasedTrainLoop', val_interval=2000)
train_dataloader = dict(
    batch_size=4,
    dataset=dict(
        datasets=[
            dict(
                ann_file='ImageSets/Segmentation/aug.txt',
                data_prefix=dict(
                    img_path='JPEGImages',
                    seg_map_path='SegmentationClassAug'),
                data_root='data/VOCdevkit/VOC2012',
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='LoadAnnotations'),
                    dict(
                        keep_ratio=True,
                        ratio_range=(
                            0.5,
                            2.0,
                        ),
                        scale=(
                            2048,
                            512,
                        ),
                        type='RandomResize'),
                    dict(
                        cat_max_ratio=0.75,
                        crop_size=(
                            512,
                            512,
                        ),
                        type='RandomCrop'),
                    dict(prob=0.5, type='RandomFlip'),
                    dict(type='PhotoMetricDistortion'),
                    dict(type='PackSegInputs'),
                ],
                type='PascalVOCDataset'),
            dict(
                ann_file='ImageSets/Segmentation/train.txt',
                data_prefix=dict(
                    img_path='JPEGImages', seg_map_path='SegmentationClass'),
                data_root='data/VOCdevkit/VOC2012',
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='LoadAnnotations'),
                    dict(
                        keep_ratio=True,
                        ratio_range=(
                            0.5,
                            2.0,
                        ),
                        scale=(
                            2048,
                            512,
                        ),
                        type='RandomResize'),
                    dict(
                        cat_max_ratio=0.75,
                        crop_size=(
                            512,
                            512,
                        ),
                        type='RandomCrop'),
                    dict(prob=0.5, type='RandomFlip'),
                    dict(type='PhotoMetricDistortion'),
                    dict(type='PackSegInputs'),
                ],
                type='PascalVOCDataset'),
        ],
        type='ConcatDataset'),
    num_workers=4,
    persistent_workers=True,
    sampler=dict(shuffle=True, type='InfiniteSampler'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        keep_ratio=True,
        ratio_range=(
            0.5,
            2.0,
        ),
        scale=(
            2048,
            512,
        ),
        type='RandomResize'),
    dict(cat_max_ratio=0.75, crop_size=(
        512,
        512,
    ), type='RandomCrop'),
    dict(prob=0.5, type='RandomFlip'),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
val_cfg = dict(type='ValLoop')
val_dataloader = dict(
    batch_size=1,
    dataset=dict(
        ann_file='ImageSets/Segmentation/val.txt',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        data_root='data/VOCdevkit/VOC2012',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(keep_ratio=True, scale=(
                2048,
                512,
            ), type='Resize'),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs'),
        ],
        type='PascalVOCDataset'),
    num_workers=4,
    persistent_workers=True,
    sampler=dict(shuffle=False, type='DefaultSampler'))
val_evaluator = dict(
    iou_metrics=[
        'mIoU',
    ], type='IoUMetric')
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend'),
]
visualizer = dict(
    name='visualizer',
    type='SegLocalVisualizer',
    vis_backends=[
        dict(type='LocalVisBackend'),
        dict(type='TensorboardVisBackend'),
    ])
