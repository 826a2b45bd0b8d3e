# ADE20K UperNet, MoCo v3 ViT-B/16: the recipe behind the MAE paper's UperNet comparison (BEiT's
# semantic segmentation setup): 8 GPUs x 2 images, 160k iterations, 512 crops, sliding-window test.
_base_ = ['./_base_/upernet_vit_mln_moco.py', './_base_/upernet_ade20k_data.py',
          './_base_/upernet_schedule_160k_runtime.py']
