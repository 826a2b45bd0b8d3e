# Feature1-Feature5 linear heads on ImageNet, mmselfsup 0.x
# configs/benchmarks/classification/imagenet/resnet50_mhead_linear-8xb32-steplr-90e_in1k.py: the frozen
# ResNet-50 (eval mode) at five depths (stem before the max pool, res2-res5), each map average-pooled to a
# fixed grid, BN2d (affine=False, momentum 0.1, synchronised), flattened, Linear N(0, 0.01); losses summed.
# SGD lr 0.01 nesterov m 0.9 wd 1e-4; 8 GPUs x 32 = 256; 90 epochs, x0.1 at 30, 60, 90;
# RandomResizedCrop 224 + flip + ColorJitter(0.4, 0.4, 0.4, 0) + PCA Lighting 0.1.
_base_ = ['./_base_/imagenet_linear.py', './_base_/default_runtime.py']
task = 'linear-stages'
recipe = 'mhead_imagenet'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNetStages', depth=50, num_stages=4, out_indices=(0, 1, 2, 3), style='pytorch',
                  frozen_stages=4),
    neck=dict(type='StagePool', pools=[(10, 10, 4), (16, 8, 0), (13, 5, 0), (8, 3, 0), (6, 1, 0)]),
    head=dict(type='StageLinearHead', num_classes=1000, stages=['feat1', 'feat2', 'feat3', 'feat4', 'feat5'],
              channels=[64, 256, 512, 1024, 2048], in_dims=[9216, 9216, 8192, 9216, 8192],
              norm_cfg=dict(type='SyncBN', momentum=0.1, affine=False), loss=dict(type='CrossEntropyLoss'),
              init_cfg=dict(type='Normal', layer='Linear', std=0.01, bias=0.)))
# AlexNet PCA lighting on BGR uint8 images: mmselfsup's RGB [0, 1] eigenvalues x 255, rows in BGR order
_lighting = dict(type='ClippedLighting', eigval=[55.4625, 4.7940, 1.1475],
                 eigvec=[[-0.5836, -0.6948, 0.4203], [-0.5808, -0.0045, -0.8140], [-0.5675, 0.7192, 0.4009]],
                 alphastd=0.1, to_rgb=False)
_train = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.),
    _lighting,
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=32, dataset=dict(pipeline=_train))
val_evaluator = dict(type='StageAccuracy', stages=['feat1', 'feat2', 'feat3', 'feat4', 'feat5'], topk=(1, 5),
                     _delete_=True)
test_evaluator = val_evaluator
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=90, val_interval=10)
