"""ViT dense transfer: converted MoCo v3 ViTs in the real ViTDet and MMSeg backbones, the ViTDet /
UperNet / Cityscapes configs against the official ones, quick runs, and the new data checks."""
import json
import os
import pickle
import shutil
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from converters.to_detectron2 import save as save_d2
from converters.to_detectron2 import vit_to_vitdet
from converters.to_mmseg import save as save_mmseg
from converters.to_mmseg import vit_to_mmseg
from tests.badinput import refuses
from tests.conftest import config_path
from transfer import loadcheck
from transfer.runner import entry

# ViTDet exists only in detectron2 at upstream 02b5c4e (the wheel route); the registry 0.6 fallback lacks it
try:
    import detectron2.modeling.backbone.vit  # noqa: F401
    HAS_VITDET = True
except ImportError:
    HAS_VITDET = False
needs_vitdet = pytest.mark.skipif(not HAS_VITDET, reason="detectron2 without ViTDet (registry route): see README")

WIDTH, DEPTH, HEADS = 96, 2, 12  # tiny, but MoCo v3 ViT-S's 12 heads


def timm_vit(class_token=True, depth=DEPTH, width=WIDTH):
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    m = VisionTransformer(img_size=224, patch_size=16, embed_dim=width, depth=depth, num_heads=HEADS,
                          num_classes=0, class_token=class_token, global_pool="token" if class_token else "")
    with torch.no_grad():  # timm zero-inits biases and pos_embed: make every tensor distinctive
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return m.eval()


def timm_blocks(m, x):
    """timm's patch tokens after the blocks (before the final norm), as (B, C, H, W)."""
    x = m.blocks(m.norm_pre(m._pos_embed(m.patch_embed(x))))
    x = x[:, m.num_prefix_tokens:]
    return x.transpose(1, 2).reshape(x.shape[0], -1, 14, 14)


def lazy(name, *overrides):
    from detectron2.config import LazyConfig

    return LazyConfig.apply_overrides(LazyConfig.load(config_path("detectron2", "vitdet", name)), list(overrides))


def mmcfg(name):
    from mmengine.config import Config

    return Config.fromfile(config_path("mmseg", name))


# ---------------------------------------------------------------- converters into the real backbones

@needs_vitdet
def test_vitdet_backbone_features_equal_timm():
    """Where the architectures agree (no cls token, global attention, no relative positions)."""
    from detectron2.modeling import ViT

    src = timm_vit(class_token=False)
    net = ViT(img_size=224, patch_size=16, embed_dim=WIDTH, depth=DEPTH, num_heads=HEADS, window_size=0,
              use_rel_pos=False, pretrain_use_cls_token=False, drop_path_rate=0.0).eval()
    converted = {k[len("backbone.net."):]: torch.as_tensor(v) for k, v in vit_to_vitdet(src.state_dict()).items()}
    missing, unexpected = net.load_state_dict(converted, strict=False)
    assert not missing and not unexpected
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(net(x)["last_feat"], timm_blocks(src, x), atol=1e-5, rtol=1e-4)


@needs_vitdet
def test_vitdet_model_loads_every_tensor(tmp_path):
    """The quick config's whole Mask R-CNN through detectron2's checkpointer: every ViT tensor equal;
    only the config's declared by-design tensors (rel_pos, pyramid) are new."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import instantiate

    path = str(tmp_path / "vit.pkl")
    save_d2(vit_to_vitdet(timm_vit().state_dict()), path)
    cfg = lazy("mask_rcnn_vitdet_s_quick.py", f"model.backbone.net.embed_dim={WIDTH}",
               f"model.backbone.net.depth={DEPTH}", "model.backbone.net.window_block_indexes=[0]")
    model = instantiate(cfg.model).eval()
    DetectionCheckpointer(model).load(path)
    with open(path, "rb") as f:
        expected = {k: torch.as_tensor(v) for k, v in pickle.load(f)["model"].items()}
    actual = {k: v for k, v in model.state_dict().items() if k.startswith("backbone.")}
    n = loadcheck.check_loaded(path, expected, actual, **cfg.moco_load_check)
    assert n == len(expected) == 3 + 12 * DEPTH  # pos_embed (cls slot kept), patch proj w/b, blocks
    with pytest.raises(loadcheck.WeightsNotLoaded):  # without the declaration, rel_pos is caught
        loadcheck.check_loaded(path, expected, actual)


def mmseg_vit(path, img_size):
    from mmseg.models.backbones import VisionTransformer

    net = VisionTransformer(img_size=img_size, patch_size=16, embed_dims=WIDTH, num_layers=DEPTH, num_heads=HEADS,
                            out_indices=(DEPTH - 1,), patch_bias=True, final_norm=True, with_cls_token=True,
                            norm_cfg=dict(type="LN", eps=1e-6), interpolate_mode="bicubic",
                            init_cfg=dict(type="Pretrained", checkpoint=path))
    net.init_weights()
    net.eval()  # mmseg's train() override returns None: no chaining
    return net


def test_mmseg_backbone_loads_every_tensor_and_features_equal_timm(tmp_path):
    src = timm_vit()
    path = str(tmp_path / "vit_mmseg.pth")
    save_mmseg(vit_to_mmseg(src.state_dict()), path)
    expected = torch.load(path, weights_only=True)["state_dict"]
    net = mmseg_vit(path, (224, 224))
    assert loadcheck.check_loaded(path, expected, net.state_dict()) == len(expected)  # pos_embed too
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        ref = src.forward_features(x)[:, 1:].transpose(1, 2).reshape(2, WIDTH, 14, 14)  # final norm, no cls
        torch.testing.assert_close(net(x)[0], ref, atol=1e-5, rtol=1e-4)


def test_mmseg_backbone_resizes_only_pos_embed(tmp_path):
    """At a 512 crop mmseg resizes pos_embed (14x14 -> 32x32) by design; the UperNet config declares it."""
    path = str(tmp_path / "vit_mmseg.pth")
    save_mmseg(vit_to_mmseg(timm_vit().state_dict()), path)
    expected = torch.load(path, weights_only=True)["state_dict"]
    net = mmseg_vit(path, (512, 512))
    assert net.pos_embed.shape == (1, 32 * 32 + 1, WIDTH)
    with pytest.raises(loadcheck.WeightsNotLoaded):
        loadcheck.check_loaded(path, expected, net.state_dict())
    declared = mmcfg("upernet_vit-s16_mln_8xb2-160k_ade20k-512x512_moco.py").moco_load_check
    assert loadcheck.check_loaded(path, expected, net.state_dict(), **declared) == len(expected)


# ---------------------------------------------------------------- configs against the official ones

# detectron2 projects/ViTDet/configs/COCO/mask_rcnn_vitdet_{b,l}_100ep.py, common/coco_loader_lsj.py
# and model_zoo common/models/mask_rcnn_vitdet.py
VITDET = {
    "b": dict(embed_dim=768, depth=12, num_heads=12, drop_path_rate=0.1, global_blocks=[2, 5, 8, 11], decay=0.7),
    "l": dict(embed_dim=1024, depth=24, num_heads=16, drop_path_rate=0.4, global_blocks=[5, 11, 17, 23], decay=0.8),
    "s": dict(embed_dim=384, depth=12, num_heads=12, drop_path_rate=0.1, global_blocks=[2, 5, 8, 11], decay=0.7),
}
VITDET_COMMON = dict(window_size=14, use_rel_pos=True, patch_size=16, scale_factors=(4.0, 2.0, 1.0, 0.5),
                     square_pad=1024, images=64, lr=1e-4, weight_decay=0.1, max_iter=184375,
                     milestones=[163889, 177546], warmup=250, lsj=(0.1, 2.0, 1024), test=1024, amp=True)


def vitdet_facts(cfg):
    net, bb, aug = cfg.model.backbone.net, cfg.model.backbone, cfg.dataloader.train.mapper.augmentations
    s = cfg.lr_multiplier
    return dict(
        embed_dim=net.embed_dim, depth=net.depth, num_heads=net.num_heads, drop_path_rate=net.drop_path_rate,
        global_blocks=[i for i in range(net.depth) if i not in net.window_block_indexes],
        decay=cfg.optimizer.params.lr_factor_func.keywords["lr_decay_rate"], window_size=net.window_size,
        use_rel_pos=net.use_rel_pos, patch_size=net.patch_size, scale_factors=tuple(bb.scale_factors),
        square_pad=bb.square_pad, images=cfg.dataloader.train.total_batch_size, lr=cfg.optimizer.lr,
        weight_decay=cfg.optimizer.weight_decay, max_iter=cfg.train.max_iter, milestones=list(s.scheduler.milestones),
        warmup=round(s.warmup_length * cfg.train.max_iter), lsj=(aug[1].min_scale, aug[1].max_scale, aug[2].crop_size[0]),
        test=cfg.dataloader.test.mapper.augmentations[0].short_edge_length, amp=cfg.train.amp.enabled)


@needs_vitdet
@pytest.mark.parametrize("arch", ["s", "b", "l"])
def test_vitdet_configs_are_the_official_recipe(arch):
    cfg = lazy(f"mask_rcnn_vitdet_{arch}_100ep_moco.py")
    assert vitdet_facts(cfg) == {**VITDET[arch], **VITDET_COMMON}
    assert cfg.dataloader.train.mapper.image_format == cfg.model.input_format == "RGB"
    assert cfg.optimizer.params.overrides == {"pos_embed": {"weight_decay": 0.0}}


@needs_vitdet
@pytest.mark.parametrize("arch", ["s", "b", "l"])
def test_vitdet_lowgpu_keeps_epochs_and_scales_lr(arch):
    full, low = vitdet_facts(lazy(f"mask_rcnn_vitdet_{arch}_100ep_moco.py")), vitdet_facts(
        lazy(f"mask_rcnn_vitdet_{arch}_100ep_moco_lowgpu.py"))
    assert low["images"] * low["max_iter"] == full["images"] * full["max_iter"]  # same epochs
    assert low["lr"] / low["images"] == pytest.approx(full["lr"] / full["images"])  # linear scaling
    assert [m * low["images"] for m in low["milestones"]] == [m * full["images"] for m in full["milestones"]]
    assert {k: v for k, v in low.items() if k not in ("images", "lr", "max_iter", "milestones", "warmup")} == \
        {k: v for k, v in full.items() if k not in ("images", "lr", "max_iter", "milestones", "warmup")}


# mmseg configs/mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py (optimiser, schedule, test) and
# configs/_base_/datasets/ade20k.py; the backbone is VisionTransformer + MultiLevelNeck
UPERNET_ADE = dict(backbone="VisionTransformer", neck="MultiLevelNeck", head="UPerHead", classes=150, lr=1e-4,
                   weight_decay=0.05, optimizer="AdamW", warmup=1500, power=1.0, max_iters=160000, images=16,
                   crop=(512, 512), test=("slide", (512, 512), (341, 341)), reduce_zero_label=True,
                   patch_bias=True, final_norm=True, ln_eps=1e-6)


def upernet_facts(cfg, gpus):
    m, bb, acc = cfg.model, cfg.model.backbone, cfg.optim_wrapper.get("accumulative_counts", 1)
    warm, poly = cfg.param_scheduler  # in MMEngine iterations: accumulation steps count
    load = next(t for t in cfg.train_dataloader.dataset.pipeline if t["type"] == "LoadAnnotations")
    return dict(backbone=bb.type, neck=m.neck.type, head=m.decode_head.type, classes=m.decode_head.num_classes,
                lr=cfg.optim_wrapper.optimizer.lr, weight_decay=cfg.optim_wrapper.optimizer.weight_decay,
                optimizer=cfg.optim_wrapper.optimizer.type, warmup=warm["end"] // acc, power=poly["power"],
                max_iters=cfg.train_cfg.max_iters // acc, images=cfg.train_dataloader.batch_size * gpus * acc,
                crop=tuple(m.data_preprocessor.size), test=(m.test_cfg.mode, tuple(m.test_cfg.crop_size),
                                                             tuple(m.test_cfg.stride)),
                reduce_zero_label=load.get("reduce_zero_label", False), patch_bias=bb.patch_bias,
                final_norm=bb.final_norm, ln_eps=bb.norm_cfg.eps)


# ViT-S is MoCo v3's (12 heads); ViT-L's taps are BEiT's ViT-L UperNet ones
VIT_SIZES = {"s": (384, 12, 12, (3, 5, 7, 11)), "b": (768, 12, 12, (3, 5, 7, 11)), "l": (1024, 24, 16, (7, 11, 15, 23))}


@pytest.mark.parametrize("name,gpus", [("upernet_vit-b16_mln_8xb2-160k_ade20k-512x512_moco.py", 8),
                                       ("upernet_vit-s16_mln_8xb2-160k_ade20k-512x512_moco.py", 8),
                                       ("upernet_vit-s16_mln_2xb2-160k_ade20k-512x512_moco_lowgpu.py", 2),
                                       ("upernet_vit-l16_mln_8xb2-160k_ade20k-512x512_moco.py", 8),
                                       ("upernet_vit-l16_mln_2xb2-160k_ade20k-512x512_moco_lowgpu.py", 2)])
def test_upernet_ade20k_configs_are_the_mae_recipe(name, gpus):
    cfg, (width, depth, heads, taps) = mmcfg(name), VIT_SIZES[name[len("upernet_vit-")]]
    assert upernet_facts(cfg, gpus) == UPERNET_ADE
    bb = cfg.model.backbone
    assert (bb.embed_dims, bb.num_layers, bb.num_heads, tuple(bb.out_indices)) == (width, depth, heads, taps)
    assert cfg.model.neck.in_channels == cfg.model.decode_head.in_channels == [width] * 4
    assert cfg.model.auxiliary_head.in_channels == width
    assert cfg.moco_data_dir == "ADEChallengeData2016"


@pytest.mark.parametrize("name", ["upernet_vit-l16_mln_8xb2-160k_ade20k-512x512_moco.py",
                                  "upernet_vit-l16_mln_4xb4-20k_voc12aug-512x512_moco.py"])
def test_upernet_vit_large_layer_decay_covers_24_blocks(name):
    """The base's 12-block keys are replaced, not merged: block i at 0.75 ** (24 - i), embeddings 0.75 ** 25."""
    cfg = mmcfg(name)
    keys, d = cfg.optim_wrapper.paramwise_cfg.custom_keys, cfg.layer_decay
    assert d == 0.75 and cfg.num_layers == cfg.model.backbone.num_layers == 24
    assert {int(k.split(".")[2]) for k in keys if k.startswith("backbone.layers.")} == set(range(24))
    assert keys["backbone.layers.0."]["lr_mult"] == pytest.approx(d ** 24)
    assert keys["backbone.layers.11."]["lr_mult"] == pytest.approx(d ** 13)
    assert keys["backbone.layers.23.ln2."] == dict(lr_mult=pytest.approx(d), decay_mult=0.0)
    assert keys["backbone.patch_embed."]["lr_mult"] == keys["backbone.pos_embed"]["lr_mult"] == pytest.approx(d ** 25)
    assert len(keys) == 3 + 1 + 24 * 7


def test_upernet_layer_decay_reaches_the_optimizer():
    """MMEngine's own constructor, on the quick model (4 blocks): mmseg's BEiT/MAE rule, layer i at
    0.65 ** (12 - i), embeddings 0.65 ** 13, heads 1; no weight decay on 1-D tensors."""
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules()
    cfg = mmcfg("upernet_vit-s16_quick_ade20k.py")
    cfg.model.backbone.update(num_layers=4, out_indices=(0, 1, 2, 3))
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    group = {names[id(g["params"][0])]: (g["lr"], g["weight_decay"]) for g in wrapper.optimizer.param_groups}
    lr = 1e-4
    assert group["backbone.layers.3.attn.attn.in_proj_weight"] == pytest.approx((lr * 0.65 ** 9, 0.05))
    assert group["backbone.layers.3.attn.attn.in_proj_bias"] == pytest.approx((lr * 0.65 ** 9, 0.0))
    assert group["backbone.layers.0.ln1.weight"] == pytest.approx((lr * 0.65 ** 12, 0.0))
    assert group["backbone.patch_embed.projection.weight"] == pytest.approx((lr * 0.65 ** 13, 0.05))
    assert group["backbone.pos_embed"] == pytest.approx((lr * 0.65 ** 13, 0.0))
    assert group["decode_head.conv_seg.weight"] == pytest.approx((lr, 0.05))
    assert group["decode_head.conv_seg.bias"] == pytest.approx((lr, 0.0))


# mmseg configs/fcn/fcn_r50-d8_4xb2-40k_cityscapes-769x769.py, _base_/datasets/cityscapes_769x769.py
CITYSCAPES_FCN = dict(backbone="ResNet", classes=19, align_corners=True, images=8, max_iters=40000, lr=0.01,
                      schedule=(0.9, 1e-4), crop=(769, 769), resize=(2049, 1025), test=("slide", (769, 769), (513, 513)),
                      norm="SyncBN", dilations=(1, 1, 2, 4))


@pytest.mark.parametrize("name,gpus", [("fcn_r50-d8_4xb2-40k_cityscapes-769x769_moco.py", 4),
                                       ("fcn_r50-d8_1xb2-40k_cityscapes-769x769_moco_lowgpu.py", 1)])
def test_cityscapes_fcn_config_is_mmsegs(name, gpus):
    cfg = mmcfg(name)
    m, acc = cfg.model, cfg.optim_wrapper.get("accumulative_counts", 1)
    resize = next(t for t in cfg.train_dataloader.dataset.pipeline if t["type"] == "RandomResize")
    facts = dict(backbone=m.backbone.type, classes=m.decode_head.num_classes, align_corners=m.decode_head.align_corners,
                 images=cfg.train_dataloader.batch_size * gpus * acc, max_iters=cfg.train_cfg.max_iters // acc,
                 lr=cfg.optim_wrapper.optimizer.lr, schedule=(cfg.param_scheduler[0]["power"], cfg.param_scheduler[0]["eta_min"]),
                 crop=tuple(m.data_preprocessor.size), resize=tuple(resize["scale"]),
                 test=(m.test_cfg.mode, tuple(m.test_cfg.crop_size), tuple(m.test_cfg.stride)),
                 norm=m.backbone.norm_cfg.type, dilations=tuple(m.backbone.dilations))
    assert facts == CITYSCAPES_FCN
    assert cfg.param_scheduler[0]["end"] == cfg.train_cfg.max_iters
    assert cfg.moco_data_dir == "cityscapes"


def test_voc_upernet_configs_keep_the_voc_protocol_data():
    for name, gpus in [("upernet_vit-s16_mln_4xb4-20k_voc12aug-512x512_moco.py", 4),
                       ("upernet_vit-s16_mln_1xb4-20k_voc12aug-512x512_moco_lowgpu.py", 1),
                       ("upernet_vit-l16_mln_4xb4-20k_voc12aug-512x512_moco.py", 4),
                       ("upernet_vit-l16_mln_1xb4-20k_voc12aug-512x512_moco_lowgpu.py", 1)]:
        cfg = mmcfg(name)
        acc = cfg.optim_wrapper.get("accumulative_counts", 1)
        assert cfg.train_dataloader.batch_size * gpus * acc == 16
        assert cfg.train_cfg.max_iters // acc == 20000 and cfg.param_scheduler[1]["end"] == cfg.train_cfg.max_iters
        assert cfg.model.decode_head.num_classes == 21 and cfg.model.backbone.patch_bias


# ---------------------------------------------------------------- data: built-in layouts and checks

@pytest.fixture
def seg_root(tmp_path):
    from mocodata.builtin import DemoSizes, write_ade20k, write_cityscapes

    sizes = DemoSizes(seg_ade_train=3, seg_ade_val=2, seg_city_train=2, seg_city_val=2)
    write_ade20k(str(tmp_path), sizes, np.random.default_rng(0))
    write_cityscapes(str(tmp_path), sizes, np.random.default_rng(1))
    return str(tmp_path)


def test_builtin_ade20k_and_cityscapes_are_read_by_mmseg(seg_root):
    from mmseg.datasets import ADE20KDataset, CityscapesDataset

    ade = ADE20KDataset(data_root=os.path.join(seg_root, "ADEChallengeData2016"), pipeline=[],
                        data_prefix=dict(img_path="images/training", seg_map_path="annotations/training"))
    city = CityscapesDataset(data_root=os.path.join(seg_root, "cityscapes"), pipeline=[],
                             data_prefix=dict(img_path="leftImg8bit/val", seg_map_path="gtFine/val"))
    assert len(ade) == 3 and len(city) == 2
    labels = np.array(Image.open(ade[0]["seg_map_path"]))
    assert labels.min() == 0 and 1 <= labels.max() <= 21  # 0 = unlabelled, reduced to 255 by the loader
    ids = np.unique(np.array(Image.open(city[0]["seg_map_path"])))
    assert set(ids.tolist()) <= set(range(19)) | {255}


def break_ade_annotation(root):
    os.remove(os.path.join(root, "ADEChallengeData2016", "annotations", "validation", "ADE_val_00000002.png"))
    return "ADE_val_00000002"


def resize_city_label(root):
    p = os.path.join(root, "cityscapes", "gtFine", "train", "aachen", "aachen_000000_000019_gtFine_labelTrainIds.png")
    Image.new("L", (10, 10)).save(p)
    return "aachen_000000_000019_gtFine_labelTrainIds.png"


def colour_city_label(root):  # gtFine *_color.png saved under the trainIds name
    p = os.path.join(root, "cityscapes", "gtFine", "val", "lindau", "lindau_000001_000019_gtFine_labelTrainIds.png")
    w, h = Image.open(p).size
    Image.new("RGB", (w, h)).save(p)
    return "lindau_000001_000019_gtFine_labelTrainIds.png"


def drop_ade_root(root):
    shutil.rmtree(os.path.join(root, "ADEChallengeData2016"))
    return "ADEChallengeData2016"


@pytest.mark.parametrize("task,breaks", [("ade20k", break_ade_annotation), ("cityscapes", resize_city_label),
                                         ("cityscapes", colour_city_label), ("ade20k", drop_ade_root)])
def test_data_check_refuses_broken_sets(seg_root, task, breaks, capsys):
    from mocodata.__main__ import main

    assert main(["check", seg_root, "--task", task]) == 0
    capsys.readouterr()
    culprit = breaks(seg_root)
    refuses(main, ["check", seg_root, "--task", task], culprit, capsys, watch=[seg_root])


# ---------------------------------------------------------------- the ViTDet runner's bad input

@needs_vitdet
@pytest.mark.parametrize("case", ["config", "data", "weights", "gpus", "opts"])
def test_vitdet_runner_refuses_bad_input(case, seg_root, tmp_path, capsys):
    from transfer.detection import lazy_train

    not_pkl = tmp_path / "w.pth"
    not_pkl.write_bytes(b"not a pickle")
    argv = dict(config=config_path("detectron2", "vitdet", "mask_rcnn_vitdet_s_quick.py"),
                data=str(tmp_path / "coco-root"), weights="", gpus="1")
    os.makedirs(tmp_path / "coco-root")
    culprit = {"config": "--config", "data": "--data-root", "weights": "--weights", "gpus": "--num-gpus",
               "opts": "train.max_iters"}[case]
    if case == "config":
        argv["config"] = str(tmp_path / "missing.py")
    if case in ("weights", "gpus", "opts"):
        from mocodata.builtin import DemoSizes, write_coco

        write_coco(argv["data"], DemoSizes(coco_train=2, coco_val=2), np.random.default_rng(0))
        argv.update(weights=str(not_pkl)) if case == "weights" else argv.update(gpus="3")
    cli = ["--config", argv["config"], "--data-root", argv["data"], "--work-dir", str(tmp_path / "run"),
           "--num-gpus", argv["gpus"]] + (["--weights", argv["weights"]] if argv["weights"] else [])
    cli += ["--opts", "train.max_iters=5"] if case == "opts" else []  # max_iter, misspelt
    refuses(partial(entry, lazy_train.main), cli, culprit, capsys, watch=[str(tmp_path)])
    assert not os.path.exists(tmp_path / "run")


# ---------------------------------------------------------------- quick runs end to end

@pytest.fixture(scope="module")
def quick_root(tmp_path_factory):
    from mocodata.builtin import DemoSizes, make_demo

    sizes = DemoSizes(voc07_trainval=2, voc07_test=2, voc12_trainval=2, coco_train=6, coco_val=3, seg_train=2,
                      seg_aug=2, seg_val=2, imagenet_classes=2, imagenet_train_per_class=2, imagenet_val_per_class=2,
                      seg_ade_train=6, seg_ade_val=3, seg_city_train=2, seg_city_val=2)
    return make_demo(str(tmp_path_factory.mktemp("quick") / "demo"), sizes)


@needs_vitdet
@pytest.mark.slow
def test_vitdet_quick_run_writes_box_and_mask_ap(quick_root, tmp_path):
    """About 2-3 minutes on 2 busy cores: 4 blocks of ViT-S width, 6 iterations, 3 val images."""
    from transfer.detection import lazy_train

    weights = str(tmp_path / "vit_s.pkl")
    save_d2(vit_to_vitdet(timm_vit(depth=4, width=384).state_dict()), weights)
    run = tmp_path / "run"
    rc = lazy_train.main(["--config", config_path("detectron2", "vitdet", "mask_rcnn_vitdet_s_quick.py"),
                          "--data-root", quick_root, "--work-dir", str(run), "--weights", weights,
                          "--opts", "train.max_iter=6", "model.backbone.net.depth=4",
                          "model.backbone.net.window_block_indexes=[0,1,2]"])
    assert rc == 0
    metrics = json.load(open(run / "final_metrics.json"))
    for group in ("bbox", "segm"):
        assert 0.0 <= metrics[group]["AP"] <= 100.0
    facts = json.load(open(run / "fingerprint.json"))
    assert facts["num_heads"] == 12 and facts["weights"] == weights and facts["task"] == "coco-vitdet"


@pytest.mark.slow
def test_upernet_quick_run_writes_miou(quick_root, tmp_path):
    """UperNet + ViT (4 blocks of ViT-S width) on the built-in ADE20K through MMEngine's Runner, with
    the load check the segmentation runner applies (pos_embed resized by design)."""
    from mmengine.runner import Runner
    from mmseg.utils import register_all_modules

    from transfer.mmengine_run import BackboneCheck

    register_all_modules()
    weights = str(tmp_path / "vit_s.pth")
    save_mmseg(vit_to_mmseg(timm_vit(depth=4, width=384).state_dict()), weights)
    cfg = mmcfg("upernet_vit-s16_quick_ade20k.py")
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = os.path.join(quick_root, cfg.moco_data_dir)
    cfg.model.backbone.update(num_layers=4, out_indices=(0, 1, 2, 3), init_cfg=dict(type="Pretrained", checkpoint=weights))
    cfg.update(work_dir=str(tmp_path / "run"), train_cfg=dict(cfg.train_cfg, max_iters=4, val_interval=4))
    cfg.env_cfg.dist_cfg = dict(backend="gloo")
    runner = Runner.from_cfg(cfg)
    runner.register_hook(BackboneCheck(weights, **cfg.moco_load_check), priority="VERY_LOW")
    runner.train()
    metrics = runner.val_loop.run()
    assert 0.0 <= metrics["mIoU"] <= 100.0


@pytest.mark.slow  # about 30 s each on 2 busy cores
@pytest.mark.parametrize("name,arch", [("fcn_r50-d8_quick_cityscapes.py", "resnet"),
                                       ("upernet_vit-s16_quick_voc12aug.py", "vit"),
                                       ("upernet_vit-s16_quick_ade20k.py", "vit")])
def test_quick_seg_configs_train_a_step_on_builtin_data(name, arch, seg_root, tmp_path):
    """Each quick config's own dataset and pipeline read the built-in layout; its model takes a step."""
    from mmengine.dataset import pseudo_collate
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import DATASETS, MODELS
    from mmseg.utils import register_all_modules

    from mocodata.builtin import DemoSizes, write_voc_segmentation

    register_all_modules()
    cfg = mmcfg(name)
    if cfg.moco_data_dir == "VOC2012":
        write_voc_segmentation(seg_root, DemoSizes(seg_train=2, seg_aug=2, seg_val=2), np.random.default_rng(2))
    ds_cfg = cfg.train_dataloader.dataset
    for d in ds_cfg.get("datasets", [ds_cfg]):
        d.data_root = os.path.join(seg_root, cfg.moco_data_dir)
    dataset = DATASETS.build(ds_cfg)
    if arch == "vit":
        cfg.model.backbone.update(num_layers=4, out_indices=(0, 1, 2, 3))
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    losses = model.train_step(pseudo_collate([dataset[0], dataset[1]]), wrapper)
    assert all(torch.isfinite(v) for v in losses.values())
    # mmseg crops at most the crop size; the data preprocessor pads smaller crops up to it
    assert all(a <= b for a, b in zip(dataset[0]["inputs"].shape[-2:], cfg.model.data_preprocessor.size))


def test_a_pos_embed_of_another_grid_names_the_img_size_flag():
    """A ViT converted at its 64 px pretraining grid, loaded by a model built for 224 px: the refusal says
    which flag puts it on the model's grid."""
    expected = {"pos_embed": torch.zeros(1, 1 + 4 * 4, 8), "cls_token": torch.zeros(1, 1, 8)}
    actual = {"pos_embed": torch.zeros(1, 1 + 14 * 14, 8), "cls_token": torch.zeros(1, 1, 8)}
    with pytest.raises(loadcheck.WeightsNotLoaded, match=r"pos_embed is \(1, 17, 8\) in the file but \(1, 197, 8\) "
                                                         r"in the model.*--img-size 224"):
        loadcheck.check_loaded("/w/vit.pkl", expected, actual)
    actual["pos_embed"] = torch.ones(1, 17, 8)  # same grid, other values: no grid hint
    with pytest.raises(loadcheck.WeightsNotLoaded) as e:
        loadcheck.check_loaded("/w/vit.pkl", expected, actual)
    assert "--img-size" not in str(e.value)
