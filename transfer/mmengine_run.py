"""The one driver of the MMEngine runners (segmentation/train.py on MMSeg, classification/mmrun.py on
mmpretrain), in the shape of mmpretrain's own (open-mmlab/mmpretrain, tools/train.py): the config file
with its --cfg-options (`build_cfg`), the command line merged into it (`merge_args`), then
`Runner.from_cfg(cfg)`, train and test (`run`).

Here, not in the runners: the unknown --cfg-options refused, the work dir, launcher and seed, resuming
only the run's own last checkpoint, gloo on CPU, the fingerprint, the backbone load check (and, for a
frozen backbone, the check that training left it unchanged), the run's own checkpoints trusted on
resume, and final_metrics.json last. Each runner adds only its own: its data folders, weights,
metrics and per-image file.
"""
import os

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner, find_latest_checkpoint

from transfer import BadInput, fingerprint
from transfer.loadcheck import check_loaded
from transfer.runner import finish


def unknown_options(cfg, options):
    """The --cfg-options keys that name nothing in the config (MMEngine would add them silently)."""
    bad, tree = [], cfg.to_dict()
    for key in options or {}:
        node = tree
        for part in key.split("."):
            if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                bad.append(key)
                break
    return bad


def build_cfg(config, overrides=()):
    """The one way an MMEngine protocol config is built: the file, then the --cfg-options dict (as
    DictAction parses it), of keys the config has."""
    if not os.path.isfile(config):
        raise BadInput(f"--config {config}: no such file")
    try:
        cfg = Config.fromfile(config)
    except Exception as e:  # mmengine raises many types for a config it cannot read
        raise BadInput(f"--config {config}: cannot be read ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                       "fix the file") from None
    bad = unknown_options(cfg, overrides)
    if bad:
        raise BadInput(f"--cfg-options {', '.join(bad)}: no such key in {config}; check the spelling against the "
                       "config (MMEngine would add it silently and change nothing)")
    if overrides:
        cfg.merge_from_dict(dict(overrides))
    return cfg


def trust_own_checkpoints(runner):
    """MMEngine 0.10 resumes through torch.load's default, weights_only=True since torch 2.6, and its
    own checkpoints hold pickled logging objects. Those files are this run's own: load them fully, in
    this runner's resume() only (every other load stays weights_only)."""
    resume = runner.resume

    def resume_trusted(*args, **kwargs):
        old = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
        os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
        try:
            return resume(*args, **kwargs)
        finally:
            if old is None:
                del os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"]
            else:
                os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = old

    runner.resume = resume_trusted


def merge_args(cfg, args):
    """The command line merged into the config (mmpretrain tools/train.py's merge_args, less what our
    runners do not offer): work dir, launcher, seed, resume; the distributed backend on CPU."""
    if args.seed < 0:
        raise BadInput(f"--seed {args.seed}: must be 0 or more")
    cfg.work_dir = args.work_dir
    cfg.launcher = args.launcher
    cfg.randomness = dict(seed=args.seed)
    # MMEngine reads resume=True with a load_from as "resume from load_from" (mmengine/runner/runner.py,
    # load_or_resume): a pretrained backbone is not a training state. The runners load weights through the
    # backbone's init_cfg instead, and resume only from this run's own last checkpoint.
    cfg.resume = os.path.isdir(args.work_dir) and find_latest_checkpoint(args.work_dir) is not None
    if not torch.cuda.is_available():  # the configs name nccl, which needs CUDA
        cfg.env_cfg.dist_cfg = dict(backend="gloo")
    return cfg


def unwrap(model):
    return model.module if hasattr(model, "module") else model


class BackboneCheck(Hook):
    """Before training: every backbone tensor equals the converted file's (MMEngine's Pretrained init only
    logs what it could not match, mmselfsup#89); `expected` is the file's state dict, read from `path`
    when not given; `new`/`resized` as in transfer/loadcheck.py (a config's `moco_load_check`). After
    training a frozen backbone: every tensor, weights and BN running statistics alike, is what it was
    before (a linear probe trains the head only)."""

    def __init__(self, path, expected=None, frozen=False, new=(), resized=()):
        self.path, self.expected, self.frozen, self.new, self.resized = path, expected, frozen, new, resized
        self.start = None

    def before_train(self, runner):
        state = unwrap(runner.model).backbone.state_dict()
        if self.frozen:
            self.start = {k: v.detach().clone() for k, v in state.items()}
        if self.path and runner.iter == 0:  # resumed runs have trained since
            expected = self.expected
            if expected is None:
                expected = torch.load(self.path, map_location="cpu", weights_only=True)["state_dict"]
            n = check_loaded(self.path, expected, state, self.new, self.resized)
            runner.logger.info(f"backbone: all {n} tensors loaded from {self.path}")

    def after_train(self, runner):
        if not self.frozen:
            return
        now = unwrap(runner.model).backbone.state_dict()
        changed = [k for k, v in self.start.items() if not torch.equal(now[k].detach().cpu(), v.cpu())]
        if changed:
            raise RuntimeError(f"the frozen backbone changed during training: {len(changed)} tensors "
                               f"(e.g. {changed[:3]}); a linear probe must keep it in eval mode with no gradient")
        runner.logger.info(f"backbone: all {len(now)} tensors unchanged by training (frozen, eval mode)")


def start(cfg, task, facts, check=None):
    """Runner.from_cfg(cfg), the fingerprint written by rank 0 before training (facts(world_size)), the load
    check registered, the run's own checkpoints trusted."""
    runner = Runner.from_cfg(cfg)
    if runner.rank == 0:
        fingerprint.write(cfg.work_dir, task, facts(runner.world_size))
    if check is not None:
        runner.register_hook(check, priority="VERY_LOW")
    trust_own_checkpoints(runner)
    return runner


def run(cfg, task, facts, check=None, per_image=None, final=dict):
    """Train, then test; rank 0 writes the per-image file (per_image(work_dir, evaluator)), then
    final_metrics.json (final(metrics)) last, since the suite reads it as "this run finished".
    Returns the test metrics."""
    runner = start(cfg, task, facts, check)
    runner.train()
    metrics = runner.test()
    if runner.rank == 0:
        if per_image is not None:
            per_image(cfg.work_dir, runner.test_loop.evaluator)
        finish(cfg.work_dir, final(metrics))
    return metrics
