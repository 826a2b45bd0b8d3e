"""A MoCo v3 ViT pretrained at a crop other than 224 (the tiny preset trains at 64 px: a 4x4 grid)
in every ViT protocol, each of which builds the ViT for 224 px: the position embedding is put on
the 14x14 grid (MoCo v3's fixed sin-cos written anew, exactly; a learned one interpolated as timm
does), the load checks pass, and the fingerprints say so."""
import json
import pickle

import pytest
import torch

from converters import to_mmpretrain
from converters.vit_layout import resize_pos_embed
from pretrain import vit as moco_vit
from tests.conftest import config_path
from transfer import loadcheck, run_suite

WIDTH, DEPTH, HEADS = 64, 2, 4


def moco_v3_checkpoint(path, img_size=64, width=WIDTH, depth=DEPTH, heads=HEADS):
    """The MoCo v3 ViT of pretrain/vit.py (fixed 2-D sin-cos, as moco-v3 vits.py) in our pretraining
    checkpoint layout, its other tensors made distinctive."""
    torch.manual_seed(0)
    model = moco_vit.vit(width, depth, heads, img_size=img_size, num_classes=0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name != "pos_embed":
                p.add_(torch.randn_like(p) * 0.02)
    sd = {f"module.base_encoder.{k}": v for k, v in model.state_dict().items()}
    sd["module.predictor.0.weight"] = torch.randn(8, 8)
    torch.save({"epoch": 1, "arch": "vit", "config": {"method": "mocov3", "num_heads": heads},
                "state_dict": sd, "optimizer": {}}, path)
    return str(path)


def test_sincos_is_written_exactly_for_the_224_grid():
    """What a MoCo v3 model pretrained at 224 holds (pretrain/vit.py, moco-v3's formula), from the
    64 px one's: the same numbers, not an interpolation."""
    small = moco_vit.vit_small(img_size=64).state_dict()
    sd, note = resize_pos_embed(small)
    want = moco_vit.vit_small(img_size=224).pos_embed
    assert sd["pos_embed"].shape == want.shape == (1, 197, 384)
    torch.testing.assert_close(sd["pos_embed"], want, rtol=0, atol=1e-6)
    assert "4x4 grid (64 px)" in note and "fixed 2-D sin-cos, written for the 14x14 grid of 224 px" in note
    assert resize_pos_embed(moco_vit.vit_small(img_size=224).state_dict())[1] is None  # already fits


def test_a_learned_pos_embed_is_interpolated_with_its_cls_slot():
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    sd = VisionTransformer(img_size=64, patch_size=16, embed_dim=WIDTH, depth=1, num_heads=HEADS).state_dict()
    sd["pos_embed"] = torch.randn_like(sd["pos_embed"])
    out, note = resize_pos_embed(sd)
    assert out["pos_embed"].shape == (1, 197, WIDTH) and "interpolated (bicubic)" in note
    assert torch.equal(out["pos_embed"][:, 0], sd["pos_embed"][:, 0])
    assert out["patch_embed.proj.weight"] is sd["patch_embed.proj.weight"]


def test_knn_runs_a_64px_checkpoint(demo_root, tmp_path, capsys):
    """Was: 'input 224 differs from the ViT's 64', per seed, after launch."""
    from tests.test_classification import write_config
    from transfer.classification import knn

    ckpt = moco_v3_checkpoint(tmp_path / "v3.pth")
    cfg = write_config(tmp_path, "knn_quick_vit.yaml", k=[5])
    rc = knn.main(["--config", cfg, "--data-root", demo_root, "--work-dir", str(tmp_path / "run"), "--weights", ckpt])
    assert rc == 0, capsys.readouterr().err
    facts = json.load(open(tmp_path / "run" / "fingerprint.json"))
    assert "written for the 14x14 grid of 224 px" in facts["pos_embed"]


@pytest.fixture
def suite_weights(tmp_path):
    """The suite's conversion of a 64 px checkpoint for every ViT form (run_suite.read_weights/write_weights)."""
    from transfer import protocols

    ckpt = moco_v3_checkpoint(tmp_path / "v3.pth")
    tasks = [protocols.get(t) for t in ("coco-vitdet", "linear", "finetune", "knn")]
    arch, sd, info = run_suite.read_weights(ckpt)
    return dict(run_suite.write_weights(ckpt, arch, sd, info, tasks, str(tmp_path / "weights")), info=info)


def test_vitdet_loads_every_tensor_of_a_64px_checkpoint(suite_weights):
    """Was: '1 differ after loading (e.g. ['backbone.net.pos_embed'])' at the load check."""
    pytest.importorskip("detectron2.modeling.backbone.vit")
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import LazyConfig, instantiate

    path = suite_weights["detectron2"]
    cfg = LazyConfig.apply_overrides(LazyConfig.load(config_path("detectron2", "vitdet", "mask_rcnn_vitdet_s_quick.py")),
                                     [f"model.backbone.net.embed_dim={WIDTH}", f"model.backbone.net.depth={DEPTH}",
                                      f"model.backbone.net.num_heads={HEADS}",
                                      "model.backbone.net.window_block_indexes=[0]"])
    model = instantiate(cfg.model).eval()
    assert model.backbone.net.pos_embed.shape == (1, 197, WIDTH)  # the protocol's pretrain_img_size 224, kept
    DetectionCheckpointer(model).load(path)
    obj = pickle.load(open(path, "rb"))
    expected = {k: torch.as_tensor(v) for k, v in obj["model"].items()}
    actual = {k: v for k, v in model.state_dict().items() if k.startswith("backbone.")}
    assert loadcheck.check_loaded(path, expected, actual, **cfg.moco_load_check) == len(expected)
    assert "written for the 14x14 grid" in obj["meta"].get("pos_embed", "")


@pytest.mark.parametrize("backbone_type", ["MoCoV3ViT", "VisionTransformer"])  # linear probe, fine-tuning
def test_mmpretrain_vits_load_every_tensor_of_a_64px_checkpoint(suite_weights, backbone_type):
    """Was: mmpretrain's load hook resized pos_embed (bicubic) and the load check stopped the run."""
    from mmpretrain.registry import MODELS

    from transfer.classification.mmrun import read_weights

    path = suite_weights["mmpretrain"]
    sd, meta = read_weights(path)
    model = MODELS.build(dict(_scope_="mmpretrain", type=backbone_type, arch=to_mmpretrain.vit_arch(sd, HEADS),
                              img_size=224, patch_size=16, out_type="cls_token", final_norm=True))
    model.load_state_dict(sd, strict=True)
    assert loadcheck.check_loaded(path, sd, model.state_dict()) == len(sd)
    assert "written for the 14x14 grid" in meta.get("pos_embed", "")


def test_the_suite_failure_line_is_one_paragraph():
    log = """[12/04 10:00:00 d2.engine]: starting
Traceback (most recent call last):
  File "/repo/transfer/detection/lazy_train.py", line 160, in do_train
    check_weights(cfg, model)
  File "/repo/transfer/loadcheck.py", line 28, in check_loaded
    raise WeightsNotLoaded(
transfer.loadcheck.WeightsNotLoaded: /w/backbone.pkl: the backbone did not load: 1 differ after loading
"""
    assert run_suite.failure_of(log) == ("transfer.loadcheck.WeightsNotLoaded: /w/backbone.pkl: the backbone did not "
                                         "load: 1 differ after loading")
    assert run_suite.failure_of("loading\nerror: --weights x: no such file\n") == "error: --weights x: no such file"
    assert run_suite.failure_of("Killed\n") == "Killed"


def test_the_suite_reports_the_resize(suite_weights, capsys):
    assert "written for the 14x14 grid of 224 px" in suite_weights["info"].get("pos_embed", "")


def test_converter_cli_puts_pos_embed_on_the_grid_asked_for(tmp_path, capsys):
    """converters/to_detectron2.py --img-size 224 for the runners used without the suite: ViTDet's
    pretrain_img_size stays the protocol's 224."""
    from converters import to_detectron2

    ckpt = moco_v3_checkpoint(tmp_path / "v3.pth")
    out = str(tmp_path / "vitdet.pkl")
    assert to_detectron2.main([ckpt, "-o", out, "--img-size", "224"]) == 0
    report = capsys.readouterr().out
    assert "written for the 14x14 grid of 224 px" in report and "pretrain_img_size=224" in report
    obj = pickle.load(open(out, "rb"))
    assert obj["model"]["backbone.net.pos_embed"].shape == (1, 197, WIDTH) and "pos_embed" in obj["meta"]


def test_the_report_says_the_weights_were_resized():
    from transfer import report

    note = "pos_embed: pretrained on a 4x4 grid (64 px); MoCo v3's fixed 2-D sin-cos, written for the 14x14 grid"
    text = report.markdown([], [], {"weights": "v3.pth", "pos_embed": note})
    assert note in text
