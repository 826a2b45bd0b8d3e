"""Linear probes, Feature1-5 heads and ViT fine-tuning on mmpretrain: the recipes equal the official ones,
converted weights load into mmpretrain's models with equal features, a frozen backbone stays frozen, each
runner runs end to end on the built-in data, and bad input is refused before any work."""
import json
import math
import os
import types
from functools import partial

import numpy as np
import pytest
import torch
import torchvision
from mmengine.config import Config
from mmengine.registry import DefaultScope

from converters import to_mmpretrain
from tests.badinput import refuses
from tests.conftest import config_path
from transfer import perimage, report
from transfer.classification import finetune, linear, stages
from transfer.runner import entry

# The published recipes, written from the official sources (not from transfer/classification):
# moco main_lincls.py; moco-v3 main_lincls.py + CONFIG.md (lr = base x batch / 256); mmselfsup 0.x
# resnet50_mhead_linear-8xb32-steplr-90e_in1k.py / resnet50_mhead_8xb32-steplr-28e_places205.py;
# mmpretrain configs/mocov3/benchmarks/vit-{base,large}-p16_8xb64-coslr-*e_in1k.py, moco-v3#19 (ViT-S 300 ep).
OFFICIAL = {
    "linear_mocov2_r50": dict(lr=30.0, momentum=0.9, weight_decay=0.0, nesterov=False, images_per_update=256,
                              epochs=100, schedule="step x0.1 at [60, 80]", trained="head", backbone_eval=True,
                              head_init_std=0.01, train_crop=224, test_resize=256, test_crop=224, features="res5 GAP"),
    "linear_mocov3_r50": dict(lr=0.1 * 1024 / 256, momentum=0.9, weight_decay=0.0, images_per_update=1024, epochs=90,
                              schedule="cosine to 0 per epoch", trained="head", backbone_eval=True, head_init_std=0.01,
                              features="res5 GAP"),
    "linear_mocov3_vit": dict(lr=3 * 1024 / 256, momentum=0.9, weight_decay=0.0, images_per_update=1024, epochs=90,
                              schedule="cosine to 0 per epoch", trained="head", backbone_eval=True,
                              head_init_std=0.01, features="class token after the final LayerNorm"),
    "linear-stages_r50": dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4, images_per_update=256,
                              bn_images=256, epochs=90, schedule="step x0.1 at [30, 60, 90]",
                              pools=[[10, 10, 4], [16, 8, 0], [13, 5, 0], [8, 3, 0], [6, 1, 0]],
                              color_jitter=[0.4, 0.4, 0.4, 0.0], lighting=0.1, train_crop=224),
    "linear-stages_r50_places205": dict(lr=0.01, nesterov=True, weight_decay=1e-4, images_per_update=256, epochs=28,
                                        schedule="step x0.1 at [7, 14, 21]", num_classes=205, train_resize=256,
                                        train_center_crop=256, train_random_crop=224, test_resize=256, test_crop=224),
    "finetune_vit_base": dict(optimizer="AdamW", lr=5e-4, weight_decay=0.05, clip_grad=5.0, images_per_update=512,
                              epochs=150, drop_path=0.1, label_smoothing=0.1, mixup=0.8, cutmix=1.0,
                              randaugment="rand-m9-mstd0.5-inc1", random_erase=0.25, ema_momentum_per_update=4e-5,
                              no_decay=["bias", "cls_token", "norm", "pos_embed"], num_heads=12,
                              schedule="linear warmup 5 ep from x0.001, then cosine to 1e-05 per iteration"),
    "finetune_vit_large": dict(epochs=100, drop_path=0.5, lr=5e-4, images_per_update=512, num_heads=16),
    "finetune_vit_small": dict(epochs=300, drop_path=0.1, lr=5e-4, images_per_update=512, num_heads=12),
}
GPUS = {"": 8, "_lowgpu": 1}  # the published run's GPUs; the low-GPU variant's


def facts_of(name, gpus):
    cfg = Config.fromfile(config_path("mmpretrain", f"{name}.py"))
    module = finetune if cfg.task == "finetune" else linear
    return module.facts(cfg, gpus, types.SimpleNamespace(seed=0, weights=None, config=name))


@pytest.mark.parametrize("variant", GPUS)
@pytest.mark.parametrize("name", OFFICIAL)
def test_recipe_equals_official(name, variant):
    from transfer import fingerprint

    facts = facts_of(name + variant, GPUS[variant])
    for key, value in OFFICIAL[name].items():
        assert facts[key] == pytest.approx(value) if isinstance(value, float) else facts[key] == value, key
    task = "finetune" if name.startswith("finetune") else "linear"
    assert fingerprint.deviations(task, facts) == []  # against its recipe's facts in the protocol table


def build(cfg):
    """An mmpretrain module, whatever scope an earlier test's runner left current (mmseg's, say)."""
    from mmpretrain.registry import MODELS

    with DefaultScope.overwrite_default_scope("mmpretrain"):
        return MODELS.build(cfg)


def test_stage_maps_and_grids_at_224():
    """The five maps of a 224 input and the grids the pools give them (mmselfsup 0.x
    configs/benchmarks/classification/imagenet/resnet50_mhead_linear-8xb32-steplr-90e_in1k.py)."""
    model = Config.fromfile(config_path("mmpretrain", "linear-stages_r50.py")).model
    backbone, neck = build(model.backbone), build(model.neck)
    backbone.eval()
    with torch.no_grad():
        maps = backbone(torch.randn(1, 3, 224, 224))
        pooled = neck(maps)
    assert [tuple(m.shape[1:]) for m in maps] == [(64, 112, 112), (256, 56, 56), (512, 28, 28), (1024, 14, 14),
                                                  (2048, 7, 7)]
    assert [p.shape[-1] for p in pooled] == [12, 6, 4, 3, 2]
    assert [p[0].numel() for p in pooled] == [9216, 9216, 8192, 9216, 8192] == list(model.head.in_dims)


def timm_vit(depth=2, width=64, heads=4, img=32, patch=8):
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    m = VisionTransformer(img_size=img, patch_size=patch, embed_dim=width, depth=depth, num_heads=heads, num_classes=0)
    with torch.no_grad():  # non-trivial values everywhere (timm zero-inits biases, cls_token)
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return m.eval()


@pytest.mark.parametrize("backbone_type", ["VisionTransformer", "MoCoV3ViT"])
def test_converted_vit_loads_with_equal_features(backbone_type):
    src = timm_vit()
    sd = to_mmpretrain.convert("vit", src.state_dict(), "timm")
    kind = dict(type=backbone_type, img_size=32, patch_size=8, out_type="cls_token", final_norm=True)
    model = build(dict(kind, arch=to_mmpretrain.vit_arch(sd, 4)))
    model.load_state_dict(sd, strict=True)
    model.eval()  # mmpretrain's train() returns None: no chaining
    assert all(torch.equal(model.state_dict()[k], v) for k, v in sd.items())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ours, ref = model(x)[0], src.forward_features(x)[:, 0]  # class token after the final LayerNorm
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
        # the head count changes no tensor: another loads strictly, and gives other features
        other = build(dict(kind, arch=to_mmpretrain.vit_arch(sd, 2)))
        other.load_state_dict(sd, strict=True)
        other.eval()
        assert not torch.allclose(other(x)[0], ref, atol=1e-3)


def test_converted_resnet50_loads_with_equal_features():
    from mmpretrain.models import ResNet

    src = torchvision.models.resnet50().eval()
    sd = {k: v for k, v in src.state_dict().items() if not k.startswith("fc.")}
    model = ResNet(depth=50, out_indices=(3,))
    model.load_state_dict(to_mmpretrain.convert("resnet50", sd, "tv"), strict=True)
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = torch.nn.Sequential(*list(src.children())[:-2])(x)
        torch.testing.assert_close(model(x)[0], ref)


def test_converter_cli_writes_what_the_runners_read(tmp_path, r50):
    """An official MoCo v2 checkpoint (module.encoder_q.*) -> torchvision names, format 'mmpretrain'."""
    sd = r50[1]
    ckpt = {f"module.encoder_q.{k}": v for k, v in sd.items()}
    ckpt.update({"module.encoder_q.fc.0.weight": torch.zeros(2048, 2048), "module.queue": torch.zeros(128, 8)})
    torch.save({"arch": "resnet50", "state_dict": ckpt}, tmp_path / "moco_v2.pth.tar")
    out = tmp_path / "out_mmpretrain.pth"
    assert to_mmpretrain.main([str(tmp_path / "moco_v2.pth.tar"), "-o", str(out)]) == 0
    obj = torch.load(out, weights_only=True)
    assert obj["meta"]["format"] == "mmpretrain" and obj["meta"]["arch"] == "resnet50"
    assert obj["state_dict"].keys() == sd.keys() and all(torch.equal(obj["state_dict"][k], sd[k]) for k in sd)


def test_topk_over_few_classes_and_clipped_lighting():
    scores = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    assert stages.topk_accuracy(scores, torch.tensor([0, 1]), (1, 2, 5)) == [50.0, 100.0, 100.0]
    light = stages.ClippedLighting(eigval=[55.46, 4.79, 1.15], eigvec=[[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]],
                                   alphastd=1.0)
    np.random.seed(0)
    out = [light.transform({"img": np.zeros((4, 4, 3), np.uint8)})["img"] for _ in range(20)]
    assert all(o.dtype == np.uint8 for o in out) and max(int(o.max()) for o in out) < 200  # no -3 -> 253 wrap


@pytest.fixture(scope="module")
def r50(tmp_path_factory):
    """A converted ResNet-50 whose BN running statistics are not the defaults (train-mode BN would move them)."""
    tmp_path = tmp_path_factory.mktemp("r50")
    torch.manual_seed(0)
    sd = {k: v for k, v in torchvision.models.resnet50().state_dict().items() if not k.startswith("fc.")}
    for k in sd:
        if k.endswith("running_mean"):
            sd[k] = torch.randn_like(sd[k]) * 0.1
        elif k.endswith("running_var"):
            sd[k] = torch.rand_like(sd[k]) + 0.5
    path = str(tmp_path / "r50_mmpretrain.pth")
    meta = {"arch": "resnet50", "source": "torchvision"}
    to_mmpretrain.save(to_mmpretrain.convert("resnet50", sd, "r50"), path, meta)
    return path, sd


def vit_weights(tmp_path, depth=12, width=384, heads=12, name="vits"):
    sd = timm_vit(depth, width, heads, img=224, patch=16).state_dict()
    path = str(tmp_path / f"{name}_mmpretrain.pth")
    arch = "vit_small" if (depth, width) == (12, 384) else "vit"
    meta = {"arch": arch, "num_heads": heads, "source": "timm"}
    to_mmpretrain.save(to_mmpretrain.convert("vit", sd, name), path, meta)
    return path


ONE_EPOCH = ["train_cfg.max_epochs=1", "train_cfg.val_interval=1", "default_hooks.checkpoint.interval=1"]
# fewer and smaller images than the quick config: 2 iterations of 12 crops of 32 px, no validation pass
TINY = ["train_cfg.max_epochs=1", "train_cfg.val_interval=2", "default_hooks.checkpoint.interval=1",
        "train_dataloader.batch_size=12", "train_dataloader.dataset.pipeline.1.scale=32",
        "val_dataloader.dataset.pipeline.1.scale=36", "val_dataloader.dataset.pipeline.2.crop_size=32"]


def run(module, name, root, work, weights=None, opts=ONE_EPOCH):
    argv = ["--config", config_path("mmpretrain", name), "--data-root", str(root), "--work-dir", str(work)]
    assert module.main(argv + (["--weights", weights] if weights else []) + ["--cfg-options", *opts]) == 0
    metrics = json.load(open(work / "final_metrics.json"))
    # the per-image file: every val image ('class/x.jpg', sorted), its class, each head's top-1 class,
    # which give the run's own top-1 accuracies back
    data = perimage.read(str(work))
    val = os.path.join(root, "places205" if "places205" in name else "imagenet", "val")
    assert list(data["ids"]) == sorted(f"{c}/{f}" for c in os.listdir(val) for f in os.listdir(os.path.join(val, c)))
    heads = [k for k in data if k not in ("ids", "labels")]
    assert heads == sorted(f"{g}/top1" for g in metrics) and len(data["labels"]) == len(data["ids"])
    for head in heads:
        group = head.split("/")[0]
        assert perimage.metric(head, data, np.ones((1, len(data["ids"]))))[0] == pytest.approx(metrics[group]["top1"])
    return metrics, json.load(open(work / "fingerprint.json"))


def test_linear_probe_leaves_the_backbone_unchanged(tmp_path, demo_root, r50):
    weights, sd = r50
    work = tmp_path / "lin"
    metrics, fp = run(linear, "linear_mocov2_r50_quick.py", demo_root, work, weights, TINY)
    assert set(metrics["accuracy"]) == {"top1", "top5"} and fp["task"] == "linear" and fp["recipe"] == "mocov2_r50"
    trained = torch.load(work / "epoch_1.pth", map_location="cpu", weights_only=False)["state_dict"]
    changed = [k for k, v in sd.items() if not torch.equal(trained[f"backbone.{k}"], v)]
    assert not changed, changed  # weights AND BN running statistics
    assert trained["head.fc.weight"].shape == (4, 2048)  # a head for the 4 built-in classes
    assert not [d for d in fp["deviations"] if d.startswith(("momentum:", "weight_decay:", "trained:"))]
    # the quick config's two deviations: MAE's BatchNorm (affine=False) on res5 GAP, and an lr for it at 8 images
    assert "features: res5 GAP, BN affine=False (protocol res5 GAP)" in fp["deviations"]
    assert fp["lr"] == 0.001 and fp["lr_scaling"].startswith("measured")  # (this test batches 12)
    assert "backbone: all" in open(next(work.glob("*/*.log"))).read()


# each quick linear probe, its head's input and the recipe's (MAE's BatchNorm on the recipe's features)
QUICK = {"linear_mocov2_r50_quick.py": ("res5 GAP", 2048), "linear_mocov3_r50_quick.py": ("res5 GAP", 2048),
         "linear_mocov3_vit_quick.py": ("class token after the final LayerNorm", 384)}


@pytest.mark.parametrize("name", list(QUICK))
def test_quick_linear_config_normalises_the_features(name):
    """mmpretrain's ClsBatchNormNeck on the recipe's features is MAE main_linprobe.py's BatchNorm1d(affine=False,
    eps=1e-6): a BatchNorm with no weight or bias (ResNet: after the GAP, in one nn.Sequential neck, as MMEngine
    builds a list of modules; ViT: on the class token, as main_linprobe.py does), and an lr for it."""
    words, width = QUICK[name]
    cfg = Config.fromfile(config_path("mmpretrain", name))
    neck = build(cfg.model.neck)
    if words == "res5 GAP":
        assert [type(m).__name__ for m in neck] == ["GlobalAveragePooling", "ClsBatchNormNeck"]
        neck = neck[1]
    bn = neck.bn
    assert type(neck).__name__ == "ClsBatchNormNeck" and isinstance(bn, torch.nn.BatchNorm1d)
    assert not bn.affine and bn.eps == 1e-6 and bn.num_features == width
    assert linear.features(cfg.model) == f"{words}, BN affine=False" and cfg.train_dataloader.drop_last
    assert cfg.optim_wrapper.optimizer.lr == 0.001 and cfg.lr_scaling.startswith("measured")
    full = Config.fromfile(config_path("mmpretrain", name.replace("_quick", "")))
    assert linear.features(full.model) == words == linear.RECIPES[full.recipe]["features"]  # the recipe's: no BN


LOUD = 1e3  # mean squared norm of res5 GAP features, about a briefly pretrained demo checkpoint's


@pytest.fixture(scope="module")
def loud_r50(tmp_path_factory):
    """A random ResNet-50 whose res5 GAP features have a mean squared norm of about LOUD (on unit-variance 64 px
    inputs), written as converters/to_mmpretrain.py does. With BN statistics at their defaults (mean 0, var 1) and
    zero biases the network is positively homogeneous, so scaling the stem BN's gammas scales every feature alike."""
    torch.manual_seed(0)
    net = torchvision.models.resnet50().eval()
    with torch.no_grad():
        x = torch.randn(8, 3, 64, 64)
        body = torch.nn.Sequential(*list(net.children())[:-1])
        norm = body(x).flatten(1).pow(2).sum(1).mean().item()
        net.bn1.weight.mul_((LOUD / norm) ** 0.5)
        loud = body(x).flatten(1).pow(2).sum(1).mean().item()
    assert LOUD / 2 < loud < 2 * LOUD, (norm, loud)  # the case is what it claims to be
    sd = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    path = str(tmp_path_factory.mktemp("loud") / "loud_mmpretrain.pth")
    meta = {"arch": "resnet50", "source": "torchvision"}
    to_mmpretrain.save(to_mmpretrain.convert("resnet50", sd, "loud"), path, meta)
    return path


@pytest.mark.parametrize("name", ["linear_mocov2_r50_quick.py", "linear_mocov3_r50_quick.py"])
def test_quick_linear_probe_trains_on_large_features(tmp_path, demo_root, loud_r50, name):
    """The quick config's whole schedule on a backbone with large features: the loss stays below
    10 x ln(classes) at every step (MoCo v2's lr 30 x 8 / 256 on the raw features climbs far above it, and so
    does MoCo v3's 0.4 at 8 images), and the frozen-backbone check passes."""
    work = tmp_path / "loud"
    metrics, fp = run(linear, name, demo_root, work, loud_r50,
                      ["default_hooks.checkpoint.interval=6"])
    _, losses = report.curves(str(work))
    assert len(losses) == 6 * 24 // 8  # every iteration of the 6 epochs logged (24 training images, 8 a batch)
    assert max(losses) < 10 * math.log(fp["num_classes"]), max(losses)
    assert "unchanged by training" in open(next(work.glob("*/*.log"))).read()


@pytest.mark.slow
def test_linear_vit_small_end_to_end(tmp_path, demo_root):
    metrics, fp = run(linear, "linear_mocov3_vit_quick.py", demo_root, tmp_path / "vit", vit_weights(tmp_path))
    assert set(metrics["accuracy"]) == {"top1", "top5"} and fp["num_classes"] == 4
    assert fp["features"] == "class token after the final LayerNorm, BN affine=False" and fp["trained"] == "head"


def test_quick_vit_probe_normalises_the_class_token_of_any_width(tmp_path, demo_root):
    """The ViT quick probe takes its width from --weights (a 64-wide ViT here): the BatchNorm on the class token
    follows the head's, and the fingerprint names the features as a deviation from the recipe's."""
    work = tmp_path / "vit"
    metrics, fp = run(linear, "linear_mocov3_vit_quick.py", demo_root, work,
                      vit_weights(tmp_path, depth=2, width=64, heads=4, name="tiny"), TINY)
    trained = torch.load(next(work.glob("epoch_*.pth")), map_location="cpu", weights_only=False)["state_dict"]
    assert trained["neck.bn.running_var"].shape == (64,) and "neck.bn.weight" not in trained  # affine=False
    assert trained["head.layers.head.weight"].shape == (4, 64)
    assert fp["features"] == "class token after the final LayerNorm, BN affine=False"
    assert ("features: class token after the final LayerNorm, BN affine=False (protocol class token after the "
            "final LayerNorm)") in fp["deviations"]
    assert fp["lr"] == 0.001 and fp["lr_scaling"].startswith("measured")


@pytest.mark.parametrize("places", [False, True])
def test_linear_stages_end_to_end(tmp_path, demo_root, places):
    root = demo_root
    if places:  # Places205's layout, with the built-in images
        root = tmp_path / "root"
        root.mkdir()
        os.symlink(os.path.join(demo_root, "imagenet"), root / "places205")
    name = "linear-stages_r50_places205_quick.py" if places else "linear-stages_r50_quick.py"
    metrics, fp = run(linear, name, root, tmp_path / "st")
    assert sorted(metrics) == ["feat1", "feat2", "feat3", "feat4", "feat5"]
    assert all(set(m) == {"top1", "top5"} for m in metrics.values())
    assert fp["task"] == "linear-stages" and fp["recipe"] == ("mhead_places205" if places else "mhead_imagenet")


@pytest.mark.slow
def test_finetune_vit_small_end_to_end(tmp_path, demo_root):
    metrics, fp = run(finetune, "finetune_vit_quick.py", demo_root, tmp_path / "ft", vit_weights(tmp_path))
    assert set(metrics["accuracy"]) == {"top1", "top5"}
    assert fp["num_heads"] == 12 and fp["trained"] == "all" and fp["mixup"] == 0.8


def test_finetune_tiny_vit_end_to_end(tmp_path, demo_root):
    weights = vit_weights(tmp_path, depth=2, width=64, heads=4, name="tiny")
    metrics, fp = run(finetune, "finetune_vit_quick.py", demo_root, tmp_path / "ft", weights, TINY)
    assert set(metrics["accuracy"]) == {"top1", "top5"} and fp["num_heads"] == 4
    assert "backbone: all" in open(next((tmp_path / "ft").glob("*/*.log"))).read()


def data_root(tmp_path, train, val):
    root = tmp_path / "badroot"
    for split, classes in (("train", train), ("val", val)):
        for c in classes:
            (root / "imagenet" / split / c).mkdir(parents=True)
            (root / "imagenet" / split / c / "0.jpg").write_bytes(b"")
    return root


def test_bad_input_is_refused(tmp_path, demo_root, capsys, r50):
    r50 = r50[0]
    vit = vit_weights(tmp_path, depth=2, width=64, heads=4, name="tiny")
    headless = str(tmp_path / "headless.pth")
    to_mmpretrain.save(to_mmpretrain.convert("vit", timm_vit().state_dict()), headless, {"arch": "vit"})
    raw = str(tmp_path / "raw.pth")
    torch.save({"state_dict": torch.load(r50, weights_only=True)["state_dict"]}, raw)
    work = tmp_path / "work"
    rows = [  # (runner, config, data root, weights, culprit)
        (linear, "linear-stages_r50_quick.py", demo_root, vit, vit),  # a ViT for the per-stage heads
        (linear, "linear_mocov3_vit_quick.py", demo_root, r50, r50),  # a ResNet for the ViT probe
        (finetune, "finetune_vit_small.py", demo_root, vit, vit),  # another ViT size than the config's
        (linear, "linear_mocov3_vit_quick.py", demo_root, headless, "--num-heads"),
        (linear, "linear_mocov2_r50_quick.py", demo_root, raw, "converters/to_mmpretrain.py"),
        (linear, "linear_mocov2_r50_quick.py", data_root(tmp_path, ["a", "b"], ["a", "c"]), None, "different classes"),
        (linear, "linear-stages_r50_places205_quick.py", demo_root, None, "places205/train"),
        (linear, "finetune_vit_quick.py", demo_root, None, "finetune_vit_quick.py"),  # the wrong runner
        (linear, "no_such_config.py", demo_root, None, "no_such_config.py"),
    ]
    for module, name, root, weights, culprit in rows:
        argv = ["--config", config_path("mmpretrain", name), "--data-root", root, "--work-dir", work]
        refuses(partial(entry, module.main), argv + (["--weights", weights] if weights else []), culprit, capsys,
                watch=[str(work), str(tmp_path)])
    typo = ["--config", config_path("mmpretrain", "linear_mocov2_r50_quick.py"), "--data-root", demo_root,
            "--work-dir", work, "--cfg-options", "train_cfg.max_epoch=1"]
    refuses(partial(entry, linear.main), typo, "train_cfg.max_epoch", capsys, watch=[str(tmp_path)])
    assert not work.exists()


@pytest.mark.slow
def test_a_rerun_resumes_from_its_own_checkpoint(tmp_path, demo_root):
    weights, work = vit_weights(tmp_path, depth=2, width=64, heads=4, name="tiny"), tmp_path / "ft"
    run(finetune, "finetune_vit_quick.py", demo_root, work, weights, TINY)
    run(finetune, "finetune_vit_quick.py", demo_root, work, weights, [o.replace("epochs=1", "epochs=2") for o in TINY])
    assert torch.load(work / "epoch_2.pth", map_location="cpu", weights_only=False)["meta"]["epoch"] == 2
    assert "Auto resumed" in "".join(open(p).read() for p in work.glob("*/*.log"))
