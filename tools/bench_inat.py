"""The iNaturalist 2018 image lists at the real size, on generated JSON files (no images):

    python tools/bench_inat.py [--quick]

- writes train2018.json / val2018.json with the official keys and sizes (437,513 + 24,426 images,
  8142 categories, annotations in another order than the images; --quick: a tenth);
- times `python -m mocodata inat18-meta` (mocodata.inat.write_meta: both files read, checked and
  joined through a dict from image id, both lists written), in a fresh process, with its peak RSS;
- times the all-pairs join of mmselfsup 0.x tools/data_converters/convert_inaturalist.py (every image
  against every annotation) on the first 1,000-4,000 train images, and extrapolates it (quadratic) to
  the real train file.
Prints one line per figure and a JSON summary (the JSON files: tools/bench_data.py; timing:
tools/bench_harness.py).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from bench_data import inat_json  # noqa: E402
from bench_harness import low_mid, measure, print_json  # noqa: E402

TRAIN, VAL, CLASSES = 437_513, 24_426, 8142  # visipedia/inat_comp 2018 README


def all_pairs(images, anns):
    """mmselfsup 0.x convert_inaturalist.py's join: each image compared with every annotation."""
    lines = []
    for im in images:
        for a in anns:
            if a["image_id"] == im["id"]:
                lines.append(f"{im['file_name']} {a['category_id']}\n")
    return lines


def bench_reference(json_path, counts):
    data = json.load(open(json_path))
    out = {}
    for n in counts:
        images = data["images"][:n]
        keep = {im["id"] for im in images}
        anns = [a for a in data["annotations"] if a["image_id"] in keep]
        lines, out[n], _, _ = measure(lambda: all_pairs(images, anns))
        assert len(lines) == n
        print(f"all-pairs join, {n:,} images x {n:,} annotations: {out[n]:.2f} s", flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a tenth of the real size, shorter reference runs")
    args = p.parse_args(argv)
    scale = 0.1 if args.quick else 1.0
    n_train, n_val = int(TRAIN * scale), int(VAL * scale)
    root = tempfile.mkdtemp(prefix="bench_inat_")
    try:
        base = os.path.join(root, "iNaturalist2018")
        os.makedirs(base)
        t = time.perf_counter()
        mb = inat_json(base, n_train, n_val, CLASSES)
        print(f"generated train2018.json ({n_train:,} images, {mb['train']:.0f} MB) and val2018.json "
              f"({n_val:,}, {mb['val']:.0f} MB), {CLASSES} categories, in {time.perf_counter() - t:.1f} s", flush=True)
        code = ("import resource, sys, time; from mocodata import inat; t = time.perf_counter(); "
                "inat.write_meta(sys.argv[1]); "
                "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20)")
        runs = []
        for _ in range(3):  # fresh processes: nothing cached in the interpreter
            out = subprocess.run([sys.executable, "-c", code, root], cwd=REPO, check=True, capture_output=True,
                                 text=True).stdout.split()
            runs.append((float(out[0]), float(out[1])))
        ours, median = low_mid([r[0] for r in runs])
        lines = sum(1 for _ in open(os.path.join(base, "meta", "train.txt")))
        assert lines == n_train, lines
        print(f"inat18-meta (dict join, both files): {ours:.2f} s min / {median:.2f} s median "
              f"of 3, peak RSS {max(r[1] for r in runs):.2f} GiB", flush=True)
        counts = (500, 1000, 2000) if args.quick else (1000, 2000, 4000)
        ref = bench_reference(os.path.join(base, "train2018.json"), counts)
        per_pair = ref[counts[-1]] / counts[-1] ** 2
        full = per_pair * TRAIN ** 2
        ratio = "" if args.quick else f" ({full / ours:,.0f}x inat18-meta on both files)"
        print(f"all-pairs join extrapolated to the real train2018.json ({TRAIN:,}^2 comparisons at "
              f"{per_pair * 1e9:.1f} ns each): {full / 3600:.1f} h{ratio}")
        print_json({"train_images": n_train, "val_images": n_val, "classes": CLASSES, "json_mb": mb,
                    "inat18_meta_s": ours, "peak_rss_gib": max(r[1] for r in runs),
                    "all_pairs_s": ref, "all_pairs_real_train_h_extrapolated": full / 3600})
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
