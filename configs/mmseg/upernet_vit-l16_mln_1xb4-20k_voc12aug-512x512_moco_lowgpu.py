# One GPU: 4 images per step accumulated 4 times keeps the 16 images per update of 4xb4 (MMEngine
# counts each accumulation step as an iteration: 4x the iterations).
_base_ = ['./upernet_vit-l16_mln_4xb4-20k_voc12aug-512x512_moco.py']
optim_wrapper = dict(accumulative_counts=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=6000),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=6000, end=80000, by_epoch=False),
]
train_cfg = dict(max_iters=80000, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
