# VOC12aug UperNet, MoCo v3 ViT-L/16 (no published reference): the ViT-B recipe with the ViT-L encoder
# of upernet_vit-l16_mln_8xb2-160k_ade20k-512x512_moco.py (taps 7/11/15/23, 16 heads) and its layer
# decay 0.75, a decision explained there (the MAE paper publishes no ViT-L value).
_base_ = ['./upernet_vit-b16_mln_4xb4-20k_voc12aug-512x512_moco.py']
embed_dims, num_layers, layer_decay = 1024, 24, 0.75
model = dict(
    backbone=dict(embed_dims=embed_dims, num_layers=num_layers, num_heads=16, out_indices=(7, 11, 15, 23)),
    neck=dict(in_channels=[embed_dims] * 4, out_channels=embed_dims),
    decode_head=dict(in_channels=[embed_dims] * 4),
    auxiliary_head=dict(in_channels=embed_dims))


def _layer_decay(n, decay):
    # the base's rule (_base_/upernet_vit_mln_moco.py) for 24 blocks: block i at decay ** (n - i), the
    # embeddings at decay ** (n + 1), no weight decay on 1-D tensors
    keys = {f'backbone.{k}': dict(lr_mult=decay ** (n + 1), decay_mult=0.)
            for k in ('cls_token', 'pos_embed', 'patch_embed.projection.bias')}
    keys['backbone.patch_embed.'] = dict(lr_mult=decay ** (n + 1))
    for i in range(n):
        keys[f'backbone.layers.{i}.'] = dict(lr_mult=decay ** (n - i))
        for p in ('ln1.', 'ln2.', 'attn.attn.in_proj_bias', 'attn.attn.out_proj.bias', 'ffn.layers.0.0.bias',
                  'ffn.layers.1.bias'):
            keys[f'backbone.layers.{i}.{p}'] = dict(lr_mult=decay ** (n - i), decay_mult=0.)
    return keys


optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(_delete_=True, **_layer_decay(num_layers, layer_decay))))
