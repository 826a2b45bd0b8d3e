"""MoCo v2 (queue of keys) and MoCo v3 (symmetric loss, predictor, in-batch negatives).

Paper names throughout: encoder_q / encoder_k (v2), base_encoder / momentum_encoder (v3),
K queue size, m momentum, T temperature, l_pos / l_neg logits. Gathers across processes are the
identity at world size 1, so the same code runs on one CPU and on many GPUs.
"""
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


def world_size():
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@torch.no_grad()
def concat_all_gather(x):
    """All processes' x, concatenated (no gradient). Identity at world size 1."""
    if world_size() == 1:
        return x
    out = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out)


class SplitBatchNorm(nn.BatchNorm2d):
    """BatchNorm whose training statistics are taken over `splits` equal parts of the batch, as if
    each part were on its own GPU. MoCo v2's ShuffleBN needs several GPUs' BN: on one process the
    keys of a batch share one set of statistics, which tells the positive apart from the queue's keys
    (the loss drops, the features do not improve). moco's official CIFAR-10 demo emulates 8 GPUs so;
    splits=1 is plain BN. Same parameters and buffers as nn.BatchNorm2d: checkpoints are unchanged."""

    def __init__(self, num_features, splits=8, **kw):
        super().__init__(num_features, **kw)
        self.splits = splits

    def forward(self, x):
        if not self.training or self.splits == 1:
            return super().forward(x)
        n, c, h, w = x.shape
        s = self.splits
        # a free view: sample i goes to part i % s, whose channels are the block (i % s) * c ...
        mean, var = self.running_mean.repeat(s), self.running_var.repeat(s)
        out = F.batch_norm(x.view(n // s, s * c, h, w), mean, var, self.weight.repeat(s), self.bias.repeat(s),
                           True, self.momentum, self.eps)
        with torch.no_grad():  # the running statistics: the mean over the parts
            self.running_mean.copy_(mean.view(s, c).mean(0))
            self.running_var.copy_(var.view(s, c).mean(0))
            self.num_batches_tracked += 1
        return out.view(n, c, h, w)


def mlp(dims, last_bn=True):
    """Linear-BN-ReLU stack; the last BN has no affine (MoCo v3 projector/predictor)."""
    layers = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1], bias=False))
        if i < len(dims) - 2:
            layers += [nn.BatchNorm1d(dims[i + 1]), nn.ReLU(inplace=True)]
        elif last_bn:
            layers.append(nn.BatchNorm1d(dims[i + 1], affine=False))
    return nn.Sequential(*layers)


class MoCoV2(nn.Module):
    """MoCo v2: query encoder, momentum key encoder, a queue of K negative keys."""

    def __init__(self, base_encoder, dim=128, K=65536, m=0.999, T=0.2, mlp=True):
        super().__init__()
        self.K, self.m, self.T = K, m, T
        self.encoder_q = base_encoder(num_classes=dim)
        self.encoder_k = base_encoder(num_classes=dim)
        if mlp:  # the v2 head: fc.0 Linear, fc.1 ReLU, fc.2 the encoder's own fc; hidden = feature width
            hidden = self.encoder_q.fc.weight.shape[1]  # 2048 for ResNet-50, 512 for ResNet-18
            for enc in (self.encoder_q, self.encoder_k):
                enc.fc = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), enc.fc)
        for q, k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            k.data.copy_(q.data)
            k.requires_grad = False
        self.register_buffer("queue", F.normalize(torch.randn(dim, K), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def momentum_update(self):
        for q, k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            k.data.mul_(self.m).add_(q.data, alpha=1 - self.m)

    @torch.no_grad()
    def dequeue_and_enqueue(self, keys):
        keys = concat_all_gather(keys)
        n = keys.shape[0]
        ptr = int(self.queue_ptr)
        assert self.K % n == 0, f"queue size K={self.K} must be a multiple of the global batch {n}"
        self.queue[:, ptr:ptr + n] = keys.T
        self.queue_ptr[0] = (ptr + n) % self.K  # wrap around

    def infonce(self, q, k):
        """Logits (N, 1+K) with the positive in column 0, and labels (all 0)."""
        l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
        l_neg = torch.einsum("nc,ck->nk", q, self.queue.clone().detach())
        logits = torch.cat([l_pos, l_neg], dim=1) / self.T
        return logits, torch.zeros(logits.shape[0], dtype=torch.long, device=q.device)

    def forward(self, im_q, im_k, m=None):
        q = F.normalize(self.encoder_q(im_q), dim=1)  # N x C
        with torch.no_grad():
            self.momentum_update()
            k = F.normalize(shuffled_bn_forward(self.encoder_k, im_k), dim=1)
        logits, labels = self.infonce(q, k)
        self.dequeue_and_enqueue(k)
        return F.cross_entropy(logits, labels)


@torch.no_grad()
def shuffled_bn_forward(encoder, x):
    """Shuffling BN: keys are computed on a random permutation of the global batch, so that
    BN statistics of a process do not leak which key is the positive. At world size 1 the batch is
    shuffled in place when the encoder has SplitBatchNorm parts (plain BN would see the same batch).
    That permutation is drawn from a generator seeded by the batch itself, so that a resumed run
    repeats it and ends bit-identical to an uninterrupted one (the global RNG is not checkpointed)."""
    if world_size() == 1:
        if not any(isinstance(m, SplitBatchNorm) and m.splits > 1 for m in encoder.modules()):
            return encoder(x)
        probe = x.flatten()[:: max(1, x.numel() // 64)].double().sum().item()
        gen = torch.Generator().manual_seed(int(abs(probe) * 1000) % 2**31)
        idx = torch.randperm(x.shape[0], generator=gen).to(x.device)
        return encoder(x[idx])[torch.argsort(idx)]
    n = x.shape[0]
    x_all = concat_all_gather(x)
    idx = torch.randperm(x_all.shape[0], device=x.device)
    dist.broadcast(idx, src=0)
    rank = dist.get_rank()
    mine = idx.view(world_size(), -1)[rank]
    out = encoder(x_all[mine])
    out_all = concat_all_gather(out)
    unshuffle = torch.argsort(idx).view(world_size(), -1)[rank]
    assert out.shape[0] == n
    return out_all[unshuffle]


class MoCoV3(nn.Module):
    """MoCo v3: base encoder + projector + predictor, momentum encoder + projector; no queue.

    Heads as moco-v3 `builder.py`: ResNet projector `_build_mlp(2, width, mlp_dim, dim)` in place of
    `fc`, ViT projector `_build_mlp(3, ...)` in place of `head`; the predictor `_build_mlp(2, dim,
    mlp_dim, dim)` ends in a BN without affine for the ViT (`MoCo_ViT`) but not for the ResNet
    (`MoCo_ResNet` passes last_bn=False)."""

    def __init__(self, base_encoder, dim=256, mlp_dim=4096, T=1.0):
        super().__init__()
        self.T = T
        self.base_encoder = base_encoder(num_classes=mlp_dim)
        self.momentum_encoder = base_encoder(num_classes=mlp_dim)
        if hasattr(self.base_encoder, "fc"):  # ResNet: 2-layer projector replaces fc
            hidden = self.base_encoder.fc.weight.shape[1]
            for enc in (self.base_encoder, self.momentum_encoder):
                enc.fc = mlp([hidden, mlp_dim, dim])
        else:  # ViT: 3-layer projector replaces head
            hidden = self.base_encoder.head.weight.shape[1]
            for enc in (self.base_encoder, self.momentum_encoder):
                enc.head = mlp([hidden, mlp_dim, mlp_dim, dim])
        vit = not hasattr(self.base_encoder, "fc")
        self.predictor = mlp([dim, mlp_dim, dim], last_bn=vit)
        for b, mo in zip(self.base_encoder.parameters(), self.momentum_encoder.parameters()):
            mo.data.copy_(b.data)
            mo.requires_grad = False

    @torch.no_grad()
    def momentum_update(self, m):
        for b, mo in zip(self.base_encoder.parameters(), self.momentum_encoder.parameters()):
            mo.data.mul_(m).add_(b.data, alpha=1 - m)

    def contrastive_loss(self, q, k):
        """InfoNCE with in-batch negatives gathered across processes, scaled by 2T."""
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
        k = concat_all_gather(k)
        logits = q @ k.T / self.T
        rank = dist.get_rank() if world_size() > 1 else 0
        labels = torch.arange(q.shape[0], device=q.device) + q.shape[0] * rank
        return F.cross_entropy(logits, labels) * (2 * self.T)

    def forward(self, x1, x2, m=0.99):
        q1 = self.predictor(self.base_encoder(x1))
        q2 = self.predictor(self.base_encoder(x2))
        with torch.no_grad():
            self.momentum_update(m)
            k1, k2 = self.momentum_encoder(x1), self.momentum_encoder(x2)
        return self.contrastive_loss(q1, k2) + self.contrastive_loss(q2, k1)
