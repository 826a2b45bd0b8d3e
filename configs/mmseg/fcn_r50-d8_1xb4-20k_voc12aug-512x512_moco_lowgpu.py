# One GPU: 4 images per step accumulated 4 times keeps the 16 images per update of 4xb4.
_base_ = ['./fcn_r50-d8_4xb4-20k_voc12aug-512x512_moco.py']
optim_wrapper = dict(accumulative_counts=4)
train_cfg = dict(max_iters=80000, val_interval=8000)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=80000, by_epoch=False)
]
default_hooks = dict(checkpoint=dict(interval=8000))
