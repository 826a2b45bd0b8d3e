# Feature1-Feature5 on iNaturalist 2018, mmselfsup 0.x
# configs/benchmarks/classification/inaturalist2018/resnet50_mhead_8xb32-steplr-84e_inat18.py and its
# _base_/datasets/inaturalist2018.py: 8142 classes; RandomResizedCrop 224 + flip (no colour jitter, no
# lighting); test Resize 256 (short side), CenterCrop 224; the heads of linear-stages (per-stage pools,
# BN2d affine=False momentum 0.1 synchronised, Linear N(0, 0.01)); SGD lr 0.01 nesterov m 0.9 wd 1e-4;
# 8 GPUs x 32 = 256; 84 epochs, x0.1 at 24, 48, 72; evaluated every 10 epochs, checkpoints every epoch
# (3 kept; each about 2.9 GB: 358M head weights, 8142 classes x 44,032 pooled features, and their
# momentum). Its paramwise_options=dict(norm_decay_mult=0.) changes nothing: the frozen backbone and the
# affine-free head BNs have no trained parameter, the five Linear layers are all that is trained (and in
# mmselfsup 0.x the keys of paramwise_options are regular expressions on parameter names, which
# 'norm_decay_mult' matches none of).
# Data: ROOT/iNaturalist2018/meta/{train,val}.txt from `python -m mocodata inat18-meta ROOT`, whose paths
# (the JSON file names) begin with train_val2018/, so they are read relative to ROOT/iNaturalist2018/
# (data_prefix ''; mmselfsup's 'data/iNaturalist2018/train_val2018' would double that folder).
_base_ = ['./linear-stages_r50.py']
recipe = 'mhead_inat18'
data_dir = 'iNaturalist2018'
model = dict(head=dict(num_classes=8142))
_train = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(ann_file='meta/train.txt', data_prefix='', pipeline=_train))
val_dataloader = dict(dataset=dict(ann_file='meta/val.txt', data_prefix=''))
test_dataloader = val_dataloader
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[24, 48, 72], gamma=0.1)]
train_cfg = dict(max_epochs=84)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))
