"""Results of a suite: per-run metrics, results.json / .csv / .md with the published numbers, plots."""
import math


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
