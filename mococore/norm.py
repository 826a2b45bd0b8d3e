"""The ImageNet normalisation every backbone here was trained with: torchvision's (and moco's
main_moco.py / main_lincls.py) mean and std of RGB in [0, 1]; the frameworks' configs write them for
pixels in [0, 255] (detectron2 and MMEngine's data preprocessors)."""
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
MEAN_255, STD_255 = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]  # 255 x MEAN, 255 x STD
