"""Detection evaluation at real size: the project's evaluators against the libraries and
detectron2's evaluators, time and peak memory, as ratios, in one run (a benchmark, not a test).

    python tools/bench_eval.py            # COCO val and VOC07 test sizes, 3 interleaved rounds (~20 min)
    python tools/bench_eval.py --quick    # about a minute: 500 COCO images, 1,000 VOC images, 1 round

COCO: 5,000 images, ~36k objects (polygons, 1% crowd regions, 80 classes), 100 detections per
image with their masks (RLE), as detectron2's process() leaves them. bbox, then segm, by:
  ours               transfer.detection.coco_eval.FastCOCOEvaluator(tasks=(task,)).evaluate()
  faster-coco-eval   the library called directly: COCO.loadRes + COCOeval_faster on the result list
                     (for segm, on copies of the results without their box, as detectron2 asks)
  pycocotools        the official API called directly, the same way
  detectron2 native  detectron2's COCOEvaluator(use_fast_impl=True), where its native ops are built
VOC: 4,952 images, ~15k objects (20% difficult), 30 detections per image (--voc-dets; there
detectron2's evaluator takes the ~33 s per evaluation reported in issue 16): evaluate() of ours
(transfer.detection.voc_eval.FastPascalVOCDetectionEvaluator) and of detectron2's
PascalVOCDetectionEvaluator, after the same process() calls.

The data are generated once, deterministically, under output/bench/. Each measurement runs in a
fresh process, its imports and inputs loaded before the clock starts; the evaluators are built
before it too (they load the ground truth, as the direct calls do before theirs), and no
output_dir is set (the files it asks for cost the same in both evaluators). wall: elapsed seconds; cpu: the
process's user+system seconds; peak MB: the highest resident size during the measurement above
the resident size at its start (Linux VmHWM, reset first). Rounds interleave the methods in a
rotating order; min and median are over rounds. Every method's summary numbers are compared with
the reference's (COCO: pycocotools' 12 numbers and per-category AP; VOC: detectron2's AP, AP50,
AP75): the largest difference is printed.
"""
import argparse
import contextlib
import json
import os
import pickle
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from bench_data import COCO_CAT_IDS, VOC_CLASSES, make_coco, make_voc  # noqa: E402
from bench_harness import low_mid, machine, measure, schedule  # noqa: E402

COCO_METHODS = {"pycocotools": "pycocotools", "faster": "faster-coco-eval", "ours": "ours (FastCOCOEvaluator)",
                "d2native": "detectron2 native"}
VOC_METHODS = {"d2": "detectron2 PascalVOCDetectionEvaluator", "ours": "ours (FastPascalVOCDetectionEvaluator)"}


# ---------------------------------------------------------------------------------------------
# one measurement (in a fresh process)

def per_category_ap(precision):
    """detectron2's per-category AP from COCOeval.eval["precision"] (x100, nan where undefined)."""
    out = []
    for k in range(precision.shape[2]):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        out.append(float(np.mean(p) * 100) if p.size else float("nan"))
    return out


def native_available():
    try:
        from detectron2 import _C

        _C.COCOevalAccumulate  # noqa: B018 (raises where the native ops were not built)
        return True
    except Exception:
        return False


def register_coco(gt_path):
    from detectron2.data import MetadataCatalog

    meta = MetadataCatalog.get("bench_coco")
    meta.set(json_file=gt_path, thing_classes=[f"class{c}" for c in COCO_CAT_IDS],
             thing_dataset_id_to_contiguous_id={c: i for i, c in enumerate(COCO_CAT_IDS)})
    return "bench_coco"


def coco_worker(method, task, gt_path, pred_path):
    with open(pred_path, "rb") as f:
        predictions = pickle.load(f)
    if method in ("ours", "d2native"):
        from detectron2.evaluation import COCOEvaluator, coco_evaluation

        from transfer.detection.coco_eval import FastCOCOEvaluator

        name = register_coco(gt_path)
        with contextlib.redirect_stdout(None):
            ev = (FastCOCOEvaluator(name, tasks=(task,)) if method == "ours"
                  else COCOEvaluator(name, tasks=(task,), use_fast_impl=True))
        ev.reset()
        ev._predictions = predictions  # as process() leaves them
        captured = {}
        if method == "d2native":  # its 12 numbers
            inner = coco_evaluation._evaluate_predictions_on_coco

            def capture(*a, **k):
                captured["eval"] = inner(*a, **k)
                return captured["eval"]
            coco_evaluation._evaluate_predictions_on_coco = capture
        with contextlib.redirect_stdout(None):
            res, wall, cpu, peak = measure(ev.evaluate)
        stats = ev.coco_stats[task] if method == "ours" else list(captured["eval"].stats)
        per_cat = [res[task]["AP-" + c] for c in ev._metadata.thing_classes]
        return {"wall": wall, "cpu": cpu, "peak_mb": peak / 2 ** 20, "numbers": [float(s) for s in stats] + per_cat}

    to_dataset = dict(enumerate(COCO_CAT_IDS))
    results = [r for p in predictions for r in p["instances"]]
    for r in results:  # in place: no freed memory for the measurement to re-use
        r["category_id"] = to_dataset[r["category_id"]]
    if method == "faster":
        from faster_coco_eval import COCO, COCOeval_faster as COCOeval
    else:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(None):
        gt = COCO(gt_path)

    def run():
        rs = results if task == "bbox" else [{k: v for k, v in r.items() if k != "bbox"} for r in results]
        ev = COCOeval(gt, gt.loadRes(rs), task)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        return ev
    with contextlib.redirect_stdout(None):
        ev, wall, cpu, peak = measure(run)
    return {"wall": wall, "cpu": cpu, "peak_mb": peak / 2 ** 20,
            "numbers": [float(s) for s in ev.stats] + per_category_ap(ev.eval["precision"])}


def voc_worker(method, base, pred_path):
    import torch
    from detectron2.data import MetadataCatalog
    from detectron2.evaluation import PascalVOCDetectionEvaluator
    from detectron2.structures import Boxes, Instances

    from transfer.detection.voc_eval import FastPascalVOCDetectionEvaluator

    MetadataCatalog.get("bench_voc").set(thing_classes=list(VOC_CLASSES), dirname=base, year=2007, split="test")
    ev = (FastPascalVOCDetectionEvaluator if method == "ours" else PascalVOCDetectionEvaluator)("bench_voc")
    ev.reset()
    with open(pred_path, "rb") as f:
        predictions = pickle.load(f)
    for name, boxes, scores, classes in predictions:
        inst = Instances((1, 1), pred_boxes=Boxes(torch.from_numpy(boxes)), scores=torch.from_numpy(scores),
                         pred_classes=torch.from_numpy(classes))
        ev.process([{"image_id": name}], [{"instances": inst}])
    del predictions
    res, wall, cpu, peak = measure(ev.evaluate)
    return {"wall": wall, "cpu": cpu, "peak_mb": peak / 2 ** 20,
            "numbers": [float(res["bbox"][k]) for k in ("AP", "AP50", "AP75")]}


def worker(spec):
    import logging

    logging.disable(logging.WARNING)
    if spec["what"] == "coco":
        out = coco_worker(spec["method"], spec["task"], spec["gt"], spec["pred"])
    else:
        out = voc_worker(spec["method"], spec["base"], spec["pred"])
    print("RESULT " + json.dumps(out))


# ---------------------------------------------------------------------------------------------
# the rounds and the table

def run_one(spec):
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                          capture_output=True, text=True, cwd=REPO)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"measurement {spec} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def largest_difference(a, b):
    if len(a) != len(b) or any(np.isnan(x) != np.isnan(y) for x, y in zip(a, b)):
        return float("inf")
    return max((abs(x - y) for x, y in zip(a, b) if not np.isnan(x)), default=0.0)


def stat(runs, key, how):
    return low_mid([r[key] for r in runs])[how == "median"]


def print_table(title, rows, reference, labels, vs):
    """rows: {(task, method): [run, ...]}; `vs`: the method the ratio columns divide by."""
    print(title)
    print(f"  {'task':4s} {'method':40s} {'wall':>15s} {'cpu':>15s} {'peak MB':>8s}   "
          f"{'x ' + labels[vs] + ': wall, cpu, peak':>40s}   max |diff|")
    print(f"  {'':4s} {'':40s} {'min':>7s} {'median':>7s} {'min':>7s} {'median':>7s} {'median':>8s}   "
          f"{'min':>7s} {'median':>7s} {'min':>7s} {'median':>7s} {'median':>7s}")
    for (task, method), runs in rows.items():
        base = rows[task, vs]
        t = [stat(runs, k, h) for k in ("wall", "cpu") for h in ("min", "median")]
        peak = stat(runs, "peak_mb", "median")
        r = [stat(runs, k, h) / stat(base, k, h) for k, h in (("wall", "min"), ("wall", "median"), ("cpu", "min"),
                                                              ("cpu", "median"), ("peak_mb", "median"))]
        diff = largest_difference(runs[0]["numbers"], rows[task, reference][0]["numbers"])
        print(f"  {task:4s} {labels[method]:40s} {t[0]:7.2f} {t[1]:7.2f} {t[2]:7.2f} {t[3]:7.2f} {peak:8.0f}   "
              + " ".join(f"{x:6.2f}x" for x in r) + f"   {diff:.1e}")
    print()


def print_summary(rows, ours, labels, within, faster_than):
    """One line per task: ours against `within` (ratios, ours / it) and how much faster than the others."""
    for task in dict.fromkeys(t for t, _ in rows):
        o = rows[task, ours]
        parts = []
        if within and (task, within) in rows:
            w = rows[task, within]
            parts.append(f"ours / {labels[within]}: wall {stat(o, 'wall', 'min') / stat(w, 'wall', 'min'):.2f}x (min) "
                         f"{stat(o, 'wall', 'median') / stat(w, 'wall', 'median'):.2f}x (median), "
                         f"cpu {stat(o, 'cpu', 'min') / stat(w, 'cpu', 'min'):.2f}x (min), "
                         f"peak memory {stat(o, 'peak_mb', 'median') / stat(w, 'peak_mb', 'median'):.2f}x")
        for m in faster_than:
            if (task, m) in rows:
                x = rows[task, m]
                parts.append(f"{stat(x, 'wall', 'min') / stat(o, 'wall', 'min'):.1f}x (min) "
                             f"{stat(x, 'wall', 'median') / stat(o, 'wall', 'median'):.1f}x (median) "
                             f"faster than {labels[m]}")
        print(f"  {task}: " + "; ".join(parts))
    print()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="about a minute: fewer images, one round")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3, --quick 1)")
    p.add_argument("--coco-images", type=int, help="default 5000 (--quick 500)")
    p.add_argument("--voc-images", type=int, help="default 4952 (--quick 1000)")
    p.add_argument("--coco-dets", type=int, default=100, help="COCO detections per image (default 100)")
    p.add_argument("--voc-dets", type=int, default=30, help="VOC detections per image (default 30)")
    p.add_argument("--only", choices=("coco", "voc"), help="one of the two benchmarks")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    rounds = args.rounds or (1 if args.quick else 3)
    n_coco = args.coco_images or (500 if args.quick else 5000)
    n_voc = args.voc_images or (1000 if args.quick else 4952)
    out = os.path.join(REPO, "output", "bench")

    specs = []
    if args.only != "voc":
        t0 = time.perf_counter()
        gt_path, pred_path = make_coco(os.path.join(out, f"coco_{n_coco}x{args.coco_dets}"), n_coco, args.coco_dets)
        with open(gt_path) as f:
            n_obj = len(json.load(f)["annotations"])
        print(f"COCO data: {n_coco} images, {n_obj} objects, {n_coco * args.coco_dets} detections "
              f"(output/bench, {time.perf_counter() - t0:.0f} s)")
        methods = list(COCO_METHODS) if native_available() else [m for m in COCO_METHODS if m != "d2native"]
        specs += [{"what": "coco", "method": m, "task": t, "gt": gt_path, "pred": pred_path}
                  for t in ("bbox", "segm") for m in methods]
    if args.only != "coco":
        t0 = time.perf_counter()
        base, vpred = make_voc(os.path.join(out, f"voc_{n_voc}x{args.voc_dets}"), n_voc, args.voc_dets)
        print(f"VOC data: {n_voc} images, {n_voc * args.voc_dets} detections "
              f"(output/bench, {time.perf_counter() - t0:.0f} s)")
        specs += [{"what": "voc", "method": m, "task": "bbox", "base": base, "pred": vpred} for m in VOC_METHODS]

    results = {}
    for r, order in enumerate(schedule(range(len(specs)), rounds, rotate=True)):
        t0 = time.perf_counter()
        for spec in (specs[i] for i in order):
            results.setdefault((spec["what"], spec["task"], spec["method"]), []).append(run_one(spec))
        print(f"round {r + 1}/{rounds}: {time.perf_counter() - t0:.0f} s", flush=True)
    print()
    print(f"seconds (wall: elapsed, cpu: user+system of the process), peak MB above the inputs; {rounds} round(s); "
          f"{machine()}")
    print()
    coco = {(t, m): v for (w, t, m), v in results.items() if w == "coco"}
    if coco:
        coco = dict(sorted(coco.items(), key=lambda kv: (kv[0][0], list(COCO_METHODS).index(kv[0][1]))))
        print_table(f"COCO evaluation, {n_coco} images x {args.coco_dets} detections "
                    "(max |diff|: the 12 numbers and per-category AP against pycocotools)",
                    coco, "pycocotools", COCO_METHODS, "faster")
        print_summary(coco, "ours", COCO_METHODS, "faster", ["pycocotools", "d2native"])
    voc = {(t, m): v for (w, t, m), v in results.items() if w == "voc"}
    if voc:
        print_table(f"VOC07 evaluation, {n_voc} images x {args.voc_dets} detections "
                    "(max |diff|: AP, AP50, AP75 against detectron2)", voc, "d2", VOC_METHODS, "d2")
        print_summary(voc, "ours", VOC_METHODS, None, ["d2"])


if __name__ == "__main__":
    main()
