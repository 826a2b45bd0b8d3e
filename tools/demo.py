"""`make demo`: the product's whole path on the built-in data, and one table that says what it showed.

    python tools/demo.py [--demo-seconds 600] [--out output/demo]

Steps (each a subprocess, as a user would run it): pretrain MoCo v2 R50 (`pretrain/run.py --preset
demo`), convert the checkpoint for Detectron2 and MMSegmentation (the converter CLIs and their reports),
then the transfer suite twice, from random initialisation and from the checkpoint (`run_suite.py`,
one --out each). The cheap tasks (knn, linear) run several seeds, the dense ones (voc, coco, seg) one.
`--demo-seconds` scales the plan to the machine: fewer epochs, fewer seeds, the slowest dense tasks
dropped, each cut said. OUT/README.md explains the results; OUT/curves.png shows every training curve.
"""
import argparse
import json
import os
import subprocess
import sys
import time

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mococore.files import atomic_text, atomic_write  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHEAP, DENSE = ("knn", "linear"), ("voc", "seg", "coco")  # DENSE: slowest last, dropped first
# Seconds of each step on an idle 2-core machine (estimates for the plan and the ETA; the ETA then
# follows the measured pace): pretraining per epoch, a cheap task per seed, a dense task per run.
# Each is a `make demo` measurement (README, "Two commands", gives them); overhead: the processes'
# start-up, the report and the plot, and a margin.
COST = {"data": 15, "epoch": 10, "convert": 10, "knn": 8, "linear": 25, "voc": 100, "seg": 50, "coco": 70,
        "overhead": 35}
PACE_AFTER = 60  # estimated seconds done before the measured pace replaces the estimates in the ETA
FULL = dict(epochs=8, seeds=3, dense=DENSE)
MIN_SECONDS = 60
MARK = ".demo"  # written into --out: a folder with it is the demo's own, and is replaced by the next demo


class DemoError(ValueError):
    """A bad --demo-seconds or --out: exit 2 with one paragraph."""


def positive_seconds(text):
    try:
        n = float(text)
    except ValueError:
        n = float("nan")
    if not n >= MIN_SECONDS or n == float("inf"):
        raise DemoError(f"--demo-seconds {text}: must be a number of seconds, at least {MIN_SECONDS} (the pretraining "
                        f"and one kNN comparison need about a minute on 2 cores); the default 600 runs every step. "
                        "Give a larger number, or leave the flag out.")
    return n


def suite_cost(plan, weights):
    """Estimated seconds of one backbone's suite (a checkpoint's kNN runs once: see suite_calls)."""
    cheap = sum((1 if weights and t == "knn" else plan["seeds"]) * COST[t] for t in plan["cheap"])
    return cheap + sum(COST[t] for t in plan["dense"])


def cost(plan):
    """Estimated seconds of a plan on an idle 2-core machine."""
    pretraining = COST["data"] + plan["epochs"] * COST["epoch"] + COST["convert"] + COST["overhead"]
    return pretraining + suite_cost(plan, None) + suite_cost(plan, "checkpoint")


# what a smaller budget gives up, in order: the slowest dense task first, the kNN comparison last
CUTS = [("dense", "coco"), ("epochs", 6), ("seeds", 2), ("dense", "seg"), ("epochs", 4), ("dense", "voc"),
        ("seeds", 1), ("epochs", 3), ("cheap", "linear"), ("epochs", 2)]


def fit(plan, budget, estimate, cuts_allowed):
    """Applies `cuts_allowed` (CUTS entries) in order while estimate(plan) exceeds `budget`; a cut that
    changes nothing is skipped. Returns the messages of the cuts made."""
    cuts = []
    for what, value in cuts_allowed:
        if estimate(plan) <= budget:
            break
        if what in ("dense", "cheap") and value in plan[what]:
            plan[what].remove(value)
            cuts.append(f"dropped the {value} task")
        elif what in ("epochs", "seeds") and plan[what] > value:
            cuts.append(f"{what} {plan[what]} -> {value}" + (" (pretraining)" if what == "epochs" else " (knn, linear)"))
            plan[what] = value
    return cuts


def plan_for(seconds):
    """(plan, cuts): the full plan, with CUTS applied in order until its estimate fits `seconds`."""
    plan = dict(epochs=FULL["epochs"], seeds=FULL["seeds"], cheap=list(CHEAP), dense=list(DENSE))
    cuts = fit(plan, seconds, cost, CUTS)
    if cost(plan) > seconds:
        cuts.append(f"the smallest plan still needs about {cost(plan):.0f}s on an idle 2-core machine")
    return plan, cuts


def replan(plan, left, pace):
    """After pretraining, with the machine's pace measured (seconds taken / seconds estimated): the suite
    cut further (never the kNN comparison) so that it fits the `left` seconds of the budget."""
    suites = lambda p: pace * (suite_cost(p, None) + suite_cost(p, "checkpoint"))  # noqa: E731
    cuts = fit(plan, left, suites, [c for c in CUTS if c[0] != "epochs" and c != ("cheap", "knn")])
    return [f"{c} (this machine ran {pace:.1f}x the estimate so far)" for c in cuts]


class Progress:
    """'[demo mm:ss] step k/n: what (ETA mm:ss)': the ETA from the plan's estimates, scaled by the pace
    measured so far (a loaded or slower machine stretches every remaining step alike)."""

    def __init__(self, steps):
        self.steps, self.t0, self.done_est, self.k = steps, time.time(), 0.0, 0
        self.times = []

    def pace(self):
        """Seconds taken per estimated second so far; 1 until enough is done to tell (a cached step
        that took 0 s would otherwise promise an ETA of 0)."""
        return (time.time() - self.t0) / self.done_est if self.done_est >= PACE_AFTER else 1.0

    def start(self, name):
        self.k += 1
        elapsed = time.time() - self.t0
        left = self.pace() * sum(est for _, est in self.steps[self.k - 1:])
        print(f"[demo {mmss(elapsed)}] step {self.k}/{len(self.steps)}: {name} (ETA {mmss(left)} for the rest)",
              flush=True)
        self.step_t0 = time.time()

    def end(self, name):
        took = time.time() - self.step_t0
        self.done_est += self.steps[self.k - 1][1]
        self.times.append((name, took))
        print(f"[demo {mmss(time.time() - self.t0)}] {name}: done in {mmss(took)}", flush=True)


def mmss(s):
    return f"{int(s) // 60:02d}:{int(s) % 60:02d}"


def stream(cmd, prefix, keep=None):
    """Runs cmd from the repository root, its output shown with a prefix (only lines matching `keep`
    when given: the converters' report, the pretraining's progress). Returns the exit code."""
    with subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace") as proc:
        for line in proc.stdout:
            if keep is None or any(k in line for k in keep):
                print(f"  {prefix} {line.rstrip()[:240]}", flush=True)
        return proc.wait()


def pretrain(out, plan):
    cmd = [sys.executable, "pretrain/run.py", "--preset", "demo", "--out", os.path.join(out, "pretrain"),
           "--epochs", str(plan["epochs"])]
    if stream(cmd, "[pretrain]"):
        raise RuntimeError(f"pretraining failed: see {out}/pretrain/log.txt")
    return os.path.join(out, "pretrain", "checkpoint.pth")


def convert(out, ckpt):
    """Both converter CLIs, as a user runs them; their report lines are shown."""
    paths = {}
    for tool, suffix in (("to_detectron2", ".pkl"), ("to_mmseg", ".pth")):
        paths[tool] = os.path.join(out, "weights", f"backbone_{tool[3:]}{suffix}")
        cmd = [sys.executable, f"converters/{tool}.py", ckpt, "-o", paths[tool], "--force"]
        if stream(cmd, f"[{tool}]"):
            raise RuntimeError(f"converters/{tool}.py failed on {ckpt}")
    return paths


def suite(out, tasks, seeds, weights):
    """One run_suite invocation (results merge into the same --out across invocations)."""
    cmd = [sys.executable, "transfer/run_suite.py", "--task", ",".join(tasks), "--out", out, "--seeds", str(seeds)]
    cmd += ["--weights", weights] if weights else []
    rc = stream(cmd, "[suite]", keep=("running", "done", "FAILED", "error", "eta", "img/s"))
    return rc


def compare(out, suites):
    """`python -m transfer.compare` over the two suites (random init the baseline): its rows, or [] when it
    could not pair them (its message is shown)."""
    folder = os.path.join(out, "compare")
    cmd = [sys.executable, "-m", "transfer.compare", suites["random init"], suites["MoCo"],
           "--baseline", suites["random init"], "--out", folder]
    if stream(cmd, "[compare]", keep=("error", "wrote")):
        return []
    return json.load(open(os.path.join(folder, "comparison.json")))["rows"]


def value(mean, sd, n):
    if mean is None:
        return "n/a"
    return f"{mean:.2f} ± {sd:.2f} (n={n})" if n > 1 else f"{mean:.2f} (1 seed)"


def full_scale(task, metric):
    """'random 59.02, supervised 81.58' at full scale (transfer/protocols.py baselines), for orientation."""
    from transfer import protocols

    refs = protocols.TASKS[task].baseline_refs("resnet50").get(metric, ()) if task in protocols.TASKS else ()
    first = {}
    for r in refs:
        first.setdefault(r.init, r.value)
    return ", ".join(f"{init} {v:.2f}" for init, v in first.items() if init in ("random", "supervised"))


def table(rows):
    """The comparison's rows as the demo's table: both columns, the difference with its interval, the test
    and the verdict exactly as transfer.compare gave them, and the published numbers for orientation."""
    from transfer import protocols

    lines = ["| task | metric | random init | MoCo checkpoint | difference [95% interval] | test, p (Holm) | verdict "
             "| published at full scale: MoCo; random init, supervised |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        diff = "n/a" if r.get("difference") is None else f"{round(r['difference'], 2) + 0.0:+.2f}"  # never "-0.00"
        if r.get("difference_interval"):
            diff += " [{:+.2f}, {:+.2f}]".format(*r["difference_interval"])
        test = f"{r['test']}, p {r['p']:.2g} ({r['p_holm']:.2g})" if r.get("p") is not None else ""
        ref = protocols.TASKS[r["task"]].refs("mocov2_r50", "resnet50").get(r["metric"])
        pub = "; ".join(x for x in (f"{ref.value:.2f}" if ref else "", full_scale(r["task"], r["metric"])) if x)
        lines.append(f"| {r['task']} | {r['metric']} | {value(r['base_mean'], r['base_sd'], r['n_base'])} "
                     f"| {value(r['mean'], r['sd'], r['n'])} | {diff} | {test} | {r['verdict']} | {pub} |")
    return "\n".join(lines)


def chance_level(out):
    """(K, ln(K+1)): the InfoNCE loss of a MoCo v2 encoder that cannot tell the positive key from the queue's
    K negatives (uniform over K+1 logits); None for a method without a queue."""
    import math

    path = os.path.join(out, "pretrain", "config.json")
    cfg = json.load(open(path)) if os.path.exists(path) else {}
    return (cfg["K"], math.log(cfg["K"] + 1)) if cfg.get("method", "mocov2") == "mocov2" and "K" in cfg else None


def pretrain_log(out):
    """(steps, losses), (epochs, kNN top-1) from the pretraining's log.jsonl."""
    loss, knn = ([], []), ([], [])
    path = os.path.join(out, "pretrain", "log.jsonl")
    for line in open(path) if os.path.exists(path) else []:
        rec = json.loads(line)
        if "loss" in rec:
            loss[0].append(rec["step"]), loss[1].append(rec["loss"])
        if "knn_top1" in rec:
            knn[0].append(rec["epoch"] + 1), knn[1].append(rec["knn_top1"])
    return loss, knn


def plot(out, suites):
    """curves.png: pretraining loss and kNN beside each suite task's training loss (seed 0, both backbones)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from transfer.report import curves

    (steps, losses), (epochs, accs) = pretrain_log(out)
    tasks = [t for t in (*CHEAP, *DENSE) if any(os.path.isdir(os.path.join(d, t)) for d in suites.values())]
    fig, axes = plt.subplots(1, 2 + len(tasks), figsize=(4 * (2 + len(tasks)), 3.4), squeeze=False)
    axes = axes[0]
    axes[0].plot(steps, losses, ".-", ms=3, label="InfoNCE")
    chance = chance_level(out)
    if chance:  # above or at this line the encoder has not yet told the positive key from the negatives
        axes[0].axhline(chance[1], ls="--", color="grey", label=f"chance: ln(K+1) = ln({chance[0] + 1}) = {chance[1]:.2f}")
        axes[0].legend()
    axes[0].set(title="pretraining loss (InfoNCE)", xlabel="iteration")
    axes[1].plot(epochs, accs, "o-")
    axes[1].set(title="pretraining kNN top-1 (monitor)", xlabel="epoch", ylabel="%")
    for ax, task in zip(axes[2:], tasks):
        for label, d in suites.items():
            its, vals = curves(os.path.join(d, task, "seed0"))
            if its:
                ax.plot(its, vals, ".-", label=label)
        ax.set(title=f"{task}: training loss", xlabel="iteration")
        ys = [y for line in ax.lines for y in line.get_ydata() if y > 0]
        if ys and max(ys) > 100 * min(ys):  # a loss that overshoots by orders of magnitude stays readable
            ax.set_yscale("log")
        if ax.lines:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "no training curve\n(kNN trains nothing)" if task == "knn" else "no curve logged",
                    ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    atomic_write(os.path.join(out, "curves.png"), lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)


REAL = """    python pretrain/run.py --preset mocov2_200ep --data /imagenet/train        # or a published checkpoint
    python converters/to_detectron2.py CKPT -o r50.pkl && python converters/to_mmseg.py CKPT -o r50_mmseg.pth
    python transfer/run_suite.py --task all --weights CKPT --data /datasets --num-gpus 8 --seeds 5 --out output/suite_moco
    python transfer/run_suite.py --task all --data /datasets --num-gpus 8 --seeds 5 --out output/suite_random
    python -m transfer.compare output/suite_random output/suite_moco --out output/compare"""


def loss_line(out):
    """What the pretraining loss did, against its chance level (the numbers of this run)."""
    (steps, losses), chance = pretrain_log(out)[0], chance_level(out)
    if not losses or not chance:
        return "The pretraining log has no loss to compare with chance."
    last = sum(losses[-5:]) / len(losses[-5:])
    where = "below" if last < chance[1] - 0.05 else "at (or above)"
    return (f"The pretraining loss (InfoNCE, K = {chance[0]} negatives) went from {losses[0]:.2f} to {last:.2f} "
            f"(mean of the last {len(losses[-5:])} logged steps), {where} the chance level ln(K+1) = "
            f"{chance[1]:.2f}: the loss of an encoder that cannot tell the positive key from the negatives "
            "(the dashed line in curves.png).")


def full_scale_gap():
    """The published gap between random init and MoCo v2 at full scale (OpenSelfSup's zoo, one code base)."""
    from transfer import protocols

    lines = []
    for task, metric, what in (("voc", "bbox/AP50", "VOC07+12 Faster R-CNN C4 24k, AP50"),
                               ("linear", "accuracy/top1", "ImageNet linear probe on res5 avgpool, top-1"),
                               ("linear-stages-places", "feat5/top1", "Places205 linear probe on feat5, top-1")):
        refs = {r.init: r for r in protocols.TASKS[task].baselines[metric] if "MODEL_ZOO" in r.source}
        rnd, sup, moco = (refs[k].value for k in ("random", "supervised", "MoCo v2 (OpenSelfSup)"))
        lines.append(f"- {what}: random init {rnd:.2f}, MoCo v2 {moco:.2f} ({moco - rnd:+.2f}), supervised {sup:.2f}")
    return "\n".join(lines + [f"  ({refs['random'].source}; the report of every suite lists these with their configs)"])


def report(out, plan, cuts, times, tab):
    """OUT/README.md, also printed: what ran, how long, where the files are, what the numbers mean."""
    steps = "\n".join(f"| {name} | {mmss(s)} |" for name, s in times)
    text = f"""# MoCo demo: does a checkpoint pretrained here transfer better than random initialisation?

What ran: MoCo v2 ResNet-50 pretrained for {plan['epochs']} epochs on the built-in ImageFolder (10 classes told
apart by shape and texture; the colour is drawn independently of the class), converted for Detectron2 and MMSegmentation,
then the transfer suite ({', '.join(plan['cheap'] + plan['dense'])}) on the built-in data with quick schedules,
once from random initialisation and once from the checkpoint. knn and linear ran {plan['seeds']} seed(s) per
backbone (the checkpoint's kNN once: nothing in it is random), the dense tasks one.{(' Cut to fit --demo-seconds: ' + '; '.join(cuts) + '.') if cuts else ''}

{loss_line(out)}

{tab}

How to read it: the table is `python -m transfer.compare` over the two suites (`{out}/compare/`: comparison.md,
.csv, .json, .png), random init the baseline. Each row's verdict is its test's, after Holm's correction over the
table: McNemar's exact test or a paired bootstrap over the same evaluation images where the task saves per-image
results, Welch's test over seeds where each side has at least 3; 'not enough evidence' where no test can
decide; 'no difference found' is not evidence that the two are equal. 'n/a' gives the reason a number could
not be computed.

What this budget can show: that every step runs end to end (pretraining, both converters, each framework's
training and evaluation, the report and the comparison), and whether a few minutes of pretraining on a few
hundred synthetic images already moves any transfer number beyond what the evaluation images and seeds can
tell apart. What it cannot show: what MoCo buys on real data. Its evaluation sets have tens of images (one
image changes top-1 by a few points), the quick schedules run a few dozen iterations, and the pretraining
runs a few hundred steps (the loss line above says how far from chance they got), so a real gap can hide in
the noise, and no row here says how large it would be at full scale. For orientation, the published gap at full scale (ImageNet pretraining,
the full protocols), from one benchmark code base:

{full_scale_gap()}

Deviations from the published recipes are listed per task in `suite_*/results.md` and each run's
fingerprint.json: among them the quick linear probe's two: a BatchNorm without affine on its res5 features
(MAE's linear probe: every backbone's features standardised, whatever their scale) and lr 0.001 for its 8
images per update (the recipe's 30 is for 256 images on raw features).

| step | took |
|---|---|
{{steps}}

Files: `{out}/pretrain/` (checkpoint.pth, config.json, log.jsonl, log.txt), `{out}/weights/` (converted
backbones), `{out}/suite_random/` and `{out}/suite_moco/` (results.md/json, per-run logs and configs),
`{out}/compare/`, `{out}/curves.png` (pretraining loss with its chance level, kNN, each task's training loss
for both backbones).

The same on real data with a real checkpoint (GPUs; see README):

{{REAL}}
"""
    text = text.replace("{steps}", steps).replace("{REAL}", REAL)
    atomic_text(os.path.join(out, "README.md"), text)
    print("\n" + text)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--demo-seconds", default="600", help=f"time budget in seconds (at least {MIN_SECONDS}); a "
                                                         "smaller one pretrains less, runs fewer seeds and drops the "
                                                         "slowest dense tasks; default 600")
    p.add_argument("--out", default=os.path.join(REPO, "output", "demo"), help="output folder; default output/demo")
    args = p.parse_args(argv)
    args.demo_seconds = positive_seconds(args.demo_seconds)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise DemoError(f"--out {args.out}: exists and is not a folder; give a folder (it is created if missing)")
    if os.path.isdir(args.out) and os.listdir(args.out) and not os.path.exists(os.path.join(args.out, MARK)):
        raise DemoError(f"--out {args.out}: holds files that an earlier demo did not write (no {MARK} in it); the demo "
                        "starts afresh and would replace them. Give a new or empty folder.")
    return args


def fresh(out):
    """An earlier demo's results are removed: a new checkpoint would meet the old suite's runs, which
    run_suite skips as finished."""
    import shutil

    for sub in ("pretrain", "weights", "suite_random", "suite_moco"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, MARK), "w").close()


def steps_of(plan):
    return [("built-in data", COST["data"]), ("pretraining", plan["epochs"] * COST["epoch"]),
            ("converters", COST["convert"]), ("suite, random init", suite_cost(plan, None)),
            ("suite, MoCo checkpoint", suite_cost(plan, "checkpoint"))]


def suite_calls(plan, weights):
    """(tasks, seeds) per run_suite invocation: it takes one --seeds for all its tasks. A checkpoint's
    kNN is the same for every seed (nothing random in it), so it runs once."""
    from transfer import protocols

    known = lambda ts: [t for t in ts if t in protocols.TASKS]  # noqa: E731
    if weights and "knn" in plan["cheap"]:
        calls = [(["knn"], 1), ([t for t in plan["cheap"] if t != "knn"], plan["seeds"])]
    else:
        calls = [(plan["cheap"], plan["seeds"])]
    calls.append((plan["dense"], 1))
    return [(known(ts), s) for ts, s in calls if known(ts)]


def run(args):
    from mocodata.builtin import default_demo_root, make_demo

    out = os.path.abspath(args.out)
    plan, cuts = plan_for(args.demo_seconds)
    print(f"demo plan for {args.demo_seconds:.0f}s: {plan['epochs']} pretraining epochs, {plan['seeds']} seed(s) "
          f"for {', '.join(plan['cheap'])}, dense tasks: {', '.join(plan['dense']) or 'none'}; estimate "
          f"{cost(plan):.0f}s on an idle 2-core machine" + (f"; cut: {'; '.join(cuts)}" if cuts else ""), flush=True)
    from transfer import protocols

    absent = [t for t in plan["cheap"] + plan["dense"] if t not in protocols.TASKS]
    if absent:  # the suite refuses a task its protocol table does not list
        cuts.append(f"{', '.join(absent)} not run: not in transfer/protocols.py in this checkout")
    prog = Progress(steps_of(plan))
    suites = {"random init": os.path.join(out, "suite_random"), "MoCo": os.path.join(out, "suite_moco")}
    fresh(out)
    prog.start("built-in data")
    make_demo(default_demo_root())
    prog.end("built-in data")
    prog.start("pretraining (pretrain/run.py --preset demo)")
    ckpt = pretrain(out, plan)
    prog.end("pretraining")
    prog.start("converters (to_detectron2, to_mmseg)")
    convert(out, ckpt)
    prog.end("converters")
    late = replan(plan, args.demo_seconds - (time.time() - prog.t0), prog.pace())
    if late:
        print(f"[demo] to stay within --demo-seconds {args.demo_seconds:.0f}: {'; '.join(late)}", flush=True)
        cuts += late
        prog.steps[3:] = steps_of(plan)[3:]
    failed = 0
    for (label, d), weights in zip(suites.items(), (None, ckpt)):
        prog.start(f"suite, {label} -> {d}")
        for tasks, seeds in suite_calls(plan, weights):
            failed |= suite(d, tasks, seeds, weights)
        prog.end(f"suite, {label}")
    tab = table(compare(out, suites))
    plot(out, suites)
    report(out, plan, cuts, prog.times, tab)
    return 1 if failed else 0


def main(argv=None):
    try:
        args = parse_args(argv)
    except DemoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        return run(args)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
