"""Results of a suite: per-run metrics, results.json / .csv / .md with the published numbers, plots."""
import glob
import json
import math
import os

from mococore.files import atomic_text, atomic_write
from transfer import protocols


def flat_metrics(results):
    """The framework's results dict -> {'bbox/AP': 41.3, ...}. A number the framework could not compute
    (detectron2's NaN when nothing was predicted or a class has no ground truth) is None, never 0."""
    flat = {}
    for group, metrics in results.items():
        if isinstance(metrics, dict):
            for k, v in metrics.items():
                if isinstance(v, (int, float)) or v is None:
                    flat[f"{group}/{k}"] = None if v is None or math.isnan(v) else float(v)
        elif isinstance(metrics, (int, float)):
            flat[group] = None if math.isnan(metrics) else float(metrics)
    return flat


def why_missing(task, metric, runs):
    """Why a metric has no number: the reason shown beside 'n/a'."""
    done = [r for r in runs if r["task"] == task and r["status"] == "done"]
    if not done:
        return "the run failed"
    if all(metric not in r["metrics"] for r in done):
        if metric.startswith(("segm/", "bbox/")):
            return f"not reported: no {'mask' if metric.startswith('segm/') else 'box'} was predicted"
        return "not computed by this configuration: see its fingerprint"
    return "could not be computed: no detections, or no ground truth for it"


def ref_dict(ref):
    return {"init": ref.init, "value": ref.value, "source": ref.source, "setup": ref.setup}


def summarise(runs, meta=None):
    """Rows (task, metric, mean, std, n, published, baselines) for every metric of every task that ran."""
    import statistics

    rows, meta = [], meta or {}
    for task in dict.fromkeys(r["task"] for r in runs):
        p = protocols.TASKS.get(task)
        refs = p.refs(meta.get("recipe"), meta.get("arch")) if p else {}
        baselines = p.baseline_refs(meta.get("arch")) if p else {}
        for metric in p.metrics if p else ():
            vals = [r["metrics"][metric] for r in runs if r["task"] == task and r["status"] == "done"
                    and r["metrics"].get(metric) is not None]
            ref = refs.get(metric)
            row = {"task": task, "metric": metric, "mean": None, "std": None, "n": len(vals),
                   "published": ref.value if ref else None, "published_by": ref.by() if ref else "",
                   "baselines": [ref_dict(b) for b in baselines.get(metric, ())]}
            if vals:
                row.update(mean=statistics.mean(vals), std=statistics.stdev(vals) if len(vals) > 1 else 0.0)
            else:
                row["missing"] = why_missing(task, metric, runs)
            rows.append(row)
    return rows


def by(b):
    """'source; setup' of a baseline dict, as Ref.by() writes a published number's."""
    return f"{b['source']}; {b['setup']}" if b["setup"] else b["source"]


def footnotes(rows):
    """{'source; setup': 1, ...}: every published source of the table numbered once, in order."""
    notes = {}
    for r in rows:
        for text in ([r["published_by"]] if r["published"] is not None else []) + [by(b) for b in r["baselines"]]:
            notes.setdefault(text, len(notes) + 1)
    return notes


def reference_cells(r, notes):
    """(published, baselines) cells of a row: each number with its footnote."""
    pub = f"{r['published']:.2f} [{notes[r['published_by']]}]" if r["published"] is not None else ""
    base = ", ".join(f"{b['init']} {b['value']:.2f} [{notes[by(b)]}]" for b in r["baselines"])
    return pub, base


def markdown(rows, runs, meta):
    lines = [f"# Transfer results ({'built-in data, quick schedules' if meta.get('builtin') else meta.get('data')})", "",
             f"weights: `{meta.get('weights') or 'random init'}`", "",
             *([f"{meta['pos_embed']}.", ""] if meta.get("pos_embed") else []),
             *(["Quick schedules on the built-in synthetic data check that every step runs; a few dozen iterations "
                "on a few dozen images say nothing about a checkpoint, and the published numbers beside them are "
                "for orientation only. Use `--data` for numbers to compare.", ""]
               if meta.get("builtin") else []),
             "| task | metric | ours (mean ± std) | seeds | published (MoCo) | baselines: random init, supervised, ... |",
             "|---|---|---|---|---|---|"]
    notes = footnotes(rows)
    for r in rows:
        ours = f"{r['mean']:.2f} ± {r['std']:.2f}" if r["mean"] is not None else f"n/a ({r['missing']})"
        pub, base = reference_cells(r, notes)
        derived = protocols.TASKS.get(r["task"]) and protocols.TASKS[r["task"]].derived
        task = f"{r['task']} (derived, not published)" if derived else r["task"]  # see ## Protocol
        lines.append(f"| {task} | {r['metric']} | {ours} | {r['n']} | {pub} | {base} |")
    if notes:
        lines += ["", "Sources of the published numbers (each with the framework and config that measured it):", "",
                  *(f"{i}. {text}" for text, i in notes.items())]
    for r in runs:
        if r["status"] != "done":
            lines.append(f"\n**{r['task']} seed {r['seed']} failed**: `{r.get('error', '').splitlines()[-1:]}`")
    return "\n".join(lines + protocol_lines(runs) + per_class_lines(runs)) + "\n"


def protocol_lines(runs):
    """Per task, the protocol facts of its first finished run and every deviation from the protocol."""
    lines, seen = ["", "## Protocol", ""], set()
    for r in runs:
        fp = r.get("fingerprint")
        if r["status"] != "done" or not fp or r["task"] in seen:
            continue
        seen.add(r["task"])
        facts = ", ".join(f"{k} {fp[k]}" for k in ("norm", "input", "stem", "layer", "recipe", "images_per_update", "bn_images", "lr",
                                                    "base_lr", "max_iter", "gpus") if k in fp)
        devs = fp.get("deviations") or []
        lines.append(f"- **{r['task']}** (`{r['config']}`): {facts}.")
        p = protocols.TASKS.get(r["task"])
        if p and p.derived:
            lines.append(f"  - NOT a published protocol: {p.derived}")
        lines.append(f"  - {'NOT the published protocol: ' + '; '.join(devs) if devs else 'the published protocol'}"
                     if devs or not (p and p.derived) else "  - no deviation from the recipe it derives from")
    return lines if seen else []


def per_class_lines(runs):
    """Segmentation IoU per class (mean over seeds), one table per segmentation task."""
    import statistics

    lines = []
    for task in dict.fromkeys(r["task"] for r in runs):
        seg = [r["metrics"] for r in runs if r["task"] == task and r["status"] == "done"]
        names = list(dict.fromkeys(k for m in seg for k in m if k.startswith("sem_seg/IoU.")))  # class order
        rows = [(k.split("IoU.", 1)[1], [m[k] for m in seg if m.get(k) is not None]) for k in names]
        rows = [f"| {name} | {statistics.mean(vals):.2f} |" for name, vals in rows if vals]  # absent classes: no IoU
        if rows:
            lines += ["", f"## {task}: IoU per class", "", "| class | IoU |", "|---|---|", *rows]
    return lines


def published_text(p):
    """'metric value; ...' of a protocol's MoCo numbers ('recipe/size: value' where they depend on it), then
    the first random-init and supervised baseline of its metrics."""
    mine = [f"{m} " + (", ".join(f"{k} {r.value}" for k, r in ref.items()) if isinstance(ref, dict) else f"{ref.value}")
            for m, ref in p.published.items()]
    for init in ("random", "supervised"):
        first = next(((m, r) for m in p.metrics for r in p.baselines.get(m, ()) if r.init == init), None)
        if first:
            mine.append(f"{init}: {first[0]} {first[1].value}" + (f" ({first[1].arch})" if first[1].arch else ""))
    return "; ".join(mine) or "none published"


def protocol_table():
    """`run_suite --task list`: every task with its backbones, groups, data, schedule and published numbers."""
    from mocodata.validate import LAYOUTS

    lines = ["| task | backbones | groups (tier) | data under --data ROOT | schedule (full protocol) | published |",
             "|---|---|---|---|---|---|"]
    for p in sorted(protocols.TASKS.values(), key=lambda p: p.tier):
        groups = "only when named (derived)" if p.derived else ", ".join(("all",) + p.groups)
        lines.append(f"| {p.name} | {', '.join(p.archs)} | {groups} ({protocols.TIERS[p.tier]}) | {LAYOUTS[p.data]} "
                     f"| {p.schedule()} | {published_text(p)} |")
    lines += ["", "Groups: `all` = every task the backbone takes (tasks marked 'only when named' join it only when "
              "named: `--task all,NAME`), cheap tiers first; "
              + "; ".join(f"`{g}` = {what}" for g, what in protocols.GROUPS.items()) + ".",
              "Sources and the baselines of every number: the report of a run, and transfer/protocols.py."]
    return "\n".join(lines)


def curves(run_dir):
    """(iterations, losses) from detectron2's metrics.json or MMEngine's scalars.json."""
    its, losses = [], []
    d2 = os.path.join(run_dir, "metrics.json")
    paths = [d2] if os.path.exists(d2) else glob.glob(os.path.join(run_dir, "*", "vis_data", "scalars.json"))
    for path in paths[-1:]:
        for line in open(path):
            rec = json.loads(line)
            loss = rec.get("total_loss", rec.get("loss"))
            if loss is not None:
                its.append(rec.get("iteration", rec.get("step", rec.get("iter"))))
                losses.append(loss)
    return its, losses


def plot(out, runs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in runs))  # one panel per task: the losses differ in scale
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for r in runs:
            its, losses = curves(r["run_dir"]) if r["task"] == task else ([], [])
            if its:
                ax.plot(its, losses, marker=".", label=f"seed {r['seed']}")
        ax.set_title(task)
        ax.set_xlabel("iteration")
        ax.set_ylabel("training loss")
        if ax.lines:
            ax.legend()
    fig.tight_layout()
    atomic_write(os.path.join(out, "curves.png"), lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def merged(out, runs):
    """This suite's runs plus those of earlier suites in the same folder (other tasks or seeds): a
    `--task seg` after a `--task all` updates the seg rows and keeps the others."""
    path = os.path.join(out, "results.json")
    earlier = json.load(open(path))["runs"] if os.path.isfile(path) else []
    new = {(r["task"], r["seed"]) for r in runs}
    return [r for r in earlier if (r["task"], r["seed"]) not in new] + runs


def write(out, runs, meta):
    """Writes results.json / results.csv / results.md and curves.png; returns the Markdown table."""
    import csv
    import io

    os.makedirs(out, exist_ok=True)
    runs = merged(out, runs)
    rows = summarise(runs, meta)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["task", "metric", "mean", "std", "n", "published", "published_by", "baselines",
                                        "missing"])
    w.writeheader()
    w.writerows([dict(r, baselines="; ".join(f"{b['init']} {b['value']} ({by(b)})" for b in r["baselines"])) for r in rows])
    md = markdown(rows, runs, meta)
    atomic_text(os.path.join(out, "results.csv"), buf.getvalue())
    atomic_text(os.path.join(out, "results.md"), md)
    atomic_text(os.path.join(out, "results.json"), json.dumps({"meta": meta, "summary": rows, "runs": runs}, indent=1))
    plot(out, runs)
    return md
