# MoCo v2 linear probe, moco main_lincls.py: a Linear (N(0, 0.01), bias 0) on res5 GAP, the backbone frozen
# in eval mode (frozen_stages=4: BN statistics fixed too); SGD lr 30, m 0.9, wd 0; 8 GPUs x 32 = 256 images
# per update; 100 epochs, x0.1 at 60 and 80.
# (= mmpretrain configs/mocov2/benchmarks/resnet50_8xb32-linear-steplr-100e_in1k.py)
_base_ = ['./_base_/imagenet_linear.py', './_base_/default_runtime.py']
task = 'linear'
recipe = 'mocov2_r50'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=50, num_stages=4, out_indices=(3, ), style='pytorch', frozen_stages=4),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048, loss=dict(type='CrossEntropyLoss'),
              init_cfg=dict(type='Normal', layer='Linear', std=0.01, bias=0.)))
train_dataloader = dict(batch_size=32)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=30., momentum=0.9, weight_decay=0.))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[60, 80], gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=10)
