"""FCN R50-D8 on VOC12aug through MMEngine's own Runner (mmseg tools/train.py, plus the checks).

    python -m transfer.segmentation.train --config configs/mmseg/fcn_r50-d8_4xb4-20k_voc12aug-512x512_moco.py \
        --data-root /data --work-dir out/seg --weights backbone_mmseg.pth [--launcher pytorch] [--cfg-options k=v]

The converted backbone is checked tensor by tensor before the first iteration: a checkpoint
that did not load stops the run instead of training from random init (mmselfsup#89).
"""
import argparse
import os
import sys

import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.hooks import Hook
from mmengine.runner import Runner, find_latest_checkpoint
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS

from transfer import fingerprint, loadcheck, perimage
from transfer.runner import entry, finish
from transfer.mmengine_run import build_cfg, trust_own_checkpoints


class BackboneLoadedCheck(Hook):
    """Before training: every backbone tensor equals the converted checkpoint's. The config may list
    tensors the model adds or resizes by design: `moco_load_check = dict(new=[regex], resized=[name])`."""

    def __init__(self, path, new=(), resized=()):
        self.path, self.new, self.resized = path, new, resized

    def before_train(self, runner):
        if runner.iter > 0:  # resumed: the backbone has trained since
            return
        expected = torch.load(self.path, map_location="cpu", weights_only=True)["state_dict"]
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        n = loadcheck.check_loaded(self.path, expected, model.backbone.state_dict(), self.new, self.resized)
        runner.logger.info(f"backbone: all {n} tensors loaded from {self.path}")


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
    cfg.work_dir = args.work_dir
    cfg.launcher = args.launcher
    cfg.randomness = dict(seed=args.seed)
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        if evaluator.type == "IoUMetric":
            evaluator.type = "PerClassIoUMetric"
    # MMEngine reads resume=True with a load_from as "resume from load_from": a pretrained backbone
    # is not a training state. Resume only from this run's own last checkpoint; else load weights.
    cfg.resume = find_latest_checkpoint(args.work_dir) is not None if os.path.isdir(args.work_dir) else False
    if args.weights and not cfg.resume:  # the converted file is the backbone's own state dict
        cfg.model.backbone.init_cfg = dict(type="Pretrained", checkpoint=args.weights)
    if not torch.cuda.is_available():
        cfg.env_cfg.dist_cfg = dict(backend="gloo")
        if cfg.optim_wrapper.type == "AmpOptimWrapper":  # the recipe's fp16 is CUDA autocast
            cfg.optim_wrapper.type = "OptimWrapper"
            cfg.optim_wrapper.pop("loss_scale", None)
    return cfg


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--data-root", required=True, help="folder with VOC2012/ (VOC12aug layout)")
    p.add_argument("--work-dir", required=True)
    p.add_argument("--weights", default=None, help="backbone from converters/to_mmseg.py")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--task", default="seg", help="the protocol (transfer/protocols.py) the fingerprint compares with")
    p.add_argument("--launcher", default="none", choices=["none", "pytorch", "slurm", "mpi"])
    p.add_argument("--cfg-options", nargs="+", action=DictAction)
    p.add_argument("--local_rank", "--local-rank", type=int, default=0)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    cfg = run_cfg(args)
    runner = Runner.from_cfg(cfg)
    if runner.rank == 0:
        fingerprint.write(args.work_dir, args.task, fingerprint.mmseg_facts(cfg, runner.world_size, args.seed, args.weights))
    if args.weights:
        check = cfg.get("moco_load_check", {})
        runner.register_hook(BackboneLoadedCheck(args.weights, check.get("new", ()), check.get("resized", ())),
                             priority="VERY_LOW")
    trust_own_checkpoints(runner)
    runner.train()
    metrics = runner.test()
    if runner.rank == 0:
        iou = next((m for m in runner.test_loop.evaluator.metrics if isinstance(m, PerClassIoUMetric)), None)
        if iou is not None and iou.per_image[1] is not None:  # before final_metrics.json: it marks the end
            perimage.write(args.work_dir, iou.per_image[0], None, {"sem_seg/mIoU": iou.per_image[1]})
        finish(args.work_dir, {"sem_seg": metrics})
    return metrics


if __name__ == "__main__":
    sys.exit(entry(main))
