"""detectron2 training through our train_net: a killed run resumes from its last checkpoint."""
import json
from functools import partial

from tests.conftest import config_path
from transfer.detection import train_net
from transfer.runner import entry


def run(out, demo_root, iters, *opts):
    args = ["--config", config_path("detectron2", "coco_R_50_FPN_quick.yaml"), "--data-root", demo_root,
            "--work-dir", str(out), "--resume", *opts, "--opts", "SOLVER.MAX_ITER", str(iters),
            "SOLVER.CHECKPOINT_PERIOD", "1", "SOLVER.STEPS", "()", "TEST.PRECISE_BN.ENABLED", "False"]
    return train_net.main(train_net.build_parser().parse_args(args))


def test_resume_continues_from_the_last_checkpoint(tmp_path, demo_root):
    out = tmp_path / "coco"
    run(out, demo_root, 2)
    assert (out / "last_checkpoint").read_text().strip() == "model_final.pth"
    fp = json.load(open(out / "fingerprint.json"))
    assert fp["task"] == "coco" and fp["norm"] == "BN" and "max_iter: 2 (protocol 90000)" in fp["deviations"]
    results = run(out, demo_root, 3)  # a longer schedule in the same folder: iterations 2..3 only
    trained = [json.loads(line)["iteration"] for line in open(out / "metrics.json") if "total_loss" in line]
    # a short schedule writes its metrics every max(1, max_iter // 10) iterations: here every one, each once
    assert trained == [0, 1, 2] and "Starting training from iteration 2" in (out / "log.txt").read_text()
    assert "bbox" in results  # (no segm entry: detectron2 omits it when no mask was predicted)
    assert json.load(open(out / "final_metrics.json"))["bbox"].keys() >= {"AP", "AP50", "AP75"}


def test_weights_that_do_not_fill_the_backbone_stop_the_run(tmp_path, demo_root):
    import pytest
    import torchvision

    from converters import to_detectron2

    sd = {k: v for k, v in torchvision.models.resnet50().state_dict().items() if not k.startswith("fc.")}
    good = to_detectron2.convert("resnet50", sd, "r50")
    path = str(tmp_path / "no_res4.pkl")
    to_detectron2.save({k: v for k, v in good.items() if not k.startswith("res4.")}, path)
    args = ["--config", config_path("detectron2", "coco_R_50_FPN_quick.yaml"), "--data-root", demo_root,
            "--work-dir", str(tmp_path / "bad"), "--resume", "--weights", str(path)]
    with pytest.raises(RuntimeError, match=r"no_res4.pkl: the backbone did not load: \d+ model tensors not in the file .*res4"):
        train_net.main(train_net.build_parser().parse_args(args))
    assert not (tmp_path / "bad" / "model_final.pth").exists()  # stopped before training
    to_detectron2.save(good, path)  # the complete file loads and trains
    run(tmp_path / "good", demo_root, 1, "--weights", str(path))
    assert "every pretrained tensor loaded" in (tmp_path / "good" / "log.txt").read_text()


class Hostile:
    """Unpickled with plain pickle, this writes a file: the proof that a reader ran the file's code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_weights_are_never_unpickled_with_plain_pickle(tmp_path, capsys):
    """A .pkl naming any global but numpy's is refused before detectron2's checkpointer (plain pickle)
    or our load check sees it, by both detectron2 runners."""
    import os
    import pickle

    import pytest

    from tests.badinput import refuses

    marker = tmp_path / "ran"
    weights = tmp_path / "w.pkl"
    weights.write_bytes(pickle.dumps({"model": {"backbone.net.x": Hostile(str(marker))}}, protocol=2))
    argv = ["--config", config_path("detectron2", "coco_R_50_FPN_quick.yaml"), "--data-root", str(tmp_path),
            "--work-dir", str(tmp_path / "run"), "--weights", str(weights)]
    refuses(partial(entry, train_net.invoke_main), argv, "--weights", capsys)
    assert not marker.exists() and not (tmp_path / "run").exists()
    pytest.importorskip("detectron2.modeling.backbone.vit", reason="registry detectron2 0.6: no ViTDet")
    from mocodata.builtin import DemoSizes, write_coco
    from transfer.detection import lazy_train

    import numpy as np

    write_coco(str(tmp_path / "root"), DemoSizes(coco_train=2, coco_val=2), np.random.default_rng(0))
    argv = ["--config", config_path("detectron2", "vitdet", "mask_rcnn_vitdet_s_quick.py"), "--data-root",
            str(tmp_path / "root"), "--work-dir", str(tmp_path / "run"), "--weights", str(weights)]
    refuses(partial(entry, lazy_train.main), argv, "--weights", capsys)
    assert not marker.exists() and not os.path.exists(tmp_path / "run")


def test_the_runner_takes_the_contract_command_line_as_run_suite_builds_it(tmp_path, demo_root):
    """detectron2's --config-file is refused, named; the command run_suite builds for voc is parsed and
    pre-checked by train_net itself, in the parent process, before launch(): a misspelt --opts key stops
    it with exit 2, named, before the run folder exists."""
    import dataclasses
    import subprocess
    import sys

    from tests.conftest import REPO
    from transfer import protocols, run_suite

    config = config_path("detectron2", "pascal_voc_R_50_C4_quick.yaml")
    old = subprocess.run([sys.executable, "-m", "transfer.detection.train_net", "--config-file", config, "--data-root",
                          demo_root, "OUTPUT_DIR", str(tmp_path / "old")], cwd=REPO, capture_output=True, text=True)
    assert old.returncode == 2 and "--config-file" in old.stderr and "Traceback" not in old.stderr, old.stderr[-800:]
    plan, _ = run_suite.plan_of(run_suite.parse_args(["--task", "voc", "--data", demo_root, "--quick", "--out",
                                                      str(tmp_path / "out")]))
    plan = dataclasses.replace(plan, overrides={"voc": ("SOLVER.MAX_ITERR", "1")})  # past the suite's own check
    cmd = run_suite.command(plan, protocols.TASKS["voc"], config, str(tmp_path / "run"), 0)
    new = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert new.returncode == 2 and "Traceback" not in new.stderr, new.stderr[-800:]
    assert "error: --opts SOLVER.MAX_ITERR 1: Non-existent key: SOLVER.MAX_ITERR" in new.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "old").exists()
