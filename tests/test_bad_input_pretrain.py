"""Every bad input to pretrain/run.py stops before any work: exit 2, the flag or file named, no
traceback, nothing written under --out, the inputs unchanged (tests/badinput.refuses)."""
import errno
import fcntl
import os
import shutil

import pytest
import torch
from PIL import Image

from pretrain import config, data, run
from tests.badinput import refuses


def tiny(out, train, *extra):
    return ["--preset", "tiny", "--data", str(train), "--out", str(out), "--arch", "resnet18", "--epochs", "1",
            "--batch-size", "8", "--K", "16", "--crop", "32", "--mlp-dim", "32", "--workers", "0",
            "--knn-every", "0", *extra]


def copy_train(tmp, demo):
    dst = tmp / "train"
    shutil.copytree(os.path.join(demo, "imagenet", "train"), dst)
    return dst


def first_image(train):
    cls = sorted(p for p in train.iterdir() if p.is_dir())[0]
    return sorted(cls.iterdir())[0]


def file_with(tmp, name, content):
    p = tmp / name
    p.write_bytes(content)
    return p


def fake_checkpoint(tmp, **ck):
    p = tmp / "other.pth"
    torch.save(dict(dict(epoch=1, arch="resnet18", config=dict(method="mocov2"), state_dict={}, optimizer={}), **ck), p)
    return p


# (id, extra argv, culprit); argv and culprit may be callables of (tmp, demo, train) for the cases
# that need files. Each case differs from a run that works (tests/test_pretrain_run.py) in one input.
FLAGS = [
    ("batch-zero", ["--batch-size", "0"], "--batch-size"),
    ("batch-negative", ["--batch-size", "-8"], "--batch-size"),
    ("base-lr-negative", ["--base-lr", "-0.1"], "--base-lr"),
    ("base-lr-nan", ["--base-lr", "nan"], "--base-lr"),
    ("lr-is-not-a-flag", ["--lr", "0.1"], "--lr"),
    ("crop-zero", ["--crop", "0"], "--crop"),
    ("crop-vit-not-patch-multiple", ["--method", "mocov3", "--arch", "vit_small", "--crop", "40"], "--crop"),
    ("workers-negative", ["--workers", "-1"], "--workers"),
    ("T-zero", ["--T", "0"], "--T"),
    ("epochs-zero", ["--epochs", "0"], "--epochs"),
    ("momentum-above-1", ["--moco-m", "1.5"], "--moco-m"),
    ("crop-min-zero", ["--crop-min", "0"], "--crop-min"),
    ("dim-zero", ["--dim", "0"], "--dim"),
    ("weight-decay-negative", ["--weight-decay", "-1"], "--weight-decay"),
    ("warmup-not-below-epochs", ["--warmup-epochs", "3"], "--warmup-epochs"),
    ("queue-not-batch-multiple", ["--K", "20"], "--K"),
    ("unknown-method", ["--method", "simclr"], "--method"),
    ("unknown-arch", ["--arch", "vgg16"], "--arch"),
    ("unknown-aug", ["--aug", "kornia"], "--aug"),
    ("unknown-optimizer", ["--optimizer", "adam"], "--optimizer"),
    ("unknown-amp", ["--amp", "fp8"], "--amp"),
    ("not-a-number", ["--batch-size", "eight"], "--batch-size"),
    ("moco-m-cos-with-v2", ["--moco-m-cos"], "--moco-m-cos"),
    ("bn-splits-zero", ["--bn-splits", "0"], "--bn-splits"),
    ("bn-splits-not-dividing-the-batch", ["--bn-splits", "3"], "--bn-splits"),
    ("bn-splits-with-v3", ["--method", "mocov3", "--bn-splits", "2"], "--bn-splits"),
    ("vit-with-v2", ["--arch", "vit_small"], "--arch"),
    ("stop-grad-conv1-on-resnet", ["--method", "mocov3", "--stop-grad-conv1"], "--stop-grad-conv1"),
    ("channels-last-on-vit", ["--method", "mocov3", "--arch", "vit_small", "--channels-last"], "--channels-last"),
]
if not torch.cuda.is_available():
    FLAGS.append(("fp16-without-gpu", ["--amp", "fp16"], "--amp"))


def symlink_loop(tmp, demo, train):
    link = first_image(train).parent / "again"
    os.symlink("..", link)
    return [], str(link)


def symlink_to_sibling(tmp, demo, train):
    classes = sorted(p for p in train.iterdir() if p.is_dir())
    link = train / "zz_copy"
    os.symlink(classes[0], link)
    return [], str(link)


def tiny_image(tmp, demo, train):
    victim = first_image(train)
    Image.new("RGB", (1, 1)).save(victim, format="JPEG")
    return [], str(victim)


def truncated_image(tmp, demo, train):
    victim = first_image(train)
    victim.write_bytes(victim.read_bytes()[:200])
    return [], str(victim)


def locked_out(tmp, demo, train):
    out = tmp / "out"
    out.mkdir()
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another run's lock (flock is per open file)
    return [], str(out / ".lock")


def out_is_file(tmp, demo, train):
    file_with(tmp, "out", b"not a folder")
    return [], str(tmp / "out")


def out_under_file(tmp, demo, train):
    file_with(tmp, "afile", b"x")
    return ["--out", str(tmp / "afile" / "run")], str(tmp / "afile" / "run")


def out_read_only(tmp, demo, train):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    ro = tmp / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    return ["--out", str(ro / "run")], str(ro / "run")


def converted(tmp, to):
    """A file written by converters/to_<to>.py (the real writer) from a ResNet-50's weights."""
    import numpy as np

    path = tmp / f"r50_{to}.{'pkl' if to == 'detectron2' else 'pth'}"
    if to == "detectron2":
        from converters.to_detectron2 import save

        save({"backbone.stem.conv1.weight": np.zeros((64, 3, 7, 7), np.float32)}, str(path), {"arch": "resnet50"})
    else:
        from converters.to_mmseg import save

        save({"backbone.conv1.weight": torch.zeros(64, 3, 7, 7)}, str(path), {"arch": "resnet50"})
    return path


def test_resume_names_a_converted_file(tmp_path, demo_root, capsys):
    """Was "truncated or another format" for a Detectron2 .pkl: say what the file is and what to give."""
    train = os.path.join(demo_root, "imagenet", "train")
    for to, what in (("detectron2", "a Detectron2 weights file"), ("mmseg", "weights written by converters/")):
        path = converted(tmp_path, to)
        err = refuses(run.main, tiny(tmp_path / "out", train, "--resume", path), path, capsys)
        assert what in err and "converted from" in err and "truncated" not in err


def resume(make):
    def case(tmp, demo, train):
        path = make(tmp)
        return ["--resume", str(path)], str(path)
    return case


FILES = [
    ("data-missing", lambda tmp, demo, train: ([ "--data", str(tmp / "nope")], str(tmp / "nope"))),
    ("data-symlink-loop", symlink_loop),
    ("data-symlink-to-a-sibling-class", symlink_to_sibling),
    ("data-1x1-image", tiny_image),
    ("data-truncated-image", truncated_image),
    ("data-fewer-images-than-a-batch", lambda tmp, demo, train: (["--batch-size", "32", "--K", "32"], str(train))),
    ("knn-data-missing", lambda tmp, demo, train: (["--knn-data", str(tmp / "val")], str(tmp / "val"))),
    ("out-locked-by-another-run", locked_out),
    ("out-is-a-file", out_is_file),
    ("out-under-a-file", out_under_file),
    ("out-read-only", out_read_only),
    ("resume-missing", resume(lambda tmp: tmp / "missing.pth")),
    ("resume-a-folder", resume(lambda tmp: (tmp / "ckdir").mkdir() or tmp / "ckdir")),
    ("resume-empty", resume(lambda tmp: file_with(tmp, "empty.pth", b""))),
    ("resume-truncated", resume(lambda tmp: file_with(tmp, "cut.pth", b"PK\x03\x04 not really a checkpoint"))),
    ("resume-not-a-checkpoint", resume(lambda tmp: torch.save({"weights": 1}, tmp / "x.pth") or tmp / "x.pth")),
    ("resume-other-arch", resume(lambda tmp: fake_checkpoint(tmp, arch="resnet50"))),
    ("resume-other-method", resume(lambda tmp: fake_checkpoint(tmp, config=dict(method="mocov3")))),
    ("resume-a-detectron2-pkl", resume(lambda tmp: converted(tmp, "detectron2"))),
    ("resume-mmseg-weights", resume(lambda tmp: converted(tmp, "mmseg"))),
    ("resume-weights-do-not-fit", resume(lambda tmp: fake_checkpoint(tmp, state_dict={"module.x": torch.zeros(1)}))),
]


@pytest.mark.parametrize("extra, culprit", [r[1:] for r in FLAGS], ids=[r[0] for r in FLAGS])
def test_bad_flag(extra, culprit, tmp_path, demo_root, capsys):
    train = os.path.join(demo_root, "imagenet", "train")
    refuses(run.main, tiny(tmp_path / "out", train, *extra), culprit, capsys, watch=[tmp_path, train])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", [r[1] for r in FILES], ids=[r[0] for r in FILES])
def test_bad_file(case, tmp_path, demo_root, capsys):
    train = copy_train(tmp_path, demo_root)
    extra, culprit = case(tmp_path, demo_root, train)
    out_existed = (tmp_path / "out").exists()
    refuses(run.main, tiny(tmp_path / "out", train, *extra), culprit, capsys, watch=[tmp_path])
    assert out_existed or not (tmp_path / "out").exists()


def test_full_disk_keeps_the_last_checkpoint_and_no_tmp(tmp_path, demo_root, monkeypatch, capsys):
    ck = tmp_path / "checkpoint.pth"
    ck.write_bytes(b"the previous checkpoint")

    def full(obj, f):
        f.write(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc] . PytorchStreamWriter failed writing file")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(data.DataError, match="cannot write .*the last good checkpoint .* is kept"):
        run.save_atomic({}, str(ck))
    assert ck.read_bytes() == b"the previous checkpoint" and not (tmp_path / "checkpoint.pth.tmp").exists()
    train = os.path.join(demo_root, "imagenet", "train")
    monkeypatch.setattr(run.engine, "step", lambda *a, **k: (1.0, 1.0))  # the save is under test, not the step
    assert run.main(tiny(tmp_path / "run", train, "--save-minutes", "0")) == 2  # end to end: the first save fails
    err = capsys.readouterr().err
    assert "checkpoint.pth: cannot write" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoint.pth.tmp").exists()


class FullDisk:
    """A file whose writes fail as on a full disk (errno 28), the rest as the real file."""

    def __init__(self, f):
        self.f = f

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


@pytest.mark.parametrize("target", ["config.json", "log.txt", "log.jsonl", "tb"])
def test_full_disk_on_each_output_names_it_and_keeps_the_checkpoint(target, tmp_path, demo_root, monkeypatch,
                                                                    capsys):
    """A full disk met by config.json, log.txt, log.jsonl or TensorBoard's event file (simulated in
    this process: every write to that file fails with ENOSPC; the real 1 MB file system is the next
    test): exit 2 naming it, the last good checkpoint unchanged, no traceback."""
    import builtins
    import io

    train = os.path.join(demo_root, "imagenet", "train")
    out = tmp_path / "run"
    monkeypatch.setattr(run.engine, "step", lambda *a, **k: (1.0, 1.0))  # the writes are under test, not the step
    assert run.main(tiny(out, train)) == 0
    before = (out / "checkpoint.pth").read_bytes()
    real_open = builtins.open

    def open_full(path, mode="r", *a, **k):
        f = real_open(path, mode, *a, **k)
        name = os.path.relpath(os.path.abspath(os.fsdecode(path)), out) if not isinstance(path, int) else ""
        top = name.split(os.sep)[0]  # the file itself or its temporary twin (mococore.files: .tmp-*<name>)
        hit = top == target or (top.startswith(".tmp-") and top.endswith(target))
        return FullDisk(f) if "r" not in mode and hit else f

    monkeypatch.setattr(builtins, "open", open_full)
    monkeypatch.setattr(io, "open", open_full)  # TensorBoard's writer opens through io.open
    assert run.main(tiny(out, train, "--epochs", "2")) == 2
    err = capsys.readouterr().err
    assert f"{out / target}" in err and "No space left on device" in err, err
    assert "last good checkpoint" in err and "Traceback" not in err
    assert (out / "checkpoint.pth").read_bytes() == before and not [n for n in os.listdir(out) if ".tmp" in n]


def test_full_disk_for_real_on_a_1mb_file_system(tmp_path, demo_root):
    """The output folder on a 1 MB tmpfs, mounted in a user namespace (no root needed where the
    kernel allows them): the first checkpoint does not fit."""
    import shutil
    import subprocess
    import sys

    from tests.conftest import REPO

    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode:
        pytest.skip("no user namespaces here to mount a small file system in")
    mnt = tmp_path / "small"
    mnt.mkdir()
    argv = tiny(mnt / "run", os.path.join(demo_root, "imagenet", "train"))
    script = f"mount -t tmpfs -o size=1m none {mnt} && exec {sys.executable} pretrain/run.py \"$@\""
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{mnt / 'run' / 'checkpoint.pth'}: cannot write" in proc.stderr and "MiB free" in proc.stderr
    assert "no checkpoint was written yet" in proc.stderr and "Traceback" not in proc.stderr


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        run.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in config.HELP:
        assert f"--{name.replace('_', '-')}" in text
    for choices in config.CHOICES.values():
        assert f"one of: {', '.join(choices)}" in text
    assert text.count("default") >= len(config.HELP)
    assert "lr = base_lr * batch_size / 256 for MoCo v2 and v3" in text


class Broken(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        raise data.DataError("/data/train/cat/1.jpg", "unreadable image (OSError: broken data stream)")


def test_a_data_error_in_a_loader_worker_is_named():
    """Past the header scan (SCAN_LIMIT), an image fails in a worker; the DataLoader re-raises it as a
    RuntimeError holding the worker's traceback: main prints the DataError's one line from it."""
    with pytest.raises(RuntimeError) as e:
        next(iter(torch.utils.data.DataLoader(Broken(), num_workers=1)))
    assert data.from_worker(e.value) == "/data/train/cat/1.jpg: unreadable image (OSError: broken data stream)"
    assert data.from_worker(RuntimeError("CUDA out of memory")) is None
