# mmseg configs/fcn/fcn_r50-d8_4xb2-40k_cityscapes-769x769.py with the 7x7-stem ResNet (as our VOC
# FCN): the Cityscapes benchmark of mmselfsup's MoCo v2 page. 4 GPUs x 2 images, 40k iterations,
# align_corners, sliding-window test (769 crops, stride 513).
_base_ = ['./_base_/fcn_r50-d8.py', './_base_/cityscapes_769x769.py', './_base_/schedule_20k_runtime.py']
crop_size = (769, 769)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(init_cfg=None),  # the runner's --weights (converters/to_mmseg.py)
    decode_head=dict(num_classes=19, align_corners=True),
    auxiliary_head=dict(num_classes=19, align_corners=True),
    test_cfg=dict(mode='slide', crop_size=(769, 769), stride=(513, 513)))
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=40000, by_epoch=False)]
train_cfg = dict(max_iters=40000, val_interval=4000)
default_hooks = dict(checkpoint=dict(interval=4000))
moco_load_check = dict(new=[], resized=[])
