# Feature1-Feature5 on iNaturalist 2018 on one GPU: one batch of 256 (the heads' BN statistics as with 8 x 32
# synchronised).
_base_ = ['./linear-stages_r50_inat18.py']
train_dataloader = dict(batch_size=256)
