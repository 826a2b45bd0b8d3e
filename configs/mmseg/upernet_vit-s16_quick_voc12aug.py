# The VOC12aug UperNet protocol on the built-in data, on CPU in minutes: ViT-S, 128 crops, 20 iterations.
_base_ = ['./upernet_vit-s16_mln_4xb4-20k_voc12aug-512x512_moco.py']
crop_size = (128, 128)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(img_size=crop_size, drop_path_rate=0.0),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(85, 85)))
optim_wrapper = dict(type='OptimWrapper')
_train = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(512, 128), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
_test = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 128), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
# lists replace their base lists whole in MMEngine configs: the two train sets in full
_voc = dict(type='PascalVOCDataset', data_root='data/VOCdevkit/VOC2012', pipeline=_train)
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(type='ConcatDataset', datasets=[
        dict(_voc, data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
             ann_file='ImageSets/Segmentation/aug.txt'),
        dict(_voc, data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
             ann_file='ImageSets/Segmentation/train.txt'),
    ]))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=_test))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=20, val_interval=20)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=5),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=5, end=20, by_epoch=False),
]
default_hooks = dict(logger=dict(interval=4), checkpoint=dict(interval=20))  # a loss point every 4 iterations
