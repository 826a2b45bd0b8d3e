"""What a number was measured under: a run's protocol facts, read from its effective config, and
where they differ from the published protocol (the facts in transfer/protocols.py).

Each run writes `fingerprint.json`; the suite's report prints the facts and every deviation
beside the numbers, so that a quick, low-GPU or hand-edited run is never mistaken for the protocol.
"""
import os
import platform

from mococore.files import atomic_json
from transfer import protocols

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
                stem=protocols.TORCHVISION_STEM if m.RESNETS.STEM_OUT_CHANNELS == 64 else "other",
                stride_in_1x1=m.RESNETS.STRIDE_IN_1X1, freeze_at=m.BACKBONE.FREEZE_AT,
                precise_bn=cfg.TEST.PRECISE_BN.ENABLED, images_per_update=s.IMS_PER_BATCH,
                bn_images=bn_images(m.RESNETS.NORM, s.IMS_PER_BATCH // world_size, world_size), base_lr=s.BASE_LR,
                max_iter=s.MAX_ITER, steps=list(s.STEPS), train_min_size=list(cfg.INPUT.MIN_SIZE_TRAIN),
                test_size=cfg.INPUT.MIN_SIZE_TEST, gpus=world_size, seed=seed, weights=m.WEIGHTS or "random init",
                train_sets=list(cfg.DATASETS.TRAIN), test_sets=list(cfg.DATASETS.TEST), versions=versions())


def mmseg_facts(cfg, world_size, seed, weights=None):
    bb, pre = cfg.model.backbone, cfg.model.data_preprocessor
    poly = next(s for s in cfg.param_scheduler if s["type"] == "PolyLR")
    ds = cfg.train_dataloader.dataset
    crop = next(t["crop_size"] for t in ds.get("datasets", [ds])[0].pipeline if t["type"] == "RandomCrop")
    accumulate = cfg.optim_wrapper.get("accumulative_counts", 1)
    per_gpu = cfg.train_dataloader.batch_size
    facts = dict(backbone=bb.type, input="RGB" if pre.get("bgr_to_rgb") else "BGR", pixel_mean=list(pre.mean),
                 pixel_std=list(pre.std), images_per_update=per_gpu * world_size * accumulate,
                 base_lr=cfg.optim_wrapper.optimizer.lr, max_iter=cfg.train_cfg.max_iters // accumulate,
                 schedule=f"poly {poly['power']}, min lr {poly['eta_min']}", crop=list(crop),
                 test=cfg.model.test_cfg.mode, gpus=world_size, seed=seed, weights=weights or "random init",
                 versions=versions())
    if bb.type == "VisionTransformer":
        warmup = next((s for s in cfg.param_scheduler if s["type"] == "LinearLR"), {})
        facts.update(neck=cfg.model.neck.type, weight_decay=cfg.optim_wrapper.optimizer.get("weight_decay"),
                     layer_decay=cfg.get("layer_decay"),
                     warmup=warmup["end"] // accumulate if warmup else None,  # in updates, as max_iter
                     patch_bias=bb.get("patch_bias"), final_norm=bb.get("final_norm"), embed_dims=bb.get("embed_dims"),
                     num_heads=bb.get("num_heads"))
    else:
        facts.update(norm=bb.norm_cfg.type, norm_eval=bb.norm_eval,
                     stem=protocols.TORCHVISION_STEM if bb.type == "ResNet" else "deep 3x3 stem (ResNetV1c)",
                     bn_images=bn_images(bb.norm_cfg.type, per_gpu, world_size))
    return facts


def deviations(task, facts):
    """'key: ours (protocol X)' for every fact that differs from the published protocol."""
    # per task, per recipe, or both (a derived protocol on a recipe: linear-sweep)
    reference = dict(protocols.RECIPES.get(facts.get("recipe"), {}), **protocols.get(task).facts)
    return [f"{k}: {facts.get(k)} (protocol {v})" for k, v in reference.items() if facts.get(k) != v]


def write(run_dir, task, facts):
    facts = dict(facts, task=task, deviations=deviations(task, facts))
    atomic_json(os.path.join(run_dir, "fingerprint.json"), facts, default=str)
    return facts
