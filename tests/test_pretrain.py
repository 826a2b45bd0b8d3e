"""MoCo v2/v3 against their definitions, on tiny models."""
import math

import pytest
import torch
import torch.nn.functional as F
import torchvision

from pretrain import config, engine, moco, vit
from pretrain.lars import LARS


def tiny_encoder(num_classes):
    return torchvision.models.resnet18(num_classes=num_classes)


def tiny_vit(num_classes, **kw):
    return vit.vit(32, 2, 4, img_size=32, patch_size=8, num_classes=num_classes, **kw)


def test_infonce_logits_and_labels():
    m = moco.MoCoV2(tiny_encoder, dim=8, K=16, T=0.2, mlp=False)
    q = F.normalize(torch.randn(4, 8), dim=1)
    k = F.normalize(torch.randn(4, 8), dim=1)
    logits, labels = m.infonce(q, k)
    assert logits.shape == (4, 1 + 16) and labels.tolist() == [0, 0, 0, 0]
    torch.testing.assert_close(logits[:, 0], (q * k).sum(1) / 0.2)
    torch.testing.assert_close(logits[:, 1:], q @ m.queue / 0.2)


def test_queue_update_and_wrap_around():
    m = moco.MoCoV2(tiny_encoder, dim=8, K=12, mlp=False)
    for step in range(4):  # 4 batches of 4 into a queue of 12: the 4th wraps to the start
        keys = torch.full((4, 8), float(step))
        m.dequeue_and_enqueue(keys)
        assert int(m.queue_ptr) == (step + 1) * 4 % 12
    assert (m.queue[:, 0:4] == 3).all() and (m.queue[:, 4:8] == 1).all() and (m.queue[:, 8:12] == 2).all()
    with pytest.raises(AssertionError, match="multiple"):
        m.dequeue_and_enqueue(torch.zeros(5, 8))


def test_momentum_update():
    m = moco.MoCoV2(tiny_encoder, dim=8, K=8, m=0.9, mlp=False)
    q0 = [p.detach().clone() for p in m.encoder_q.parameters()]
    for p in m.encoder_q.parameters():
        p.data.add_(1.0)
    m.momentum_update()
    for k, q in zip(m.encoder_k.parameters(), q0):
        torch.testing.assert_close(k, 0.9 * q + 0.1 * (q + 1.0))
        assert not k.requires_grad


def test_v2_mlp_head_layout():
    m = moco.MoCoV2(tiny_encoder, dim=8, K=8, mlp=True)
    names = [k for k in m.state_dict() if k.startswith("encoder_q.fc")]
    assert names == ["encoder_q.fc.0.weight", "encoder_q.fc.0.bias", "encoder_q.fc.2.weight", "encoder_q.fc.2.bias"]


def test_split_batchnorm_is_one_bn_per_part():
    """--bn-splits s: in training, each part (samples i with i % s == p, as moco's CIFAR-10 demo splits
    its batch) is normalised by its own statistics; the running statistics are the parts' mean; in
    evaluation it is plain BN. Checked against s separate nn.BatchNorm2d on the parts."""
    torch.manual_seed(0)
    split = moco.SplitBatchNorm(3, splits=4)
    split.weight.data.uniform_(0.5, 1.5)
    split.bias.data.uniform_(-1, 1)
    x = torch.randn(8, 3, 5, 5) * 3 + 1
    out = split(x)
    means, variances = [], []
    for p in range(4):
        bn = torch.nn.BatchNorm2d(3)
        bn.load_state_dict(split.state_dict())
        bn.running_mean.zero_(), bn.running_var.fill_(1)
        torch.testing.assert_close(out[p::4], bn(x[p::4]))
        means.append(bn.running_mean), variances.append(bn.running_var)
    torch.testing.assert_close(split.running_mean, torch.stack(means).mean(0))
    torch.testing.assert_close(split.running_var, torch.stack(variances).mean(0))
    split.eval()
    plain = torch.nn.BatchNorm2d(3).eval()
    plain.load_state_dict(split.state_dict())  # the same keys: a checkpoint does not change
    torch.testing.assert_close(split(x), plain(x))


def test_bn_splits_build_a_v2_resnet_with_split_bn_and_shuffle_keys():
    from pretrain import run

    cfg = config.Config(**config.PRESETS["tiny"], arch="resnet18", bn_splits=4)
    model = run.build_model(cfg)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(isinstance(m, moco.SplitBatchNorm) and m.splits == 4 for m in bns)
    plain = run.build_model(config.Config(**config.PRESETS["tiny"], arch="resnet18"))
    assert list(plain.state_dict()) == list(model.state_dict())
    # the keys come back in the batch's order although the key encoder saw them shuffled
    enc = model.encoder_k.eval()
    x = torch.randn(8, 3, 32, 32)
    torch.testing.assert_close(moco.shuffled_bn_forward(enc, x), enc(x))


def test_v3_symmetric_loss_is_2T_scaled_infonce():
    m = moco.MoCoV3(tiny_encoder, dim=8, mlp_dim=16, T=0.5)
    q, k = torch.randn(6, 8), torch.randn(6, 8)
    logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / 0.5
    expected = F.cross_entropy(logits, torch.arange(6)) * 2 * 0.5
    torch.testing.assert_close(m.contrastive_loss(q, k), expected)
    m.train()
    x1, x2 = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    loss = m(x1, x2, m=0.99)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None for p in m.momentum_encoder.parameters())
    # symmetric: swapping the two crops gives the same loss (same momentum encoder)
    m2 = moco.MoCoV3(tiny_encoder, dim=8, mlp_dim=16, T=0.5)
    m2.load_state_dict(m.state_dict())
    torch.testing.assert_close(m2(x2, x1, m=1.0), m(x1, x2, m=1.0))


def test_v3_vit_projector_and_predictor_depths():
    m = moco.MoCoV3(tiny_vit, dim=8, mlp_dim=16, T=0.2)
    linears = lambda seq: [l for l in seq if isinstance(l, torch.nn.Linear)]  # noqa: E731
    assert len(linears(m.base_encoder.head)) == 3 and len(linears(m.predictor)) == 2
    assert m(torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32), 0.99).isfinite()


def test_sincos_position_embedding_values():
    pe = vit.sincos_2d(3, 4, 8)  # grid h=3, w=4; dim/4 = 2 frequencies: 1 and 1/100
    assert pe.shape == (12, 8)
    # token t: w index = t // 3, h index = t % 3 (moco-v3's meshgrid order)
    for t in range(12):
        x, y = t // 3, t % 3
        expected = [math.sin(x), math.sin(x / 100), math.cos(x), math.cos(x / 100),
                    math.sin(y), math.sin(y / 100), math.cos(y), math.cos(y / 100)]
        torch.testing.assert_close(pe[t], torch.tensor(expected))
    model = tiny_vit(10)
    assert not model.pos_embed.requires_grad and (model.pos_embed[0, 0] == 0).all()
    torch.testing.assert_close(model.pos_embed[0, 1:], vit.sincos_2d(4, 4, 32))


def test_frozen_patch_projection_stays_fixed():
    m = moco.MoCoV3(lambda num_classes: tiny_vit(num_classes, stop_grad_conv1=True), dim=8, mlp_dim=16, T=0.2)
    before = m.base_encoder.patch_embed.proj.weight.clone()
    pos = m.base_encoder.pos_embed.clone()
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=0.1, weight_decay=0.1)
    for _ in range(2):
        m(torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32), 0.99).backward()
        opt.step()
    assert torch.equal(m.base_encoder.patch_embed.proj.weight, before)
    assert torch.equal(m.base_encoder.pos_embed, pos)
    assert not torch.equal(m.base_encoder.blocks[0].attn.qkv.weight, m.momentum_encoder.blocks[0].attn.qkv.weight)


def test_vit_small_has_12_heads_as_in_the_paper():
    model = vit.vit_small(img_size=32)
    assert model.blocks[0].attn.num_heads == 12 and model.embed_dim == 384 and len(model.blocks) == 12


def test_lars_matches_its_definition():
    w = torch.nn.Parameter(torch.tensor([[3.0, 4.0]]))  # |w| = 5
    b = torch.nn.Parameter(torch.tensor([1.0]))
    opt = LARS([w, b], lr=0.1, weight_decay=0.5, momentum=0.9, trust_coefficient=0.001)
    w.grad, b.grad = torch.tensor([[0.5, -2.0]]), torch.tensor([2.0])
    w0 = w.detach().clone()
    opt.step()
    update = torch.tensor([[0.5, -2.0]]) + 0.5 * w0  # [[2, 0]], norm 2
    torch.testing.assert_close(w.detach(), w0 - 0.1 * (0.001 * 5 / 2) * update)
    torch.testing.assert_close(b.detach(), torch.tensor([1.0 - 0.1 * 2.0]))  # no wd, no trust ratio


def test_schedules_and_lr_scaling():
    cfg = config.Config(**config.PRESETS["mocov3_r50_100ep"])
    assert engine.momentum_at(cfg, 0) == pytest.approx(0.99) and engine.momentum_at(cfg, cfg.epochs) == pytest.approx(1.0)
    assert engine.lr_at(cfg, cfg.warmup_epochs) == pytest.approx(0.6 * 4096 / 256)
    assert engine.lr_at(cfg, 0) == 0 and engine.lr_at(cfg, 5) == pytest.approx(0.5 * 0.6 * 16)
    v2 = config.Config()
    assert engine.lr_at(v2, 0) == pytest.approx(0.03) and engine.lr_at(v2, 100) == pytest.approx(0.015)
    assert math.isclose(engine.lr_at(v2, 200), 0, abs_tol=1e-12)
    assert engine.lr_at(v2, 100.7) == engine.lr_at(v2, 100)  # moco --cos: once per epoch
    assert engine.lr_at(cfg, 50.5) < engine.lr_at(cfg, 50)  # moco-v3: every iteration
    assert engine.momentum_at(v2, 100) == 0.999  # v2: constant
    vits = config.Config(**config.PRESETS["mocov3_vit_small"])
    assert (vits.optimizer, vits.T, vits.warmup_epochs, vits.crop_min, vits.stop_grad_conv1) == ("adamw", 0.2, 40, 0.08, True)
    assert vits.lr == pytest.approx(1.5e-4 * 16)
    r1000 = config.Config(**config.PRESETS["mocov3_r50_1000ep"])
    assert (r1000.weight_decay, r1000.moco_m, r1000.base_lr, r1000.optimizer) == (1.5e-6, 0.996, 0.3, "lars")


def test_cli_overrides_and_booleans():
    args = config.parser().parse_args(["--preset", "mocov3_vit_base", "--batch-size", "1024", "--no-stop-grad-conv1"])
    cfg = config.from_args(args)
    assert cfg.arch == "vit_base" and cfg.batch_size == 1024 and cfg.stop_grad_conv1 is False
    assert cfg.lr == pytest.approx(1.5e-4 * 4)


def test_health_flags_spikes_not_noise():
    h = engine.Health()
    g = torch.Generator().manual_seed(0)
    noise = [h.update(5.0 + 0.05 * torch.randn(1, generator=g).item(), 1.0) for _ in range(200)]
    assert not any(noise)
    assert "loss spike" in h.update(9.0, 1.0)
    assert "gradient-norm jump" in h.update(5.0, 50.0)
    assert h.state["spikes"] == 2


def test_nan_loss_stops():
    class NaNModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, x1, x2, m):
            return self.w * float("nan")

    cfg = config.Config(**config.PRESETS["tiny"])
    model = NaNModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(engine.Diverged, match="nan"):
        engine.step(model, x, x, opt, cfg, 0.99, torch.device("cpu"))
    assert model.w.item() == 1.0  # no update was applied


@pytest.mark.parametrize("method", ["mocov2", "mocov3"])
def test_bf16_autocast_step(method):
    """The GPU recipe's bf16 autocast, run on the CPU: mixed dtypes in the queue and the gathers."""
    if method == "mocov2":
        m = moco.MoCoV2(tiny_encoder, dim=8, K=16, mlp=True)
    else:
        m = moco.MoCoV3(tiny_encoder, dim=8, mlp_dim=16, T=0.2)
    x1, x2 = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = m(x1, x2, 0.99)
    loss.backward()
    assert torch.isfinite(loss)
    if method == "mocov2":
        assert m.queue.dtype == torch.float32 and int(m.queue_ptr) == 4


def test_weighted_knn_votes():
    from pretrain import knn

    bank = F.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]), dim=1)
    labels = torch.tensor([0, 0, 1, 1])
    queries = F.normalize(torch.tensor([[1.0, 0.05], [0.05, 1.0], [0.6, 0.4]]), dim=1)
    assert knn.knn_predict(bank, labels, queries, 2, k=4).tolist() == [0, 1, 0]
    # k=1: the nearest neighbour alone decides
    assert knn.knn_predict(bank, labels, F.normalize(torch.tensor([[0.2, 0.8]]), dim=1), 2, k=1).tolist() == [1]


def test_grad_norm_is_the_global_l2_norm():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])
    assert engine.grad_norm([a, b, torch.nn.Parameter(torch.zeros(1))]) == pytest.approx(5.0)
    assert engine.grad_norm([]) == 0.0


def test_knn_decodes_each_image_once_and_caps_its_share(demo_root, monkeypatch):
    import os

    from pretrain import knn

    decoded = []
    real = knn.centre_crop
    monkeypatch.setattr(knn, "centre_crop", lambda p, crop: decoded.append(p) or real(p, crop))
    monkeypatch.setattr(knn, "_CACHE", {})
    train, val = (os.path.join(demo_root, "imagenet", s) for s in ("train", "val"))
    enc = tiny_encoder(4)
    first = knn.knn_accuracy(enc, train, val, 32, torch.device("cpu"), epoch_images=20)
    n = len(decoded)
    assert n == 4 + 2 and len(set(decoded)) == n  # a fifth and a tenth of 20 images, each once
    assert knn.knn_accuracy(enc, train, val, 32, torch.device("cpu"), epoch_images=20) == first
    assert len(decoded) == n  # the second evaluation decodes nothing
    assert knn.sizes(1_281_167) == (10000, 5000)  # ImageNet: the fixed 10k bank and 5k queries
