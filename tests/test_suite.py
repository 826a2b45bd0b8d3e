"""run_suite: bad input stops before training; the quick demo end to end (slow)."""
import json
import os

import pytest
import torch

from transfer import run_suite


def test_unknown_task():
    with pytest.raises(SystemExit) as e:
        run_suite.main(["--task", "cityscapes"])
    assert e.value.code == 2


def test_data_path_without_layout(tmp_path, capsys):
    assert run_suite.main(["--task", "voc", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "VOC2007" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_weights_that_convert_to_nothing(tmp_path, demo_root, capsys):
    bad = tmp_path / "v3_as_nothing.pth"
    torch.save({"state_dict": {"module.predictor.0.weight": torch.ones(2, 2)}}, bad)
    assert run_suite.main(["--task", "seg", "--data", demo_root, "--weights", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "v3_as_nothing.pth" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_suite_end_to_end(tmp_path, demo_root):
    out = tmp_path / "suite"
    assert run_suite.main(["--task", "all", "--data", demo_root, "--quick", "--out", str(out)]) == 0
    res = json.load(open(out / "results.json"))
    assert {r["task"] for r in res["runs"]} == {"voc", "coco", "seg"}
    assert all(os.path.exists(out / f) for f in ("results.csv", "results.md", "curves.png"))
