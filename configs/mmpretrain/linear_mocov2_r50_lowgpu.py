# The MoCo v2 linear probe on one GPU: 256 images per update in one batch (a frozen ResNet-50 keeps no
# activations for backward; the head has no batch statistics).
_base_ = ['./linear_mocov2_r50.py']
train_dataloader = dict(batch_size=256)
