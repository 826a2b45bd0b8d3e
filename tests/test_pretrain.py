"""MoCo v2/v3 against their definitions, on tiny models."""
import math

import pytest
import torch
import torch.nn.functional as F
import torchvision

from pretrain import moco, run


def tiny_encoder(num_classes):
    return torchvision.models.resnet18(num_classes=num_classes)


def test_infonce_logits_and_labels():
    m = moco.MoCoV2(tiny_encoder, dim=8, K=16, T=0.2, mlp_hidden=0)
    q = F.normalize(torch.randn(4, 8), dim=1)
    k = F.normalize(torch.randn(4, 8), dim=1)
    logits, labels = m.infonce(q, k)
    assert logits.shape == (4, 1 + 16) and labels.tolist() == [0, 0, 0, 0]
    torch.testing.assert_close(logits[:, 0], (q * k).sum(1) / 0.2)
    torch.testing.assert_close(logits[:, 1:], q @ m.queue / 0.2)


def test_queue_update_and_wrap_around():
    m = moco.MoCoV2(tiny_encoder, dim=8, K=12, mlp_hidden=0)
    for step in range(4):  # 4 batches of 4 into a queue of 12: the 4th wraps to the start
        keys = torch.full((4, 8), float(step))
        m.dequeue_and_enqueue(keys)
        assert int(m.queue_ptr) == (step + 1) * 4 % 12
    assert (m.queue[:, 0:4] == 3).all() and (m.queue[:, 4:8] == 1).all() and (m.queue[:, 8:12] == 2).all()
    with pytest.raises(AssertionError, match="multiple"):
        m.dequeue_and_enqueue(torch.zeros(5, 8))


def test_momentum_update():
    m = moco.MoCoV2(tiny_encoder, dim=8, K=8, m=0.9, mlp_hidden=0)
    q0 = [p.detach().clone() for p in m.encoder_q.parameters()]
    for p in m.encoder_q.parameters():
        p.data.add_(1.0)
    m.momentum_update()
    for k, q in zip(m.encoder_k.parameters(), q0):
        torch.testing.assert_close(k, 0.9 * q + 0.1 * (q + 1.0))
        assert not k.requires_grad


def test_v3_symmetric_loss_is_2T_scaled_infonce():
    m = moco.MoCoV3(tiny_encoder, dim=8, mlp_dim=16, T=0.5)
    q, k = torch.randn(6, 8), torch.randn(6, 8)
    logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / 0.5
    expected = F.cross_entropy(logits, torch.arange(6)) * 2 * 0.5
    torch.testing.assert_close(m.contrastive_loss(q, k), expected)
    m.train()
    loss = m(torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32), m=0.99)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None for p in m.momentum_encoder.parameters())


def test_momentum_schedule_and_lr_scaling():
    cfg = run.Config(**run.PRESETS["mocov3_r50_100ep"])
    assert run.momentum_at(cfg, 0) == pytest.approx(0.99) and run.momentum_at(cfg, cfg.epochs) == pytest.approx(1.0)
    assert run.lr_at(cfg, cfg.warmup_epochs) == pytest.approx(0.6 * 4096 / 256)
    assert run.lr_at(cfg, 0) == 0
    v2 = run.Config()
    assert run.lr_at(v2, 0) == pytest.approx(0.03) and run.lr_at(v2, 100) == pytest.approx(0.015)
    assert math.isclose(run.lr_at(v2, 200), 0, abs_tol=1e-12)


def test_checkpoint_keys_follow_the_official_layout(tmp_path, demo_root):
    import os

    from converters.sources import read_backbone

    cfg = run.Config(**run.PRESETS["tiny"])
    cfg.data = os.path.join(demo_root, "imagenet", "train")
    cfg.out, cfg.epochs, cfg.batch_size, cfg.K, cfg.crop, cfg.mlp_dim = str(tmp_path), 1, 8, 16, 32, 32
    path = run.train(cfg)
    ck = torch.load(path, weights_only=True)
    assert any(k.startswith("module.encoder_q.layer4") for k in ck["state_dict"])
    assert "module.queue" in ck["state_dict"] and ck["epoch"] == 1
    arch, sd, info = read_backbone(path)
    assert arch == "resnet50" and info["source"] == "moco_v2" and len(sd) == 318
    cfg.epochs = 2  # resume continues from the saved epoch
    run.train(cfg)
    assert torch.load(path, weights_only=True)["epoch"] == 2


def test_bad_input(tmp_path):
    cfg = run.Config(**run.PRESETS["tiny"])
    cfg.data = str(tmp_path / "nope")
    with pytest.raises(SystemExit, match="missing data folder"):
        run.train(cfg)
    cfg.arch = "vgg"
    with pytest.raises(SystemExit, match="unknown architecture"):
        run.build_model(cfg)
