"""Every bad input to converters/to_detectron2.py and to_mmseg.py: exit 2 before any work, the culprit
named, no traceback, the input unchanged and nothing written. One row per case; each row builds its
files in `d` and returns (argv, culprit, a phrase of the message)."""
import functools
import os
import pickle

import numpy as np
import pytest
import torch

from converters import to_detectron2, to_mmseg
from tests.badinput import refuses

TOOLS = {"detectron2": to_detectron2.main, "mmseg": to_mmseg.main}


def tiny_vit_sd(depth=3, width=64):
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    return VisionTransformer(img_size=32, patch_size=16, embed_dim=width, depth=depth, num_heads=4,
                             num_classes=0).state_dict()


def v3(sd):
    return {"state_dict": {f"module.base_encoder.{k}": v for k, v in sd.items()}}


def save(d, name, obj):
    torch.save(obj, d / name)
    return str(d / name)


def write(d, name, data):
    (d / name).write_bytes(data)
    return str(d / name)


class Payload:  # a pickle that runs code when loaded: it would create the file `ran`
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def vit_without_block(d):
    sd = {k: v for k, v in tiny_vit_sd().items() if not k.startswith("blocks.1.")}
    return save(d, "holed.pth", v3(sd))


def vit_bad_qkv(d):
    sd = tiny_vit_sd()
    sd["blocks.2.attn.qkv.weight"] = torch.zeros(100, 64)
    return save(d, "qkv.pth", v3(sd))


def vit_conv_stem(d):
    sd = {("patch_embed.proj.0.weight" if k == "patch_embed.proj.weight" else k): v for k, v in tiny_vit_sd().items()}
    return save(d, "convstem.pth", v3(sd))


def with_value(d, name, value):
    sd = tiny_vit_sd()
    sd["blocks.1.mlp.fc1.weight"][3, :5] = value
    return save(d, name, v3(sd))


def torch_checkpoint_named_pkl(d):
    return save(d, "ckpt.pkl", v3(tiny_vit_sd()))


def d2_pickle(d):
    obj = {"model": {"backbone.net.pos_embed": np.zeros((1, 5, 64), np.float32)}, "__author__": "moco-transfer",
           "matching_heuristics": True}
    write(d, "r50.pkl", pickle.dumps(obj, protocol=4))
    return str(d / "r50.pkl")


def caffe2_pickle(d):
    write(d, "R-50.pkl", pickle.dumps({"blobs": {"conv1_w": np.zeros((64, 3, 7, 7), np.float32)}}, protocol=2))
    return str(d / "R-50.pkl")


def linked(d, kind):
    good = save(d, "in.pth", v3(tiny_vit_sd()))
    (os.symlink if kind == "symlink" else os.link)(good, d / "out.pth")
    return good, str(d / "out.pth")


def broken_link(d):
    os.symlink(d / "nowhere.pth", d / "gone.pth")
    return str(d / "gone.pth")


def read_only_dir(d):
    good = save(d, "in.pth", v3(tiny_vit_sd()))
    (d / "ro").mkdir()
    os.chmod(d / "ro", 0o555)
    return good, str(d / "ro" / "out.pth")


def ours_mmseg_output(d):
    good = save(d, "in.pth", v3(tiny_vit_sd()))
    assert to_mmseg.main([good, "-o", str(d / "conv_mmseg.pth")]) == 0
    return str(d / "conv_mmseg.pth")


def row(name, make, culprit="input", phrase="", tools=("detectron2", "mmseg"), marks=()):
    """make(d) -> argv; culprit 'input'/'output' name argv[0] / the -o value, else the literal text."""
    return [pytest.param(name, make, culprit, phrase, t, id=f"{t}-{name}", marks=marks) for t in tools]


def to(pair, *extra):
    good, out = pair
    return [good, "-o", out, *extra]


ROOT_CAN_WRITE = pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
GOOD = lambda d: [save(d, "in.pth", v3(tiny_vit_sd()))]  # noqa: E731


@functools.lru_cache(maxsize=1)
def resnet_sd():
    """A ResNet-50 backbone in a small file: one number per tensor, expanded (torch.save keeps one element)."""
    import torchvision

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.resnet50().state_dict().items() if not k.startswith("fc.")}
    return {k: torch.tensor(0.5).expand(s) for k, s in shapes.items()}


ROWS = [
    # the input file itself
    *row("missing_file", lambda d: [str(d / "nope.pth")], phrase="no such file"),
    *row("directory", lambda d: [str(d)], phrase="is a directory"),
    *row("broken_symlink", lambda d: [broken_link(d)], phrase="not a regular file (a broken link"),
    *row("text_file", lambda d: [write(d, "notes.pth", b"hello, I am a text file\n")], phrase="not a PyTorch checkpoint"),
    *row("empty_file", lambda d: [write(d, "empty.pth", b"")], phrase="empty file"),
    *row("truncated", lambda d: [write(d, "cut.pth", open(GOOD(d)[0], "rb").read()[:3000])], phrase="truncated"),
    *row("empty_dict", lambda d: [save(d, "e.pth", {})], phrase="no state dict"),
    *row("no_tensors", lambda d: [save(d, "n.pth", {"state_dict": {"epoch": 3}})], phrase="no tensors"),
    *row("state_dict_is_a_list", lambda d: [save(d, "l.pth", {"state_dict": [1, 2]})], phrase="no tensors"),
    *row("unknown_layout", lambda d: [save(d, "u.pth", {"state_dict": {"foo.weight": torch.ones(1)}})],
         phrase="unrecognised checkpoint layout"),
    *row("needs_code", lambda d: [save(d, "code.pth", {**v3(tiny_vit_sd()), "args": torch.nn.Identity()})],
         phrase="--trust-pickle"),
    *row("hostile_pickle_not_run", lambda d: [write(d, "evil.pkl", pickle.dumps(Payload(str(d / "ran")), protocol=4))],
         phrase="needs code execution"),
    *row("detectron2_weights", lambda d: [d2_pickle(d)], phrase="already Detectron2 weights"),
    *row("caffe2_weights", lambda d: [caffe2_pickle(d)], phrase="already Caffe2 weights"),
    *row("our_mmseg_output", lambda d: [ours_mmseg_output(d)], phrase="already MMSegmentation weights"),
    # what the file holds
    *row("v2_script_on_v3", lambda d: [GOOD(d)[0], "--source", "moco_v2"], phrase="match no rule"),
    *row("no_encoder", lambda d: [save(d, "ne.pth", {"state_dict": {"module.encoder_q.fc.0.weight": torch.ones(2, 2),
                                                                    "module.queue": torch.ones(2)}})],
         phrase="no encoder found"),
    *row("unmatched_keys", lambda d: [save(d, "um.pth", {"state_dict": {**v3(tiny_vit_sd())["state_dict"],
                                                                        "module.extra.w": torch.ones(1)}})],
         phrase="match no rule"),
    *row("compile_prefix_collides", lambda d: [save(d, "c.pth", {**tiny_vit_sd(), "_orig_mod.cls_token": torch.ones(1)})],
         phrase="makes two keys the same"),
    *row("vit_missing_block", lambda d: [vit_without_block(d)], phrase="missing (e.g. ['blocks.1."),
    *row("vit_wrong_shape", lambda d: [vit_bad_qkv(d)], phrase="blocks.2.attn.qkv.weight (100, 64)"),
    *row("vit_conv_stem", lambda d: [vit_conv_stem(d)], phrase="not a plain ViT"),
    *row("resnet50_missing_block", lambda d: [save(d, "r18.pth", {k: v for k, v in resnet_sd().items() if not k.startswith("layer4.2")})],
         phrase="not a ResNet-50"),
    *row("resnet50_wrong_shape", lambda d: [save(d, "r50s.pth", {**resnet_sd(), "layer1.0.conv1.weight": torch.ones(3, 3, 1, 1)})],
         phrase="layer1.0.conv1.weight (3, 3, 1, 1) != (64, 64, 1, 1)"),
    *row("neither", lambda d: [save(d, "x.pth", {"state_dict": {"module.encoder_q.conv1.weight": torch.ones(1)}})],
         phrase="neither a ResNet-50 nor a ViT"),
    *row("nan_weights", lambda d: [with_value(d, "nan.pth", float("nan"))],
         phrase="1 tensors hold NaN or Inf values (first: blocks.1.mlp.fc1.weight, 5 of"),
    *row("inf_weights", lambda d: [with_value(d, "inf.pth", float("inf"))], phrase="NaN or Inf"),
    # flags
    *row("vit_for_resnet", lambda d: [*GOOD(d), "--arch", "resnet50"], phrase="holds a vit backbone"),
    *row("wrong_vit_size", lambda d: [*GOOD(d), "--arch", "vit_large"], phrase="but --arch vit_large"),
    *row("resnet_for_vit", lambda d: [save(d, "r50.pth", resnet_sd()), "--arch", "vit"], phrase="holds a resnet50"),
    *row("num_heads_conflict", lambda d: [save(d, "h.pth", {**v3(tiny_vit_sd()), "config": {"num_heads": 4}}),
                                          "--num-heads", "8"], culprit="--num-heads 8", phrase="says 4"),
    *row("num_heads_not_dividing", lambda d: [*GOOD(d), "--num-heads", "7"], culprit="--num-heads 7",
         phrase="must divide the width 64"),
    *row("num_heads_on_resnet", lambda d: [save(d, "r50.pth", resnet_sd()), "--num-heads", "12"],
         culprit="--num-heads", phrase="not a ViT"),
    *row("img_size_on_resnet", lambda d: [save(d, "r50.pth", resnet_sd()), "--img-size", "224"],
         culprit="--img-size", phrase="not a ViT"),
    *row("img_size_not_patch_multiple", lambda d: [*GOOD(d), "--img-size", "100"], culprit="--img-size 100",
         phrase="multiple of the patch size 16"),
    *row("unknown_source", lambda d: [*GOOD(d), "--source", "moco_v9"], culprit="--source", phrase="invalid choice"),
    # the output
    *row("output_exists", lambda d: [*GOOD(d), "-o", write(d, "out.pkl", b"old")], culprit="output",
         phrase="output exists"),
    *row("output_is_input", lambda d: [*GOOD(d), "-o", GOOD(d)[0], "--force"], culprit="output",
         phrase="is the input checkpoint itself"),
    *row("output_symlink_to_input", lambda d: to(linked(d, "symlink"), "--force"),
         culprit="output", phrase="is the input checkpoint itself"),
    *row("output_hardlink_to_input", lambda d: to(linked(d, "hardlink"), "--force"),
         culprit="output", phrase="is the input checkpoint itself"),
    *row("default_output_is_input", lambda d: [torch_checkpoint_named_pkl(d), "--force"], tools=("detectron2",),
         phrase="is the input checkpoint itself"),
    *row("output_is_directory", lambda d: [*GOOD(d), "-o", str(d)], culprit="output", phrase="is a directory"),
    *row("output_folder_name", lambda d: [*GOOD(d), "-o", str(d / "new") + "/"], culprit="output", phrase="is a directory"),
    *row("output_parent_is_file", lambda d: [*GOOD(d), "-o", os.path.join(write(d, "afile", b"x"), "sub", "o.pkl")],
         culprit="output", phrase="is a file, not a folder"),
    *row("output_read_only_folder", lambda d: to(read_only_dir(d)), culprit="output",
         phrase="cannot write into", marks=ROOT_CAN_WRITE),
    *row("output_empty", lambda d: [*GOOD(d), "-o", ""], culprit="-o/--output", phrase="empty path"),
    *row("detectron2_output_not_pkl", lambda d: [*GOOD(d), "-o", str(d / "weights.pth")], culprit="output",
         tools=("detectron2",), phrase="must end in .pkl"),
]


@pytest.mark.parametrize("name,make,culprit,phrase,tool", ROWS)
def test_refuses(name, make, culprit, phrase, tool, tmp_path, capsys):
    d = tmp_path / "files"
    d.mkdir()
    argv = make(d)
    if "-o" not in argv and name != "default_output_is_input":
        argv = [*argv, "-o", str(tmp_path / "out" / ("o.pkl" if tool == "detectron2" else "o.pth"))]
    capsys.readouterr()  # rows that convert something first print; only the refusal counts
    named = {"input": argv[0], "output": argv[argv.index("-o") + 1] if "-o" in argv else ""}.get(culprit, culprit)
    try:
        err = refuses(TOOLS[tool], argv, named, capsys, watch=[str(tmp_path)])
    finally:
        if (d / "ro").exists():
            os.chmod(d / "ro", 0o755)
    assert phrase in err, err
    assert not (d / "ran").exists()  # the hostile pickle was never executed


def test_read_only_folder_refused_before_work(tmp_path, capsys, monkeypatch):
    """The read-only row above cannot fail as root; here the permission answer is simulated."""
    good = save(tmp_path, "in.pth", v3(tiny_vit_sd()))
    (tmp_path / "ro").mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p).endswith("/ro") and mode & os.W_OK
                        else real(p, mode))
    for main in TOOLS.values():
        err = refuses(main, [good, "-o", str(tmp_path / "ro" / "w.pkl")], str(tmp_path / "ro"), capsys,
                      watch=[str(tmp_path)])
        assert "read-only or no permission" in err
