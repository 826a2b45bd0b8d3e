"""The effective configs equal the published protocols (moco detection/configs, mmselfsup benchmark configs), key by key."""
import pytest
from mmengine.config import Config

from tests.conftest import config_path

VOC = {
    "MODEL.RESNETS.NORM": "naiveSyncBN", "MODEL.ROI_HEADS.NAME": "Res5ROIHeadsExtraNorm",
    "MODEL.BACKBONE.FREEZE_AT": 0, "TEST.PRECISE_BN.ENABLED": True, "SOLVER.IMS_PER_BATCH": 16,
    "SOLVER.BASE_LR": 0.02, "SOLVER.MAX_ITER": 24000, "SOLVER.STEPS": (18000, 22000), "SOLVER.WARMUP_ITERS": 100,
    "INPUT.MIN_SIZE_TRAIN": (480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800), "INPUT.MIN_SIZE_TEST": 800,
    "MODEL.RPN.PRE_NMS_TOPK_TEST": 6000, "MODEL.RPN.POST_NMS_TOPK_TEST": 1000, "MODEL.ROI_HEADS.NUM_CLASSES": 20,
    "DATASETS.TRAIN": ("voc_2007_trainval", "voc_2012_trainval"), "DATASETS.TEST": ("voc_2007_test",),
    "INPUT.FORMAT": "RGB", "MODEL.PIXEL_MEAN": [123.675, 116.280, 103.530],
    "MODEL.PIXEL_STD": [58.395, 57.120, 57.375], "MODEL.RESNETS.STRIDE_IN_1X1": False, "MODEL.MASK_ON": False,
}
COCO = {
    "MODEL.RESNETS.NORM": "SyncBN", "MODEL.FPN.NORM": "SyncBN", "MODEL.BACKBONE.FREEZE_AT": 0,
    "TEST.PRECISE_BN.ENABLED": True, "SOLVER.IMS_PER_BATCH": 16, "SOLVER.BASE_LR": 0.02, "SOLVER.MAX_ITER": 90000,
    "SOLVER.STEPS": (60000, 80000), "INPUT.MIN_SIZE_TRAIN": (640, 672, 704, 736, 768, 800), "MODEL.MASK_ON": True,
    "INPUT.FORMAT": "RGB", "MODEL.PIXEL_MEAN": [123.675, 116.280, 103.530],
    "MODEL.PIXEL_STD": [58.395, 57.120, 57.375], "MODEL.RESNETS.STRIDE_IN_1X1": False,
    "MODEL.ROI_HEADS.NAME": "StandardROIHeads", "MODEL.BACKBONE.NAME": "build_resnet_fpn_backbone",
}
FCN = {
    "model.backbone.type": "ResNet", "model.backbone.depth": 50, "model.backbone.strides": (1, 2, 1, 1),
    "model.backbone.dilations": (1, 1, 2, 4), "model.backbone.contract_dilation": True,
    "model.backbone.norm_cfg.type": "SyncBN", "model.backbone.norm_eval": False,
    "model.decode_head.in_channels": 2048, "model.decode_head.channels": 512, "model.decode_head.num_convs": 2,
    "model.decode_head.concat_input": True, "model.decode_head.dropout_ratio": 0.1, "model.decode_head.num_classes": 21,
    "model.auxiliary_head.in_index": 2, "model.auxiliary_head.channels": 256,
    "model.auxiliary_head.loss_decode.loss_weight": 0.4, "optimizer.lr": 0.01, "optimizer.momentum": 0.9,
    "optimizer.weight_decay": 0.0005, "param_scheduler.0.power": 0.9, "param_scheduler.0.eta_min": 1e-4,
    "train_cfg.max_iters": 20000, "train_dataloader.batch_size": 4, "train_dataloader.dataset.datasets.0.pipeline.2.scale": (2048, 512),
    "train_dataloader.dataset.datasets.0.pipeline.2.ratio_range": (0.5, 2.0),
    "train_dataloader.dataset.datasets.0.pipeline.3.crop_size": (512, 512),
    "train_dataloader.dataset.datasets.0.pipeline.3.cat_max_ratio": 0.75, "model.test_cfg.mode": "whole",
    "model.data_preprocessor.bgr_to_rgb": True,
}


def lookup(cfg, dotted):
    node = cfg
    for part in dotted.split("."):
        node = node[int(part)] if isinstance(node, (list, tuple)) else node[part]
    return node


@pytest.mark.parametrize("name,expected", [("pascal_voc_R_50_C4_24k_moco.yaml", VOC), ("coco_R_50_FPN_1x_moco.yaml", COCO)])
def test_detectron2_protocol(name, expected):
    from detectron2.config import get_cfg

    from transfer.detection import heads  # noqa: F401

    cfg = get_cfg()
    cfg.merge_from_file(config_path("detectron2", name))
    for key, value in expected.items():
        got = lookup(cfg, key)
        assert (list(got) if isinstance(value, list) else got) == value, key


def test_fcn_protocol():
    cfg = Config.fromfile(config_path("mmseg", "fcn_r50-d8_4xb4-20k_voc12aug-512x512_moco.py"))
    for key, value in FCN.items():
        assert lookup(cfg, key) == value, key


def test_lowgpu_variants_keep_images_per_update():
    from detectron2.config import get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(config_path("detectron2", "pascal_voc_R_50_C4_24k_moco_lowgpu.yaml"))
    assert cfg.SOLVER.IMS_PER_BATCH * cfg.SOLVER.MAX_ITER == 16 * 24000 and cfg.SOLVER.BASE_LR == 0.01
    seg = Config.fromfile(config_path("mmseg", "fcn_r50-d8_1xb4-20k_voc12aug-512x512_moco_lowgpu.py"))
    assert seg.train_dataloader.batch_size * seg.optim_wrapper.accumulative_counts == 16


def detectron2_cfg(name):
    from detectron2.config import get_cfg

    from transfer.detection import heads  # noqa: F401

    cfg = get_cfg()
    cfg.merge_from_file(config_path("detectron2", name))
    return cfg


@pytest.mark.parametrize("task,name", [("voc", "pascal_voc_R_50_C4_24k_moco.yaml"), ("coco", "coco_R_50_FPN_1x_moco.yaml")])
def test_fingerprint_of_the_protocol_has_no_deviation(task, name):
    from transfer import fingerprint

    facts = fingerprint.detectron2_facts(detectron2_cfg(name), 8, 0)
    assert fingerprint.deviations(task, facts) == []
    assert facts["versions"]["detectron2"] and facts["gpus"] == 8
    quick = fingerprint.detectron2_facts(detectron2_cfg(name.replace("24k_moco", "quick").replace("1x_moco", "quick")), 1, 0)
    devs = fingerprint.deviations(task, quick)
    assert any(d.startswith("images_per_update: 2 ") for d in devs) and any(d.startswith("max_iter: 40 ") for d in devs)


def test_fingerprint_of_fcn_and_its_lowgpu_variant():
    from transfer import fingerprint

    facts = fingerprint.mmseg_facts(Config.fromfile(config_path("mmseg", "fcn_r50-d8_4xb4-20k_voc12aug-512x512_moco.py")), 4, 0)
    assert fingerprint.deviations("seg", facts) == [] and facts["stem"] == "7x7 conv (torchvision)"
    low = Config.fromfile(config_path("mmseg", "fcn_r50-d8_1xb4-20k_voc12aug-512x512_moco_lowgpu.py"))
    # same images per update and updates; only the BN statistics see fewer images on one GPU
    assert fingerprint.deviations("seg", fingerprint.mmseg_facts(low, 1, 0)) == ["bn_images: 4 (protocol 16)"]
    facts["stem"] = "deep 3x3 stem (ResNetV1c)"
    assert fingerprint.deviations("seg", facts) == ["stem: deep 3x3 stem (ResNetV1c) (protocol 7x7 conv (torchvision))"]


@pytest.mark.parametrize("size", ["s", "b"])
def test_upernet_lowgpu_variant_differs_only_in_bn_images(size):
    """Accumulated gradients: MMEngine counts every accumulation step as an iteration, so the warmup and
    max_iter of the config are 4x the protocol's; in updates they are the protocol's."""
    from transfer import fingerprint

    full = Config.fromfile(config_path("mmseg", f"upernet_vit-{size}16_mln_8xb2-160k_ade20k-512x512_moco.py"))
    assert fingerprint.deviations("ade20k-upernet", fingerprint.mmseg_facts(full, 8, 0)) == []
    low = Config.fromfile(config_path("mmseg", f"upernet_vit-{size}16_mln_2xb2-160k_ade20k-512x512_moco_lowgpu.py"))
    assert fingerprint.deviations("ade20k-upernet", fingerprint.mmseg_facts(low, 2, 0)) == []


def test_fcn_training_crops_are_padded_to_512_with_ignored_labels():
    """mmseg 1.2.2 pads in the model's SegDataPreProcessor (size=crop_size), not in the pipeline: a
    crop smaller than 512x512 (an image smaller than the crop) reaches the model as 512x512, the new
    pixels 0 and their labels 255 (ignored)."""
    import torch
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    from mmseg.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(config_path("mmseg", "fcn_r50-d8_4xb4-20k_voc12aug-512x512_moco.py"))
    pre = MODELS.build(cfg.model.data_preprocessor)
    sample = SegDataSample(gt_sem_seg=PixelData(data=torch.ones(1, 300, 400, dtype=torch.uint8)))
    out = pre({"inputs": [torch.full((3, 300, 400), 128, dtype=torch.uint8)], "data_samples": [sample]}, training=True)
    label = out["data_samples"][0].gt_sem_seg.data
    assert out["inputs"].shape == (1, 3, 512, 512) and label.shape == (1, 512, 512)
    assert (label[:, :300, :400] == 1).all() and (label[:, 300:, :] == 255).all() and (label[:, :, 400:] == 255).all()
