# Feature1-Feature5 on one GPU: one batch of 256, so each head's BN sees the 256 images the 8-GPU
# synchronised BN sees (accumulating smaller batches would change its statistics).
_base_ = ['./linear-stages_r50.py']
train_dataloader = dict(batch_size=256)
