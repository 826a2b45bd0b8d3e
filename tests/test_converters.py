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


def tiny_vit(depth=2, width=64, heads=4, img=32):
    from functools import partial

    import timm

    torch.manual_seed(0)
    return timm.models.vision_transformer.VisionTransformer(
        img_size=img, patch_size=16, embed_dim=width, depth=depth, num_heads=heads, num_classes=0,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6)).eval()


def mocov3_file(vit, path, arch=None):
    """The official moco-v3 layout (ours is the same plus 'config'): base encoder, momentum, predictor."""
    sd = {f"module.base_encoder.{k}": v for k, v in vit.state_dict().items()}
    sd["module.base_encoder.head.0.weight"] = torch.randn(8, vit.embed_dim)  # the projector replaces head
    sd["module.momentum_encoder.cls_token"] = torch.randn(1, 1, vit.embed_dim)
    sd["module.predictor.0.weight"] = torch.randn(8, 8)
    torch.save({"epoch": 300, "arch": arch, "state_dict": sd} if arch else {"state_dict": sd}, path)
    return str(path)


@pytest.fixture(scope="module")
def vit_small(tmp_path_factory):
    """MoCo v3's ViT-S/16 (12 heads) in the official layout, which records arch 'vit_small'."""
    vit = tiny_vit(12, 384, 12, 224)
    return vit, mocov3_file(vit, tmp_path_factory.mktemp("vits") / "v3.pth", arch="vit_small")


@pytest.mark.parametrize("size", ["tiny", "vit_small"])
def test_vit_to_mmseg_equals_timm_features(size, tmp_path, capsys, vit_small):
    from mmengine.runner import load_checkpoint
    from mmseg.models.backbones import VisionTransformer

    depth, width, heads, img = (2, 64, 4, 32) if size == "tiny" else (12, 384, 12, 224)
    vit, ckpt = (tiny_vit(), mocov3_file(tiny_vit(), tmp_path / "v3.pth")) if size == "tiny" else vit_small
    out = str(tmp_path / "vit_mmseg.pth")
    assert to_mmseg.main([ckpt, "-o", out] + (["--num-heads", "4"] if size == "tiny" else [])) == 0
    report = capsys.readouterr().out
    if size == "vit_small":  # the head count comes from the checkpoint's own arch name
        assert "vit_small (12 blocks x 384, patch 16, 14x14 grid, num_heads 12 from 'arch' 'vit_small')" in report
        assert "num_heads=12, patch_bias=True, final_norm=True" in report
    saved = torch.load(out, weights_only=True)
    assert saved["meta"]["num_heads"] == heads and saved["meta"]["arch"] == ("vit" if size == "tiny" else size)
    ours = VisionTransformer(img_size=img, patch_size=16, embed_dims=width, num_layers=depth, num_heads=heads,
                             out_indices=(depth - 1,), final_norm=True, norm_cfg=dict(type="LN", eps=1e-6),
                             patch_bias=True)  # timm's patch projection has a bias; mmseg's default has none
    ours.eval()
    load_checkpoint(ours, out, strict=True)
    mine = ours.state_dict()
    assert set(mine) == set(saved["state_dict"])  # every tensor of the backbone came from the checkpoint
    for k, v in saved["state_dict"].items():
        torch.testing.assert_close(mine[k], v, rtol=0, atol=0)
    g = img // 16
    x = torch.randn(1, 3, img, img)
    with torch.no_grad():
        ref = vit.forward_features(x)[:, 1:].transpose(1, 2).reshape(1, width, g, g)
        torch.testing.assert_close(ours(x)[0], ref, rtol=1e-4, atol=1e-4)


def test_vit_to_vitdet_layout(tmp_path, capsys):
    vit = tiny_vit()
    ckpt = str(tmp_path / "timm.pth")
    torch.save(vit.state_dict(), ckpt)
    out = str(tmp_path / "vitdet.pkl")
    assert to_detectron2.main([ckpt, "-o", out]) == 0
    assert "num_heads not recorded in the checkpoint" in capsys.readouterr().out
    data = pickle.load(open(out, "rb"))
    model = data["model"]
    assert all(k.startswith("backbone.net.") for k in model)
    assert "backbone.net.cls_token" not in model and "backbone.net.norm.weight" not in model
    assert model["backbone.net.pos_embed"].shape == (1, 5, 64)  # the cls slot is kept
    assert len(model) == len(vit.state_dict()) - 3
    assert data["meta"] == {"arch": "vit", "source": "timm", "num_heads": None}


def test_vitdet_backbone_loads_every_tensor_and_equals_timm(tmp_path, capsys, vit_small):
    """ViT-S (12 heads) into detectron2's own ViTDet backbone through DetectionCheckpointer."""
    vitdet = pytest.importorskip("detectron2.modeling.backbone.vit")
    from functools import partial

    from detectron2.checkpoint import DetectionCheckpointer

    vit, ckpt = vit_small
    out = str(tmp_path / "vitdet.pkl")
    assert to_detectron2.main([ckpt, "-o", out]) == 0
    assert "ViT(embed_dim=384, depth=12, num_heads=12, patch_size=16, pretrain_img_size=224" in capsys.readouterr().out
    net = vitdet.ViT(img_size=224, patch_size=16, embed_dim=384, depth=12, num_heads=12, mlp_ratio=4, qkv_bias=True,
                     drop_path_rate=0.0, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), window_size=0,
                     use_rel_pos=False, pretrain_img_size=224, pretrain_use_cls_token=True, out_feature="last_feat")
    model = torch.nn.Module()
    model.backbone = torch.nn.Module()
    model.backbone.net = net.eval()
    cp = DetectionCheckpointer(model)
    inc = cp._load_model(cp._load_file(out))
    assert not inc.missing_keys and not inc.unexpected_keys and not inc.incorrect_shapes
    saved = pickle.load(open(out, "rb"))["model"]
    mine = model.state_dict()
    assert set(mine) == set(saved)  # nothing ViTDet adds by design here: no rel_pos with use_rel_pos=False
    for k, v in saved.items():
        torch.testing.assert_close(mine[k], torch.from_numpy(v), rtol=0, atol=0)
    # with ViTDet's own additions switched on, exactly those are left to initialise
    windowed = torch.nn.Module()
    windowed.backbone = torch.nn.Module()
    windowed.backbone.net = vitdet.ViT(img_size=224, patch_size=16, embed_dim=384, depth=12, num_heads=12, window_size=14,
                                       window_block_indexes=[0, 1, 3, 4], use_rel_pos=True, pretrain_img_size=224)
    cp = DetectionCheckpointer(windowed)
    inc = cp._load_model(cp._load_file(out))
    assert sorted(inc.missing_keys) == sorted(f"backbone.net.blocks.{i}.attn.rel_pos_{a}" for i in range(12) for a in "hw")
    assert not inc.unexpected_keys and not inc.incorrect_shapes
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():  # ViTDet drops the cls token: timm's blocks on the patch tokens alone, no final norm
        h = vit.blocks(vit.patch_embed(x) + vit.pos_embed[:, 1:])
        ref = h.transpose(1, 2).reshape(1, 384, 14, 14)
        torch.testing.assert_close(net(x)["last_feat"], ref, rtol=1e-4, atol=1e-4)


def vit_large_like(path, layout):
    """A ViT-L/16 checkpoint (24 x 1024, 16 heads) without the memory: each tensor is one number
    expanded to its shape (torch.save keeps the one-element storage)."""
    from timm.models.vision_transformer import VisionTransformer

    with torch.device("meta"):
        ref = VisionTransformer(img_size=224, patch_size=16, embed_dim=1024, depth=24, num_heads=16, num_classes=0)
    sd = {k: torch.tensor(float(i) / 1000).expand(v.shape) for i, (k, v) in enumerate(ref.state_dict().items())}
    if layout == "mmpretrain":  # mmpretrain names under backbone., the config text in meta
        sd = {f"backbone.{k}": v for k, v in to_mmseg.vit_to_mmseg(sd).items()}
        sd = {k.replace("attn.attn.in_proj_", "attn.qkv.").replace("attn.attn.out_proj", "attn.proj"): v
              for k, v in sd.items()}
        sd["neck.mlp.0.weight"] = torch.zeros(2, 2)
        obj = {"state_dict": sd, "meta": {"cfg": "model = dict(\n    type='MoCoV3',\n    backbone=dict(\n"
                                                  "        type='MoCoV3ViT',\n        arch='large',\n        img_size=224))"}}
    else:
        sd = {f"module.base_encoder.{k}": v for k, v in sd.items()}
        sd["module.predictor.0.weight"] = torch.zeros(2, 2)
        obj = {"epoch": 300, "arch": "vit_large", "state_dict": sd}
        if layout == "ours":
            obj["config"] = {"method": "mocov3", "arch": "vit_large"}
    torch.save(obj, path)
    return ref.state_dict()


@pytest.fixture(scope="module")
def mmseg_vit_large_shapes():
    """mmseg's own class on the meta device (no memory); its drop-path schedule calls .item() on a
    linspace, which must be a real tensor for that."""
    from mmseg.models.backbones import VisionTransformer

    linspace = torch.linspace
    torch.linspace = lambda *a, **k: linspace(*a, **{**k, "device": "cpu"})
    try:
        with torch.device("meta"):
            target = VisionTransformer(img_size=224, patch_size=16, embed_dims=1024, num_layers=24, num_heads=16,
                                       final_norm=True, patch_bias=True)
    finally:
        torch.linspace = linspace
    return {k: v.shape for k, v in target.state_dict().items()}


@pytest.mark.parametrize("layout", ["ours", "moco_v3", "mmpretrain"])
def test_vit_large_reads_and_converts(layout, tmp_path, capsys, mmseg_vit_large_shapes):
    ref = vit_large_like(tmp_path / "vitl.pth", layout)
    arch, sd, report = sources.read_backbone(str(tmp_path / "vitl.pth"))
    assert arch == "vit_large" and report["num_heads"] == 16
    assert report["vit"] == {"depth": 24, "width": 1024, "patch": 16, "grid": 14, "in_chans": 3, "mlp_ratio": 4.0}
    assert {k: v.shape for k, v in sd.items()} == {k: v.shape for k, v in ref.items()}
    assert float(sd["blocks.23.mlp.fc2.bias"][0]) == pytest.approx(list(ref).index("blocks.23.mlp.fc2.bias") / 1000)

    out = str(tmp_path / "vitl_mmseg.pth")
    assert to_mmseg.main([str(tmp_path / "vitl.pth"), "-o", out, "--arch", "vit_large"]) == 0
    assert "vit_large (24 blocks x 1024, patch 16, 14x14 grid, num_heads 16 from" in capsys.readouterr().out
    saved = torch.load(out, weights_only=True)
    assert {k: v.shape for k, v in saved["state_dict"].items()} == mmseg_vit_large_shapes
    assert saved["meta"]["num_heads"] == 16

    vitdet = to_detectron2.convert(arch, sd)  # numpy views of the expanded tensors: no pickle of 1.2 GB here
    assert set(vitdet) == {f"backbone.net.{k}" for k in ref if k not in ("cls_token", "norm.weight", "norm.bias")}
    assert vitdet["backbone.net.pos_embed"].shape == (1, 197, 1024)


@pytest.mark.slow
def test_real_vit_large_to_mmseg_equals_timm_features(tmp_path):
    """A real ViT-L/16 (1.2 GB): converted from the moco-v3 layout, strict into mmseg, same features."""
    from mmengine.runner import load_checkpoint
    from mmseg.models.backbones import VisionTransformer

    vit = tiny_vit(24, 1024, 16, 224)
    ckpt = mocov3_file(vit, tmp_path / "vitl.pth", arch="vit_large")
    out = str(tmp_path / "vitl_mmseg.pth")
    assert to_mmseg.main([ckpt, "-o", out]) == 0
    ours = VisionTransformer(img_size=224, patch_size=16, embed_dims=1024, num_layers=24, num_heads=16,
                             out_indices=(23,), final_norm=True, norm_cfg=dict(type="LN", eps=1e-6), patch_bias=True)
    ours.eval()  # mmseg's train() returns None
    load_checkpoint(ours, out, strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ref = vit.forward_features(x)[:, 1:].transpose(1, 2).reshape(1, 1024, 14, 14)
        torch.testing.assert_close(ours(x)[0], ref, rtol=1e-4, atol=1e-4)


def test_timm_vit_rebuilt_from_the_backbone(tmp_path):
    """Another module builds timm's VisionTransformer from read_backbone's timm-name dict."""
    from converters.vit_layout import build_timm_vit

    vit = tiny_vit(3, 64, 4, 32)
    _, sd, report = sources.read_backbone(mocov3_file(vit, tmp_path / "v3.pth"))
    rebuilt = build_timm_vit(sd, num_heads=4)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.forward_features(x), vit.forward_features(x))


@pytest.mark.parametrize("wrapper", ["bare_dataparallel", "compiled", "compiled_in_ddp"])
def test_wrapper_prefixes_are_read_and_reported(wrapper, resnet, tmp_path, capsys):
    sd = {k: v for k, v in resnet.state_dict().items() if not k.startswith("fc.")}
    prefix = {"bare_dataparallel": "module.", "compiled": "_orig_mod.", "compiled_in_ddp": "module._orig_mod.encoder_q."}
    torch.save({f"{prefix[wrapper]}{k}": v for k, v in sd.items()}, tmp_path / "w.pth")
    out = str(tmp_path / "w.pkl")
    assert to_detectron2.main([str(tmp_path / "w.pth"), "-o", out]) == 0
    log = capsys.readouterr().out
    assert ("removed torch.compile's '_orig_mod.' from 318 keys" in log) == (wrapper != "bare_dataparallel")
    assert ("removed DataParallel's leading 'module.' from all 318 keys" in log) == (wrapper == "bare_dataparallel")
    model = pickle.load(open(out, "rb"))["model"]
    assert len(model) == 318
    torch.testing.assert_close(torch.from_numpy(model["res5.2.conv3.norm.running_var"]), sd["layer4.2.bn3.running_var"])


def test_bf16_checkpoint_converts_to_fp32_exactly(tmp_path, capsys):
    vit = tiny_vit()
    torch.save({k: v.bfloat16() for k, v in vit.state_dict().items()}, tmp_path / "bf16.pth")
    out = str(tmp_path / "bf16.pkl")
    assert to_detectron2.main([str(tmp_path / "bf16.pth"), "-o", out]) == 0
    assert "bfloat16 tensors stored as float32 (numpy has no bfloat16; exact)" in capsys.readouterr().out
    model = pickle.load(open(out, "rb"))["model"]
    w = model["backbone.net.blocks.1.mlp.fc2.weight"]
    assert w.dtype.name == "float32"
    assert torch.equal(torch.from_numpy(w), vit.state_dict()["blocks.1.mlp.fc2.weight"].bfloat16().float())


def test_mmseg_output_name_is_taken_as_given(tmp_path):
    """mmengine reads a local file with torch.load whatever its name: no extension is needed."""
    ckpt = mocov3_file(tiny_vit(), tmp_path / "v3.pth")
    assert to_mmseg.main([ckpt, "-o", str(tmp_path / "backbone")]) == 0
    assert "layers.1.ln2.weight" in torch.load(tmp_path / "backbone", weights_only=True)["state_dict"]
    assert oct(os.stat(tmp_path / "backbone").st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_trust_pickle_reads_old_files(resnet, tmp_path):
    sd = {f"module.encoder_q.{k}": v for k, v in resnet.state_dict().items() if not k.startswith("fc.")}
    p = tmp_path / "old.pth"
    torch.save({"state_dict": sd, "args": torch.nn.Identity()}, p)  # pickled module: code on load
    with pytest.raises(sources.ConversionError, match="trust-pickle"):
        sources.read_backbone(str(p))
    arch, out, _ = sources.read_backbone(str(p), trust_pickle=True)
    assert arch == "resnet50" and len(out) == 318
