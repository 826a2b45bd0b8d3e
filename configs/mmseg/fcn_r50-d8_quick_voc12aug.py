# The FCN protocol on the built-in data, on CPU in about a minute: same model, tiny schedule.
_base_ = ['./fcn_r50-d8_4xb4-20k_voc12aug-512x512_moco.py']
crop_size = (96, 96)
model = dict(data_preprocessor=dict(size=crop_size))
_train = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(256, 96), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
_test = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 96), keep_ratio=True),
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
train_cfg = dict(max_iters=40, val_interval=40)
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=40, by_epoch=False)]
default_hooks = dict(logger=dict(interval=4), checkpoint=dict(interval=20))  # a loss point every 4 iterations
