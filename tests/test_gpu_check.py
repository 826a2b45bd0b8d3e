"""tools/gpu_check.py: its FLOP count against a published figure, and every part at toy size on a CPU (--dry)."""
import json
import os
import subprocess
import sys

import pytest
import torch
import torchvision

from tests.conftest import REPO

sys.path.insert(0, os.path.join(REPO, "tools"))
import gpu_check  # noqa: E402

# torchvision models/resnet.py, ResNet50_Weights.IMAGENET1K_V1.meta["_ops"]: 4.089 G multiply-adds per 224 px image
RESNET50_GMACS = 4.089


def test_flops_are_counted_two_per_multiply_add_as_torchvision_publishes():
    model = torchvision.models.resnet50().eval()
    with torch.no_grad():
        flops = gpu_check.count_flops(lambda: model(torch.zeros(1, 3, 224, 224)))
    assert abs(flops / (2 * RESNET50_GMACS * 1e9) - 1) < 0.01


def test_unknown_part_is_refused(tmp_path, capsys):
    assert gpu_check.main(["--dry", "--out", str(tmp_path), "--parts", "steps,warp"]) == 2
    assert "--parts" in capsys.readouterr().err and not os.listdir(tmp_path)


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "f").write_text("keep")
    assert gpu_check.main(["--dry", "--out", str(tmp_path / "f"), "--parts", "peak"]) == 2
    assert "--out" in capsys.readouterr().err and (tmp_path / "f").read_text() == "keep"


def test_a_known_part_on_a_folder_is_accepted(tmp_path):  # the acceptance beside the two refusals
    assert gpu_check.main(["--dry", "--out", str(tmp_path / "new"), "--parts", "peak"]) == 0
    assert json.loads((tmp_path / "new" / "gpu_check.json").read_text())["parts"]["peak"]["bf16_flops_measured"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU this would run the whole check")
def test_without_a_gpu_the_full_check_is_refused(tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path)]) == 2
    assert "--dry" in capsys.readouterr().err and not os.listdir(tmp_path)


# a bare CUDA image has torch, torchvision, timm, OpenCV, numpy and scikit-learn, none of these
NOT_ON_A_BARE_GPU_IMAGE = ("pycocotools", "faster_coco_eval", "mmcv", "mmengine", "mmseg", "mmpretrain", "detectron2",
                           "submitit", "shapely")
BLOCKER = f"""import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {NOT_ON_A_BARE_GPU_IMAGE!r}:
            raise ImportError("not on a bare GPU image: " + name)
sys.meta_path.insert(0, Blocker())
"""


def test_dry_run_measures_every_part_with_only_torch_and_opencv(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), REPO]))
    proc = subprocess.run([sys.executable, "tools/gpu_check.py", "--dry", "--out", str(tmp_path / "out")], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env=env)
    tmp_path = tmp_path / "out"
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads((tmp_path / "gpu_check.json").read_text())
    assert set(r["parts"]) == set(gpu_check.PARTS) and "failed" not in json.dumps(r)
    for name, row in r["parts"]["steps"].items():
        assert row["model_only"]["images_per_s"] > 0 and row["model_only"]["flops_per_image"] > 0, name
        assert row["pipeline_fast"]["images_per_s"] > 0 and row["pipeline_gpu"]["images_per_s"] > 0, name
    assert r["parts"]["torchrun"]["backend"] == "gloo" and r["parts"]["torchrun"]["world"] == 1
    assert r["parts"]["resume"]["exact"]  # on a CPU the resumed run is bit-identical
    assert r["parts"]["numerics"]["steps"] == 3
    assert "| MoCo v2 R50 |" in (tmp_path / "gpu_check.md").read_text()
