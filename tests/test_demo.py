"""`make demo` (tools/demo.py): the plan under a budget, the table, bad input; and, slow, that the demo
preset's checkpoint beats random initialisation on kNN by more than three spreads over seeds."""
import importlib.util
import json
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest

from mocodata import scenes
from tests.badinput import refuses

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# by path: a site-packages module named `tools` (from a dependency) hides the repository's folder
_spec = importlib.util.spec_from_file_location("demo", os.path.join(REPO, "tools", "demo.py"))
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)


@pytest.mark.parametrize("seconds", ["59", "-5", "abc", "nan", "inf", ""])
def test_bad_demo_seconds_refused(seconds, capsys, tmp_path):
    err = refuses(demo.main, ["--demo-seconds", seconds, "--out", tmp_path / "out"], "--demo-seconds", capsys,
                  watch=[tmp_path])
    assert "at least 60" in err and not (tmp_path / "out").exists()


def test_out_that_is_a_file_refused(capsys, tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    refuses(demo.main, ["--out", f], "--out", capsys, watch=[tmp_path])


def test_out_with_foreign_files_refused(capsys, tmp_path):
    (tmp_path / "mine.txt").write_text("x")
    refuses(demo.main, ["--out", tmp_path], "--out", capsys, watch=[tmp_path])


def test_budget_cuts_in_order_and_says_so():
    plan, cuts = demo.plan_for(10 ** 6)
    assert cuts == [] and plan == dict(epochs=demo.FULL["epochs"], seeds=3, cheap=["knn", "linear"],
                                       dense=["voc", "seg", "coco"])
    for seconds in (600, 300, 150):
        small, small_cuts = demo.plan_for(seconds)
        assert demo.cost(small) <= seconds and len(small_cuts) >= 1
        assert all(c in " ".join(small_cuts) for c in ("coco",))  # the slowest dense task goes first
    tiny, tiny_cuts = demo.plan_for(60)  # nothing fits: the smallest plan, and the message says so
    assert tiny == dict(epochs=2, seeds=1, cheap=["knn"], dense=[]) and "still needs" in tiny_cuts[-1]


def test_replan_after_a_slow_pretraining_keeps_knn_and_the_epochs():
    plan, _ = demo.plan_for(10 ** 6)
    cuts = demo.replan(plan, left=100, pace=3.0)
    assert plan["cheap"] == ["knn"] and plan["dense"] == [] and plan["epochs"] == demo.FULL["epochs"]
    assert cuts and all("3.0x" in c for c in cuts)
    assert demo.replan(plan, left=10 ** 6, pace=3.0) == []


def test_eta_after_a_cached_step_is_the_estimate_not_zero(capsys):
    progress = demo.Progress([("data", 15), ("pretraining", 100), ("suite", 200)])
    progress.start("data")
    progress.end("data")  # done at once (the data were cached): no pace to tell yet
    progress.start("pretraining")
    assert "step 2/3: pretraining (ETA 05:00 for the rest)" in capsys.readouterr().out


def test_table_differences_spreads_and_missing():
    row = lambda t, m, mean, std, n, **kw: {"task": t, "metric": m, "mean": mean, "std": std, "n": n,  # noqa: E731
                                            "published": kw.get("pub"), "published_by": "x", **kw}
    rnd = {("knn", "knn/top1_k20"): row("knn", "knn/top1_k20", 40.0, 2.0, 3),
           ("voc", "bbox/AP50"): row("voc", "bbox/AP50", 1.0, 0.0, 1, pub=82.4),
           ("coco", "segm/AP"): row("coco", "segm/AP", None, None, 0, missing="not reported: no mask was made")}
    ckpt = {("knn", "knn/top1_k20"): row("knn", "knn/top1_k20", 50.0, 0.0, 1),
            ("voc", "bbox/AP50"): row("voc", "bbox/AP50", 3.0, 0.0, 1, pub=82.4)}
    lines = demo.table(rnd, ckpt).splitlines()
    knn, voc, coco = lines[2], lines[3], lines[4]
    assert "+10.00" in knn and "yes, checkpoint higher (3 x spread = 6.00)" in knn
    assert "+2.00" in voc and "spread unknown (1 seed)" in voc and "82.40" in voc
    assert "n/a (not reported: no mask was made)" in coco and "n/a (not run)" in coco
    worse = demo.table({("knn", "m"): row("knn", "m", 40.0, 1.0, 2)}, {("knn", "m"): row("knn", "m", 30.0, 0.0, 1)})
    assert "yes, checkpoint LOWER (3 x spread = 3.00, from 2 seeds: rough)" in worse


def test_imagenet_classes_are_not_colours():
    """Every (shape, texture) pair differs, and a class's colours vary: its mean colour says little."""
    assert len({scenes.object_style(c) for c in range(20)}) == 20
    rng = np.random.default_rng(0)
    means = np.array([scenes.centred_object(rng, 48, 0)[12:36, 12:36].reshape(-1, 3).mean(0) for _ in range(20)])
    assert means.std(0).min() > 15  # the same class in many colours


def knn_top1(root, run, seed, weights=None):
    cmd = [sys.executable, "-m", "transfer.classification.knn", "--config", "configs/classification/knn_quick.yaml",
           "--data-root", root, "--work-dir", str(run), "--seed", str(seed)]
    cmd += ["--weights", weights] if weights else ["--arch", "resnet50"]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    return json.load(open(os.path.join(run, "final_metrics.json")))["knn"]["top1_k20"]


@pytest.mark.slow
@pytest.mark.xfail(reason="issue 15 is open: measured, the demo preset's 56 iterations leave kNN top-1 at 21.7 "
                          "against 38.9 +- 5.1 for random init; no recipe tried (MoCo v2 with --bn-splits, MoCo v3, "
                          "lr, warmup, 32-64 px crops, up to 210 iterations) beat random init, nor did supervised "
                          "training with the labels (112 iterations: 33.3 against 41.7)", strict=False)
def test_demo_preset_beats_random_init_on_knn(tmp_path):
    """Three pretrainings (seeds 0-2) against three random inits (seeds 0-2), kNN top-1 (k=20) on the
    built-in val split. The honest spread of the checkpoint column is over pretraining seeds: its kNN is
    deterministic given the weights, so kNN seeds of one checkpoint would show a spread of 0."""
    from mocodata.builtin import default_demo_root, make_demo

    root = make_demo(default_demo_root())
    rand, moco = [], []
    for seed in range(3):
        out = tmp_path / f"pre{seed}"
        subprocess.run([sys.executable, "pretrain/run.py", "--preset", "demo", "--seed", str(seed), "--out", str(out),
                        "--knn-every", "0"], cwd=REPO, check=True, capture_output=True)
        moco.append(knn_top1(root, tmp_path / f"m{seed}", 0, str(out / "checkpoint.pth")))
        rand.append(knn_top1(root, tmp_path / f"r{seed}", seed))
    spread = max(statistics.stdev(rand), statistics.stdev(moco))
    margin = statistics.mean(moco) - statistics.mean(rand)
    print(f"kNN top-1: random init {rand}, demo preset {moco}; margin {margin:.2f}, 3 x spread {3 * spread:.2f}")
    assert margin > 3 * spread, (rand, moco)
