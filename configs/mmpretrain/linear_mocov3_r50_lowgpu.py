# The MoCo v3 ResNet-50 linear probe on one GPU: 256 per batch x 4 accumulated = 1024 images per update
# (exact: the frozen backbone and the head have no batch statistics).
_base_ = ['./linear_mocov3_r50.py']
train_dataloader = dict(batch_size=256)
optim_wrapper = dict(accumulative_counts=4)
