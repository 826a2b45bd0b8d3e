"""Results of a suite: per-run metrics, results.json / .csv / .md with the published numbers, plots."""
import glob
import json
import math
import os


def flat_metrics(results):
    """detectron2/mmseg results -> {'bbox/AP': 57.0, ...}. detectron2 reports NaN when a model
    made no prediction at all; that is an AP of 0, and is reported as such."""
    flat = {}
    for task, metrics in results.items():
        if isinstance(metrics, dict):
            for k, v in metrics.items():
                if isinstance(v, (int, float)):
                    flat[f"{task}/{k}"] = 0.0 if math.isnan(v) else float(v)
        elif isinstance(metrics, (int, float)):
            flat[task] = float(metrics)
    return flat


# (task, metric): published MoCo v2 200-epoch number (PROTOCOLS.md section 3) and its source
PUBLISHED = {
    ("voc", "bbox/AP50"): (82.4, "moco detection/README"), ("voc", "bbox/AP"): (57.0, "moco detection/README"),
    ("voc", "bbox/AP75"): (63.6, "moco detection/README"),
    ("coco", "bbox/AP"): (40.2, "mmselfsup"), ("coco", "bbox/AP50"): (59.7, "mmselfsup"),
    ("coco", "bbox/AP75"): (44.2, "mmselfsup"), ("coco", "segm/AP"): (36.1, "mmselfsup"),
    ("coco", "segm/AP50"): (56.7, "mmselfsup"), ("coco", "segm/AP75"): (38.8, "mmselfsup"),
    ("seg", "sem_seg/mIoU"): (67.55, "mmselfsup"),
}


def summarise(runs):
    """Rows (task, metric, mean, std, n, published) over the seeds of each task."""
    import statistics

    rows = []
    for (task, metric), (ref, src) in PUBLISHED.items():
        vals = [r["metrics"][metric] for r in runs if r["task"] == task and r["status"] == "done"
                and metric in r.get("metrics", {})]
        if vals:
            std = statistics.stdev(vals) if len(vals) > 1 else 0.0
            rows.append({"task": task, "metric": metric, "mean": statistics.mean(vals), "std": std,
                         "n": len(vals), "published": ref, "published_by": src})
    return rows


def markdown(rows, runs, meta):
    lines = [f"# Transfer results ({'built-in data, quick schedules' if meta.get('builtin') else meta.get('data')})", "",
             f"weights: `{meta.get('weights') or 'random init'}`", "",
             *(["Quick schedules on the built-in synthetic data check that every step runs; a few dozen iterations "
                "on a few dozen images say nothing about a checkpoint. Use `--data` for numbers to compare.", ""]
               if meta.get("builtin") else []),
             "| task | metric | ours (mean ± std) | seeds | published MoCo v2 200ep |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['metric']} | {r['mean']:.2f} ± {r['std']:.2f} | {r['n']} | "
                     f"{r['published']:.2f} ({r['published_by']}) |")
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
        facts = ", ".join(f"{k} {fp[k]}" for k in ("norm", "input", "stem", "images_per_update", "bn_images",
                                                    "base_lr", "max_iter", "gpus") if k in fp)
        devs = fp.get("deviations") or []
        lines.append(f"- **{r['task']}** (`{r['config']}`): {facts}.")
        lines.append(f"  - {'NOT the published protocol: ' + '; '.join(devs) if devs else 'the published protocol'}")
    return lines if seen else []


def per_class_lines(runs):
    """Segmentation IoU per class (mean over seeds), one row per class."""
    import statistics

    seg = [r["metrics"] for r in runs if r["task"] == "seg" and r["status"] == "done"]
    names = list(dict.fromkeys(k for m in seg for k in m if k.startswith("sem_seg/IoU.")))  # class order
    if not names:
        return []
    lines = ["", "## Segmentation IoU per class", "", "| class | IoU |", "|---|---|"]
    for k in names:
        vals = [m[k] for m in seg if k in m]
        lines.append(f"| {k.split('IoU.', 1)[1]} | {statistics.mean(vals):.2f} |")
    return lines


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
    fig.savefig(os.path.join(out, "curves.png"), dpi=100)
    plt.close(fig)


def write(out, runs, meta):
    """Writes results.json / results.csv / results.md and curves.png; returns the Markdown table."""
    import csv

    os.makedirs(out, exist_ok=True)
    rows = summarise(runs)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"meta": meta, "summary": rows, "runs": runs}, f, indent=1)
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["task", "metric", "mean", "std", "n", "published", "published_by"])
        w.writeheader()
        w.writerows(rows)
    md = markdown(rows, runs, meta)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md)
    plot(out, runs)
    return md
