"""FCN R50-D8 on VOC12aug through MMEngine's own Runner (mmseg tools/train.py, plus the checks), driven
by transfer/mmengine_run.py; here only what is MMSeg's: data folders, weights, fp16 on CPU, per-class IoU.

    python -m transfer.segmentation.train --config configs/mmseg/fcn_r50-d8_4xb4-20k_voc12aug-512x512_moco.py \
        --data-root /data --work-dir out/seg --weights backbone_mmseg.pth [--launcher pytorch] [--cfg-options k=v]

The converted backbone is checked tensor by tensor before the first iteration: a checkpoint
that did not load stops the run instead of training from random init (mmselfsup#89).
"""
import os
import sys

import numpy as np
import torch
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS

from transfer import fingerprint, mmengine_run, perimage
from transfer import runner as contract
from transfer.runner import entry
from transfer.mmengine_run import build_cfg


@METRICS.register_module()
class PerClassIoUMetric(IoUMetric):
    """mmseg's IoUMetric, also returning `IoU.<class>` (None for a class absent from both the
    predictions and the labels, which mIoU's nanmean skips as well), and keeping each image's
    intersection and union per class (`per_image`: names, (N, 2, C)) for transfer/perimage.py."""

    def process(self, data_batch, data_samples):
        start = len(self.results)
        super().process(data_batch, data_samples)
        for i, ds in zip(range(start, len(self.results)), data_samples):  # each image's counts, with its name
            self.results[i] = (*self.results[i], os.path.splitext(os.path.basename(ds["img_path"]))[0])

    def compute_metrics(self, results):
        rows = sorted((r[4], np.stack([r[0].cpu().numpy(), r[1].cpu().numpy()]).astype(np.int64)) for r in results)
        self.per_image = [n for n, _ in rows], np.stack([c for _, c in rows]) if rows else None
        results = [r[:4] for r in results]
        metrics = super().compute_metrics(results)
        inter, union = sum(r[0] for r in results), sum(r[1] for r in results)
        for name, i, u in zip(self.dataset_meta["classes"], inter.tolist(), union.tolist()):
            metrics[f"IoU.{name}"] = round(100 * i / u, 2) if u > 0 else None
        return metrics


def set_data_root(cfg, root):
    """Every dataset of the config reads <root>/<moco_data_dir> (VOC2012, ADEChallengeData2016, cityscapes)."""
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        ds = loader.dataset
        for d in ds.get("datasets", [ds]):
            d.data_root = os.path.join(root, cfg.get("moco_data_dir", "VOC2012"))


def run_cfg(args):
    """The protocol config plus this run's data root, folder, seed and launcher, and the weights."""
    cfg = build_cfg(args.config, args.cfg_options or ())
    set_data_root(cfg, args.data_root)
    mmengine_run.merge_args(cfg, args)
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        if evaluator.type == "IoUMetric":
            evaluator.type = "PerClassIoUMetric"
    if args.weights and not cfg.resume:  # the converted file is the backbone's own state dict
        cfg.model.backbone.init_cfg = dict(type="Pretrained", checkpoint=args.weights)
    if not torch.cuda.is_available() and cfg.optim_wrapper.type == "AmpOptimWrapper":
        cfg.optim_wrapper.type = "OptimWrapper"  # the recipe's fp16 is CUDA autocast
        cfg.optim_wrapper.pop("loss_scale", None)
    return cfg


def write_per_image(run_dir, evaluator):
    """RUN/per_image.npz: each test image's intersection and union per class (PerClassIoUMetric's)."""
    iou = next((m for m in evaluator.metrics if isinstance(m, PerClassIoUMetric)), None)
    if iou is not None and iou.per_image[1] is not None:
        perimage.write(run_dir, iou.per_image[0], None, {"sem_seg/mIoU": iou.per_image[1]})


def parser():
    """The runner contract's command line (transfer/runner.py), plus --task."""
    p = contract.parser(__doc__.split("\n")[0], "configs/mmseg/*.py", "folder with VOC2012/ (VOC12aug layout), "
                        "ADEChallengeData2016/ or cityscapes/", "backbone from converters/to_mmseg.py (random init without)",
                        override="cfg-options", launcher="mmengine")
    p.add_argument("--task", default="seg", help="the protocol (transfer/protocols.py) the fingerprint compares with")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    cfg = run_cfg(args)

    def facts(world_size):
        return fingerprint.mmseg_facts(cfg, world_size, args.seed, args.weights)

    # moco_load_check: the tensors the model adds or resizes by design (new=[regex], resized=[name])
    hook = mmengine_run.BackboneCheck(args.weights, **cfg.get("moco_load_check", {})) if args.weights else None
    return mmengine_run.run(cfg, args.task, facts, hook, per_image=write_per_image,
                            final=lambda metrics: {"sem_seg": metrics})


if __name__ == "__main__":
    sys.exit(entry(main))
