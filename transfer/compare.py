"""Is checkpoint A better than B? Per task and metric, each suite output's mean, spread, seeds and 95%
interval, and its difference from a baseline with a test that fits the metric.

    python -m transfer.compare OUT_A OUT_B [OUT_C ...] [--baseline OUT_A] [--out DIR] [--resamples 2000]

OUT_*: folders written by transfer/run_suite.py --out (results.json; TASK/seedN/ with final_metrics.json,
fingerprint.json and, where the task writes one, per_image.npz: transfer/perimage.py). The baseline is
the first folder unless --baseline names another. DIR (default output/compare) gets comparison.md,
.csv, .json and .png.

The test of each row (its `test` column says which ran):
- top-1, mAP and mIoU with per-image results on both sides: paired, on the same evaluation images.
  One seed on each side, top-1: McNemar's exact test (a binomial test of the images only one of the
  two got right). Otherwise a paired bootstrap: each resample draws the images once, for both sides
  and every seed, and recomputes the metric (AP and mIoU are not means over images: never averaged
  per image); each side's seeds are averaged, and resampled too where a side has at least 3, so
  that the training seed varies as well as the images. The images of several seeds are never
  pooled as if independent. p: twice the smaller share of resampled differences on either side of 0.
- anything else (detection AP, top-5, outputs without per-image files): Welch's t-test over seeds,
  with at least 3 seeds on each side and a spread above zero; else "not enough evidence".
- kNN: k = 20 (the published table's primary k) is tested; the other k vote with the same
  neighbours, so they are shown without a test; so are the settings a derived protocol chose on
  its holdout (sweep/lr, logreg/C).
Holm's correction over the table's tests; a difference is called where the corrected p < 0.05.
Outputs whose protocol facts differ (transfer/protocols.py), or whose evaluation images differ,
are refused by name: their numbers do not pair.
"""
import argparse
import csv
import io
import json
import math
import os
import statistics
import sys
import time
import zlib

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mococore.errors import UserError  # noqa: E402
from mococore.files import atomic_text, atomic_write  # noqa: E402
from transfer import BadInput, perimage, protocols, report  # noqa: E402

ALPHA = 0.05
PRIMARY = {"knn": "knn/top1_k20"}  # the one metric of a task tested where its metrics share one computation
# what a derived protocol chose on its holdout (sweep/lr, logreg/log10_C): settings, not results
CHOICES = ("lr", "C", "log10_C", "holdout_top1")


def untested(task, metric):
    """Why a metric is shown without a test; None when it is tested."""
    if metric.rsplit("/", 1)[-1] in CHOICES:
        return "not tested: a setting the protocol chose on its holdout, not a result"
    if PRIMARY.get(task, metric) != metric:
        return f"not tested: {PRIMARY[task]} is the task's one test (its metrics share the same neighbours)"
    return None
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- inputs
def load(path):
    """{'path', 'meta', 'runs': {task: [run]}} of a run_suite output; run = {seed, metrics, fingerprint, dir}."""
    if not os.path.isdir(path):
        raise BadInput(f"{path}: no such folder; give folders written by transfer/run_suite.py --out")
    res = os.path.join(path, "results.json")
    if not os.path.isfile(res):
        raise BadInput(f"{path}: no results.json; give a folder written by transfer/run_suite.py --out "
                       "(it writes results.json when its runs end; rerun the same command to finish one)")
    try:
        data = json.load(open(res))
        runs = [r for r in data["runs"] if r["status"] == "done"]
        for r in runs:
            r["task"], r["seed"], r["metrics"]  # noqa: B018  (the keys every run has)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BadInput(f"{res}: not a run_suite results file ({type(e).__name__}: {e}); rerun the suite's "
                       "command with the same --out to rewrite it") from None
    if not runs:
        raise BadInput(f"{res}: no finished run (every run failed or none ran); nothing to compare")
    out = {"path": path, "meta": data.get("meta") or {}, "runs": {}}
    for r in sorted(runs, key=lambda r: r["seed"]):
        run_dir = os.path.join(path, r["task"], f"seed{r['seed']}")  # the folder as it is now (it may have moved)
        out["runs"].setdefault(r["task"], []).append(dict(seed=r["seed"], metrics=r["metrics"],
                                                          fingerprint=r.get("fingerprint"), dir=run_dir))
    return out


def names_of(paths):
    """Short, distinct labels: the folder names, else the paths as given, numbered if repeated."""
    base = [os.path.basename(os.path.normpath(p)) or p for p in paths]
    names = base if len(set(base)) == len(base) else list(paths)
    seen = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


def per_image(run):
    """The run's per-image arrays (read once), or None."""
    if "per_image" not in run:
        try:
            run["per_image"] = perimage.read(run["dir"])
        except ValueError as e:
            raise BadInput(f"{e}; rerun that run (delete its folder) or remove the file") from None
    return run["per_image"]


def fact_keys(task, fingerprints):
    """The protocol facts a task's runs must share: the protocol table's (per task, or per recipe)."""
    p = protocols.TASKS[task]
    if p.facts:
        return list(p.facts)
    keys = ["recipe"]
    for fp in fingerprints:
        keys += [k for k in protocols.RECIPES.get(fp.get("recipe"), {}) if k not in keys]
    return keys


def check_facts(task, entries):
    """BadInput naming the facts where two runs of a task differ (not seed, weights or versions)."""
    for name, run in entries:
        if not run["fingerprint"]:
            raise BadInput(f"{run['dir']}: no fingerprint recorded for {task} seed {run['seed']} ({name}); its "
                           "protocol cannot be checked: rerun it with this version of run_suite")
    keys = fact_keys(task, [r["fingerprint"] for _, r in entries])
    (name0, run0), *rest = entries
    for name, run in rest:
        diff = [f"{k} {run0['fingerprint'].get(k)} vs {run['fingerprint'].get(k)}" for k in keys
                if run0["fingerprint"].get(k) != run["fingerprint"].get(k)]
        if diff:
            more = f" (and {len(diff) - 3} more)" if len(diff) > 3 else ""
            raise BadInput(f"task {task}: the protocol facts of {name} (seed {run['seed']}) differ from {name0} "
                           f"(seed {run0['seed']}): {'; '.join(diff[:3])}{more}. Numbers measured under different "
                           "protocols do not compare: run both with the same variant, recipe and data")


def check_images(task, entries):
    """BadInput naming the first image where two runs' evaluation sets differ (pairing needs the same)."""
    have = [(name, run, per_image(run)) for name, run in entries if per_image(run) is not None]
    if len(have) < 2:
        return
    name0, run0, data0 = have[0]
    for name, run, data in have[1:]:
        a, b = data0["ids"], data["ids"]
        if len(a) == len(b) and (a == b).all():
            continue
        i = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        first = (f"the first that differs is image {i}: '{a[i] if i < len(a) else '(none)'}' in {name0} "
                 f"vs '{b[i] if i < len(b) else '(none)'}' in {name}")
        raise BadInput(f"task {task}: {name} (seed {run['seed']}) and {name0} (seed {run0['seed']}) were evaluated on "
                       f"different images ({len(b)} vs {len(a)}; {first}); a paired comparison needs the same "
                       f"evaluation set: rerun both on the same data")


# ---------------------------------------------------------------- statistics
def spread(vals):
    return statistics.stdev(vals) if len(vals) > 1 else 0.0


def seed_interval(vals):
    """95% t-interval of the mean over seeds; None from fewer than 2 seeds or a spread of zero."""
    from scipy import stats

    if len(vals) < 2 or spread(vals) == 0:
        return None
    sem = spread(vals) / math.sqrt(len(vals))
    return tuple(stats.t.interval(0.95, len(vals) - 1, loc=statistics.mean(vals), scale=sem))


def bootstrap(metric, sides, resamples, seed, chunk=200):
    """[(B,) statistic of each side]: the images drawn once per resample for every side and seed; a
    side's seeds averaged, and resampled with replacement where it has at least 3."""
    key = zlib.crc32(metric.encode())
    draws = np.random.default_rng([seed, key, 0])
    seed_rngs = [np.random.default_rng([seed, key, 1 + k]) for k in range(len(sides))]
    n = len(sides[0][0]["ids"])
    out = [[] for _ in sides]
    for start in range(0, resamples, chunk):
        W = perimage.draw(n, min(chunk, resamples - start), draws)
        for k, runs in enumerate(sides):
            M = np.stack([perimage.metric(metric, data, W) for data in runs], 1)  # (b, seeds)
            if len(runs) >= 3:
                M = np.take_along_axis(M, seed_rngs[k].integers(0, len(runs), M.shape), 1)
            out[k].append(M.mean(1))
    return [np.concatenate(o) for o in out]


def bootstrap_p(d):
    """Two-sided p of 'no difference' from resampled differences: twice the smaller tail at 0."""
    below, above = (d <= 0).sum(), (d >= 0).sum()
    return min(1.0, 2 * (min(below, above) + 1) / (len(d) + 1))


def mcnemar(metric, base, other):
    """McNemar's exact test on top-1 correctness of the same images (one run each): binomial test of
    b = other right & base wrong among the b + c discordant images, p = 0.5."""
    from scipy.stats import binomtest

    right_o = other[metric] == other["labels"]
    right_b = base[metric] == base["labels"]
    b, c = int((right_o & ~right_b).sum()), int((~right_o & right_b).sum())
    return (binomtest(b, b + c, 0.5).pvalue if b + c else 1.0), b, c


def percentile(x):
    lo, hi = np.nanpercentile(x, [2.5, 97.5])
    return float(lo), float(hi)


def holm(ps):
    """Holm's step-down adjusted p-values (Holm 1979), in the given order."""
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    adj, running = [None] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        adj[i] = running
    return adj


def test_metric(task, metric, base_runs, other_runs, resamples, seed):
    """One row's statistics: both sides' summaries, the difference, its interval and test."""
    vals = [[r["metrics"][metric] for r in runs if r["metrics"].get(metric) is not None]
            for runs in (base_runs, other_runs)]
    row = {"n_base": len(vals[0]), "n": len(vals[1])}
    for key, v in (("base", vals[0]), ("", vals[1])):
        pre = f"{key}_" if key else ""
        row[f"{pre}mean"] = statistics.mean(v) if v else None
        row[f"{pre}sd"] = spread(v) if v else None
        row[f"{pre}interval"], row[f"{pre}interval_from"] = seed_interval(v), "seeds" if seed_interval(v) else None
    if not vals[0] or not vals[1]:
        side = "baseline" if not vals[0] else "checkpoint"
        return dict(row, test=None, reason=f"no number for {metric} on the {side} side")
    row["difference"] = row["mean"] - row["base_mean"]
    why_not = untested(task, metric)
    data = [[per_image(r) for r in runs] for runs in (base_runs, other_runs)]
    paired = (perimage.kind(metric) is not None and len(vals[0]) == len(base_runs) and len(vals[1]) == len(other_runs)
              and all(d is not None and metric in d for side in data for d in side))
    if paired:
        check_recomputed(metric, base_runs + other_runs)
        t0 = time.time()
        stat_b, stat_o = bootstrap(metric, data, resamples, seed)
        d = stat_o - stat_b
        n_img = len(data[0][0]["ids"])
        fixed = " vs ".join(f"{len(s)} {'resampled' if len(s) >= 3 else 'fixed'}" for s in data[::-1])
        row.update(base_interval=percentile(stat_b), base_interval_from="images", interval=percentile(stat_o),
                   interval_from="images", difference_interval=percentile(d), seconds=time.time() - t0)
        if why_not:
            return dict(row, test=None, reason=why_not)
        if perimage.kind(metric) == "top1" and len(data[0]) == len(data[1]) == 1:
            p, b, c = mcnemar(metric, data[0][0], data[1][0])
            return dict(row, test=f"McNemar exact, {n_img} images ({b} vs {c} discordant), 1 seed each", p=p)
        return dict(row, test=f"paired bootstrap, {n_img} images x {resamples} (seeds {fixed})", p=bootstrap_p(d))
    if why_not:
        return dict(row, test=None, reason=why_not)
    return dict(row, **welch(*vals, metric))


def welch(base, other, metric):
    """Welch's t-test over seeds, where it can decide; else the reason it cannot."""
    from scipy.stats import ttest_ind

    why = " (no per-image results for it)" if perimage.kind(metric) else ""
    if len(base) < 3 or len(other) < 3:
        return {"test": None, "reason": f"not enough evidence: {len(other)} vs {len(base)} seeds; Welch's test over "
                                        f"seeds needs at least 3 on each side{why}"}
    if spread(base) == 0 and spread(other) == 0:
        return {"test": None, "reason": "not enough evidence: zero spread over the seeds of both sides"}
    res = ttest_ind(other, base, equal_var=False)
    ci = res.confidence_interval(0.95)
    return {"test": f"Welch's t-test over seeds ({len(other)} vs {len(base)})", "p": float(res.pvalue),
            "difference_interval": (float(ci.low), float(ci.high))}


def check_recomputed(metric, runs):
    """A per-image file that does not give its run's own number belongs to another evaluation."""
    for r in runs:
        again = float(perimage.metric(metric, per_image(r), np.ones((1, len(per_image(r)["ids"]))))[0])
        if not abs(again - r["metrics"][metric]) <= 0.01:
            raise BadInput(f"{r['dir']}/{perimage.FILE}: gives {again:.3f} for {metric}, its final_metrics.json "
                           f"{r['metrics'][metric]:.3f}; the two files are of different evaluations: rerun it")


# ---------------------------------------------------------------- the comparison
def metrics_of(task, outputs):
    """The task's metrics in the protocol table's order, those that some output reports."""
    reported = {m for o in outputs for r in o["runs"].get(task, []) for m in r["metrics"]}
    return [m for m in protocols.TASKS[task].metrics if m in reported]


def compare(paths, baseline, resamples=2000, seed=0):
    """(rows, summaries, notes) for every task the baseline and another output ran."""
    outputs = [load(p) for p in paths]
    names = names_of(paths)
    for o, n in zip(outputs, names):
        o["name"] = n
    base = outputs[baseline]
    others = [o for i, o in enumerate(outputs) if i != baseline]
    notes = []
    tasks = [t for t in dict.fromkeys(t for o in outputs for t in o["runs"])]
    unknown = [t for t in tasks if t not in protocols.TASKS]
    if unknown:
        notes.append(f"not compared: {', '.join(unknown)} (not tasks of transfer/protocols.py)")
    tasks = [t for t in tasks if t in protocols.TASKS]
    for t in tasks:
        missing = [o["name"] for o in outputs if t not in o["runs"]]
        if missing:
            notes.append(f"{t}: no finished run in {', '.join(missing)}")
    common = [t for t in tasks if t in base["runs"] and any(t in o["runs"] for o in others)]
    if not common:
        raise BadInput(f"no task has finished runs both in the baseline {base['name']} and in another output "
                       f"(baseline: {', '.join(base['runs'])}); nothing to compare")
    rows = []
    for task in common:
        entries = [(o["name"], r) for o in [base] + others for r in o["runs"].get(task, [])]
        check_facts(task, entries)
        check_images(task, entries)
        for metric in metrics_of(task, [base] + others):
            for o in others:
                if task in o["runs"]:
                    row = test_metric(task, metric, base["runs"][task], o["runs"][task], resamples, seed)
                    rows.append({"task": task, "metric": metric, "baseline": base["name"], "checkpoint": o["name"],
                                 **row})
                    add_published(rows[-1], o["meta"])
    tested = [r for r in rows if r.get("p") is not None]
    for r, adj in zip(tested, holm([r["p"] for r in tested])):
        r["p_holm"] = adj
    for r in rows:
        r["verdict"] = verdict(r)
    return rows, outputs, notes


def verdict(r):
    if r.get("p") is None:
        return r["reason"]
    if r["p_holm"] < ALPHA:
        return f"{r['checkpoint']} {'higher' if r['difference'] > 0 else 'lower'}"
    return "no difference found"


# ---------------------------------------------------------------- outputs
def fmt(x, nd=2):
    return "" if x is None else f"{x:.{nd}f}"


def cell(mean, sd, n, interval):
    if mean is None:
        return "n/a"
    ci = f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else ""
    return f"{mean:.2f} ± {sd:.2f} (n={n}){ci}"


def add_published(row, meta):
    """The row's published numbers, for the checkpoint's recipe and architecture, as report.summarise
    gives them: MoCo's (`published`, `published_by`) and the baselines' (random init, supervised, ...)."""
    p = protocols.TASKS[row["task"]]
    ref = p.refs(meta.get("recipe"), meta.get("arch")).get(row["metric"])
    row.update(published=ref.value if ref else None, published_by=ref.by() if ref else "",
               baselines=[report.ref_dict(b) for b in p.baseline_refs(meta.get("arch")).get(row["metric"], ())])


def markdown(rows, outputs, notes, args, seconds):
    base = next(r["baseline"] for r in rows)
    lines = [f"# Comparison against {base}", "",
             *[f"- {o['name']}: `{o['path']}`, weights `{o['meta'].get('weights') or 'random init'}`"
               for o in outputs], "",
             "| task | metric | baseline | checkpoint | value | difference [95% interval] | test | p (Holm) | verdict "
             "| published (MoCo) | published baselines |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    sources = report.footnotes(rows)
    for r in rows:
        pub, baselines = report.reference_cells(r, sources)
        diff = ("" if r.get("difference") is None else f"{r['difference']:+.2f}"
                + (f" [{r['difference_interval'][0]:+.2f}, {r['difference_interval'][1]:+.2f}]"
                   if r.get("difference_interval") else ""))
        p = f"{r['p']:.3g} ({r['p_holm']:.3g})" if r.get("p") is not None else ""
        base_cell = cell(r["base_mean"], r["base_sd"], r["n_base"], r["base_interval"])
        lines.append(f"| {r['task']} | {r['metric']} | {base_cell} "
                     f"| {r['checkpoint']} | {cell(r['mean'], r['sd'], r['n'], r['interval'])} | {diff} "
                     f"| {r.get('test') or ''} | {p} | {r['verdict']} | {pub} | {baselines} |")
    m = sum(r.get("p") is not None for r in rows)
    lines += ["", f"Values: mean ± standard deviation over seeds (n seeds) [95% interval: over {args.resamples} "
              "bootstrap resamples of the evaluation images where per-image results exist, else the t-interval "
              "over seeds]. Difference: checkpoint minus baseline, its 95% interval per row (not corrected for "
              "the table's other tests).",
              f"Tests: McNemar's exact test (top-1, one seed each), a paired bootstrap over the same evaluation "
              f"images (top-1 with several seeds, mAP, mIoU: the images drawn once for both sides and every seed; "
              f"seeds averaged, and resampled where a side has 3 or more), Welch's t-test over seeds elsewhere (at "
              f"least 3 seeds a side). Holm's correction over the table's {m} tests: a difference is called where the "
              f"corrected p < {ALPHA}; 'no difference found' is not evidence of equality. kNN: only k = 20 is tested.",
              f"Computed in {seconds:.1f} s. Published numbers are for orientation: they have no per-image results "
              "and are never tested against."]
    if sources:
        lines += ["", "Sources of the published numbers (each with the framework and config that measured it):", "",
                  *(f"{i}. {text}" for text, i in sources.items())]
    boot = sum("bootstrap" in (r.get("test") or "") for r in rows)
    if boot and 2 / (args.resamples + 1) * m >= ALPHA:  # the smallest p a bootstrap row can reach, after Holm
        lines.append(f"With {m} tests, no bootstrap row can reach a corrected p < {ALPHA} at {args.resamples} "
                     f"resamples (its smallest p is 2/{args.resamples + 1}): rerun with --resamples {40 * m} or more.")
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


CSV_FIELDS = ["task", "metric", "baseline", "checkpoint", "base_mean", "base_sd", "n_base", "base_interval_low",
              "base_interval_high", "mean", "sd", "n", "interval_low", "interval_high", "interval_from", "difference",
              "difference_low", "difference_high", "test", "p", "p_holm", "verdict"]


def csv_text(rows):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        flat = dict(r)
        for key, (lo, hi) in (("base_interval", ("base_interval_low", "base_interval_high")),
                              ("interval", ("interval_low", "interval_high")),
                              ("difference_interval", ("difference_low", "difference_high"))):
            flat[lo], flat[hi] = r.get(key) or (None, None)
        w.writerow(flat)
    return buf.getvalue()


REF_STYLES = {"MoCo": ("k", "dashed"), "random": ("tab:red", "dotted"), "supervised": ("tab:green", "dashdot")}


def plot(path, rows, outputs):
    """One panel per task: each checkpoint's value with its 95% interval per metric, published numbers as dashes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    cols = min(3, len(tasks))
    fig, axes = plt.subplots(math.ceil(len(tasks) / cols), cols, figsize=(5 * cols, 3.6 * math.ceil(len(tasks) / cols)),
                             squeeze=False)
    names = list(dict.fromkeys([rows[0]["baseline"]] + [r["checkpoint"] for r in rows]))
    for ax, task in zip(axes.flat, tasks):
        metrics = list(dict.fromkeys(r["metric"] for r in rows if r["task"] == task))
        for j, name in enumerate(names):
            xs, ys, err = [], [], []
            for i, metric in enumerate(metrics):
                r = next((r for r in rows if r["task"] == task and r["metric"] == metric
                          and name in (r["baseline"], r["checkpoint"])), None)
                pre = "base_" if r and r["baseline"] == name else ""
                if r is None or r[f"{pre}mean"] is None:
                    continue
                mean, ci = r[f"{pre}mean"], r[f"{pre}interval"] or (r[f"{pre}mean"],) * 2
                xs.append(i + (j - (len(names) - 1) / 2) * 0.15)
                ys.append(mean)
                err.append((mean - ci[0], ci[1] - mean))
            if xs:
                ax.errorbar(xs, ys, yerr=np.array(err).T, fmt="o", capsize=3, label=name)
        for i, metric in enumerate(metrics):
            r = next(r for r in rows if r["task"] == task and r["metric"] == metric)
            refs = [("MoCo", r["published"])] * (r["published"] is not None)
            refs += [(b["init"], b["value"]) for b in r["baselines"]]
            for init, value in refs:
                style = REF_STYLES.get(init, ("tab:gray", "dashed"))
                shown = any(c.get_label() == f"published: {init}" for c in ax.collections)
                ax.hlines(value, i - 0.35, i + 0.35, colors=style[0], linestyles=style[1],
                          label=None if shown else f"published: {init}")
        ax.set_xticks(range(len(metrics)), [m.split("/", 1)[-1] for m in metrics], rotation=45, ha="right", fontsize=8)
        ax.set_title(task)
        ax.set_ylabel("%")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("outputs", nargs="+", help="run_suite output folders (--out of each)")
    p.add_argument("--baseline", default=None, help="the output the others are compared with (default: the first)")
    p.add_argument("--out", default=os.path.join(REPO, "output", "compare"),
                   help="folder for comparison.{md,csv,json,png}")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples of the evaluation images")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap draws")
    return p.parse_args(argv)


def check_args(args):
    if len(args.outputs) < 2:
        raise BadInput(f"{args.outputs[0]}: one output only; give at least two run_suite output folders to compare")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise BadInput(f"--out {args.out}: a file, not a folder; give a folder for the comparison")
    if args.resamples < 200:
        raise BadInput(f"--resamples {args.resamples}: use at least 200 (a 95% interval rests on the 2.5% tails)")
    if args.baseline is None:
        return 0
    real = [os.path.realpath(p) for p in args.outputs]
    if os.path.realpath(args.baseline) not in real:
        raise BadInput(f"--baseline {args.baseline}: not one of the outputs given ({', '.join(args.outputs)}); "
                       "name one of them, or leave --baseline out to compare with the first")
    return real.index(os.path.realpath(args.baseline))


def main(argv=None):
    args = parse_args(argv)
    t0 = time.time()
    try:
        baseline = check_args(args)
        rows, outputs, notes = compare(args.outputs, baseline, args.resamples, args.seed)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    seconds = time.time() - t0
    md = markdown(rows, outputs, notes, args, seconds)
    stem = os.path.join(args.out, "comparison")
    try:  # each file whole or not at all (mococore.files)
        plot(stem + ".png", rows, outputs)
        atomic_text(stem + ".csv", csv_text(rows))
        atomic_text(stem + ".json", json.dumps({
            "inputs": [{"name": o["name"], "path": o["path"], "meta": o["meta"]} for o in outputs],
            "baseline": outputs[baseline]["name"], "resamples": args.resamples, "seed": args.seed, "alpha": ALPHA,
            "correction": f"Holm over {sum(r.get('p') is not None for r in rows)} tests", "seconds": seconds,
            "notes": notes, "rows": rows}, indent=1, default=float))
        atomic_text(stem + ".md", md)
    except UserError as e:
        print(f"error: --out {args.out}: {e}", file=sys.stderr)
        return 2
    print(md)
    print(f"wrote {stem}.md, .csv, .json, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
