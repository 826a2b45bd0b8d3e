# MoCo v3 ViT-B/16 end-to-end fine-tuning = DeiT's recipe as mmpretrain runs it
# (configs/mocov3/benchmarks/vit-base-p16_8xb64-coslr-150e_in1k.py): AdamW lr 5e-4 x 512/512, betas
# (0.9, 0.999), wd 0.05 (none on norms, biases, cls_token, pos_embed), grad clip 5.0; 8 GPUs x 64 = 512
# per update; 5 warmup epochs from x1e-3, cosine to 1e-5 per iteration, 150 epochs; drop path 0.1;
# label smoothing 0.1; Mixup 0.8 / CutMix 1.0; EMA 4e-5 (the evaluated weights).
_base_ = ['./_base_/imagenet_deit.py', './_base_/default_runtime.py']
task = 'finetune'
recipe = 'mocov3_vit_base'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='VisionTransformer', arch='base', img_size=224, patch_size=16, drop_path_rate=0.1,
                  out_type='cls_token', final_norm=True),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=1000, in_channels=768,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
              init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
                        dict(type='Constant', layer='LayerNorm', val=1., bias=0.)]),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4, eps=1e-8, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'.cls_token': dict(decay_mult=0.0), '.pos_embed': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=145, eta_min=1e-5, by_epoch=True, begin=5, end=150,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=150, val_interval=10)
custom_hooks = [dict(type='EMAHook', momentum=4e-5, priority='ABOVE_NORMAL')]
