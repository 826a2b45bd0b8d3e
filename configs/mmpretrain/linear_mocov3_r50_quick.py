# The mocov3_r50 linear probe on the built-in data, on CPU in seconds: same backbone, head and optimiser, 64 px
# crops, 8 images a batch, 6 epochs, evaluated every 2 epochs (points for the curves). Two deviations from moco-v3
# main_lincls.py, both in the fingerprint, the same as the other quick linear probes':
# - features: res5 GAP standardised by a BatchNorm without affine before the head, MAE's linear probe (He et al.
#   2021, arXiv:2111.06377, Appendix A.2; facebookresearch/mae main_linprobe.py: BatchNorm1d(affine=False,
#   eps=1e-6) before the head; mmpretrain's ClsBatchNormNeck, as its configs/mae/benchmarks/*linear* use). A
#   checkpoint's features can be far larger than random init's, and SGD's lr depends on their scale; standardised,
#   every backbone's are the same size, so one lr serves both. It stays a linear classifier (the BN is an affine
#   map with fixed statistics at test time). Its train loader drops the last incomplete batch, as main_linprobe.py's
#   does: a batch of one image has no batch statistics.
# - lr: 0.001, for 8 images per update on standardised 2048-d features (README, "Two commands", gives the
#   measurements). The recipe's 0.4 is for 1024 images on raw features.
_base_ = ['./linear_mocov3_r50.py']
_train = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
_test = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=73, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=64),
    dict(type='PackInputs'),
]
model = dict(neck=[dict(type='GlobalAveragePooling'), dict(type='ClsBatchNormNeck', input_features=2048,
                                                           affine=False, eps=1e-6)])
lr_scaling = ('measured: 0.001 for 8 images per update on BN-standardised features (the recipe lr 0.4 is for 1024 '
              'on raw features)')
optim_wrapper = dict(optimizer=dict(lr=0.001))
train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False, drop_last=True,
                        dataset=dict(pipeline=_train))
val_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False, dataset=dict(pipeline=_test))
test_dataloader = val_dataloader
param_scheduler = [dict(type='CosineAnnealingLR', T_max=6, by_epoch=True, begin=0, end=6)]
train_cfg = dict(max_epochs=6, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=3))
