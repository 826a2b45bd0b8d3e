"""run_suite: bad input stops before training; the quick demo end to end (slow)."""
import dataclasses
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


def plan(argv, out):
    """The plan `main` would run for argv (every input checked) and the checkpoint's backbone."""
    return run_suite.plan_of(run_suite.parse_args([*argv, "--out", str(out)]))


def test_launch_commands_for_several_machines(demo_root, tmp_path):
    one, _ = plan(["--task", "voc,seg", "--data", demo_root, "--quick"], tmp_path / "o")
    # a machine of a 2 x 8 GPU run (this test machine has none, so the launch check would refuse them)
    several = dataclasses.replace(one, num_gpus=8, num_machines=2, machine_rank=1, dist_url="tcp://10.0.0.1:29500")
    voc, seg = protocols.TASKS["voc"], protocols.TASKS["seg"]
    d2 = run_suite.command(several, voc, "c.yaml", "out", 0)
    assert d2[d2.index("--num-machines") + 1] == "2" and d2[d2.index("--dist-url") + 1] == "tcp://10.0.0.1:29500"
    assert d2[d2.index("--machine-rank") + 1] == "1" and d2[d2.index("--seed") + 1] == "0"
    assert d2[d2.index("-m") + 1:d2.index("-m") + 4] == ["transfer.detection.train_net", "--config", "c.yaml"]
    assert d2[d2.index("--work-dir") + 1] == "out" and "--config-file" not in d2
    cmd = run_suite.command(several, seg, "c.py", "out", 0)
    assert cmd[1:3] == ["-m", "torch.distributed.run"] and "--launcher" in cmd
    for flag in ("--nproc_per_node=8", "--nnodes=2", "--node_rank=1", "--master_addr=10.0.0.1", "--master_port=29500"):
        assert flag in cmd
    cmd = run_suite.command(one, seg, "c.py", "out", 0)
    assert cmd[1:3] == ["-m", "transfer.segmentation.train"] and "--launcher" not in cmd


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

    def command(plan, p, *a):  # VOC's training process dies; the finished runs are collected, not rerun
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

    argv = ["--task", "seg,linear,voc", "--data", demo_root, "--quick", "--cfg-options", "seg:train_cfg.max_iters=3",
            "linear:train_cfg.max_epochs=2", "--opts", "voc:SOLVER.MAX_ITER", "5"]
    suite, _ = plan(argv, tmp_path / "o")  # the pre-check (plan_of) passes the real keys
    assert suite.overrides == {"seg": ("train_cfg.max_iters=3",), "linear": ("train_cfg.max_epochs=2",),
                               "voc": ("SOLVER.MAX_ITER", "5")}
    seg, linear = protocols.TASKS["seg"], protocols.TASKS["linear"]
    cmd = run_suite.command(suite, seg, run_suite.config_path(suite, seg), str(tmp_path / "s"), 0)
    cfg = train.run_cfg(train.parser().parse_args(cmd[cmd.index("-m") + 2:]))
    assert cfg.train_cfg.max_iters == 3
    cmd = run_suite.command(suite, linear, run_suite.config_path(suite, linear), str(tmp_path / "l"), 0)
    cfg, _ = mmrun.run_cfg(mmrun.parser("linear").parse_args(cmd[cmd.index("-m") + 2:]), ("linear",), ["mocov2_r50"])
    assert cfg.train_cfg.max_epochs == 2
    tasks = run_suite.parse_tasks("seg", "resnet50")
    assert run_suite.route_overrides(tasks, [], ["train_cfg.max_iters=3"]) == {"seg": ["train_cfg.max_iters=3"]}


MMENGINE_TASKS = [n for n, p in protocols.TASKS.items() if p.framework in ("mmseg", "mmpretrain")]


@pytest.mark.parametrize("task", MMENGINE_TASKS)
def test_a_real_key_of_every_mmengine_task_reaches_its_runs_effective_config(task, demo_root, tmp_path):
    """Every MMEngine task, through run_suite's command and its own runner's parser and run_cfg: the value of
    a real key, given with the task's prefix, is the one the run will train with."""
    from mmengine.registry import DefaultScope

    from transfer.classification import finetune, linear, mmrun
    from transfer.segmentation import train

    p = protocols.TASKS[task]
    key, value, read = (("train_cfg.max_iters", 3, lambda c: c.train_cfg.max_iters) if p.framework == "mmseg"
                        else ("train_cfg.max_epochs", 2, lambda c: c.train_cfg.max_epochs))
    arch = [] if "resnet50" in p.archs else ["--arch", p.archs[0]]
    if task == "linear-stages-places":  # Places205's layout, with the built-in images
        root = tmp_path / "root"
        root.mkdir()
        os.symlink(os.path.join(demo_root, "imagenet"), root / "places205")
        demo_root = str(root)
    suite, _ = plan(["--task", task, "--data", demo_root, "--quick", *arch, "--cfg-options", f"{task}:{key}={value}"],
                    tmp_path / "o")
    cmd = run_suite.command(suite, p, run_suite.config_path(suite, p), str(tmp_path / "run"), 0)
    argv = cmd[cmd.index("-m") + 2:]
    if p.runner == "transfer.segmentation.train":
        cfg = train.run_cfg(train.parser().parse_args(argv))
    else:  # linear, finetune and the sweep all run mmrun.run_cfg, with the tasks and recipes of their module
        tasks, recipes = ({"transfer.classification.finetune": (("finetune",), finetune.RECIPES)}
                          .get(p.runner, (("linear", "linear-stages"), linear.RECIPES)))
        with DefaultScope.overwrite_default_scope("mmpretrain"):
            cfg, _ = mmrun.run_cfg(mmrun.parser("test").parse_args(argv), tasks, recipes)
    assert read(cfg) == value, (task, key)


def test_the_plan_is_built_once_from_the_command_line_and_frozen(demo_root, tmp_path):
    out = tmp_path / "o"
    suite, backbone = plan(["--task", "knn,linear", "--seeds", "3", "--data", demo_root, "--quick",
                            "--cfg-options", "linear:train_cfg.max_epochs=2", "linear:optim_wrapper.optimizer.lr=0.5"],
                           out)
    assert [p.name for p in suite.tasks] == ["knn", "linear"] and suite.seeds == 3 and backbone is None
    assert (suite.variant, suite.arch, suite.recipe, suite.weights) == ("quick", None, "mocov2_r50", None)
    assert (suite.data_root, suite.builtin_data, suite.out) == (demo_root, False, str(out))
    assert suite.overrides == {"knn": (), "linear": ("train_cfg.max_epochs=2", "optim_wrapper.optimizer.lr=0.5")}
    assert suite.converted == {} and not out.exists()  # a plan writes nothing
    with pytest.raises(dataclasses.FrozenInstanceError):
        suite.seeds = 1
    with pytest.raises(TypeError):  # its mappings are read-only views
        suite.overrides["knn"] = ("k=1",)
    assert run_suite.config_path(suite, suite.tasks[1]).endswith("configs/mmpretrain/linear_mocov2_r50_quick.py")
    # a ViT by --arch: its recipe, its configs, and without --quick on a CPU with --allow-cpu, the full variant
    vit, _ = plan(["--task", "knn,seg-upernet", "--data", demo_root, "--arch", "vit_small", "--allow-cpu",
                   "--cfg-options", "seg-upernet:train_cfg.max_iters=2", "--num-gpus", "1"], out)
    assert (vit.arch, vit.recipe, vit.variant, vit.allow_cpu) == ("vit_small", "mocov3_vit", "full", True)
    assert vit.overrides == {"knn": (), "seg-upernet": ("train_cfg.max_iters=2",)}
    cmd = run_suite.command(vit, vit.tasks[0], run_suite.config_path(vit, vit.tasks[0]), "run", 2)
    assert cmd[-2:] == ["--arch", "vit_small"] and cmd[cmd.index("--seed") + 1] == "2"


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
    assert "random: bbox/AP 31.0; supervised: bbox/AP 38.9" in rows["coco"]  # MoCo paper Table 5a
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
