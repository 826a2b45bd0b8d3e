# Fewer GPUs: 2 GPUs x 2 images, gradients accumulated 4 times, keep the 16 images per update of 8xb2
# (MMEngine counts every accumulation step as an iteration: 4x the iterations). SyncBN in the heads
# sees 4 images instead of 16.
_base_ = ['./upernet_vit-l16_mln_8xb2-160k_ade20k-512x512_moco.py']
optim_wrapper = dict(accumulative_counts=4)
train_cfg = dict(max_iters=640000, val_interval=64000)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=6000),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=6000, end=640000, by_epoch=False),
]
default_hooks = dict(checkpoint=dict(interval=64000))
