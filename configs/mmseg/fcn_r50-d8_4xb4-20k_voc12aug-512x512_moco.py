# mmseg configs/fcn/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py with the 7x7-stem ResNet: the
# protocol behind mmselfsup's published 67.55 mIoU for MoCo v2. 4 GPUs x 4 images, 20k iters.
_base_ = ['./_base_/fcn_r50-d8.py', './_base_/pascal_voc12_aug.py', './_base_/schedule_20k_runtime.py']
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    # checkpoint set by transfer/run_suite.py --weights (converted by converters/to_mmseg.py)
    backbone=dict(init_cfg=None))
