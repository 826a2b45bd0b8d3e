# ViT fine-tuning on one GPU: 64 per batch x 8 accumulated = 512 images per update (ViTs have no batch
# statistics; Mixup/CutMix mix within each 64, as on 8 GPUs). MMEngine's EMAHook updates every iteration,
# i.e. 8 times per optimiser step: momentum 1 - (1 - 4e-5)^(1/8) keeps DeiT's 0.99996 per step.
_base_ = ['./finetune_vit_large.py']
train_dataloader = dict(batch_size=64)
optim_wrapper = dict(accumulative_counts=8)
custom_hooks = [dict(type='EMAHook', momentum=5e-6, priority='ABOVE_NORMAL')]
