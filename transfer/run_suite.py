"""The transfer suite: convert a checkpoint once, train and evaluate each protocol, report a table.

    python transfer/run_suite.py --task {voc,coco,seg,all} [--weights ckpt.pth] [--data ROOT]
                                 [--seeds 5] [--num-gpus 8] [--lowgpu] [--out output/suite]
                                 [--opts KEY VALUE ...] [--cfg-options k=v ...]

Without --data (or $MOCO_DATA) it runs the quick variants on the built-in data (`make demo`).
Each run is a subprocess through the framework's own launcher; a finished run is skipped on
rerun, a killed one resumes from its last checkpoint, a failed one is recorded and the others go on.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mocodata import builtin, register, validate  # noqa: E402
from transfer import report  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {  # task: (full protocol, fewer-GPU variant, quick variant for the built-in data)
    "voc": ("detectron2/pascal_voc_R_50_C4_24k_moco.yaml", "detectron2/pascal_voc_R_50_C4_24k_moco_lowgpu.yaml",
            "detectron2/pascal_voc_R_50_C4_quick.yaml"),
    "coco": ("detectron2/coco_R_50_FPN_1x_moco.yaml", "detectron2/coco_R_50_FPN_1x_moco_lowgpu.yaml",
             "detectron2/coco_R_50_FPN_quick.yaml"),
    "seg": ("mmseg/fcn_r50-d8_4xb4-20k_voc12aug-512x512_moco.py", "mmseg/fcn_r50-d8_1xb4-20k_voc12aug-512x512_moco_lowgpu.py",
            "mmseg/fcn_r50-d8_quick_voc12aug.py"),
}


def convert_weights(path, out_dir):
    """Converts once for both frameworks; a checkpoint that converts to nothing stops here."""
    if not path:
        return None, None
    from converters import to_detectron2, to_mmseg
    from converters.cli import atomic_write
    from converters.sources import read_backbone

    arch, sd, info = read_backbone(path)
    if arch != "resnet50":
        raise SystemExit(f"error: {path}: the suite's protocols use ResNet-50; this is a {arch}")
    os.makedirs(out_dir, exist_ok=True)
    pkl, pth = os.path.join(out_dir, "backbone_detectron2.pkl"), os.path.join(out_dir, "backbone_mmseg.pth")
    atomic_write(pkl, lambda t: to_detectron2.save(to_detectron2.convert(arch, sd, path), t))
    atomic_write(pth, lambda t: to_mmseg.save(to_mmseg.convert(arch, sd, path), t))
    print(f"converted {path} ({info['source']}, {len(sd)} tensors)")
    return pkl, pth


def command(task, cfg, run_dir, root, seed, weights, args):
    if task in ("voc", "coco"):
        cmd = [sys.executable, "-m", "transfer.detection.train_net", "--config-file", cfg, "--data-root", root,
               "--num-gpus", str(args.num_gpus), "--num-machines", str(args.num_machines),
               "--machine-rank", str(args.machine_rank)] + (["--dist-url", args.dist_url] if args.dist_url else [])
        cmd += ["--resume", "OUTPUT_DIR", run_dir, "SEED", str(seed)]
        if weights[0]:
            cmd += ["MODEL.WEIGHTS", weights[0]]
        return cmd + list(args.opts)
    distributed = args.num_gpus * args.num_machines > 1
    launcher = ["--launcher", "pytorch"] if distributed else []
    prefix = [sys.executable]
    if distributed:  # MMEngine's 'pytorch' launcher reads torchrun's environment
        prefix += ["-m", "torch.distributed.run", f"--nproc_per_node={args.num_gpus}", f"--nnodes={args.num_machines}",
                   f"--node_rank={args.machine_rank}"]
        if args.dist_url:
            host, port = args.dist_url.rsplit("//", 1)[-1].rsplit(":", 1)
            prefix += [f"--master_addr={host}", f"--master_port={port}"]
    cmd = prefix + ["-m", "transfer.segmentation.train", "--config", cfg, "--data-root", root,
                    "--work-dir", run_dir, "--seed", str(seed)] + launcher
    if weights[1]:
        cmd += ["--weights", weights[1]]
    return cmd + (["--cfg-options", *args.cfg_options] if args.cfg_options else [])


def finished(run_dir, minutes=None):
    """The record of a run that wrote its final metrics: metrics and protocol fingerprint."""
    fp = os.path.join(run_dir, "fingerprint.json")
    rec = {"status": "done", "metrics": report.flat_metrics(json.load(open(os.path.join(run_dir, "final_metrics.json")))),
           "fingerprint": json.load(open(fp)) if os.path.exists(fp) else None}
    return dict(rec, minutes=minutes) if minutes is not None else rec


# the frameworks' own progress lines: detectron2's "eta: ... iter: N", MMEngine's "Iter(train) [N/M] ... eta"
PROGRESS = re.compile(r"(eta: \S+\s+iter: \d+|Iter\((train|val|test)\)\s*\[\s*\d+/\d+\])")


def run_logged(cmd, log_path, prefix, every=30.0):
    """Runs cmd with its output in log_path; echoes its latest progress line every `every` seconds."""
    last = 0.0
    with open(log_path, "a") as log, subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                      text=True, errors="replace") as proc:
        for line in proc.stdout:
            log.write(line)
            m = PROGRESS.search(line)
            if m and time.time() - last >= every:
                print(f"{prefix} {line[m.start():].strip()[:150]}", flush=True)
                last = time.time()
        return proc.wait()


def run_one(task, cfg, run_dir, root, seed, weights, args):
    done = os.path.join(run_dir, "final_metrics.json")
    if os.path.exists(done) and json.load(open(done)):
        print(f"[{task} seed {seed}] finished earlier: {done}")
        return finished(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    cmd = command(task, cfg, run_dir, root, seed, weights, args)
    print(f"[{task} seed {seed}] running: log in {run_dir}/log.txt")
    t0 = time.time()
    rc = run_logged(cmd, os.path.join(run_dir, "log.txt"), f"[{task} seed {seed}]")
    minutes = (time.time() - t0) / 60
    if rc != 0 or not os.path.exists(done) or not json.load(open(done)):
        tail = open(os.path.join(run_dir, "log.txt")).read().strip().splitlines()[-3:]
        print(f"[{task} seed {seed}] FAILED after {minutes:.1f} min (exit {rc}): {' | '.join(tail)}")
        return {"status": "failed", "error": "\n".join(tail), "exit_code": rc}
    print(f"[{task} seed {seed}] done in {minutes:.1f} min")
    return finished(run_dir, minutes)


def check_launch(tasks, variant, args):
    """A GPU count the configs cannot use, or no SLURM for --slurm, stops the suite before any work."""
    import shutil

    world = args.num_gpus * args.num_machines
    if args.slurm and args.slurm_cluster is None and shutil.which("sbatch") is None:
        return "--slurm: SLURM's sbatch is not on PATH on this machine"  # submitit would run them here instead
    if args.num_gpus < 1 or args.num_machines < 1:
        return f"--num-gpus and --num-machines must be at least 1 (got {args.num_gpus}, {args.num_machines})"
    if args.num_gpus > 1 and not args.slurm:
        import torch

        if torch.cuda.device_count() < args.num_gpus:
            return f"--num-gpus {args.num_gpus}: this machine has {torch.cuda.device_count()} GPU(s)"
    for task in tasks:
        if task in ("voc", "coco"):
            from detectron2.config import get_cfg

            from transfer.detection import heads  # noqa: F401  (the config names its ROI head)

            cfg = get_cfg()
            cfg.merge_from_file(os.path.join(REPO, "configs", CONFIGS[task][variant]))
            try:
                cfg.merge_from_list(list(args.opts))
            except (KeyError, ValueError, AssertionError) as e:
                return f"--opts {' '.join(args.opts)}: {e}"
            if cfg.SOLVER.IMS_PER_BATCH % world:
                return (f"{CONFIGS[task][variant]}: SOLVER.IMS_PER_BATCH={cfg.SOLVER.IMS_PER_BATCH} cannot be split over "
                        f"{world} GPUs; use a count that divides it, or --lowgpu")
        elif variant == 0 and world != 4:
            hint = " (--lowgpu keeps 16 on one GPU)" if world == 1 else ""
            print(f"warning: the FCN protocol is 4 GPUs x 4 images; on {world} GPU(s) an update sees {4 * world} "
                  f"images{hint}; the report lists it as a deviation")
    return None


def run_on_slurm(jobs, args):
    """One job per (task, seed) on one node with --num-gpus GPUs, each running run_one there; the
    suite waits and reports. Interrupted, a rerun with the same --out skips the finished runs."""
    import submitit

    ex = submitit.AutoExecutor(folder=os.path.join(args.out, "slurm", "%j"), cluster=args.slurm_cluster)
    ex.update_parameters(name="moco-transfer", nodes=1, tasks_per_node=1, gpus_per_node=args.num_gpus,
                         cpus_per_task=max(4, 8 * args.num_gpus), timeout_min=args.timeout_min,
                         slurm_partition=args.partition or None)
    submitted = [ex.submit(run_one, *job) for job in jobs]
    for (task, _, _, _, seed, _, _), j in zip(jobs, submitted):
        print(f"[{task} seed {seed}] submitted as job {j.job_id}")
    results = []
    for j in submitted:
        try:
            results.append(j.result())
        except Exception as e:  # the job itself died (node failure, time limit): recorded, others go on
            results.append({"status": "failed", "error": str(e).strip().splitlines()[-1][:500], "exit_code": None})
    return results


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", required=True, choices=["voc", "coco", "seg", "all"])
    p.add_argument("--weights", default=None, help="a pretraining checkpoint (any layout the converters read)")
    p.add_argument("--data", default=None, help="data root (VOC2007/, VOC2012/, coco/); default $MOCO_DATA or built-in")
    p.add_argument("--quick", action="store_true", help="quick schedules (the default on the built-in data)")
    p.add_argument("--lowgpu", action="store_true", help="fewer-GPU variants: same images per update")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--num-gpus", type=int, default=1)
    p.add_argument("--num-machines", type=int, default=1)
    p.add_argument("--machine-rank", type=int, default=0)
    p.add_argument("--dist-url", default="", help="tcp://HOST:PORT of machine 0, for several machines")
    p.add_argument("--out", default=os.path.join(REPO, "output", "suite"))
    p.add_argument("--slurm", action="store_true", help="one SLURM job per task and seed (submitit); waits for them")
    p.add_argument("--partition", default="", help="SLURM partition")
    p.add_argument("--timeout-min", type=int, default=24 * 60, help="SLURM job time limit")
    p.add_argument("--slurm-cluster", default=None, help=argparse.SUPPRESS)  # submitit's 'debug'/'local', for tests
    p.add_argument("--opts", nargs="*", default=[], help="detectron2 KEY VALUE pairs")
    p.add_argument("--cfg-options", nargs="*", default=[], help="mmseg key=value pairs")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    tasks = ["voc", "coco", "seg"] if args.task == "all" else [args.task]
    root = register.data_root(args.data)
    builtin = root is None
    if builtin:
        root = builtin.make_demo(builtin.default_demo_root())
        print(f"no data root given: using the built-in sets in {root}")
    try:
        for task in tasks:
            validate.check_task(task, root)
    except validate.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    variant = 2 if (builtin or args.quick) else (1 if args.lowgpu else 0)
    problem = check_launch(tasks, variant, args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from converters.sources import ConversionError

    try:
        weights = convert_weights(args.weights, os.path.join(args.out, "weights"))
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    jobs = [(task, os.path.join(REPO, "configs", CONFIGS[task][variant]), os.path.join(args.out, task, f"seed{seed}"),
             root, seed, weights, args) for task in tasks for seed in range(args.seeds)]
    results = run_on_slurm(jobs, args) if args.slurm else [run_one(*job) for job in jobs]
    runs = [{"task": task, "seed": seed, "config": os.path.relpath(cfg, REPO), "run_dir": run_dir, **result}
            for (task, cfg, run_dir, _, seed, _, _), result in zip(jobs, results)]
    table = report.write(args.out, runs, {"weights": args.weights, "data": root, "builtin": builtin,
                                          "num_gpus": args.num_gpus})
    print(table)
    return 0 if all(r["status"] == "done" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
