"""FCN through MMEngine's Runner with converted weights: loads them, trains, resumes its own state."""
import json
import os

import numpy as np
import pytest
import torch
import torchvision

from converters import to_mmseg
from tests.conftest import config_path
from transfer import perimage
from transfer.segmentation import train

TINY = ["train_cfg.max_iters=2", "train_cfg.val_interval=2", "default_hooks.checkpoint.interval=1",
        "param_scheduler.0.end=2"]


def converted_backbone(tmp_path):
    sd = {k: v for k, v in torchvision.models.resnet50().state_dict().items() if not k.startswith("fc.")}
    path = str(tmp_path / "r50_mmseg.pth")
    to_mmseg.save(to_mmseg.convert("resnet50", sd, "r50"), path)
    return path


def run(work_dir, demo_root, weights, iters=2):
    opts = [o.replace("=2", f"={iters}") for o in TINY]
    return train.main(["--config", config_path("mmseg", "fcn_r50-d8_quick_voc12aug.py"), "--data-root", demo_root,
                       "--work-dir", str(work_dir), "--weights", weights, "--cfg-options", *opts])


def test_weights_load_then_resume_from_own_checkpoint(tmp_path, demo_root):
    weights, work = converted_backbone(tmp_path), tmp_path / "seg"
    metrics = run(work, demo_root, weights)
    assert "mIoU" in metrics and os.path.exists(work / "iter_2.pth")
    final = json.load(open(work / "final_metrics.json"))["sem_seg"]
    per_class = [k for k in final if k.startswith("IoU.")]
    assert len(per_class) == 21 and "IoU.background" in per_class
    # the per-image file: each val image's intersection and union per class, which give the mIoU back
    data = perimage.read(str(work))
    val = [line.strip() for line in open(os.path.join(demo_root, "VOC2012", "ImageSets", "Segmentation", "val.txt"))]
    assert list(data["ids"]) == sorted(val) and data["sem_seg/mIoU"].shape == (len(val), 2, 21)
    assert (data["sem_seg/mIoU"][:, 0] <= data["sem_seg/mIoU"][:, 1]).all()
    assert perimage.metric("sem_seg/mIoU", data, np.ones((1, len(val))))[0] == pytest.approx(final["mIoU"], abs=0.005)
    log = open(next(work.glob("*/*.log"))).read()
    assert "backbone: all" in log and "tensors loaded from" in log
    # a longer schedule in the same folder resumes from iter_2.pth, not from the pretrained file
    run(work, demo_root, weights, iters=3)
    ck = torch.load(work / "iter_3.pth", map_location="cpu", weights_only=False)
    assert ck["meta"]["iter"] == 3
    assert "Auto resumed" in "".join(open(p).read() for p in work.glob("*/*.log"))
