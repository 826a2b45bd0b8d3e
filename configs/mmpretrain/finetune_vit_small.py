# MoCo v3 ViT-S/16 fine-tuning: the ViT-B recipe for 300 epochs (moco-v3#19: 81.4), drop path 0.1, with
# MoCo v3's ViT-S of 12 heads (DeiT-S has 6: the tensors would load and the model would be another one).
_base_ = ['./finetune_vit_base.py']
recipe = 'mocov3_vit_small'
model = dict(backbone=dict(arch=dict(_delete_=True, embed_dims=384, num_layers=12, num_heads=12,
                                     feedforward_channels=1536)),
             head=dict(in_channels=384))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=295, eta_min=1e-5, by_epoch=True, begin=5, end=300,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=300)
