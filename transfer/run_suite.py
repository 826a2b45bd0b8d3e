"""The transfer suite: convert a checkpoint once, train and evaluate each protocol, report a table.

    python transfer/run_suite.py --task voc,coco,seg [--weights ckpt.pth] [--data ROOT] [--seeds 5]
                                 [--num-gpus 8] [--lowgpu] [--out output/suite] [--opts ...] [--cfg-options ...]

The tasks are the entries of transfer/protocols.py: `--task all` runs every one the backbone takes, cheap
ones first; `--task list` prints them with their groups, data, schedules and published numbers. Without --data
(or $MOCO_DATA) it runs the quick variants on the built-in data (`make demo`). Each run is a subprocess
through the framework's own launcher; a finished run is skipped on rerun, a killed one resumes from its
last checkpoint, a failed one is recorded and the others go on.
"""
import argparse
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from types import MappingProxyType

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mococore.errors import UserError  # noqa: E402
from mococore.files import lock_folder  # noqa: E402
from mocodata import builtin, register, validate  # noqa: E402
from transfer import BadInput, protocols, report, runner  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one suite run does, settled once from its command line by `plan_of`, every input checked.
    The one value added later, the converted weights, comes by `dataclasses.replace`."""
    tasks: tuple  # the protocols to run, in order
    variant: str  # 'quick', 'lowgpu' or 'full': the config each task runs
    seeds: int  # runs per task: seeds 0..seeds-1
    weights: str | None  # the --weights checkpoint as given; None for a random init
    arch: str | None  # its backbone, else --arch; None: each task's first
    recipe: str  # the pretraining recipe the checkpoint came from: '{recipe}' in a task's config path
    checkpoint: MappingProxyType  # what the converters read in it (source, heads, pos_embed...)
    data_root: str
    builtin_data: bool  # no --data: the built-in sets
    out: str
    overrides: MappingProxyType  # {task name: the override tokens meant for it} (`route_overrides`)
    num_gpus: int
    num_machines: int
    machine_rank: int
    dist_url: str
    allow_cpu: bool
    slurm: bool
    slurm_cluster: str | None
    partition: str
    timeout_min: int
    # {form: path} of the converted weights the runners read (`write_weights`); none for a random init
    converted: MappingProxyType = dataclasses.field(default_factory=lambda: MappingProxyType({}))


def converters_for(form):
    """(module, file suffix) writing weights in the form a runner reads (`Protocol.weights`)."""
    from converters import to_detectron2, to_mmpretrain, to_mmseg

    return {"detectron2": (to_detectron2, ".pkl"), "mmseg": (to_mmseg, ".pth"),
            "mmpretrain": (to_mmpretrain, ".pth")}[form]


def read_weights(path):
    """The checkpoint's backbone, read once, before the tasks are chosen (a group takes those of its arch)."""
    from converters.sources import read_backbone
    from converters.vit_layout import TRANSFER_IMG_SIZE, resize_pos_embed

    if os.path.isdir(path):
        raise BadInput(f"--weights {path}: is a folder; give the checkpoint file")
    arch, sd, info = read_backbone(path)
    if arch.startswith("vit"):  # every ViT protocol builds its model for 224 px (ViTDet's pretrain_img_size too)
        sd, note = resize_pos_embed(sd, TRANSFER_IMG_SIZE)
        if note:
            info = dict(info, pos_embed=note)
    return arch, sd, info


def check_arch(path, arch, tasks):
    """A task named for a backbone it does not evaluate stops here."""
    for p in tasks:
        if arch not in p.archs:
            raise BadInput(f"--weights {path}: a {arch} backbone; task '{p.name}' evaluates "
                             f"{', '.join(p.archs)}. Pick tasks for this architecture (see README).")


def write_weights(path, arch, sd, info, tasks, out_dir):
    """Each form the tasks read, converted once and written atomically: {form: path}."""
    from mococore.files import atomic_write

    forms = {"checkpoint": os.path.abspath(path)}
    for form in sorted({p.weights for p in tasks} - {"checkpoint"}):
        module, suffix = converters_for(form)
        converted = module.convert(arch, sd, path)
        forms[form] = os.path.join(out_dir, f"backbone_{form}{suffix}")
        meta = {"arch": arch, "source": info["source"], "num_heads": info.get("num_heads"),
                **({"pos_embed": info["pos_embed"]} if "pos_embed" in info else {})}
        atomic_write(forms[form], lambda t, m=module, c=converted: m.save(c, t, meta))
    print(f"converted {path} ({arch}, {len(sd)} tensors) for {', '.join(sorted(forms))}")
    if "pos_embed" in info:  # the runners record it in each fingerprint too
        print(f"  {info['pos_embed']}")
    return forms


def torchrun(plan):
    """torchrun's prefix for an MMEngine runner over plan.num_gpus x plan.num_machines processes."""
    prefix = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={plan.num_gpus}",
              f"--nnodes={plan.num_machines}", f"--node_rank={plan.machine_rank}"]
    if plan.dist_url:
        host, port = plan.dist_url.rsplit("//", 1)[-1].rsplit(":", 1)
        prefix += [f"--master_addr={host}", f"--master_port={port}"]
    return prefix


def command(plan, p, cfg, run_dir, seed):
    """The runner's command line for one (protocol, seed), through the framework's own launcher, with
    the overrides meant for this task (`route_overrides`), as its override flag takes them."""
    root, overrides = plan.data_root, plan.overrides[p.name]
    machines = ["--num-gpus", str(plan.num_gpus), "--num-machines", str(plan.num_machines),
                "--machine-rank", str(plan.machine_rank)] + (["--dist-url", plan.dist_url] if plan.dist_url else [])
    w = plan.converted.get(p.weights)
    common = ["--config", cfg, "--data-root", root, "--work-dir", run_dir, "--seed", str(seed)] + (["--weights", w] if w else [])
    if p.framework in ("detectron2", "detectron2-lazy"):
        return [sys.executable, "-m", p.runner, *common, *machines, "--resume"] + (["--opts", *overrides] if overrides else [])
    if p.framework in ("mmseg", "mmpretrain"):
        distributed = plan.num_gpus * plan.num_machines > 1
        prefix = torchrun(plan) if distributed else [sys.executable]
        cmd = prefix + ["-m", p.runner, *common] + (["--launcher", "pytorch"] if distributed else [])
        cmd += ["--task", p.name] if p.framework == "mmseg" else []
        return cmd + (["--cfg-options", *overrides] if overrides else [])
    return [sys.executable, "-m", p.runner, *common] + ([] if w else ["--arch", plan.arch or p.archs[0]])


# the frameworks' own progress lines: detectron2's "eta: ... iter: N", MMEngine's "Iter(train) [N/M] ... eta"
# and "Epoch(train) [E][N/M] ... eta", and the feature runners' "... img/s ... eta"
PROGRESS = re.compile(r"(eta: \S+\s+iter: \d+|(Iter|Epoch)\((train|val|test)\)\s*(\[\s*\d+\])?\[\s*\d+/\d+\]"
                      r"|\S+ img/s.*eta)")


def run_logged(cmd, log_path, prefix, every=30.0):
    """Runs cmd in its own process group with its output in log_path; echoes its latest progress line
    every `every` seconds. Ctrl-C or SIGTERM to the suite stops the whole group first."""
    last = 0.0
    with open(log_path, "a") as log, subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                      text=True, errors="replace", start_new_session=True) as proc:
        try:
            for line in proc.stdout:
                log.write(line)
                m = PROGRESS.search(line)
                if m and time.time() - last >= every:
                    print(f"{prefix} {line[m.start():].strip()[:150]}", flush=True)
                    last = time.time()
            return proc.wait()
        except BaseException:
            os.killpg(proc.pid, signal.SIGTERM)  # the trainer and its workers/launcher children
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            raise


def finished(metrics, fp, minutes=None):
    """The record of a run that wrote its final metrics: metrics and protocol fingerprint."""
    rec = {"status": "done", "metrics": report.flat_metrics(metrics), "fingerprint": fp}
    return dict(rec, minutes=minutes) if minutes is not None else rec


ERROR_LINE = re.compile(r"^(error: |([\w.]*(Error|Exception|NotLoaded|Interrupt|Exit)\w*): )")


def failure_of(log):
    """One paragraph for the summary: the runner's last error line (an exception's message, or an
    'error: ...' line), without the traceback frames above it; else the last line outside any."""
    lines = [line.strip() for line in log.strip().splitlines() if line.strip()]
    errors = [line for line in lines if ERROR_LINE.match(line)]
    if errors:
        return errors[-1]
    frames = re.compile(r"^(Traceback|File \"|\^+$|~+|During handling|The above exception)")
    plain = [line for line in lines if not frames.match(line)]
    return plain[-1] if plain else "no output"


def run_one(task, cmd, run_dir, seed):
    metrics, fp, why = runner.results(run_dir)
    if metrics is not None:
        print(f"[{task} seed {seed}] finished earlier: {os.path.join(run_dir, runner.FINAL)}")
        return finished(metrics, fp)
    if os.path.exists(os.path.join(run_dir, runner.FINAL)):  # a writer killed before the atomic writes, or a hand edit
        print(f"[{task} seed {seed}] {why}: running this seed again", flush=True)
    os.makedirs(run_dir, exist_ok=True)
    print(f"[{task} seed {seed}] running: log in {run_dir}/log.txt", flush=True)
    t0 = time.time()
    rc = run_logged(cmd, os.path.join(run_dir, "log.txt"), f"[{task} seed {seed}]")
    minutes = (time.time() - t0) / 60
    metrics, fp, why = runner.results(run_dir)
    if rc != 0 or metrics is None:
        error = why if rc == 0 and why else failure_of(open(os.path.join(run_dir, "log.txt")).read())
        print(f"[{task} seed {seed}] FAILED after {minutes:.1f} min (exit {rc}): {error}")
        return {"status": "failed", "error": error, "exit_code": rc}
    print(f"[{task} seed {seed}] done in {minutes:.1f} min")
    return finished(metrics, fp, minutes)


OVERRIDE_FLAG = {"detectron2": "--opts", "detectron2-lazy": "--opts", "mmseg": "--cfg-options",
                 "mmpretrain": "--cfg-options"}  # the framework's own override flag; other runners take none


def split_task(token, names):
    """('seg', 'key=value') for 'seg:key=value'; (None, token) without a task prefix."""
    head, sep, rest = token.partition(":")
    return (head, rest) if sep and head in names else (None, token)


def route_overrides(tasks, opts, cfg_options):
    """{task: the override tokens meant for it}. `TASK:KEY...` goes to that task only; a token without
    a prefix goes to every selected task, and each must take the flag it came with (detectron2:
    --opts, MMEngine: --cfg-options); kNN and SVM take none. BadInput names the token otherwise."""
    names = [p.name for p in tasks]
    units = []  # (flag, task or None, tokens): a yacs KEY VALUE pair, a LazyConfig or MMEngine key=value
    i = 0
    while i < len(opts):
        task, key = split_task(opts[i], protocols.TASKS)
        if "=" in key:
            units.append(("--opts", task, [key]))
            i += 1
        elif i + 1 < len(opts):
            units.append(("--opts", task, [key, opts[i + 1]]))
            i += 2
        else:
            raise BadInput(f"--opts {opts[i]}: no value after the key (detectron2 takes KEY VALUE pairs)")
    for token in cfg_options:
        task, key = split_task(token, protocols.TASKS)
        if "=" not in key:
            raise BadInput(f"--cfg-options {token}: not key=value")
        units.append(("--cfg-options", task, [key]))
    routed = {name: [] for name in names}
    for flag, task, tokens in units:
        text = " ".join(tokens if task is None else [f"{task}:{tokens[0]}", *tokens[1:]])
        if task is not None and task not in names:
            raise BadInput(f"{flag} {text}: task '{task}' is not among --task {','.join(names)}")
        for p in tasks:
            if task in (None, p.name):
                if OVERRIDE_FLAG.get(p.framework) != flag:
                    takes = f"takes {OVERRIDE_FLAG[p.framework]}" if p.framework in OVERRIDE_FLAG else "takes none"
                    raise BadInput(f"{flag} {text}: task '{p.name}' {takes} (its recipe is its config); "
                                   f"give the task an override is for as a prefix, e.g. TASK:{tokens[0]}")
                routed[p.name] += tokens
    return routed


def parsed(p, tokens):
    """The overrides as the task's runner receives them: the MMEngine runners parse --cfg-options into a
    dict with DictAction, so the check does the same."""
    if OVERRIDE_FLAG.get(p.framework) != "--cfg-options":
        return list(tokens)
    if not tokens:
        return {}
    from mmengine.config import DictAction

    cli = argparse.ArgumentParser()
    cli.add_argument("--cfg-options", nargs="+", action=DictAction)
    return cli.parse_args(["--cfg-options", *tokens]).cfg_options


def check_config(plan, p):
    """Builds the task's config the way its runner does, with the overrides it will get, before any work."""
    import importlib

    world, path = plan.num_gpus * plan.num_machines, config_path(plan, p)
    cfg = importlib.import_module(p.runner).build_cfg(path, parsed(p, plan.overrides[p.name]))  # BadInput names the key
    if p.framework == "detectron2" and cfg.SOLVER.IMS_PER_BATCH % world:
        raise BadInput(f"{os.path.relpath(path, REPO)}: SOLVER.IMS_PER_BATCH={cfg.SOLVER.IMS_PER_BATCH} "
                       f"cannot be split over {world} GPUs; use a count that divides it, or --lowgpu")


def check_launch(plan):
    """GPUs, machines and memory the configs cannot use stop the suite before any work."""
    import shutil

    import torch

    world, variant = plan.num_gpus * plan.num_machines, plan.variant
    if plan.slurm and plan.slurm_cluster is None and shutil.which("sbatch") is None:
        raise BadInput("--slurm: SLURM's sbatch is not on PATH on this machine")  # submitit would run them here
    if plan.num_gpus < 1 or plan.num_machines < 1 or plan.seeds < 1:
        raise BadInput(f"--num-gpus, --num-machines and --seeds must be at least 1 "
                         f"(got {plan.num_gpus}, {plan.num_machines}, {plan.seeds})")
    if not 0 <= plan.machine_rank < plan.num_machines:
        raise BadInput(f"--machine-rank {plan.machine_rank}: must be 0..{plan.num_machines - 1} "
                         f"for --num-machines {plan.num_machines}")
    if plan.num_machines > 1 and not plan.dist_url:
        raise BadInput("--num-machines > 1 needs --dist-url tcp://HOST:PORT of machine 0")
    if plan.num_gpus > 1 and not plan.slurm and torch.cuda.device_count() < plan.num_gpus:
        raise BadInput(f"--num-gpus {plan.num_gpus}: this machine has {torch.cuda.device_count()} GPU(s)")
    if variant != "quick" and not (plan.slurm or plan.allow_cpu or torch.cuda.is_available()):
        raise BadInput(f"the {variant} protocols need GPUs (a CPU run of the full COCO protocol was killed at "
                         "23 GB and would take weeks); use --quick for a smoke run, or --allow-cpu to try anyway")
    for p in plan.tasks:
        check_config(plan, p)
        if variant == "full" and world != p.gpus:
            hint = " (--lowgpu keeps the images per update)" if "lowgpu" in p.configs else ""
            print(f"warning: the {p.name} protocol ran on {p.gpus} GPUs; on {world} the BN statistics see other "
                  f"batches{hint}; the report lists any deviation")


def recipe_of(source, arch):
    """The pretraining recipe a checkpoint came from, for protocols whose recipe follows it (linear)."""
    if arch.startswith("vit"):
        return "mocov3_vit"
    return "mocov3_r50" if source == "moco_v3" else "mocov2_r50"


def config_path(plan, p):
    """The config file of a task's variant; '{recipe}' is the checkpoint's pretraining recipe."""
    variant = plan.variant
    rel = p.config(variant if variant in p.configs else "full")
    arch = plan.arch or p.archs[0]
    path = os.path.join(REPO, "configs", rel.format(recipe=plan.recipe, vit="_vit" if arch.startswith("vit") else "",
                                                    arch=arch, size=arch.replace("vit_", "")[:1]))
    if not os.path.isfile(path):
        raise BadInput(f"task '{p.name}' has no {variant} config for a {arch} ({os.path.relpath(path, REPO)}); "
                         f"pick another variant or architecture")
    return path


def run_on_slurm(jobs, plan):
    """One job per (task, seed) on one node with --num-gpus GPUs, each running run_one there; the
    suite waits and reports. Interrupted, a rerun with the same --out skips the finished runs."""
    import submitit

    ex = submitit.AutoExecutor(folder=os.path.join(plan.out, "slurm", "%j"), cluster=plan.slurm_cluster)
    ex.update_parameters(name="moco-transfer", nodes=1, tasks_per_node=1, gpus_per_node=plan.num_gpus,
                         cpus_per_task=max(4, 8 * plan.num_gpus), timeout_min=plan.timeout_min,
                         slurm_partition=plan.partition or None)
    submitted = [ex.submit(run_one, *job) for job in jobs]
    for (task, _, _, seed), j in zip(jobs, submitted):
        print(f"[{task} seed {seed}] submitted as job {j.job_id}")
    results = []
    for j in submitted:
        try:
            results.append(j.result())
        except Exception as e:  # the job itself died (node failure, time limit): recorded, others go on
            results.append({"status": "failed", "error": str(e).strip().splitlines()[-1][:500], "exit_code": None})
    return results


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--task", required=True,
                   help=f"comma list of tasks ({', '.join(protocols.TASKS)}) and groups: 'all' (every task the "
                        f"backbone takes, cheap ones first), {', '.join(protocols.GROUPS)}; 'list' prints the table")
    p.add_argument("--weights", default=None, help="a pretraining checkpoint (any layout the converters read); "
                                                   "random init without")
    p.add_argument("--arch", default=None, help="backbone of a random init where a task accepts several (e.g. vit_small)")
    p.add_argument("--data", default=None, help="data root (see README for each task's layout); "
                                                "default $MOCO_DATA, else the built-in sets")
    p.add_argument("--quick", action="store_true", help="quick schedules (the default on the built-in data)")
    p.add_argument("--lowgpu", action="store_true", help="fewer-GPU variants: same images per update")
    p.add_argument("--allow-cpu", action="store_true", help="run full or lowgpu protocols without a GPU")
    p.add_argument("--seeds", type=int, default=1, help="runs per task (seeds 0..N-1); the report gives mean and std")
    p.add_argument("--num-gpus", type=int, default=1, help="GPUs per machine")
    p.add_argument("--num-machines", type=int, default=1)
    p.add_argument("--machine-rank", type=int, default=0, help="this machine's rank, 0..num-machines-1")
    p.add_argument("--dist-url", default="", help="tcp://HOST:PORT of machine 0, for several machines")
    p.add_argument("--out", default=os.path.join(REPO, "output", "suite"), help="results folder (one checkpoint per folder)")
    p.add_argument("--slurm", action="store_true", help="one SLURM job per task and seed (submitit); waits for them")
    p.add_argument("--partition", default="", help="SLURM partition")
    p.add_argument("--timeout-min", type=int, default=24 * 60, help="SLURM job time limit, minutes")
    p.add_argument("--slurm-cluster", default=None, help=argparse.SUPPRESS)  # submitit's 'debug'/'local', for tests
    p.add_argument("--opts", nargs="*", default=[],
                   help="detectron2 overrides: KEY VALUE pairs (LazyConfig: key=value); 'TASK:KEY' sends one to that "
                        "task only, a key without a prefix goes to every selected task, each of which must take it")
    p.add_argument("--cfg-options", nargs="*", default=[],
                   help="MMEngine overrides (mmseg, mmpretrain): key=value; 'TASK:key=value' for that task only, "
                        "without a prefix to every selected task, each of which must have the key (kNN/SVM take none)")
    return p.parse_args(argv)


def parse_tasks(text, arch):
    """The protocols `--task` names for a backbone of `arch` (groups expanded)."""
    known = f"the tasks {', '.join(protocols.TASKS)} and the groups all, {', '.join(protocols.GROUPS)} (`--task list`)"
    try:
        tasks = protocols.select(text, arch)
    except KeyError as e:
        raise BadInput(f"--task {text}: unknown task or group '{e.args[0]}'; one or more (comma-separated) of {known}") from None
    if not tasks:
        raise BadInput(f"--task {text}: " + (f"no task of it evaluates a {arch} backbone" if text.strip(", ") else
                                             f"no task given; one or more (comma-separated) of {known}"))
    return tasks


def check_data(tasks, root, arch):
    """Every set the tasks read, checked before any work. What is missing or broken is named all at once,
    with the tasks and groups that would run on what is there: never a silent subset."""
    problems = {}
    for data in dict.fromkeys(p.data for p in tasks):
        try:
            validate.check_task(data, root)
        except validate.DataError as e:
            problems[data] = str(e)
    if not problems:
        return
    ok = [p.name for p in tasks if p.data not in problems]
    groups = [g for g in ("all", *protocols.GROUPS) if {p.name for p in protocols.select(g, arch)} <= set(ok)]
    missing = "; ".join(f"{', '.join(p.name for p in tasks if p.data == d)}: {why}" for d, why in problems.items())
    could = (f" With what is there, these would run: --task {','.join(ok)}"
             + (f" (the whole group {', '.join(groups)})" if groups else "") + "." if ok else
             " None of the selected tasks can run on it.")
    raise BadInput(f"--data {root} lacks what {len(tasks) - len(ok)} of the {len(tasks)} selected tasks read: "
                   f"{missing}.{could} `--task list` gives each task's layout.")


def check_out(out, weights):
    """An --out with another checkpoint's results is refused: merging them would mix two checkpoints."""
    path = os.path.join(out, "results.json")
    if os.path.isfile(path):
        try:
            earlier = json.load(open(path))["meta"].get("weights")
        except (ValueError, KeyError, TypeError):
            raise BadInput(f"{path}: not a results file of this suite; use another --out") from None
        if (earlier and os.path.abspath(earlier)) != (weights and os.path.abspath(weights)):
            raise BadInput(f"--out {out} holds results for weights {earlier or 'random init'}; "
                             f"use another --out for {weights or 'random init'}")
    elif os.path.exists(out) and not os.path.isdir(out):
        raise BadInput(f"--out {out}: exists and is not a folder")


def lock(out):
    """One suite per --out at a time (two would overwrite each other's runs and results)."""
    try:
        return lock_folder(out, "suite")
    except UserError as e:
        raise BadInput(f"--out {out}: {e}") from None


def prepare(args, arch):
    """The tasks, the data root (checked) and the variant of the command line; its --out checked."""
    tasks = parse_tasks(args.task, arch)
    root = register.data_root(args.data)
    builtin_data = root is None
    if builtin_data:
        root = builtin.make_demo(builtin.default_demo_root())
        print(f"no data root given: using the built-in sets in {root}")
    check_data(tasks, root, arch)
    variant = "quick" if (builtin_data or args.quick) else ("lowgpu" if args.lowgpu else "full")
    check_out(args.out, args.weights)
    return tasks, root, builtin_data, variant


def stop_on_sigterm():
    """SIGTERM (a scheduler, `kill`) ends the suite like Ctrl-C does: run_logged stops the trainer first."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def plan_of(args):
    """The suite's plan from its parsed command line, every input checked before any work (BadInput names
    the flag or file), and the checkpoint's backbone (None for a random init), converted once --out is locked."""
    arch, sd, info = read_weights(args.weights) if args.weights else (args.arch, None, {})
    tasks, root, builtin_data, variant = prepare(args, arch or "resnet50")
    if args.arch and not args.weights and any(args.arch not in p.archs for p in tasks):
        raise BadInput(f"--arch {args.arch}: " + "; ".join(f"{p.name} evaluates {', '.join(p.archs)}" for p in tasks))
    if args.weights:
        check_arch(args.weights, arch, tasks)
    routed = route_overrides(tasks, args.opts, args.cfg_options)
    plan = Plan(tasks=tuple(tasks), variant=variant, seeds=args.seeds, weights=args.weights, arch=arch,
                recipe=recipe_of(info.get("source"), arch or tasks[0].archs[0]), checkpoint=MappingProxyType(info),
                data_root=root, builtin_data=builtin_data, out=args.out,
                overrides=MappingProxyType({name: tuple(tokens) for name, tokens in routed.items()}),
                num_gpus=args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
                dist_url=args.dist_url, allow_cpu=args.allow_cpu, slurm=args.slurm, slurm_cluster=args.slurm_cluster,
                partition=args.partition, timeout_min=args.timeout_min)
    check_launch(plan)
    return plan, sd


def main(argv=None):
    args = parse_args(argv)
    if args.task.strip() == "list":
        print(report.protocol_table())
        return 0
    try:
        plan, backbone = plan_of(args)
        held = lock(plan.out)
        if backbone:
            converted = write_weights(plan.weights, plan.arch, backbone, plan.checkpoint, plan.tasks,
                                      os.path.join(plan.out, "weights"))
            plan = dataclasses.replace(plan, converted=MappingProxyType(converted))
    except UserError as e:  # BadInput, a DataError, a ConversionError: the user's input, named
        print(f"error: {e}", file=sys.stderr)
        return 2
    jobs, configs = [], []
    for p in plan.tasks:
        cfg = config_path(plan, p)
        for seed in range(plan.seeds):
            run_dir = os.path.join(plan.out, p.name, f"seed{seed}")
            jobs.append((p.name, command(plan, p, cfg, run_dir, seed), run_dir, seed))
            configs.append(os.path.relpath(cfg, REPO))
    stop_on_sigterm()
    try:
        results = run_on_slurm(jobs, plan) if plan.slurm else [run_one(*job) for job in jobs]
    except KeyboardInterrupt:
        print("interrupted: the running trainer was stopped; rerun the same command to resume", file=sys.stderr)
        return 130
    runs = [{"task": task, "seed": seed, "config": cfg, "run_dir": run_dir, **result}
            for (task, _, run_dir, seed), cfg, result in zip(jobs, configs, results)]
    table = report.write(plan.out, runs, {"weights": plan.weights, "arch": plan.arch, "data": plan.data_root,
                                          "builtin": plan.builtin_data, "num_gpus": plan.num_gpus,
                                          "variant": plan.variant, "recipe": plan.recipe,
                                          **({"pos_embed": plan.checkpoint["pos_embed"]}
                                             if "pos_embed" in plan.checkpoint else {})})
    os.close(held)
    print(table)
    return 0 if all(r["status"] == "done" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
