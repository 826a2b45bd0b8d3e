# MoCo v3 ResNet-50 linear probe, moco-v3 main_lincls.py / CONFIG.md: Linear N(0, 0.01) on res5 GAP,
# backbone frozen in eval mode; SGD m 0.9, wd 0, lr 0.1 x 1024/256 = 0.4; 8 GPUs x 128 = 1024 per update;
# 90 epochs, cosine stepped per epoch, no warmup.
# (= mmpretrain configs/mocov3/benchmarks/resnet50_8xb128-linear-coslr-90e_in1k.py)
_base_ = ['./linear_mocov2_r50.py']
recipe = 'mocov3_r50'
train_dataloader = dict(batch_size=128)
optim_wrapper = dict(optimizer=dict(lr=0.4))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=90, by_epoch=True, begin=0, end=90)]
train_cfg = dict(max_epochs=90)
