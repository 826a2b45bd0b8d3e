"""ViTDet (Mask R-CNN on a plain ViT) on COCO through detectron2's LazyConfig training loop.

The loop of detectron2's tools/lazyconfig_train_net.py (instantiate the config, AMPTrainer or
SimpleTrainer, its hooks, its checkpointer and evaluator, launch()), plus the project's contract:
the data root is checked and registered in every worker, the converted ViT is checked tensor by
tensor before the first iteration, and the run ends with final_metrics.json and fingerprint.json.

    python -m transfer.detection.lazy_train --config configs/detectron2/vitdet/mask_rcnn_vitdet_b_100ep_moco.py \
        --data-root /data --work-dir out/vitdet --seed 0 --weights vit_b.pkl --num-gpus 8 [--opts k=v ...]
"""
import argparse
import logging
import os
import sys

import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.engine import AMPTrainer, SimpleTrainer, default_setup, default_writers, hooks, launch
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm
from omegaconf import OmegaConf

from mocodata import register, validate
from transfer import BadInput, fingerprint, loadcheck, runner
from converters.safe_pickle import read_numpy_pickle
from transfer.detection.weights import read_model
from transfer.runner import entry, finish

TASK = "coco-vitdet"
logger = logging.getLogger("detectron2.transfer")
INSTALL = ("install detectron2 at upstream 02b5c4e (ViTDet, native ops): PIP_FIND_LINKS=<folder with its wheel> "
           "python tools/install_detectron2.py -c requirements/constraints.txt, or on a machine with network "
           "pip install --no-build-isolation "
           "'git+https://github.com/facebookresearch/detectron2.git@02b5c4e295e990042a714712c21dc79b731e8833'")


def build_parser():
    """The runner contract's command line (transfer/runner.py) with LazyConfig's key=value overrides."""
    p = runner.parser(__doc__.split("\n")[0], "a LazyConfig under configs/detectron2/vitdet/",
                      "folder with coco/{annotations,train2017,val2017}",
                      "converters/to_detectron2.py output (.pkl); none: random init",
                      override="lazy-opts", launcher="detectron2")
    p.set_defaults(weights="")  # train.init_checkpoint's own "none"
    return p


def preflight(args):
    """The reason this run cannot start (one paragraph), or None. Reads; writes nothing."""
    try:
        import detectron2.modeling.backbone.vit  # noqa: F401
    except ImportError:
        return f"the installed detectron2 has no ViTDet (detectron2.modeling.backbone.vit): {INSTALL}."
    if not (os.path.isfile(args.config) and args.config.endswith(".py")):
        return f"--config {args.config}: not a LazyConfig .py file; use configs/detectron2/vitdet/*.py."
    try:
        validate.check_task("coco", args.data_root)
    except validate.DataError as e:
        return f"--data-root: {e}. Point it at a folder with coco/ (python -m mocodata make-demo writes one)."
    if args.weights:
        problem = weights_problem(args.weights)
        if problem:
            return f"--weights {args.weights}: {problem}. Convert the MoCo v3 checkpoint with converters/to_detectron2.py."
    try:
        cfg = build_cfg(args.config, args.opts)
    except BadInput as e:
        return str(e)
    except Exception as e:
        return f"--config {args.config}: cannot be loaded ({type(e).__name__}: {e})."
    world = args.num_gpus * args.num_machines
    if cfg.dataloader.train.total_batch_size % world:
        return (f"--num-gpus {args.num_gpus}: {world} processes do not divide the "
                f"{cfg.dataloader.train.total_batch_size} images per update of {args.config}; "
                "pick a GPU count that divides it, or the _lowgpu config.")
    return None


def build_cfg(config, overrides=()):
    """The one way a ViTDet protocol config is built: the LazyConfig, then key=value overrides of keys it has
    (LazyConfig would add a misspelt key silently)."""
    cfg = LazyConfig.load(config)
    absent = object()
    unknown = [o for o in overrides
               if "=" not in o or OmegaConf.select(cfg, o.split("=", 1)[0], default=absent) is absent]
    if unknown:
        raise BadInput(f"--opts {' '.join(unknown)}: no such key in {config} (write key=value with an existing key).")
    return LazyConfig.apply_overrides(cfg, list(overrides))


def weights_problem(path):
    try:
        model = read_model(path)
    except BadInput as e:
        return str(e).split(": ", 1)[1].split("; converters/")[0]
    if not any(k.startswith("backbone.net.") for k in model):
        return "holds no ViTDet backbone tensors (backbone.net.*)"
    return None


def load_cfg(args):
    """The config with this run's paths, seed and weights; CPU and no AMP without a GPU."""
    cfg = build_cfg(args.config, args.opts)
    cfg.train.output_dir = args.work_dir
    cfg.train.seed = args.seed
    cfg.train.init_checkpoint = args.weights
    if not torch.cuda.is_available():
        cfg.train.device = "cpu"
        cfg.train.amp.enabled = False  # AMPTrainer is CUDA autocast
    return cfg


def do_test(cfg, model):
    results = inference_on_dataset(model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator))
    print_csv_format(results)
    return results


def check_weights(cfg, model):
    """Every ViT tensor of the file is in the model with its value; only what ViTDet adds is new."""
    expected = {k: torch.as_tensor(v) for k, v in read_model(cfg.train.init_checkpoint).items()}
    actual = {k: v for k, v in model.state_dict().items() if k.startswith("backbone.")}
    spec = cfg.get("moco_load_check", {})
    n = loadcheck.check_loaded(cfg.train.init_checkpoint, expected, actual,
                               new=list(spec.get("new", [])), resized=list(spec.get("resized", [])))
    logger.info(f"backbone: every pretrained tensor loaded from {cfg.train.init_checkpoint} ({n} tensors)")
    note = weights_note(cfg.train.init_checkpoint)
    if note:
        logger.info(f"backbone: {note}")


def do_train(cfg, resume):
    """tools/lazyconfig_train_net.py's do_train; returns the evaluation after the last iteration."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.engine import create_ddp_model

    model = instantiate(cfg.model).to(cfg.train.device)
    cfg.optimizer.params.model = model
    optim = instantiate(cfg.optimizer)
    loader = instantiate(cfg.dataloader.train)
    model = create_ddp_model(model, **cfg.train.ddp)
    trainer = (AMPTrainer if cfg.train.amp.enabled else SimpleTrainer)(model, loader, optim)
    checkpointer = DetectionCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    results = {}
    trainer.register_hooks([
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if comm.is_main_process() else None,
        hooks.EvalHook(cfg.train.eval_period, lambda: results.update(do_test(cfg, model)) or results),
        hooks.PeriodicWriter(default_writers(cfg.train.output_dir, cfg.train.max_iter), period=cfg.train.log_period)
        if comm.is_main_process() else None,
    ])
    resuming = resume and checkpointer.has_checkpoint()
    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=resume)
    if cfg.train.init_checkpoint and not resuming:
        check_weights(cfg, model.module if hasattr(model, "module") else model)
    trainer.train(trainer.iter + 1 if resuming else 0, cfg.train.max_iter)
    return results  # EvalHook always evaluates after the last iteration


def vitdet_facts(cfg, world_size, seed):
    net, loader = cfg.model.backbone.net, cfg.dataloader.train
    lsj = loader.mapper.augmentations[1]
    sched = cfg.lr_multiplier
    decay = cfg.optimizer.params.get("lr_factor_func")
    return dict(
        backbone="ViT", embed_dim=net.embed_dim, depth=net.depth, num_heads=net.num_heads, patch_size=net.patch_size,
        window_size=net.window_size, global_blocks=[i for i in range(net.depth) if i not in net.window_block_indexes],
        use_rel_pos=net.use_rel_pos, drop_path=net.drop_path_rate, pyramid_scales=list(cfg.model.backbone.scale_factors),
        input=cfg.model.input_format, pixel_mean=list(cfg.model.pixel_mean), pixel_std=list(cfg.model.pixel_std),
        optimizer="AdamW", base_lr=cfg.optimizer.lr, weight_decay=cfg.optimizer.weight_decay,
        layer_decay=decay.keywords.get("lr_decay_rate") if decay is not None else None,
        images_per_update=loader.total_batch_size, max_iter=cfg.train.max_iter,
        steps=list(sched.scheduler.milestones), warmup_iters=round(sched.warmup_length * cfg.train.max_iter),
        lsj=dict(size=lsj.target_height, scale=[lsj.min_scale, lsj.max_scale]),
        test_size=cfg.dataloader.test.mapper.augmentations[0].short_edge_length, amp=cfg.train.amp.enabled,
        gpus=world_size, seed=seed, weights=cfg.train.init_checkpoint or "random init",
        train_sets=loader.dataset.names, test_sets=cfg.dataloader.test.dataset.names, versions=fingerprint.versions(),
        **({"pos_embed": note} if (note := weights_note(cfg.train.init_checkpoint)) else {}))


def weights_note(path):
    """What the conversion did to pos_embed (a checkpoint pretrained at another crop), or None."""
    obj = read_numpy_pickle(path) if path else None
    meta = obj.get("meta") if isinstance(obj, dict) else None
    return meta.get("pos_embed") if isinstance(meta, dict) else None


def worker(args):
    register.register_coco(args.data_root)  # every process: the catalog is per process
    cfg = load_cfg(args)
    default_setup(cfg, argparse.Namespace(config_file=args.config, eval_only=False, **vars(args)))
    if comm.is_main_process():
        fingerprint.write(args.work_dir, TASK, vitdet_facts(cfg, comm.get_world_size(), args.seed))
    results = do_train(cfg, args.resume)
    if comm.is_main_process():
        finish(args.work_dir, results)
    return results


def main(argv=None):
    args = build_parser().parse_args(argv)
    problem = preflight(args)
    if problem:
        raise BadInput(problem)
    launch(worker, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))
    return 0


if __name__ == "__main__":
    sys.exit(entry(main))
