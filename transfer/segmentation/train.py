"""FCN R50-D8 on VOC12aug through MMEngine's own Runner (mmseg tools/train.py, plus the checks).

    python -m transfer.segmentation.train --config configs/mmseg/fcn_r50-d8_4xb4-20k_voc12aug-512x512_moco.py \
        --data-root /data --work-dir out/seg --weights backbone_mmseg.pth [--launcher pytorch] [--cfg-options k=v]

The converted backbone is checked tensor by tensor before the first iteration: a checkpoint
that did not load stops the run instead of training from random init (mmselfsup#89).
"""
import argparse
import json
import os

# MMEngine 0.10 resumes with torch.load's default, which torch >= 2.6 made weights_only=True;
# its own checkpoints hold logging objects. They are files this run wrote, so load them fully.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.runner import Runner, find_latest_checkpoint  # noqa: E402
from mmseg.evaluation import IoUMetric  # noqa: E402
from mmseg.registry import METRICS  # noqa: E402

from transfer import fingerprint  # noqa: E402


class BackboneLoadedCheck(Hook):
    """Before training: every backbone tensor equals the converted checkpoint's."""

    def __init__(self, path):
        self.path = path

    def before_train(self, runner):
        if runner.iter > 0:  # resumed: the backbone has trained since
            return
        expected = torch.load(self.path, map_location="cpu", weights_only=True)["state_dict"]
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        actual = model.backbone.state_dict()
        missing = [k for k in actual if k not in expected and not k.endswith("num_batches_tracked")]
        differ = [k for k in expected if k in actual and not torch.equal(actual[k].cpu(), expected[k])]
        if missing or differ or len(expected) > len(actual):
            raise RuntimeError(f"{self.path}: the backbone did not load: {len(missing)} tensors missing "
                               f"(e.g. {missing[:2]}), {len(differ)} differ (e.g. {differ[:2]})")
        runner.logger.info(f"backbone: all {len(actual)} tensors loaded from {self.path}")


@METRICS.register_module()
class PerClassIoUMetric(IoUMetric):
    """mmseg's IoUMetric, also returning `IoU.<class>` (None for a class absent from both the
    predictions and the labels, which mIoU's nanmean skips as well)."""

    def compute_metrics(self, results):
        metrics = super().compute_metrics(results)
        inter, union = sum(r[0] for r in results), sum(r[1] for r in results)
        for name, i, u in zip(self.dataset_meta["classes"], inter.tolist(), union.tolist()):
            metrics[f"IoU.{name}"] = round(100 * i / u, 2) if u > 0 else None
        return metrics


def set_data_root(cfg, voc2012):
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        ds = loader.dataset
        for d in ds.get("datasets", [ds]):
            d.data_root = voc2012


def build_cfg(args):
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    set_data_root(cfg, os.path.join(args.data_root, "VOC2012"))
    cfg.work_dir = args.work_dir
    cfg.launcher = args.launcher
    cfg.randomness = dict(seed=args.seed)
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        if evaluator.type == "IoUMetric":
            evaluator.type = "PerClassIoUMetric"
    # MMEngine reads resume=True with a load_from as "resume from load_from": a pretrained backbone
    # is not a training state. Resume only from this run's own last checkpoint; else load weights.
    cfg.resume = find_latest_checkpoint(args.work_dir) is not None if os.path.isdir(args.work_dir) else False
    if args.weights and not cfg.resume:
        # a full-model file with the backbone under 'backbone.': heads stay at their init
        sd = torch.load(args.weights, map_location="cpu", weights_only=True)["state_dict"]
        full = os.path.join(args.work_dir, "pretrained_full_model.pth")
        os.makedirs(args.work_dir, exist_ok=True)
        tmp = f"{full}.{os.getpid()}.tmp"  # every rank writes the same file: atomically, each its own copy
        torch.save({"state_dict": {f"backbone.{k}": v for k, v in sd.items()}}, tmp)
        os.replace(tmp, full)
        cfg.load_from = full
    if not torch.cuda.is_available():
        cfg.env_cfg.dist_cfg = dict(backend="gloo")
    return cfg


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--data-root", required=True, help="folder with VOC2012/ (VOC12aug layout)")
    p.add_argument("--work-dir", required=True)
    p.add_argument("--weights", default=None, help="backbone from converters/to_mmseg.py")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--launcher", default="none", choices=["none", "pytorch", "slurm", "mpi"])
    p.add_argument("--cfg-options", nargs="+", action=DictAction)
    p.add_argument("--local_rank", "--local-rank", type=int, default=0)
    args = p.parse_args(argv)
    cfg = build_cfg(args)
    runner = Runner.from_cfg(cfg)
    if runner.rank == 0:
        fingerprint.write(args.work_dir, "seg", fingerprint.mmseg_facts(cfg, runner.world_size, args.seed, args.weights))
    if args.weights:
        runner.register_hook(BackboneLoadedCheck(args.weights), priority="VERY_LOW")
    runner.train()
    metrics = runner.test()
    if runner.rank == 0:
        with open(os.path.join(args.work_dir, "final_metrics.json"), "w") as f:
            json.dump({"sem_seg": metrics}, f, indent=1)
    return metrics


if __name__ == "__main__":
    main()
