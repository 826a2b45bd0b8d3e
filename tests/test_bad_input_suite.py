"""Bad input to `transfer/run_suite.py` and `python -m mocodata`: exit 2, the culprit named, no
traceback, nothing written. One row per case."""
import fcntl
import json
import os
import shutil

import pytest
import torch

from mocodata import __main__ as data_cli
from tests.badinput import refuses
from transfer import run_suite


def make(kind, tmp):
    """Files a case needs, made in tmp; returns the path."""
    p = tmp / kind
    if kind == "empty.pth":
        p.write_bytes(b"")
    elif kind == "nothing.pth":
        torch.save({"state_dict": {"module.predictor.0.weight": torch.ones(2, 2)}}, p)
    elif kind == "folder":
        p.mkdir()
    elif kind == "out_file":
        p.write_text("not a folder")
    elif kind == "out_other":
        p.mkdir()
        (p / "results.json").write_text(json.dumps({"meta": {"weights": "/elsewhere/other.pth"}, "runs": []}))
    elif kind == "out_broken":
        p.mkdir()
        (p / "results.json").write_text("{")
    elif kind == "user_files":
        p.mkdir()
        (p / "thesis.tex").write_text("years of work")
    return str(p)


S = "--task"
SUITE = [  # (id, argv with {data} {tmp/...} placeholders, culprit)
    ("unknown task", [S, "voc,nosuch"], "nosuch"),
    ("empty task list", [S, ","], "--task"),
    ("unknown group", [S, "everything"], "'everything'"),
    ("a group and an unknown task", [S, "all,nosuch"], "'nosuch'"),
    ("a group with no task for the backbone", [S, "all", "--data", "{data}", "--quick", "--arch", "resnet18"],
     "no task of it evaluates a resnet18"),
    ("data root missing", [S, "voc", "--data", "{tmp/no_such_root}", "--quick"], "no_such_root"),
    ("data root without VOC", [S, "voc", "--data", "{tmp/folder}", "--quick"], "VOC2007"),
    ("weights missing", [S, "seg", "--data", "{data}", "--quick", "--weights", "{tmp/none.pth}"], "none.pth"),
    ("weights is a folder", [S, "seg", "--data", "{data}", "--quick", "--weights", "{tmp/folder}"], "is a folder"),
    ("weights empty file", [S, "seg", "--data", "{data}", "--quick", "--weights", "{tmp/empty.pth}"], "empty.pth"),
    ("weights convert to nothing", [S, "seg", "--data", "{data}", "--quick", "--weights", "{tmp/nothing.pth}"],
     "nothing.pth"),
    ("zero GPUs", [S, "voc", "--data", "{data}", "--quick", "--num-gpus", "0"], "--num-gpus"),
    ("zero seeds", [S, "voc", "--data", "{data}", "--quick", "--seeds", "0"], "--seeds"),
    ("GPUs the batch cannot split", [S, "voc", "--data", "{data}", "--num-gpus", "3", "--slurm", "--slurm-cluster",
                                     "debug"], "cannot be split over 3 GPUs"),
    ("more GPUs than the machine", [S, "seg", "--data", "{data}", "--quick", "--num-gpus", "4"], "--num-gpus 4"),
    ("machine rank out of range", [S, "voc", "--data", "{data}", "--quick", "--num-machines", "2", "--machine-rank",
                                   "5", "--dist-url", "tcp://127.0.0.1:29500"], "--machine-rank 5"),
    ("several machines without a URL", [S, "voc", "--data", "{data}", "--quick", "--num-machines", "2"], "--dist-url"),
    ("full protocol on a CPU", [S, "coco", "--data", "{data}"], "--allow-cpu"),
    ("detectron2 option typo", [S, "voc", "--data", "{data}", "--quick", "--opts", "SOLVER.NO_SUCH_KEY", "1"],
     "NO_SUCH_KEY"),
    ("mmseg option typo", [S, "seg", "--data", "{data}", "--quick", "--cfg-options", "model.no_such_key=1"],
     "model.no_such_key"),
    *[(f"{task} misspelt override key", [S, task, "--data", "{data}", "--quick", "--cfg-options",
                                          "optim_wrapper.optimizer.lrr=1"], "optim_wrapper.optimizer.lrr")
      for task in ("linear", "linear-stages", "finetune", "seg", "ade20k-upernet", "linear-sweep")],
    ("a key one selected task lacks", [S, "seg,linear", "--data", "{data}", "--quick", "--cfg-options",
                                       "train_cfg.max_iters=2"], "train_cfg.max_iters"),
    ("an override for kNN", [S, "knn", "--data", "{data}", "--quick", "--cfg-options", "k=1"], "'knn' takes none"),
    ("an override for logreg", [S, "logreg", "--data", "{data}", "--quick", "--cfg-options", "tol=1"],
     "'logreg' takes none"),
    ("an override for the SVMs", [S, "svm", "--data", "{data}", "--quick", "--opts", "C", "1"], "'svm' takes none"),
    ("an MMEngine override for detectron2", [S, "voc,seg", "--data", "{data}", "--quick", "--cfg-options",
                                             "train_cfg.max_iters=2"], "'voc' takes --opts"),
    ("an override for a task not selected", [S, "seg", "--data", "{data}", "--quick", "--cfg-options",
                                             "voc:train_cfg.max_iters=2"], "task 'voc' is not among"),
    ("an override without a value", [S, "seg", "--data", "{data}", "--quick", "--cfg-options", "train_cfg.max_iters"],
     "not key=value"),
    ("a detectron2 key without a value", [S, "voc", "--data", "{data}", "--quick", "--opts", "SOLVER.MAX_ITER"],
     "no value after"),
    ("a detectron2 key a flag sets", [S, "voc", "--data", "{data}", "--quick", "--opts", "MODEL.WEIGHTS", "w.pkl"],
     "--opts MODEL.WEIGHTS: set by the runner's --weights"),
    ("out is a file", [S, "voc", "--data", "{data}", "--quick", "--out", "{tmp/out_file}"], "out_file"),
    ("out holds another checkpoint's results", [S, "voc", "--data", "{data}", "--quick", "--out", "{tmp/out_other}"],
     "holds results for weights /elsewhere/other.pth"),
    ("out holds a broken results file", [S, "voc", "--data", "{data}", "--quick", "--out", "{tmp/out_broken}"],
     "results.json"),
    ("bad seeds type", [S, "voc", "--seeds", "two"], "--seeds"),
    ("random init of an architecture the task does not take", [S, "voc", "--data", "{data}", "--quick", "--arch",
                                                               "vit_small"], "--arch vit_small"),
    ("no such architecture", [S, "knn", "--data", "{data}", "--quick", "--arch", "resnet18"], "--arch resnet18"),
]
if shutil.which("sbatch") is None:
    SUITE.append(("slurm without SLURM", [S, "voc", "--data", "{data}", "--quick", "--slurm"], "sbatch"))
if not torch.cuda.is_available():
    SUITE.append(("GPUs on a CPU machine", [S, "voc", "--data", "{data}", "--quick", "--num-gpus", "2"],
                  "this machine has 0 GPU"))


def fill(argv, demo_root, tmp_path):
    out = []
    for a in argv:
        if a == "{data}":
            a = demo_root
        elif a.startswith("{tmp/"):
            a = make(a[5:-1], tmp_path)
        out.append(a)
    return out


@pytest.mark.parametrize("case", SUITE, ids=[c[0] for c in SUITE])
def test_suite_refuses(case, demo_root, tmp_path, capsys):
    _, argv, culprit = case
    argv = fill(argv, demo_root, tmp_path)
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    refuses(run_suite.main, argv, culprit, capsys, watch=[str(tmp_path), demo_root])
    assert not (tmp_path / "out").exists()


def test_a_second_suite_on_the_same_out_is_refused(demo_root, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a suite running there
        refuses(run_suite.main, [S, "voc", "--data", demo_root, "--quick", "--out", out], ".lock", capsys,
                watch=[str(out)])


DATA = [
    ("make-demo over the user's files", ["make-demo", "{tmp/user_files}"], "user_files"),
    ("make-demo scale 0", ["make-demo", "{tmp/new}", "--scale", "0"], "--scale"),
    ("make-demo scale nan", ["make-demo", "{tmp/new}", "--scale", "nan"], "--scale"),
    ("make-demo negative seed", ["make-demo", "{tmp/new}", "--seed", "-1"], "--seed"),
    ("check a missing root", ["check", "{tmp/no_such_root}"], "no_such_root"),
    ("check an unknown task", ["check", "{tmp/folder}", "--task", "nosuch"], "nosuch"),
]


@pytest.mark.parametrize("case", DATA, ids=[c[0] for c in DATA])
def test_data_cli_refuses(case, demo_root, tmp_path, capsys):
    _, argv, culprit = case
    refuses(data_cli.main, fill(argv, demo_root, tmp_path), culprit, capsys, watch=[str(tmp_path)])
    assert not (tmp_path / "new").exists() and not os.path.exists(str(tmp_path / "new") + ".partial")
