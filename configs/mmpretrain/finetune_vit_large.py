# MoCo v3 ViT-L/16 fine-tuning (mmpretrain configs/mocov3/benchmarks/vit-large-p16_8xb64-coslr-100e_in1k.py):
# the ViT-B recipe with 100 epochs and drop path 0.5.
_base_ = ['./finetune_vit_base.py']
recipe = 'mocov3_vit_large'
model = dict(backbone=dict(arch='large', drop_path_rate=0.5), head=dict(in_channels=1024))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=95, eta_min=1e-5, by_epoch=True, begin=5, end=100,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=100)
