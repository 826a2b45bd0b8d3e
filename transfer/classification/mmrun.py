"""What the mmpretrain runners (linear.py, finetune.py, sweep.py) share: the command line, the input checks
(task, recipe, data folders and classes, converted weights and ViT shape), the facts and the results.

The MMEngine steps (work dir, seed, resume, the load check, fingerprint, train, test, final_metrics.json)
are the driver's, transfer/mmengine_run.py; the models, data pipeline and metrics are mmpretrain's, built
from the configs under configs/mmpretrain/.
"""
import os
import sys

import torch

from converters import to_mmpretrain
from mococore.images import image_folder as list_image_folder
from mocodata import validate
from transfer.classification import BadInput
from transfer import runner as contract
from transfer.classification import predictions, stages  # noqa: F401  (stages registers the Feature1-5 modules)
from transfer import fingerprint
from transfer import mmengine_run

VIT_TYPES = ("VisionTransformer", "MoCoV3ViT")


def parser(description):
    """The runner contract's command line (transfer/runner.py) for the mmpretrain runners."""
    return contract.parser(description, "configs/mmpretrain/*.py",
                           "folder with imagenet/ (or places205/): {train,val}/<class>/*.jpg, "
                           "or iNaturalist2018/ with meta/{train,val}.txt",
                           "backbone from converters/to_mmpretrain.py (random init without)",
                           override="cfg-options", launcher="mmengine")


def build_cfg(config, overrides=()):
    """The one way an mmpretrain protocol config is built (the MMEngine one), naming its task, recipe and data."""
    cfg = mmengine_run.build_cfg(config, overrides)
    for key in ("task", "recipe", "data_dir"):
        if key not in cfg:
            raise BadInput(f"--config {config}: no '{key}' key; the runners read configs/mmpretrain/*.py, "
                           "which name their task, recipe and data folder")
    return cfg


def classes_of(folder):
    """Sorted class folders that hold at least one image (mmpretrain's CustomDataset order)."""
    _, found, empty = list_image_folder(folder)
    if empty:
        raise BadInput(f"--data-root: {folder} has class folders without images (e.g. {empty[:3]}); "
                       "remove them or add their images")
    return found


def check_data(root, data_dir):
    """The class list, the same in train/ and val/; a BadInput naming the folder otherwise."""
    base = os.path.join(root, data_dir)
    for split in ("train", "val"):
        if not os.path.isdir(os.path.join(base, split)):
            raise BadInput(f"--data-root {root}: no {data_dir}/{split}/ folder; this config reads "
                           f"{data_dir}/{{train,val}}/<class>/*.jpg (mocodata builtin writes imagenet/)")
    train, val = classes_of(os.path.join(base, "train")), classes_of(os.path.join(base, "val"))
    for split, classes in (("train", train), ("val", val)):
        if not classes:
            raise BadInput(f"--data-root {root}: {data_dir}/{split}/ has no class folders; both splits are read as "
                           f"{data_dir}/{split}/<class>/*.jpg (ImageNet's flat val/ must be sorted into class folders)")
    if train != val:
        only_t, only_v = sorted(set(train) - set(val)), sorted(set(val) - set(train))
        raise BadInput(f"--data-root {root}: {data_dir}/train/ and {data_dir}/val/ hold different classes "
                       f"(only in train: {only_t[:3]}, only in val: {only_v[:3]}); labels are folder indices, "
                       "so both splits need the same class folders")
    return train


def read_weights(path):
    """(state_dict, meta) of a converters/to_mmpretrain.py file; BadInput for anything else."""
    if not os.path.isfile(path):
        raise BadInput(f"--weights {path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise BadInput(f"--weights {path}: not a readable PyTorch file ({type(e).__name__})") from None
    meta = obj.get("meta") if isinstance(obj, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != to_mmpretrain.FORMAT:
        raise BadInput(f"--weights {path}: not an mmpretrain backbone written by converters/to_mmpretrain.py; "
                       f"convert the pretraining checkpoint first: python converters/to_mmpretrain.py {path}")
    return obj["state_dict"], meta


MOCOV3_SMALL = dict(embed_dims=384, num_layers=12, num_heads=12, feedforward_channels=1536)  # MoCoV3ViT's


def config_vit_arch(backbone):
    """The config's ViT arch as a dict: mmpretrain's arch_zoo names, and MoCoV3ViT's 'mocov3-small', resolved."""
    from mmpretrain.models import VisionTransformer

    arch = backbone.get("arch", "base")
    if not isinstance(arch, str):
        return dict(arch)
    if arch in ("mocov3-s", "mocov3-small"):
        return dict(MOCOV3_SMALL)
    if arch not in VisionTransformer.arch_zoo:
        raise BadInput(f"--config: unknown ViT arch {arch!r} (one of {', '.join(sorted(VisionTransformer.arch_zoo))})")
    return dict(VisionTransformer.arch_zoo[arch])


def set_weights(cfg, path, args_config):
    """The backbone's Pretrained init_cfg, after checking the file is the architecture the config builds.
    ViT: configs with `vit_arch_from_weights` take the shape and heads from the file (a linear probe's
    recipe is the same for every size); others must match it."""
    sd, meta = read_weights(path)
    backbone, is_vit = cfg.model.backbone, cfg.model.backbone.type in VIT_TYPES
    arch = meta.get("arch", "?")
    if is_vit != arch.startswith("vit"):
        wants = "a ViT" if is_vit else "a ResNet-50"
        raise BadInput(f"--weights {path} holds a {arch} backbone, but --config {args_config} ({cfg.task}) builds "
                       f"{wants} ({backbone.type}); give {wants} checkpoint or the config for {arch}")
    if is_vit:
        if not meta.get("num_heads"):
            raise BadInput(f"--weights {path}: the ViT head count is not recorded; reconvert with "
                           "converters/to_mmpretrain.py --num-heads H (MoCo v3 ViT-S: 12)")
        shape = to_mmpretrain.vit_arch(sd, meta["num_heads"])
        if cfg.get("vit_arch_from_weights"):
            backbone.arch, cfg.model.head.in_channels = shape, shape["embed_dims"]
            neck = cfg.model.get("neck") or {}
            if neck.get("type") == "ClsBatchNormNeck":  # a quick probe's BatchNorm on the class token: its width
                neck.input_features = shape["embed_dims"]
            if backbone.get("frozen_stages", -1) > 0:  # frozen = every block, whatever the depth
                backbone.frozen_stages = shape["num_layers"]
        elif config_vit_arch(backbone) != shape:
            raise BadInput(f"--weights {path} is a ViT {shape}, but --config {args_config} builds "
                           f"{config_vit_arch(backbone)}; use the config for this size")
    backbone.init_cfg = dict(type="Pretrained", checkpoint=path)
    if meta.get("pos_embed"):  # the converter put it on the grid of the config's 224 px (fingerprinted)
        cfg.weights_pos_embed = meta["pos_embed"]
    return sd


def list_classes(root, cfg):
    """Classes of a config that reads annotation lists ('<path> <label>' lines, e.g. iNaturalist 2018's
    meta/{train,val}.txt): the labels 0..L, L the largest in either list."""
    try:
        labels = [label for loader in (cfg.train_dataloader, cfg.val_dataloader) for _, label in
                  validate.read_image_list(os.path.join(root, cfg.data_dir, loader.dataset.ann_file), sys.maxsize)]
    except validate.DataError as e:
        raise BadInput(f"--data-root {root}: {e}") from None
    if not labels:
        raise BadInput(f"--data-root {root}: {cfg.data_dir}/{cfg.train_dataloader.dataset.ann_file} lists no image")
    return list(range(max(labels) + 1))


def set_data(cfg, root):
    lists = cfg.train_dataloader.dataset.get("ann_file")
    classes = list_classes(root, cfg) if lists else check_data(root, cfg.data_dir)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = os.path.join(root, cfg.data_dir)
    cfg.model.head.num_classes = len(classes)
    cfg.data_preprocessor.num_classes = len(classes)  # Mixup/CutMix one-hot width
    return classes


def run_cfg(args, tasks, recipes):
    """(effective config, the weights' tensors or None); raises BadInput before anything is written."""
    cfg = build_cfg(args.config, args.cfg_options or ())
    if cfg.task not in tasks:
        raise BadInput(f"--config {args.config} is a '{cfg.task}' config; this runner runs {' / '.join(tasks)} "
                       f"(python -m transfer.classification.{'finetune' if cfg.task == 'finetune' else 'linear'})")
    if cfg.recipe not in recipes:
        raise BadInput(f"--config {args.config}: recipe {cfg.recipe!r} has no official facts here "
                       f"(one of {', '.join(recipes)}); name one of them in the config")
    set_data(cfg, args.data_root)
    expected = set_weights(cfg, args.weights, args.config) if args.weights else None
    mmengine_run.merge_args(cfg, args)
    cfg.test_evaluator = predictions.add_to(cfg.test_evaluator)  # + the per-image top-1 classes
    return cfg, expected


def schedule(schedulers):
    """The learning-rate schedule in words, e.g. 'step x0.1 at [60, 80]' or 'linear warmup 5 ep, cosine ...'."""
    words = []
    for s in schedulers:
        unit = "iteration" if s.get("convert_to_iter_based") or not s.get("by_epoch", True) else "epoch"
        if s.type == "MultiStepLR":
            words.append(f"step x{s.get('gamma', 0.1)} at {list(s.milestones)}")
        elif s.type == "CosineAnnealingLR":
            words.append(f"cosine to {s.get('eta_min', 0)} per {unit}")
        elif s.type == "LinearLR":
            words.append(f"linear warmup {s.end - s.get('begin', 0)} ep from x{s.get('start_factor', 1 / 3)}")
        else:
            words.append(s.type)
    return ", then ".join(words)


def pipeline_step(pipeline, kind):
    return next((t for t in pipeline if t["type"] == kind), {})


def common_facts(cfg, world_size, seed, weights):
    """Facts every mmpretrain protocol has: optimisation, schedule, data, run."""
    opt, per_gpu = cfg.optim_wrapper.optimizer, cfg.train_dataloader.batch_size
    test = cfg.test_dataloader.dataset.pipeline
    bb = cfg.model.backbone
    arch = config_vit_arch(bb) if bb.type in VIT_TYPES else f"ResNet-{bb.depth}"
    return dict(recipe=cfg.recipe, backbone=bb.type, arch=arch, optimizer=opt.type, lr=opt.lr,
                weight_decay=opt.get("weight_decay", 0.0),
                images_per_update=per_gpu * world_size * cfg.optim_wrapper.get("accumulative_counts", 1),
                epochs=cfg.train_cfg.max_epochs, schedule=schedule(cfg.param_scheduler),
                train_crop=pipeline_step(cfg.train_dataloader.dataset.pipeline, "RandomResizedCrop").get("scale"),
                test_resize=pipeline_step(test, "ResizeEdge").get("scale"),
                test_crop=pipeline_step(test, "CenterCrop").get("crop_size"), num_classes=cfg.model.head.num_classes,
                gpus=world_size, seed=seed, weights=weights or "random init",
                versions=dict(fingerprint.versions(), mmpretrain=__import__("mmpretrain").__version__),
                **({"pos_embed": cfg.weights_pos_embed} if cfg.get("weights_pos_embed") else {}),
                **({"lr_scaling": cfg.lr_scaling} if cfg.get("lr_scaling") else {}))  # a quick config's lr rule


def nest(metrics):
    """{'accuracy/top1': v} -> {'accuracy': {'top1': v}}: final_metrics.json's {group: {metric: value}}."""
    out = {}
    for name, value in metrics.items():
        group, _, metric = name.partition("/")
        out.setdefault(group, {})[metric or group] = value
    return out


def main(argv, description, facts_of, tasks, recipes, frozen):
    """Parse, check, then train and test through MMEngine's Runner. facts_of(cfg, world_size, args) ->
    (facts, official facts of the recipe); recipes: the recipe names the runner knows."""
    args = parser(description).parse_args(argv)
    cfg, expected = run_cfg(args, tasks, recipes)
    check = mmengine_run.BackboneCheck(args.weights, expected, frozen)
    mmengine_run.run(cfg, cfg.task, lambda world_size: facts_of(cfg, world_size, args), check,
                     per_image=predictions.write, final=nest)
    return 0
