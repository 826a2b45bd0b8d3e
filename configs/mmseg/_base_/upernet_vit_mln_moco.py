# UperNet on mmseg's VisionTransformer + MultiLevelNeck for a converted MoCo v3 ViT-B/16
# (mmseg configs/_base_/models/upernet_vit-b16_ln_mln.py), trained with the MAE/BEiT UperNet recipe
# (configs/mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py): AdamW 1e-4, wd 0.05, layer decay 0.65.
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor', size=(512, 512), mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True, pad_val=0, seg_pad_val=255)
embed_dims, num_layers, layer_decay = 768, 12, 0.65
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='VisionTransformer',
        img_size=(512, 512),  # the 14x14 (+cls) pretraining pos_embed is resized to 32x32 when loaded
        patch_size=16,
        in_channels=3,
        embed_dims=embed_dims,
        num_layers=num_layers,
        num_heads=12,
        mlp_ratio=4,
        out_indices=(3, 5, 7, 11),  # the MAE/BEiT UperNet taps
        qkv_bias=True,
        patch_bias=True,  # mmseg's default False has no patch bias: the converted one would be dropped
        final_norm=True,  # loads the checkpoint's final LayerNorm (ln1) and applies it to the last tap
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.1,
        with_cls_token=True,
        norm_cfg=dict(type='LN', eps=1e-6),
        act_cfg=dict(type='GELU'),
        norm_eval=False,
        interpolate_mode='bicubic',
        init_cfg=None),  # the runner's --weights: converters/to_mmseg.py output
    neck=dict(type='MultiLevelNeck', in_channels=[embed_dims] * 4, out_channels=embed_dims, scales=[4, 2, 1, 0.5]),
    decode_head=dict(
        type='UPerHead', in_channels=[embed_dims] * 4, in_index=[0, 1, 2, 3], pool_scales=(1, 2, 3, 6),
        channels=512, dropout_ratio=0.1, num_classes=150, norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead', in_channels=embed_dims, in_index=2, channels=256, num_convs=1, concat_input=False,
        dropout_ratio=0.1, num_classes=150, norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))


def _layer_decay(n, decay):
    # mmseg's LayerDecayOptimizerConstructor only accepts its BEiT/MAE backbones, so its rule is written
    # as MMEngine custom_keys: block i gets decay**(n - i), the embeddings decay**(n + 1), the rest 1;
    # no weight decay on 1-D tensors (norms, biases, pos_embed, cls_token), as in MAE/BEiT
    keys = {f'backbone.{k}': dict(lr_mult=decay ** (n + 1), decay_mult=0.)
            for k in ('cls_token', 'pos_embed', 'patch_embed.projection.bias')}
    keys['backbone.patch_embed.'] = dict(lr_mult=decay ** (n + 1))
    for i in range(n):
        keys[f'backbone.layers.{i}.'] = dict(lr_mult=decay ** (n - i))
        for p in ('ln1.', 'ln2.', 'attn.attn.in_proj_bias', 'attn.attn.out_proj.bias', 'ffn.layers.0.0.bias',
                  'ffn.layers.1.bias'):
            keys[f'backbone.layers.{i}.{p}'] = dict(lr_mult=decay ** (n - i), decay_mult=0.)
    return keys


optim_wrapper = dict(
    type='AmpOptimWrapper',  # the recipe's fp16 (CUDA only: the quick configs use OptimWrapper)
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys=_layer_decay(num_layers, layer_decay), norm_decay_mult=0., bias_decay_mult=0.))

# what the framework adds or resizes by design (the runner's load check): pos_embed is resized
moco_load_check = dict(new=[], resized=['pos_embed'])
