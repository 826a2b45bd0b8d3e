"""run_suite: bad input stops before training; the quick demo end to end (slow)."""
import json
import os
import shutil

import pytest
import torch

from transfer import protocols, run_suite


def test_unknown_task(capsys):
    assert run_suite.main(["--task", "voc,nosuch"]) == 2
    assert "unknown task or group 'nosuch'" in capsys.readouterr().err


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
    assert run_suite.main(["--task", "voc,coco,seg", "--data", demo_root, "--quick", "--out", str(out)]) == 0
    res = json.load(open(out / "results.json"))
    assert {r["task"] for r in res["runs"]} == {"voc", "coco", "seg"}
    assert all(os.path.exists(out / f) for f in ("results.csv", "results.md", "curves.png"))


def test_gpu_count_the_config_cannot_use(tmp_path, demo_root, capsys):
    out = tmp_path / "o"
    args = ["--task", "voc", "--data", demo_root, "--num-gpus", "3", "--out", str(out)]
    assert run_suite.main(args + ["--slurm", "--slurm-cluster", "debug"]) == 2
    assert "IMS_PER_BATCH=16 cannot be split over 3 GPUs" in capsys.readouterr().err and not out.exists()
    assert run_suite.main(["--task", "seg", "--data", demo_root, "--num-gpus", "4", "--out", str(out)]) == 2
    assert "--num-gpus 4: this machine has" in capsys.readouterr().err and not out.exists()
    if shutil.which("sbatch") is None:
        assert run_suite.main(args + ["--slurm"]) == 2
        assert "sbatch is not on PATH" in capsys.readouterr().err and not out.exists()


def fake_finished_run(run_dir, metrics, fingerprint):
    os.makedirs(run_dir)
    json.dump(metrics, open(os.path.join(run_dir, "final_metrics.json"), "w"))
    json.dump(fingerprint, open(os.path.join(run_dir, "fingerprint.json"), "w"))


def test_slurm_jobs_and_report_with_protocol_and_per_class_iou(tmp_path, demo_root):
    """Runs go through submitit (its in-process 'debug' cluster); finished runs are collected, not rerun."""
    out = tmp_path / "suite"
    for seed, miou in ((0, 60.0), (1, 62.0)):
        fake_finished_run(out / "seg" / f"seed{seed}", {"sem_seg": {"mIoU": miou, "IoU.background": 90.0 + seed,
                                                                      "IoU.aeroplane": None}},
                          {"norm": "SyncBN", "gpus": 1, "deviations": ["bn_images: 4 (protocol 16)"]})
    args = ["--task", "seg", "--data", demo_root, "--seeds", "2", "--slurm", "--slurm-cluster", "debug", "--out", str(out)]
    assert run_suite.main(args) == 0
    res = json.load(open(out / "results.json"))
    assert [r["status"] for r in res["runs"]] == ["done", "done"]
    assert res["summary"][0]["mean"] == 61.0 and round(res["summary"][0]["std"], 3) == 1.414
    md = (out / "results.md").read_text()
    assert "NOT the published protocol: bn_images: 4 (protocol 16)" in md
    assert "| background | 90.50 |" in md and "aeroplane" not in md  # a class absent everywhere has no IoU
    assert list((out / "slurm").iterdir())  # submitit's job folders


def test_bad_detectron2_option(tmp_path, demo_root, capsys):
    assert run_suite.main(["--task", "voc", "--data", demo_root, "--quick", "--out", str(tmp_path / "o"),
                           "--opts", "SOLVER.NO_SUCH_KEY", "1"]) == 2
    assert "NO_SUCH_KEY" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_launch_commands_for_several_machines():
    args = run_suite.parse_args(["--task", "all", "--num-gpus", "8", "--num-machines", "2", "--machine-rank", "1",
                                 "--dist-url", "tcp://10.0.0.1:29500"])
    voc, seg = protocols.TASKS["voc"], protocols.TASKS["seg"]
    d2 = run_suite.command(voc, "c.yaml", "out", "/data", 0, {}, args)
    assert d2[d2.index("--num-machines") + 1] == "2" and d2[d2.index("--dist-url") + 1] == "tcp://10.0.0.1:29500"
    assert d2[d2.index("--machine-rank") + 1] == "1" and d2[-2:] == ["SEED", "0"]
    seg = run_suite.command(seg, "c.py", "out", "/data", 0, {}, args)
    assert seg[1:3] == ["-m", "torch.distributed.run"] and "--launcher" in seg
    for flag in ("--nproc_per_node=8", "--nnodes=2", "--node_rank=1", "--master_addr=10.0.0.1", "--master_port=29500"):
        assert flag in seg
    one = run_suite.command(protocols.TASKS["seg"], "c.py", "out", "/data", 0, {}, run_suite.parse_args(["--task", "seg"]))
    assert one[1:3] == ["-m", "transfer.segmentation.train"] and "--launcher" not in one


def test_progress_lines_are_echoed_and_everything_logged(tmp_path, capsys):
    import sys

    lines = ["setup", "[d2.utils.events]:  eta: 0:01:03  iter: 19  total_loss: 3.0", "noise",
             "mmengine - INFO - Iter(train) [10/40]  lr: 1e-02  eta: 0:00:30", "Traceback: boom"]
    code = "import sys; print(*sys.argv[1:], sep='\\n'); sys.exit(3)"
    rc = run_suite.run_logged([sys.executable, "-c", code, *lines], str(tmp_path / "log.txt"), "[voc seed 0]", every=0)
    assert rc == 3
    assert (tmp_path / "log.txt").read_text().splitlines() == lines
    out = capsys.readouterr().out.splitlines()
    assert out == ["[voc seed 0] eta: 0:01:03  iter: 19  total_loss: 3.0", "[voc seed 0] Iter(train) [10/40]  lr: 1e-02  eta: 0:00:30"]


def test_a_failing_task_is_recorded_and_the_others_still_run(tmp_path, demo_root, monkeypatch):
    import sys

    out = tmp_path / "suite"
    fake_finished_run(out / "seg" / "seed0", {"sem_seg": {"mIoU": 50.0}}, {"deviations": []})
    fake_finished_run(out / "coco" / "seed0", {"bbox": {"AP": 1.0}, "segm": {"AP": 2.0}}, {"deviations": []})

    def command(p, *a):  # VOC's training process dies; the finished runs are collected, not rerun
        return [sys.executable, "-c", "raise SystemExit('CUDA error: out of memory')" if p.name == "voc" else "1/0"]

    monkeypatch.setattr(run_suite, "command", command)
    assert run_suite.main(["--task", "voc,coco,seg", "--data", demo_root, "--quick", "--out", str(out)]) == 1
    runs = {r["task"]: r for r in json.load(open(out / "results.json"))["runs"]}
    assert runs["voc"]["status"] == "failed" and "out of memory" in runs["voc"]["error"]
    assert runs["seg"]["status"] == "done" and runs["coco"]["status"] == "done"
    assert "voc seed 0 failed" in (out / "results.md").read_text()


def test_sigterm_to_the_suite_stops_its_trainer(tmp_path):
    """The trainer runs in its own process group; a SIGTERM to the suite stops that group first."""
    import signal
    import subprocess
    import sys
    import time

    pidfile = tmp_path / "trainer.pid"
    trainer = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    driver = ("import sys; from transfer import run_suite; run_suite.stop_on_sigterm(); "
              f"run_suite.run_logged([sys.executable, '-c', {trainer!r}], {str(tmp_path / 'log.txt')!r}, 'x')")
    suite = subprocess.Popen([sys.executable, "-c", driver], cwd=run_suite.REPO)
    for _ in range(300):
        if pidfile.exists() and pidfile.read_text():
            break
        time.sleep(0.1)
    pid = int(pidfile.read_text())
    suite.send_signal(signal.SIGTERM)
    assert suite.wait(timeout=60) == 143
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return  # the trainer is gone
        time.sleep(0.1)
    raise AssertionError("the trainer outlived the suite")


def test_overrides_reach_the_tasks_they_are_meant_for_as_their_runners_parse_them(demo_root, tmp_path):
    """What run_suite checks is what the runner builds: the MMEngine runners' own parser (DictAction) and
    run_cfg get the override from the command line; a 'TASK:' prefix keeps it from the other tasks."""
    from transfer.classification import mmrun
    from transfer.segmentation import train

    args = run_suite.parse_args(["--task", "seg,linear,voc", "--cfg-options", "seg:train_cfg.max_iters=3",
                                 "linear:train_cfg.max_epochs=2", "--opts", "voc:SOLVER.MAX_ITER", "5"])
    tasks = run_suite.parse_tasks(args.task, "resnet50")
    routed = run_suite.route_overrides(tasks, args.opts, args.cfg_options)
    assert routed == {"seg": ["train_cfg.max_iters=3"], "linear": ["train_cfg.max_epochs=2"],
                      "voc": ["SOLVER.MAX_ITER", "5"]}
    args.recipe = "mocov2_r50"
    for p in tasks:  # the pre-check passes the real keys
        run_suite.check_config(p, run_suite.config_path(p, "quick", args), args, routed[p.name])
    seg, linear = protocols.TASKS["seg"], protocols.TASKS["linear"]
    cmd = run_suite.command(seg, run_suite.config_path(seg, "quick", args), str(tmp_path / "s"), demo_root, 0, {},
                            args, routed["seg"])
    cfg = train.run_cfg(train.parser().parse_args(cmd[cmd.index("-m") + 2:]))
    assert cfg.train_cfg.max_iters == 3
    cmd = run_suite.command(linear, run_suite.config_path(linear, "quick", args), str(tmp_path / "l"), demo_root, 0,
                            {}, args, routed["linear"])
    cfg, _ = mmrun.run_cfg(mmrun.parser("linear").parse_args(cmd[cmd.index("-m") + 2:]), ("linear",), ["mocov2_r50"])
    assert cfg.train_cfg.max_epochs == 2
    assert run_suite.route_overrides(tasks[:1], [], ["train_cfg.max_iters=3"]) == {"seg": ["train_cfg.max_iters=3"]}


@pytest.mark.slow
def test_an_override_is_in_the_effective_config_of_the_run(demo_root, tmp_path):
    out = tmp_path / "suite"
    assert run_suite.main(["--task", "seg", "--data", demo_root, "--quick", "--out", str(out),
                           "--cfg-options", "train_cfg.max_iters=2"]) == 0
    dumped = (out / "seg" / "seed0" / "fcn_r50-d8_quick_voc12aug.py").read_text()  # MMEngine's dump of the run's config
    assert "train_cfg = dict(max_iters=2, type='IterBasedTrainLoop'" in dumped


def test_task_list_prints_every_task_with_schedule_data_and_published_numbers(capsys):
    assert run_suite.main(["--task", "list"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ") and "---" not in line}
    assert set(protocols.TASKS) <= set(rows)
    # moco detection/configs/pascal_voc_R_50_C4_24k.yaml: MAX_ITER 24000, IMS_PER_BATCH 16; moco detection/README 82.4
    assert "24000 iterations x 16 images per update" in rows["voc"] and "82.4" in rows["voc"]
    assert "random: bbox/AP50 59.02" in rows["voc"] and "VOC2012/" in rows["voc"]
    # moco main_lincls.py: 100 epochs, batch 256; moco-v3 main_lincls.py: 90 epochs, batch 1024
    assert "mocov2_r50: 100 epochs x 256 images per update" in rows["linear"]
    assert "mocov3_r50: 90 epochs x 1024 images per update" in rows["linear"]
    assert "features of every image once" in rows["knn"] and "imagenet/{train,val}" in rows["knn"]
    order = [name for name in rows if name in protocols.TASKS]
    assert order.index("knn") < order.index("linear") < order.index("voc") < order.index("coco")  # cheap first


def test_a_data_root_lacking_some_sets_is_named_before_anything_runs(tmp_path, demo_root, capsys):
    root = tmp_path / "voc_only"
    root.mkdir()
    for name in ("VOC2007", "VOC2012"):
        os.symlink(os.path.join(demo_root, name), root / name)
    out = tmp_path / "o"
    assert run_suite.main(["--task", "all", "--data", str(root), "--quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "lacks what 7 of the 11 selected tasks read" in err, err
    missing = err.split("With what")[0]
    for task in ("knn", "linear", "linear-stages", "linear-stages-places", "linear-stages-inat18", "coco", "cityscapes"):
        assert f"{task}," in missing or f"{task}:" in missing, task
    assert "these would run: --task svm,svm-lowshot,voc,seg." in err and not out.exists()
    for name in ("imagenet", "places205"):  # the small test root has no Places205: its ImageNet has the layout
        os.symlink(os.path.join(demo_root, "imagenet"), root / name)
    os.symlink(os.path.join(demo_root, "iNaturalist2018"), root / "iNaturalist2018")
    assert run_suite.main(["--task", "all", "--data", str(root), "--quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "lacks what 2 of the 11" in err and "(the whole group classification)" in err, err
    assert run_suite.main(["--task", "dense,knn", "--data", str(root), "--quick", "--arch", "vit_small",
                           "--out", str(out)]) == 2
    err = capsys.readouterr().err  # for a ViT, dense is seg-upernet, coco-vitdet, ade20k-upernet
    assert "lacks what 2 of the 4" in err and "these would run: --task seg-upernet,knn." in err and not out.exists()


@pytest.mark.parametrize("broken", ["final_metrics.json", "fingerprint.json"])
def test_a_truncated_results_file_is_named_and_its_seed_reruns(tmp_path, capsys, broken):
    """A run killed while writing (or a file cut short by a full disk) is not taken as finished."""
    import sys

    run_dir = tmp_path / "seg" / "seed0"
    fake_finished_run(str(run_dir), {"sem_seg": {"mIoU": 50.0}}, {"deviations": []})
    (run_dir / broken).write_text((run_dir / broken).read_text()[:7])  # truncated
    rerun = ("import json, sys; d = sys.argv[1]; "
             "json.dump({'sem_seg': {'mIoU': 61.0}}, open(d + '/final_metrics.json', 'w')); "
             "json.dump({'deviations': []}, open(d + '/fingerprint.json', 'w'))")
    rec = run_suite.run_one("seg", [sys.executable, "-c", rerun, str(run_dir)], str(run_dir), 0)
    assert rec["status"] == "done" and rec["metrics"] == {"sem_seg/mIoU": 61.0}
    out = capsys.readouterr().out
    assert f"{run_dir / broken}: unreadable (JSONDecodeError" in out and "running this seed again" in out
