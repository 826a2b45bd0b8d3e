"""Detectron2 training for the VOC (Faster R-CNN R50-C4) and COCO (Mask R-CNN R50-FPN) protocols.

moco's detection/train_net.py on detectron2's own DefaultTrainer and launch(), plus: the data
root is registered in every worker, SyncBN becomes BN at world size 1 (nn.SyncBatchNorm needs a
process group), the run ends by writing final_metrics.json. Its command line is the runner contract's
(transfer/runner.py): --work-dir, --seed and --weights are the config's OUTPUT_DIR, SEED and MODEL.WEIGHTS,
and detectron2's KEY VALUE overrides follow --opts. Examples:

    python -m transfer.detection.train_net --config configs/detectron2/pascal_voc_R_50_C4_24k_moco.yaml \
        --data-root /data --work-dir out/voc --seed 0 --weights out.pkl --num-gpus 8 [--opts SOLVER.MAX_ITER 100]
    python -m transfer.detection.train_net ... --num-machines 2 --machine-rank 0 --dist-url tcp://host:port
"""
import argparse
import json
import logging
import os
import re
import sys

import torch
from detectron2.config import get_cfg
from detectron2.engine import DefaultTrainer, default_setup, hooks, launch
from detectron2.utils import comm

from mococore.files import atomic_json
from mocodata import register
from transfer import BadInput, fingerprint, loadcheck, runner
from transfer.detection.weights import read_model
from transfer.runner import entry, finish
from transfer.detection import heads  # noqa: F401  (registers Res5ROIHeadsExtraNorm)
from transfer.detection.coco_eval import FastCOCOEvaluator
from transfer.detection.voc_eval import FastPascalVOCDetectionEvaluator

logger = logging.getLogger("detectron2.transfer")  # under detectron2's logger: its handlers, its log.txt


class Trainer(DefaultTrainer):
    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference")
        # the same numbers as detectron2's evaluators, faster at real scale (tests/test_*_eval.py, tools/bench_eval.py)
        if dataset_name.startswith("coco"):
            return FastCOCOEvaluator(dataset_name, output_dir=output_folder)
        return FastPascalVOCDetectionEvaluator(dataset_name)

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """detectron2's evaluation; its latest results are also written to OUTPUT_DIR/eval_metrics.json
        (main() renames them final_metrics.json once training has finished)."""
        results = super().test(cfg, model, evaluators)
        if comm.is_main_process():
            atomic_json(os.path.join(cfg.OUTPUT_DIR, "eval_metrics.json"), results)
        return results

    def build_hooks(self):
        """detectron2's hooks; on a short schedule the metrics are written every max_iter / 10 iterations
        (instead of every 20), so that a quick run's training curve has points to read."""
        hooks_ = super().build_hooks()
        period = max(1, min(20, self.cfg.SOLVER.MAX_ITER // 10))
        for h in hooks_:
            if isinstance(h, hooks.PeriodicWriter):  # its period has no setter; a new hook would open
                h._period = period                     # a second TensorBoard event file
        return hooks_

    def resume_or_load(self, resume=True):
        resuming = resume and self.checkpointer.has_checkpoint()
        super().resume_or_load(resume)  # this run's own state, or the pretrained weights, or random init
        if self.cfg.MODEL.WEIGHTS and not resuming:
            n = check_backbone_loaded(self.cfg.MODEL.WEIGHTS, self.model)
            logger.info(f"backbone: every pretrained tensor loaded from {self.cfg.MODEL.WEIGHTS} ({n} tensors)")


# where the architecture puts the converted ResNet's stem and stages (C4: backbone + roi_heads.res5;
# FPN: backbone.bottom_up); the rest of a model key is the converted file's key
PRETRAINED = re.compile(r"^(backbone\.(bottom_up\.)?|roi_heads\.)(?=(stem|res[2-5])\.)")


def check_backbone_loaded(path, model):
    """Every ResNet tensor of the model equals the converted file's, after detectron2's own loading."""
    expected = {k: torch.as_tensor(v) for k, v in read_model(path, "MODEL.WEIGHTS").items()}
    actual = {PRETRAINED.sub("", k): v for k, v in model.state_dict().items() if PRETRAINED.match(k)}
    return loadcheck.check_loaded(path, expected, actual, new=[r"^res5\.norm\."])  # the protocol's extra norm


# the config keys the contract's flags set: one way each
OWN = {"OUTPUT_DIR": "--work-dir (run_suite: --out)", "SEED": "--seed (run_suite: --seeds)", "MODEL.WEIGHTS": "--weights"}


def build_cfg(config, overrides=()):
    """The one way a detectron2 protocol config is built: the file, then the --opts KEY VALUE pairs (keys
    the config has: yacs refuses others; not those the contract's flags set)."""
    taken = [k for k in list(overrides)[::2] if k in OWN]
    if taken:
        raise BadInput(f"--opts {taken[0]}: set by the runner's {OWN[taken[0]]}; give it there")
    cfg = get_cfg()
    cfg.merge_from_file(config)
    try:
        cfg.merge_from_list(list(overrides))
    except (KeyError, ValueError, AssertionError, AttributeError) as e:
        raise BadInput(f"--opts {' '.join(overrides)}: {e}") from None
    return cfg


def run_cfg(args):
    """This run's config: the protocol's, with the contract's work dir, seed and weights."""
    cfg = build_cfg(args.config, args.opts)
    cfg.OUTPUT_DIR, cfg.SEED = args.work_dir, args.seed
    if args.weights:
        cfg.MODEL.WEIGHTS = args.weights
    return cfg


def adapt_to_world(cfg, world_size):
    """SyncBN needs a process group: at world size 1 it is plain BN (naiveSyncBN already is)."""
    for node in (cfg.MODEL.RESNETS, cfg.MODEL.FPN):
        if world_size == 1 and node.NORM == "SyncBN":
            logger.warning("one process: SyncBN -> BN (identical statistics at world size 1)")
            node.NORM = "BN"
    if not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cpu"
    if cfg.SOLVER.IMS_PER_BATCH % world_size:
        raise SystemExit(f"error: SOLVER.IMS_PER_BATCH={cfg.SOLVER.IMS_PER_BATCH} is not divisible by "
                         f"{world_size} processes; pick a GPU count that divides it or a lowgpu config")


def setup(args):
    cfg = run_cfg(args)
    adapt_to_world(cfg, comm.get_world_size())  # what the world size and the device change
    cfg.freeze()
    # logs the environment and the config file (detectron2 names it args.config_file), writes config.yaml
    default_setup(cfg, argparse.Namespace(config_file=args.config, **vars(args)))
    return cfg


def main(args):
    root = args.data_root
    register.register_voc(root)
    register.register_coco(root)
    cfg = setup(args)
    if comm.is_main_process():
        task = "voc" if cfg.DATASETS.TEST[0].startswith("voc") else "coco"
        fingerprint.write(cfg.OUTPUT_DIR, task, fingerprint.detectron2_facts(cfg, comm.get_world_size(), cfg.SEED))
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    if args.eval_only:
        results = Trainer.test(cfg, trainer.model)
    else:
        latest = os.path.join(cfg.OUTPUT_DIR, "eval_metrics.json")
        if comm.is_main_process() and os.path.exists(latest):
            os.remove(latest)  # an earlier, interrupted run's
        trainer.train()  # its EvalHook always evaluates after the last iteration: eval_metrics.json
        results = json.load(open(latest)) if comm.is_main_process() else None
    if comm.is_main_process():
        finish(cfg.OUTPUT_DIR, results)
    return results


class Renamed(argparse.Action):
    """detectron2's --config-file: named, with the contract's flag to use instead."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string}: this runner takes the runner contract's --config CFG --work-dir RUN "
                     "[--seed N] [--weights W] [--opts KEY VALUE ...] (OUTPUT_DIR, SEED and MODEL.WEIGHTS are flags)")


def build_parser():
    """The runner contract's command line (transfer/runner.py) with detectron2's KEY VALUE overrides."""
    p = runner.parser(__doc__.split("\n")[0], "a yacs config under configs/detectron2/",
                      "folder with VOC2007/, VOC2012/, coco/",
                      "converters/to_detectron2.py output (.pkl), MODEL.WEIGHTS; none: the config's (random init)",
                      override="opts", launcher="detectron2")
    p.add_argument("--eval-only", action="store_true", help="evaluate the weights (or, with --resume, the "
                                                            "work dir's last checkpoint) without training")
    p.add_argument("--config-file", action=Renamed, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


def preflight(args):
    """The overrides and the weights, checked before any process starts: a .pkl is read with the
    numpy-only unpickler here, before detectron2's checkpointer (a plain pickle.load) sees it."""
    cfg = run_cfg(args)
    if cfg.MODEL.WEIGHTS and not cfg.MODEL.WEIGHTS.startswith(("detectron2://", "http://", "https://")):
        read_model(cfg.MODEL.WEIGHTS, "--weights" if args.weights else f"{args.config}: MODEL.WEIGHTS")


def invoke_main(argv=None):
    """Parse, check in this process (BadInput: exit 2 through entry()), then launch the workers."""
    args = build_parser().parse_args(argv)
    preflight(args)
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))
    return 0


if __name__ == "__main__":
    sys.exit(entry(invoke_main))
