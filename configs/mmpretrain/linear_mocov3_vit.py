# MoCo v3 ViT linear probe, moco-v3 main_lincls.py / CONFIG.md: a plain Linear N(0, 0.01) on the class token
# after the final LayerNorm, every block frozen; SGD m 0.9, wd 0, lr 3 x 1024/256 = 12; 8 GPUs x 128 = 1024
# per update; 90 epochs, cosine per epoch, no warmup.
# (= mmpretrain configs/mocov3/benchmarks/vit-small-p16_8xb128-linear-coslr-90e_in1k.py)
_base_ = ['./_base_/imagenet_linear.py', './_base_/default_runtime.py']
task = 'linear'
recipe = 'mocov3_vit'
# the recipe is the same for ViT-S/B/L: the runner takes the shape and the head count from --weights
# (MoCo v3's ViT-S has 12 heads; with DeiT's 6 the tensors load and the features are wrong)
vit_arch_from_weights = True
model = dict(
    type='ImageClassifier',
    backbone=dict(type='MoCoV3ViT', arch='mocov3-small', img_size=224, patch_size=16, stop_grad_conv1=True,
                  frozen_stages=12, norm_eval=True, out_type='cls_token', final_norm=True),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=1000, in_channels=384, loss=dict(type='CrossEntropyLoss'),
              init_cfg=dict(type='Normal', layer='Linear', std=0.01, bias=0.)))
train_dataloader = dict(batch_size=128)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=12., momentum=0.9, weight_decay=0.))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=90, by_epoch=True, begin=0, end=90)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=90, val_interval=10)
