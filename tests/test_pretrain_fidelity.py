"""Our models and checkpoints against the official ones, written here as data from their source:
moco `moco/builder.py` (MoCo v2 with --mlp), moco-v3 `moco/builder.py` (`MoCo_ResNet`,
`MoCo_ViT`, `_build_mlp`), moco-v3 `vits.py` and `main_moco.py` (checkpoint dict), mmpretrain
`mocov3_vit-large-p16_64xb64-amp-coslr-300e_in1k.py` (the ViT-L recipe). Sizes: dim 8, mlp_dim 16."""
import dataclasses

import pytest
import torch
import torchvision

from pretrain import config, engine, run

DIM, MLP = 8, 16


def bn(prefix, n, affine=True):
    """A BatchNorm1d(n)'s state_dict entries."""
    out = {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,)} if affine else {}
    out.update({f"{prefix}.running_mean": (n,), f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()})
    return out


# moco-v3 _build_mlp(num_layers, input_dim, mlp_dim, output_dim, last_bn): Linear(bias=False), then
# BN + ReLU between layers, and BatchNorm1d(affine=False) after the last one when last_bn
def build_mlp_keys(prefix, num_layers, input_dim, mlp_dim, output_dim, last_bn=True):
    keys, i = {}, 0
    for layer in range(num_layers):
        d1 = input_dim if layer == 0 else mlp_dim
        d2 = output_dim if layer == num_layers - 1 else mlp_dim
        keys[f"{prefix}.{i}.weight"] = (d2, d1)
        if layer < num_layers - 1:
            keys.update(bn(f"{prefix}.{i + 1}", d2))
            i += 3
        elif last_bn:
            keys.update(bn(f"{prefix}.{i + 1}", d2, affine=False))
    return keys


# the same heads spelled out, as the official modules print: (type, in/out or features, bias/affine)
VIT_PREDICTOR = [("Linear", DIM, MLP, False), ("BatchNorm1d", MLP, True), ("ReLU",),
                 ("Linear", MLP, DIM, False), ("BatchNorm1d", DIM, False)]
RESNET_PREDICTOR = VIT_PREDICTOR[:4]  # MoCo_ResNet: _build_mlp(2, dim, mlp_dim, dim, False)
VIT_S_PROJECTOR = [("Linear", 384, MLP, False), ("BatchNorm1d", MLP, True), ("ReLU",),
                   ("Linear", MLP, MLP, False), ("BatchNorm1d", MLP, True), ("ReLU",),
                   ("Linear", MLP, DIM, False), ("BatchNorm1d", DIM, False)]
R18_PROJECTOR = [("Linear", 512, MLP, False), ("BatchNorm1d", MLP, True), ("ReLU",),
                 ("Linear", MLP, DIM, False), ("BatchNorm1d", DIM, False)]
V2_R18_HEAD = [("Linear", 512, 512, True), ("ReLU",), ("Linear", 512, DIM, True)]  # dim_mlp = fc in_features

# moco-v3 vits.py: timm VisionTransformer names, qkv_bias, LayerNorm; ViT-S/16 at 32 px: 2x2 patches + cls
VIT_S_BLOCK = {"norm1.weight": (384,), "norm1.bias": (384,), "attn.qkv.weight": (1152, 384), "attn.qkv.bias": (1152,),
               "attn.proj.weight": (384, 384), "attn.proj.bias": (384,), "norm2.weight": (384,), "norm2.bias": (384,),
               "mlp.fc1.weight": (1536, 384), "mlp.fc1.bias": (1536,), "mlp.fc2.weight": (384, 1536),
               "mlp.fc2.bias": (384,)}
VIT_S_TRUNK = {"cls_token": (1, 1, 384), "pos_embed": (1, 5, 384), "patch_embed.proj.weight": (384, 3, 16, 16),
               "patch_embed.proj.bias": (384,), "norm.weight": (384,), "norm.bias": (384,),
               **{f"blocks.{b}.{k}": v for b in range(12) for k, v in VIT_S_BLOCK.items()}}

# main_moco.py save_checkpoint: moco {'epoch','arch','state_dict','optimizer'}; moco-v3 adds 'scaler'
V2_CHECKPOINT, V3_CHECKPOINT = {"epoch", "arch", "state_dict", "optimizer"}, {"epoch", "arch", "state_dict",
                                                                                "optimizer", "scaler"}


def describe(seq):
    out = []
    for m in seq:
        if isinstance(m, torch.nn.Linear):
            out.append(("Linear", m.in_features, m.out_features, m.bias is not None))
        elif isinstance(m, torch.nn.BatchNorm1d):
            out.append(("BatchNorm1d", m.num_features, m.affine))
        else:
            out.append((type(m).__name__,))
    return out


def tiny_cfg(**kw):
    return config.Config(**dict(dict(arch="resnet18", dim=DIM, mlp_dim=MLP, K=16, crop=32, batch_size=8), **kw))


def checkpoint(cfg):
    model = run.build_model(cfg)
    opt = run.build_optimizer(cfg, model)
    cpu = torch.device("cpu")
    ck = run.checkpoint_state(cfg, model, opt, engine.make_scaler(cfg, cpu), engine.Health(), 0, 0)
    return model, ck, {k: tuple(v.shape) for k, v in ck["state_dict"].items()}


def resnet18_keys(prefix):
    sd = torchvision.models.resnet18().state_dict()  # the official code's torchvision_models.__dict__[arch]
    return {f"{prefix}.{k}": tuple(v.shape) for k, v in sd.items() if not k.startswith("fc.")}


def test_mocov3_vit_matches_moco_vit():
    model, ck, keys = checkpoint(tiny_cfg(method="mocov3", arch="vit_small", optimizer="adamw"))
    assert describe(model.predictor) == VIT_PREDICTOR and describe(model.base_encoder.head) == VIT_S_PROJECTOR
    expected = {}
    for enc in ("base_encoder", "momentum_encoder"):
        expected.update({f"module.{enc}.{k}": v for k, v in VIT_S_TRUNK.items()})
        expected.update(build_mlp_keys(f"module.{enc}.head", 3, 384, MLP, DIM))
    expected.update(build_mlp_keys("module.predictor", 2, DIM, MLP, DIM))
    assert "module.predictor.4.running_mean" in expected
    assert keys == expected
    assert V3_CHECKPOINT <= ck.keys()


def test_mocov3_resnet_matches_moco_resnet():
    model, ck, keys = checkpoint(tiny_cfg(method="mocov3", optimizer="lars"))
    assert describe(model.predictor) == RESNET_PREDICTOR and describe(model.base_encoder.fc) == R18_PROJECTOR
    expected = {**resnet18_keys("module.base_encoder"), **resnet18_keys("module.momentum_encoder")}
    for enc in ("base_encoder", "momentum_encoder"):
        expected.update(build_mlp_keys(f"module.{enc}.fc", 2, 512, MLP, DIM))
    expected.update(build_mlp_keys("module.predictor", 2, DIM, MLP, DIM, last_bn=False))
    assert keys == expected
    assert V3_CHECKPOINT <= ck.keys() and ck["arch"] == "resnet18"


def test_mocov2_matches_moco_with_mlp():
    model, ck, keys = checkpoint(tiny_cfg(method="mocov2", mlp_dim=2048))  # --mlp-dim is not v2's width
    assert describe(model.encoder_q.fc) == V2_R18_HEAD
    expected = {**resnet18_keys("module.encoder_q"), **resnet18_keys("module.encoder_k")}
    for enc in ("encoder_q", "encoder_k"):
        expected.update({f"module.{enc}.fc.0.weight": (512, 512), f"module.{enc}.fc.0.bias": (512,),
                         f"module.{enc}.fc.2.weight": (DIM, 512), f"module.{enc}.fc.2.bias": (DIM,)})
    expected.update({"module.queue": (DIM, 16), "module.queue_ptr": (1,)})
    assert keys == expected
    assert V2_CHECKPOINT <= ck.keys()
    torch.testing.assert_close(ck["state_dict"]["module.queue"].norm(dim=0), torch.ones(16))  # unit columns


def test_vit_large_recipe_and_model():
    cfg = config.Config(**config.PRESETS["mocov3_vit_large"])
    mmpretrain = dict(method="mocov3", arch="vit_large", batch_size=64 * 64, optimizer="adamw", weight_decay=0.1,
                      epochs=300, warmup_epochs=40, T=0.2, moco_m=1 - 0.01, moco_m_cos=True, dim=256,
                      mlp_dim=4096, crop_min=0.08, stop_grad_conv1=True, amp="fp16", clip_grad=5.0)
    assert {k: getattr(cfg, k) for k in mmpretrain} == mmpretrain
    assert cfg.lr == pytest.approx(2.4e-3)  # the config's AdamW lr at 4096
    from pretrain import vit

    large = vit.vit_large(img_size=32)
    assert (large.embed_dim, len(large.blocks), large.blocks[0].attn.num_heads) == (1024, 24, 16)
    assert large.blocks[0].mlp.fc1.out_features == 4096


def test_fp16_scaler_state_is_saved_like_moco_v3():
    cfg = tiny_cfg(method="mocov3", optimizer="lars", amp="fp16")
    scaler = torch.amp.GradScaler("cpu", enabled=True)  # the device does not change the state's keys
    model = run.build_model(cfg)
    ck = run.checkpoint_state(cfg, model, run.build_optimizer(cfg, model), scaler, engine.Health(), 0, 0)
    assert set(ck["scaler"]) == {"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"}
    assert dataclasses.asdict(cfg)["amp"] == "fp16"
