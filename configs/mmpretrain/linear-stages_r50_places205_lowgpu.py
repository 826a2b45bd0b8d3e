# Feature1-Feature5 on Places205 on one GPU: one batch of 256 (the heads' BN statistics as with 8 x 32 synchronised).
_base_ = ['./linear-stages_r50_places205.py']
train_dataloader = dict(batch_size=256)
