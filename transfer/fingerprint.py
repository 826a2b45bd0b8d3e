"""What a number was measured under: a run's protocol facts, read from its effective config, and
where they differ from the published protocol (PROTOCOLS.md section 3).

Each run writes `fingerprint.json`; the suite's report prints the facts and every deviation
beside the numbers, so that a quick, low-GPU or hand-edited run is never mistaken for the protocol.
"""
import json
import os
import platform

RGB_MEAN, RGB_STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
PROTOCOL = {
    "voc": dict(norm="naiveSyncBN", extra_res5_norm=True, input="RGB", pixel_mean=RGB_MEAN, pixel_std=RGB_STD,
                stem="7x7 conv (torchvision)", stride_in_1x1=False, freeze_at=0, precise_bn=True,
                images_per_update=16, bn_images=16, base_lr=0.02, max_iter=24000, steps=[18000, 22000],
                train_min_size=[480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800], test_size=800),
    "coco": dict(norm="SyncBN", fpn_norm="SyncBN", input="RGB", pixel_mean=RGB_MEAN, pixel_std=RGB_STD,
                 stem="7x7 conv (torchvision)", stride_in_1x1=False, freeze_at=0, precise_bn=True,
                 images_per_update=16, bn_images=16, base_lr=0.02, max_iter=90000, steps=[60000, 80000],
                 train_min_size=[640, 672, 704, 736, 768, 800], test_size=800),
    "seg": dict(backbone="ResNet", norm="SyncBN", norm_eval=False, input="RGB", pixel_mean=RGB_MEAN,
                pixel_std=RGB_STD, stem="7x7 conv (torchvision)", images_per_update=16, bn_images=16, base_lr=0.01,
                max_iter=20000, schedule="poly 0.9, min lr 0.0001", crop=[512, 512], test="whole"),
}


def versions():
    import torch
    import torchvision

    out = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__}
    for name in ("detectron2", "mmengine", "mmseg", "mmcv"):
        try:
            out[name] = __import__(name).__version__
        except Exception:
            pass
    return out


def bn_images(norm, per_gpu, world_size):
    """Images behind each batch-norm statistic: all GPUs' with a synchronised BN, one GPU's without."""
    return per_gpu * world_size if norm in ("SyncBN", "naiveSyncBN") else per_gpu


def detectron2_facts(cfg, world_size, seed):
    m, s = cfg.MODEL, cfg.SOLVER
    return dict(norm=m.RESNETS.NORM, fpn_norm=m.FPN.NORM if "fpn" in m.BACKBONE.NAME.lower() else None,
                extra_res5_norm=m.ROI_HEADS.NAME == "Res5ROIHeadsExtraNorm", input=cfg.INPUT.FORMAT,
                pixel_mean=[round(v, 3) for v in m.PIXEL_MEAN], pixel_std=[round(v, 3) for v in m.PIXEL_STD],
                stem="7x7 conv (torchvision)" if m.RESNETS.STEM_OUT_CHANNELS == 64 else "other",
                stride_in_1x1=m.RESNETS.STRIDE_IN_1X1, freeze_at=m.BACKBONE.FREEZE_AT,
                precise_bn=cfg.TEST.PRECISE_BN.ENABLED, images_per_update=s.IMS_PER_BATCH,
                bn_images=bn_images(m.RESNETS.NORM, s.IMS_PER_BATCH // world_size, world_size), base_lr=s.BASE_LR,
                max_iter=s.MAX_ITER, steps=list(s.STEPS), train_min_size=list(cfg.INPUT.MIN_SIZE_TRAIN),
                test_size=cfg.INPUT.MIN_SIZE_TEST, gpus=world_size, seed=seed, weights=m.WEIGHTS or "random init",
                train_sets=list(cfg.DATASETS.TRAIN), test_sets=list(cfg.DATASETS.TEST), versions=versions())


def mmseg_facts(cfg, world_size, seed, weights=None):
    bb, pre = cfg.model.backbone, cfg.model.data_preprocessor
    poly = cfg.param_scheduler[0]
    crop = next(t["crop_size"] for t in cfg.train_dataloader.dataset.datasets[0].pipeline if t["type"] == "RandomCrop")
    accumulate = cfg.optim_wrapper.get("accumulative_counts", 1)
    per_gpu = cfg.train_dataloader.batch_size
    return dict(backbone=bb.type, norm=bb.norm_cfg.type, norm_eval=bb.norm_eval,
                input="RGB" if pre.get("bgr_to_rgb") else "BGR", pixel_mean=list(pre.mean), pixel_std=list(pre.std),
                stem="7x7 conv (torchvision)" if bb.type == "ResNet" else "deep 3x3 stem (ResNetV1c)",
                images_per_update=per_gpu * world_size * accumulate, bn_images=bn_images(bb.norm_cfg.type, per_gpu, world_size),
                base_lr=cfg.optim_wrapper.optimizer.lr, max_iter=cfg.train_cfg.max_iters // accumulate,
                schedule=f"poly {poly['power']}, min lr {poly['eta_min']}", crop=list(crop),
                test=cfg.model.test_cfg.mode, gpus=world_size, seed=seed, weights=weights or "random init",
                versions=versions())


def deviations(task, facts):
    """'key: ours (protocol X)' for every fact that differs from the published protocol."""
    return [f"{k}: {facts.get(k)} (protocol {v})" for k, v in PROTOCOL[task].items() if facts.get(k) != v]


def write(run_dir, task, facts):
    facts = dict(facts, task=task, deviations=deviations(task, facts))
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "fingerprint.json"), "w") as f:
        json.dump(facts, f, indent=1)
    return facts
