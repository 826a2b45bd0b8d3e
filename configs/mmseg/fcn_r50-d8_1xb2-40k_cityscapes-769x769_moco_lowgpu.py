# One GPU: 2 images per step accumulated 4 times keeps the 8 images per update of 4xb2 (4x the
# iterations, as MMEngine counts them). SyncBN statistics cover 2 images instead of 8.
_base_ = ['./fcn_r50-d8_4xb2-40k_cityscapes-769x769_moco.py']
optim_wrapper = dict(accumulative_counts=4)
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=160000, by_epoch=False)]
train_cfg = dict(max_iters=160000, val_interval=16000)
default_hooks = dict(checkpoint=dict(interval=16000))
