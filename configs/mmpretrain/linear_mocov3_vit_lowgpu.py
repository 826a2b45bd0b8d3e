# The MoCo v3 ViT linear probe on one GPU: 256 per batch x 4 accumulated = 1024 images per update.
_base_ = ['./linear_mocov3_vit.py']
train_dataloader = dict(batch_size=256)
optim_wrapper = dict(accumulative_counts=4)
