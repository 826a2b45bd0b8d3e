"""The one check that pretrained weights really loaded: every backbone tensor equals the checkpoint's.

Detectron2 and MMEngine both load with `strict=False` and only log what they could not match, then
train from random init (a wrong prefix loads nothing: detectron2#5412, mmselfsup#89, #335). Every runner
calls `check_loaded` after the framework's own loading and before the first iteration.
"""
import re

import torch


class WeightsNotLoaded(RuntimeError):
    """The converted checkpoint did not fill the backbone; the message names the file."""


def check_loaded(path, expected, actual, new=(), resized=()):
    """expected: the checkpoint's tensors by name; actual: the model's backbone tensors under the same
    names. `new`: regexes of model tensors the protocol adds by design (e.g. ViTDet's rel_pos, the extra
    res5 norm); `resized`: names the framework resizes by design (pos_embed for another crop), which must
    be present but may differ. Returns the number of tensors compared; raises WeightsNotLoaded."""
    is_new = [re.compile(p) for p in new]
    missing = [k for k in actual if k not in expected and not k.endswith("num_batches_tracked")
               and not any(p.search(k) for p in is_new)]
    unused = [k for k in expected if k not in actual]
    differ = [k for k in expected if k in actual and k not in resized
              and not (actual[k].shape == expected[k].shape and torch.equal(actual[k].cpu(), expected[k].cpu()))]
    grid = [k for k in differ if k.endswith("pos_embed") and actual[k].shape != expected[k].shape]
    if missing or unused or differ:
        hint = (f" {grid[0]} is {tuple(expected[grid[0]].shape)} in the file but {tuple(actual[grid[0]].shape)} in the "
                "model: the ViT was pretrained at another input size; reconvert with --img-size 224 (the input "
                "the transfer protocols build the ViT for)") if grid else ""
        raise WeightsNotLoaded(
            f"{path}: the backbone did not load: {len(missing)} model tensors not in the file (e.g. {missing[:2]}), "
            f"{len(unused)} file tensors unused (e.g. {unused[:2]}), {len(differ)} differ after loading "
            f"(e.g. {differ[:2]}). Convert the pretraining checkpoint with converters/to_detectron2.py or "
            "converters/to_mmseg.py for the architecture the config builds." + hint)
    return len(expected)
