"""Converters: numerical equivalence into the real Detectron2 and MMSegmentation backbones, and
refusals of everything that would otherwise load nothing."""
import os
import pickle

import pytest
import torch
import torchvision

from converters import sources, to_detectron2, to_mmseg
from tests.conftest import config_path


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    net = torchvision.models.resnet50()
    for m in net.modules():  # non-trivial BN statistics, so a BN left at init would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
    return net.eval()


def layouts(net):
    """The same backbone in every supported checkpoint layout."""
    sd = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    v2 = {f"module.encoder_q.{k}": v for k, v in sd.items()}
    v2.update({"module.encoder_q.fc.0.weight": torch.randn(2048, 2048), "module.encoder_q.fc.2.weight": torch.randn(128, 2048),
               "module.encoder_k.conv1.weight": sd["conv1.weight"], "module.queue": torch.randn(128, 16),
               "module.queue_ptr": torch.zeros(1, dtype=torch.long)})
    v3 = {f"module.base_encoder.{k}": v for k, v in sd.items()}
    v3.update({"module.base_encoder.fc.0.weight": torch.randn(8, 2048), "module.base_encoder.fc.1.weight": torch.randn(8),
               "module.momentum_encoder.conv1.weight": sd["conv1.weight"], "module.predictor.0.weight": torch.randn(8, 8)})
    mm = {f"backbone.{k}": v for k, v in sd.items()}
    mm.update({"neck.mlp.0.weight": torch.randn(4, 4), "head.x": torch.randn(1), "momentum_encoder.backbone.conv1.weight": sd["conv1.weight"]})
    return {"moco_v2": {"epoch": 200, "arch": "resnet50", "state_dict": v2},
            "moco_v3": {"epoch": 100, "arch": "resnet50", "state_dict": v3},
            "mmselfsup": {"state_dict": mm, "meta": {"epoch": 200}},
            "mmselfsup_extracted": {"state_dict": dict(sd), "author": "mmselfsup"},
            "torchvision": net.state_dict()}


@pytest.fixture(scope="module")
def checkpoints(resnet, tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    paths = {}
    for name, obj in layouts(resnet).items():
        paths[name] = str(d / f"{name}.pth")
        torch.save(obj, paths[name])
    return paths


def d2_model(config):
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from transfer.detection import heads  # noqa: F401
    from transfer.detection.train_net import adapt_to_world

    cfg = get_cfg()
    cfg.merge_from_file(config_path("detectron2", config))
    adapt_to_world(cfg, 1)
    return build_model(cfg).eval()


def load_d2(model, pkl):
    from detectron2.checkpoint import DetectionCheckpointer

    cp = DetectionCheckpointer(model)
    return cp._load_model(cp._load_file(pkl))  # the checkpointer's own path; returns what did not match


@pytest.mark.parametrize("layout", ["moco_v2", "moco_v3", "mmselfsup", "mmselfsup_extracted", "torchvision"])
def test_detectron2_c4_and_fpn_equal_source_features(layout, checkpoints, resnet, tmp_path, capsys):
    out = str(tmp_path / "out.pkl")
    assert to_detectron2.main([checkpoints[layout], "-o", out]) == 0
    assert f"source {layout.replace('_extracted', '')} (detected)" in capsys.readouterr().out
    data = pickle.load(open(out, "rb"))
    assert data["__author__"] and data["matching_heuristics"] is True
    assert len(data["model"]) == 318 and not any("fc" in k for k in data["model"])

    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        t = {}
        h = resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(x))))
        for i in range(1, 5):
            h = getattr(resnet, f"layer{i}")(h)
            t[f"res{i + 1}"] = h

    c4 = d2_model("pascal_voc_R_50_C4_quick.yaml")
    inc = load_d2(c4, out)
    assert not [k for k in inc.missing_keys if k.startswith(("backbone.", "roi_heads.res5"))
                and not k.startswith("roi_heads.res5.norm")]  # the extra norm is new, by protocol
    assert not inc.unexpected_keys and not inc.incorrect_shapes
    with torch.no_grad():
        res4 = c4.backbone(x)["res4"]
        torch.testing.assert_close(res4, t["res4"], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(c4.roi_heads.res5[:3](res4), t["res5"], rtol=1e-4, atol=1e-4)

    fpn = d2_model("coco_R_50_FPN_quick.yaml")
    inc = load_d2(fpn, out)
    assert not [k for k in inc.missing_keys if k.startswith("backbone.bottom_up.")]
    assert not inc.unexpected_keys and not inc.incorrect_shapes
    with torch.no_grad():
        feats = fpn.backbone.bottom_up(x)
    for name in ("res2", "res3", "res4", "res5"):
        torch.testing.assert_close(feats[name], t[name], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layout", ["moco_v2", "moco_v3", "mmselfsup", "torchvision"])
def test_mmseg_resnet_equals_source_features(layout, checkpoints, resnet, tmp_path):
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules()
    out = str(tmp_path / "out.pth")
    assert to_mmseg.main([checkpoints[layout], "-o", out]) == 0
    # the FCN protocol's own backbone (dilated): every tensor loads, strictly
    cfg = Config.fromfile(config_path("mmseg", "fcn_r50-d8_4xb4-20k_voc12aug-512x512_moco.py"))
    fcn_backbone = revert_sync_batchnorm(MODELS.build(cfg.model.backbone))
    load_checkpoint(fcn_backbone, out, strict=True)
    for k, v in fcn_backbone.state_dict().items():
        torch.testing.assert_close(v, resnet.state_dict()[k])
    # and with torchvision's strides the features are the source network's
    plain = MODELS.build(dict(type="ResNet", depth=50, out_indices=(0, 1, 2, 3), style="pytorch"))
    plain.eval()  # mmseg's ResNet.train() returns None
    load_checkpoint(plain, out, strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours = plain(x)[-1]
        ref = torch.nn.Sequential(*list(resnet.children())[:-2])(x)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def tiny_vit():
    from functools import partial

    import timm

    torch.manual_seed(0)
    return timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=16, embed_dim=64, depth=2, num_heads=4, num_classes=0,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6)).eval()


def test_vit_to_mmseg_equals_timm_features(tmp_path):
    from mmengine.runner import load_checkpoint
    from mmseg.models.backbones import VisionTransformer

    vit = tiny_vit()
    ckpt = str(tmp_path / "v3.pth")
    torch.save({"state_dict": {f"module.base_encoder.{k}": v for k, v in vit.state_dict().items()}}, ckpt)
    out = str(tmp_path / "vit_mmseg.pth")
    assert to_mmseg.main([ckpt, "-o", out]) == 0
    ours = VisionTransformer(img_size=32, patch_size=16, embed_dims=64, num_layers=2, num_heads=4,
                             out_indices=(1,), final_norm=True, norm_cfg=dict(type="LN", eps=1e-6),
                             patch_bias=True)  # timm's patch projection has a bias; mmseg's default has none
    ours.eval()
    load_checkpoint(ours, out, strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        ref = vit.forward_features(x)[:, 1:].transpose(1, 2).reshape(1, 64, 2, 2)
        torch.testing.assert_close(ours(x)[0], ref, rtol=1e-4, atol=1e-4)


def test_vit_to_vitdet_layout(tmp_path):
    vit = tiny_vit()
    ckpt = str(tmp_path / "timm.pth")
    torch.save(vit.state_dict(), ckpt)
    out = str(tmp_path / "vitdet.pkl")
    assert to_detectron2.main([ckpt, "-o", out]) == 0
    model = pickle.load(open(out, "rb"))["model"]
    assert all(k.startswith("backbone.net.") for k in model)
    assert "backbone.net.cls_token" not in model and "backbone.net.norm.weight" not in model
    assert model["backbone.net.pos_embed"].shape == (1, 5, 64)  # the cls slot is kept
    assert len(model) == len(vit.state_dict()) - 3


# --- refusals: exit code 2, a message naming the file, and no output ------------------------

def refusal_cases(resnet, d):
    sd = {k: v for k, v in resnet.state_dict().items() if not k.startswith("fc.")}
    good = d / "good.pth"
    torch.save({"state_dict": {f"module.encoder_q.{k}": v for k, v in sd.items()}}, good)
    cases = {}

    def case(name, obj=None, raw=None, args=(), expect=""):
        p = d / f"{name}.pth"
        if raw is not None:
            p.write_bytes(raw)
        elif obj is not None:
            torch.save(obj, p)
        cases[name] = (str(p), list(args), expect)

    case("missing_file", expect="no such file")
    case("not_a_checkpoint", raw=b"hello, I am a text file\n", expect="not a PyTorch checkpoint")
    case("truncated", raw=good.read_bytes()[:4096], expect="truncated")
    case("empty_dict", obj={}, expect="no state dict")
    case("no_tensors", obj={"state_dict": {"epoch": 3}}, expect="no tensors")
    case("unknown_layout", obj={"state_dict": {"foo.weight": torch.ones(1)}}, expect="unrecognised checkpoint layout")
    case("v2_script_on_v3", obj={"state_dict": {f"module.base_encoder.{k}": v for k, v in sd.items()}},
         args=["--source", "moco_v2"], expect="match no rule")
    case("no_encoder", obj={"state_dict": {"module.encoder_q.fc.0.weight": torch.ones(2, 2), "module.queue": torch.ones(2)}},
         expect="no encoder found")
    case("unmatched_keys", obj={"state_dict": {**{f"module.encoder_q.{k}": v for k, v in sd.items()}, "module.extra.w": torch.ones(1)}},
         expect="match no rule")
    bad = dict(sd)
    bad["layer1.0.conv1.weight"] = torch.ones(3, 3, 1, 1)
    case("shape_mismatch", obj=bad, expect="shape mismatches")
    r18 = torchvision.models.resnet18().state_dict()
    case("resnet18", obj=r18, expect="not a ResNet-50")
    missing = {k: v for k, v in sd.items() if not k.startswith("layer4.2.")}
    case("missing_block", obj=missing, expect="missing")
    case("vit_for_resnet", obj=tiny_vit().state_dict(), args=["--arch", "resnet50"], expect="holds a vit backbone")
    case("resnet_for_vit", obj=sd, args=["--arch", "vit"], expect="holds a resnet50 backbone")
    case("neither", obj={"state_dict": {"module.encoder_q.conv1.weight": torch.ones(1)}}, expect="neither a ResNet-50 nor a ViT")

    case("needs_code", obj={"state_dict": sd, "args": torch.nn.Identity()}, expect="--trust-pickle")
    cases["output_exists"] = (str(good), ["-o", str(good)], "output exists")
    return cases


CASES = ["missing_file", "not_a_checkpoint", "truncated", "empty_dict", "no_tensors", "unknown_layout",
         "v2_script_on_v3", "no_encoder", "unmatched_keys", "shape_mismatch", "resnet18", "missing_block",
         "vit_for_resnet", "resnet_for_vit", "neither", "needs_code", "output_exists"]

@pytest.fixture(scope="module")
def refusals(resnet, tmp_path_factory):
    return refusal_cases(resnet, tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("tool", [to_detectron2, to_mmseg], ids=["detectron2", "mmseg"])
def test_refusal(name, tool, refusals, tmp_path, capsys):
    path, args, expect = refusals[name]
    out = args[args.index("-o") + 1] if "-o" in args else str(tmp_path / "out.bin")
    args = args if "-o" in args else args + ["-o", out]
    before = set(os.listdir(tmp_path))
    assert tool.main([path, *args]) == 2
    err = capsys.readouterr().err
    assert expect in err and os.path.basename(path if name != "output_exists" else out) in err
    assert set(os.listdir(tmp_path)) == before  # nothing written, no temp files left


def test_trust_pickle_reads_old_files(resnet, tmp_path):
    sd = {f"module.encoder_q.{k}": v for k, v in resnet.state_dict().items() if not k.startswith("fc.")}
    p = tmp_path / "old.pth"
    torch.save({"state_dict": sd, "args": torch.nn.Identity()}, p)  # pickled module: code on load
    with pytest.raises(sources.ConversionError, match="trust-pickle"):
        sources.read_backbone(str(p))
    arch, out, _ = sources.read_backbone(str(p), trust_pickle=True)
    assert arch == "resnet50" and len(out) == 318
