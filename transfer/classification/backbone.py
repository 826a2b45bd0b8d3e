"""The frozen backbone of the classification evaluators: a checkpoint loaded strictly into an
eval-mode torchvision ResNet-50 or timm ViT, and its features at the reference's layers.

    model = load_backbone("ckpt.pth")                 # any layout converters.sources reads
    model = load_backbone(None, arch="resnet50")      # random init (seed torch first)
    feats = extract(model, images, ("feat5", "gap"))  # {layer: (N, D) float32 tensor}

Layers (mmselfsup 0.x mmselfsup/models/utils/multi_pooling.py, 'specified'; the same blobs as the
fssb VOC07 configs). ResNet-50 at a 224 input:
    feat1  conv1+BN+ReLU, BEFORE the max pool, 64x112x112 -> AvgPool2d(10, 10, 4) -> 12x12 -> 9216
    feat2  res2 256x56x56  -> AvgPool2d(16, 8, 0) -> 6x6 -> 9216
    feat3  res3 512x28x28  -> AvgPool2d(13, 5, 0) -> 4x4 -> 8192
    feat4  res4 1024x14x14 -> AvgPool2d(8, 3, 0)  -> 3x3 -> 9216
    feat5  res5 2048x7x7   -> AvgPool2d(6, 1, 0)  -> 2x2 -> 8192
    gap    res5 global average pool -> 2048 (kNN, linear probe)
ViT: `cls`, the class token after the final LayerNorm (moco-v3 / DINO). Per-stage layers are a
ResNet notion; asking a ViT for them is an error.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

POOL = {"feat1": (10, 10, 4), "feat2": (16, 8, 0), "feat3": (13, 5, 0), "feat4": (8, 3, 0), "feat5": (6, 1, 0)}
STAGES = ("feat1", "feat2", "feat3", "feat4", "feat5")
RESNET_LAYERS = STAGES + ("gap",)
VIT_LAYERS = ("cls",)
RANDOM_ARCHS = ("resnet50", "vit_small", "vit_base", "vit_large")


def is_vit(model):
    """A model, or an arch name ('resnet50', 'vit_small', ...)."""
    return model.startswith("vit") if isinstance(model, str) else hasattr(model, "patch_embed")


def layers_of(model):
    return VIT_LAYERS if is_vit(model) else RESNET_LAYERS


def check_layers(model, layers):
    """ValueError naming the layer when the model (or arch name) has no such layer."""
    for layer in layers:
        if layer not in layers_of(model):
            kind = "a ViT" if is_vit(model) else "a ResNet-50"
            why = " (per-stage features are ResNet stages; a ViT has only its class token)" if layer in STAGES else ""
            raise ValueError(f"layer '{layer}' does not exist for {kind}{why}; use one of {list(layers_of(model))}")


def check_input(model, layers, size):
    """ValueError naming the layer when a size x size input leaves its map smaller than its pooling
    window (the table is defined at 224; ResNet stage maps are ceil(size / 2, 4, 8, 16, 32))."""
    if is_vit(model):
        if isinstance(model, str):  # known once built
            return
        expected = model.patch_embed.img_size[0]
        if size != expected:
            raise ValueError(f"input {size} differs from the ViT's {expected} (its position embedding's grid); "
                             f"set the config's crop/squash to {expected}")
        return
    for layer in layers:
        if layer in POOL:
            k, _, p = POOL[layer]
            side = -(-size // 2 ** (STAGES.index(layer) + 1))
            if side + 2 * p < k:
                raise ValueError(f"layer '{layer}' at a {size}px input is a {side}x{side} map, smaller than its "
                                 f"{k}x{k} pooling window; use a larger input (224 is the reference) or layer 'gap'")


def random_backbone(arch):
    if arch == "resnet50":
        import torchvision

        model = torchvision.models.resnet50()
        model.fc = nn.Identity()
        return model
    if arch in RANDOM_ARCHS:  # timm's ViT at MoCo v3's sizes (ViT-S with 12 heads); transfer never imports pretrain
        from timm.models.vision_transformer import VisionTransformer

        from converters.vit_layout import KNOWN_ARCHS

        depth, width, heads = KNOWN_ARCHS[arch]
        return VisionTransformer(embed_dim=width, depth=depth, num_heads=heads, num_classes=0)
    raise ValueError(f"arch '{arch}' cannot be built at random init; use one of {list(RANDOM_ARCHS)}")


def load_resnet50(sd):
    import torchvision

    model = torchvision.models.resnet50()
    model.fc = nn.Identity()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    # strict except BN's step counters, which some layouts do not store and eval mode never reads
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"ResNet-50 load: {len(missing)} missing {missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}")
    return model


def load_vit(sd, info, num_heads):
    from converters.vit_layout import build_timm_vit

    recorded = info.get("num_heads")
    if recorded and num_heads and recorded != num_heads:
        raise ValueError(f"--num-heads {num_heads} contradicts the checkpoint's {recorded} ({info.get('num_heads_from')})")
    heads = recorded or num_heads
    if not heads:
        raise ValueError(f"the ViT's head count is {info.get('num_heads_from', 'not recorded')}; pass --num-heads "
                         "(MoCo v3 ViT-S/B: 12, DeiT ViT-S: 6)")
    return build_timm_vit(sd, heads)


def load_backbone(path=None, arch=None, num_heads=None, img_size=None):
    """An eval-mode backbone holding every tensor of the checkpoint (random init when path is None).
    img_size: build a ViT for that input, its position embedding put on that grid where the
    checkpoint's differs (converters.vit_layout.resize_pos_embed; what was done is in
    `model.pos_embed_note`). Raises converters.sources.ConversionError for a checkpoint it cannot
    read, ValueError otherwise."""
    if path is None:
        model = random_backbone(arch or "resnet50")
    else:
        from converters.sources import read_backbone
        from converters.vit_layout import resize_pos_embed

        found, sd, info = read_backbone(path)
        if arch and arch != found:
            raise ValueError(f"{path} holds a {found}, not the {arch} asked for")
        note = None
        if found != "resnet50" and img_size:
            sd, note = resize_pos_embed(sd, img_size)
        model = load_resnet50(sd) if found == "resnet50" else load_vit(sd, info, num_heads)
        if note:
            model.pos_embed_note = note
    return model.eval()


def resnet_maps(model, x, deepest):
    """The stage maps of a torchvision ResNet up to `deepest` (feat1 is taken before the max pool)."""
    x = model.relu(model.bn1(model.conv1(x)))
    maps = {"feat1": x}
    x = model.maxpool(x)
    for i, name in enumerate(STAGES[1:], start=1):
        if STAGES.index(deepest) < i:
            break
        x = getattr(model, f"layer{i}")(x)
        maps[name] = x
    return maps


def pooled(layer, fmap):
    k, s, p = POOL[layer]
    return F.avg_pool2d(fmap, k, s, p).flatten(1)  # count_include_pad=True, as nn.AvgPool2d


@torch.no_grad()
def extract(model, images, layers=None):
    """{layer: (N, D) float32} for a normalised (N, 3, H, W) batch; the model must be in eval mode.
    Default layers: ('feat5',) for a ResNet, ('cls',) for a ViT."""
    layers = layers or (VIT_LAYERS if is_vit(model) else ("feat5",))
    check_layers(model, layers)
    if is_vit(model):
        return {"cls": model.forward_features(images)[:, 0].float()}
    deepest = max((STAGES.index("feat5") if layer == "gap" else STAGES.index(layer)) for layer in layers)
    maps = resnet_maps(model, images, STAGES[deepest])
    return {layer: (maps["feat5"].mean((2, 3)) if layer == "gap" else pooled(layer, maps[layer])).float()
            for layer in layers}
