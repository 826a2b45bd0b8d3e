"""transfer.compare on constructed suite outputs: identical runs differ in nothing, a known gap on enough
images is found, zero spread from two seeds is not evidence, Holm's correction is applied, and outputs
that do not pair are refused by name. transfer.perimage recomputes the runs' own metrics."""
import json
import os

import numpy as np
import pytest

from tests.badinput import refuses
from transfer import compare, perimage, protocols
from transfer.classification.svm import voc07_ap

N = 400  # evaluation images of the constructed top-1 runs


def write_output(root, task, runs, meta=None, facts=None):
    """A run_suite output folder: results.json and TASK/seedN/ (fingerprint, final metrics, per-image file).
    runs: [(metrics, per-image dict or None)], one per seed."""
    recs = []
    for seed, (metrics, data) in enumerate(runs):
        run_dir = os.path.join(root, task, f"seed{seed}")
        os.makedirs(run_dir)
        recipe = (facts or {}).get("recipe", "mocov2_r50")
        fp = {**(protocols.TASKS[task].facts or protocols.RECIPES[recipe]), "recipe": recipe, "seed": seed,
              **(facts or {})}
        if data is not None:
            perimage.write(run_dir, data["ids"], data.get("labels"), {k: v for k, v in data.items()
                                                                     if k not in ("ids", "labels")})
        recs.append({"task": task, "seed": seed, "config": "x", "run_dir": run_dir, "status": "done",
                     "metrics": metrics, "fingerprint": fp})
    with open(os.path.join(root, "results.json"), "w") as f:
        json.dump({"meta": meta or {"recipe": "mocov2_r50", "arch": "resnet50"}, "summary": [], "runs": recs}, f)
    return str(root)


def top1_run(labels, right, metric="knn/top1_k20", ids=None):
    """(metrics, per-image) of a run that gets the images where `right` is True right."""
    pred = np.where(right, labels, (labels + 1) % 10)
    ids = ids if ids is not None else [f"c/{i}.jpg" for i in range(len(labels))]
    return {metric: 100.0 * right.mean()}, {"ids": ids, "labels": labels, metric: pred}


def knn_output(root, rights, **kw):
    labels = np.arange(N) % 10
    return write_output(root, "knn", [top1_run(labels, r) for r in rights], **kw)


def run_compare(tmp_path, *paths, extra=()):
    out = tmp_path / "cmp"
    assert compare.main([*map(str, paths), "--out", str(out), "--resamples", "500", *extra]) == 0
    assert {"comparison.md", "comparison.csv", "comparison.json", "comparison.png"} <= set(os.listdir(out))
    return json.load(open(out / "comparison.json"))["rows"]


def row(rows, metric):
    return next(r for r in rows if r["metric"] == metric)


def test_an_output_against_itself_differs_in_nothing(tmp_path):
    rng = np.random.default_rng(0)
    a = knn_output(tmp_path / "a", [rng.random(N) < 0.6])
    r = row(run_compare(tmp_path, a, a), "knn/top1_k20")
    assert r["difference"] == 0 and r["p"] == 1.0 and r["verdict"] == "no difference found"
    assert r["test"].startswith("McNemar") and r["difference_interval"] == [0.0, 0.0]


def test_a_known_gap_on_enough_images_is_found(tmp_path):
    u = np.random.default_rng(1).permutation(N) / N
    base = knn_output(tmp_path / "base", [u < 0.5])
    better = knn_output(tmp_path / "better", [u < 0.65])  # 60 images more right, none fewer
    r = row(run_compare(tmp_path, base, better), "knn/top1_k20")
    assert r["difference"] == pytest.approx(15.0) and r["verdict"] == "better higher"
    assert r["p"] < 1e-10 and r["difference_interval"][0] > 5  # binomial test of 60 vs 0 discordant: 2 x 0.5^60


def test_one_image_in_sixty_is_no_difference(tmp_path):
    """The issue's case: 38.33 (two seeds) against 36.67 (one seed) on 60 images."""
    labels = np.arange(60) % 4
    right = np.arange(60) < 23
    fewer = right.copy()
    fewer[22] = False
    base = write_output(tmp_path / "rand", "knn", [top1_run(labels, right)] * 2)
    ckpt = write_output(tmp_path / "ckpt", "knn", [top1_run(labels, fewer)])
    r = row(run_compare(tmp_path, base, ckpt), "knn/top1_k20")
    assert r["difference"] == pytest.approx(-100 / 60) and r["base_sd"] == 0
    assert r["test"].startswith("paired bootstrap") and r["verdict"] == "no difference found"


def test_several_seeds_resample_seeds_and_images(tmp_path):
    rng = np.random.default_rng(2)
    u = rng.random(N)
    base = knn_output(tmp_path / "base", [u < t for t in (0.50, 0.52, 0.48)])
    better = knn_output(tmp_path / "better", [u < t for t in (0.70, 0.72, 0.68)])
    r = row(run_compare(tmp_path, base, better), "knn/top1_k20")
    assert "seeds 3 resampled vs 3 resampled" in r["test"] and r["verdict"] == "better higher"
    # seeds that differ widen the interval beyond the images' alone (three equal seeds)
    varied = row(run_compare(tmp_path, knn_output(tmp_path / "var", [u < t for t in (0.3, 0.5, 0.7)]), better),
                 "knn/top1_k20")
    same = row(run_compare(tmp_path, knn_output(tmp_path / "same", [u < 0.5] * 3), better), "knn/top1_k20")
    assert np.diff(varied["base_interval"])[0] > 2 * np.diff(same["base_interval"])[0] > 0
    # three equal seeds give exactly one seed's interval: the same images are not counted three times
    one = row(run_compare(tmp_path, knn_output(tmp_path / "one", [u < 0.5]), better), "knn/top1_k20")
    assert same["base_interval"] == one["base_interval"]


def test_zero_spread_from_two_seeds_is_not_enough_evidence(tmp_path):
    metrics = {"bbox/AP50": 50.0, "bbox/AP": 30.0, "bbox/AP75": 28.0}
    base = write_output(tmp_path / "a", "voc", [(metrics, None)] * 2)
    other = write_output(tmp_path / "b", "voc", [({k: v + 5 for k, v in metrics.items()}, None)] * 2)
    rows = run_compare(tmp_path, base, other)
    assert all(r["verdict"].startswith("not enough evidence") and r.get("p") is None for r in rows)
    # three seeds a side, zero spread on both: still no test
    base3 = write_output(tmp_path / "a3", "voc", [(metrics, None)] * 3)
    other3 = write_output(tmp_path / "b3", "voc", [({k: v + 5 for k, v in metrics.items()}, None)] * 3)
    assert "zero spread" in row(run_compare(tmp_path, base3, other3), "bbox/AP")["verdict"]


def test_welch_over_three_seeds_without_per_image_files(tmp_path):
    from scipy.stats import ttest_ind

    a, b = [30.0, 31.0, 29.5], [35.0, 36.5, 34.0]
    base = write_output(tmp_path / "a", "voc", [({"bbox/AP": v}, None) for v in a])
    other = write_output(tmp_path / "b", "voc", [({"bbox/AP": v}, None) for v in b])
    r = row(run_compare(tmp_path, base, other), "bbox/AP")
    assert r["p"] == pytest.approx(ttest_ind(b, a, equal_var=False).pvalue) and r["test"].startswith("Welch")


def test_holm_is_applied_over_the_table(tmp_path):
    assert compare.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # five stage heads: one with a gap that a single test calls (12 vs 3 discordant images: p = 0.035)
    # but not after five tests
    labels = np.arange(N) % 10
    base_right = np.arange(N) < 200
    feat3 = base_right.copy()
    feat3[200:212], feat3[:3] = True, False
    stage = {f"feat{i}/top1" for i in range(1, 6)}

    def stages(gap):
        right = {m: feat3 if gap and m == "feat3/top1" else base_right for m in stage}
        data = {"ids": [f"c/{i}.jpg" for i in range(N)], "labels": labels,
                **{m: np.where(r, labels, (labels + 1) % 10) for m, r in right.items()}}
        return {m: 100.0 * r.mean() for m, r in right.items()}, data

    base = write_output(tmp_path / "a", "linear-stages", [stages(False)], facts={"recipe": "mhead_imagenet"})
    other = write_output(tmp_path / "b", "linear-stages", [stages(True)], facts={"recipe": "mhead_imagenet"})
    rows = run_compare(tmp_path, base, other)
    r = row(rows, "feat3/top1")
    assert r["p"] < 0.05 < r["p_holm"] and r["p_holm"] == pytest.approx(min(1, 5 * r["p"]))
    assert r["verdict"] == "no difference found"
    md = open(tmp_path / "cmp" / "comparison.md").read()
    assert "Holm's correction over the table's 5 tests" in md


def test_only_k20_of_knn_is_tested(tmp_path):
    labels = np.arange(N) % 10
    u = np.random.default_rng(4).random(N)

    def run(t):
        (m20, d), (m10, d10) = top1_run(labels, u < t), top1_run(labels, u < t, "knn/top1_k10")
        return {**m20, **m10}, {**d, "knn/top1_k10": d10["knn/top1_k10"]}

    rows = run_compare(tmp_path, write_output(tmp_path / "a", "knn", [run(0.5)]),
                       write_output(tmp_path / "b", "knn", [run(0.7)]))
    assert row(rows, "knn/top1_k20")["p"] is not None
    assert row(rows, "knn/top1_k10").get("p") is None and "not tested" in row(rows, "knn/top1_k10")["verdict"]


def test_map_and_miou_by_paired_bootstrap(tmp_path):
    rng = np.random.default_rng(5)
    n, c = 120, 4
    labels = rng.choice([1, 0, 0, -1], (n, c))
    labels[:4] = np.eye(c)  # every class present

    def svm(noise):
        scores = labels + rng.normal(0, noise, (n, c))
        m = 100 * np.mean([voc07_ap(labels[labels[:, j] != -1, j], scores[labels[:, j] != -1, j]) for j in range(c)])
        return {"svm/mAP_feat5": m}, {"ids": [f"{i:06d}" for i in range(n)], "labels": labels, "svm/mAP_feat5": scores}

    a = write_output(tmp_path / "a", "svm", [svm(2.0)])
    b = write_output(tmp_path / "b", "svm", [svm(0.2)])
    r = row(run_compare(tmp_path, a, b), "svm/mAP_feat5")
    assert r["test"].startswith("paired bootstrap") and r["verdict"] == "b higher"

    def seg(hit):
        union = rng.integers(50, 100, (n, 2, c))
        union[:, 0] = (union[:, 1] * hit).astype(int)
        inter, uni = union[:, 0].sum(0), union[:, 1].sum(0)
        metrics = {"sem_seg/mIoU": round(100 * float(np.mean(inter / uni)), 2)}
        return metrics, {"ids": [f"{i}" for i in range(n)], "sem_seg/mIoU": union}

    s = seg(0.5)
    rows = run_compare(tmp_path, write_output(tmp_path / "s1", "seg", [s]), write_output(tmp_path / "s2", "seg", [s]))
    assert row(rows, "sem_seg/mIoU")["verdict"] == "no difference found" and row(rows, "sem_seg/mIoU")["p"] == 1.0


def test_weighted_ap_equals_voc07_ap_on_an_explicit_resample():
    rng = np.random.default_rng(6)
    target = rng.choice([1, 0, 0, -1], 300)
    scores = rng.normal(size=300) + target
    for _ in range(10):
        idx = rng.integers(0, 300, 300)
        W = np.bincount(idx, minlength=300)[None].astype(float)
        keep = target[idx] != -1
        want = voc07_ap(target[idx][keep], scores[idx][keep])
        assert perimage.weighted_ap(target, scores, W)[0] == pytest.approx(want)


def test_bad_input_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(7)
    right = rng.random(N) < 0.5
    a = knn_output(tmp_path / "a", [right])
    hot = knn_output(tmp_path / "hot", [right], facts={"temperature": 0.2})
    labels = np.arange(N) % 10
    ids = [f"c/{i}.jpg" for i in range(N)]
    ids[7] = "c/other.jpg"
    moved = write_output(tmp_path / "moved", "knn", [top1_run(labels, right, ids=ids)])
    (tmp_path / "empty").mkdir()
    liar = knn_output(tmp_path / "liar", [right])
    res = json.load(open(tmp_path / "liar" / "results.json"))
    res["runs"][0]["metrics"]["knn/top1_k20"] += 10
    json.dump(res, open(tmp_path / "liar" / "results.json", "w"))
    failed = knn_output(tmp_path / "failed", [right])
    res = json.load(open(tmp_path / "failed" / "results.json"))
    res["runs"][0]["status"] = "failed"
    json.dump(res, open(tmp_path / "failed" / "results.json", "w"))
    out = tmp_path / "out"
    rows = [  # (argv, culprit)
        ([a, hot], "temperature 0.07 vs 0.2"),
        ([a, moved], "image 7: 'c/7.jpg'"),
        ([a, tmp_path / "nowhere"], "nowhere: no such folder"),
        ([a, tmp_path / "empty"], "empty: no results.json"),
        ([a, failed], "no finished run"),
        ([a, liar], "liar/knn/seed0/per_image.npz"),
        ([a, hot, "--baseline", tmp_path / "nowhere"], "--baseline"),
        ([a], "at least two"),
        ([a, a, "--resamples", "10"], "--resamples 10"),
        ([a, a, "--out", tmp_path / "a" / "results.json"], "a file, not a folder"),
    ]
    for argv, culprit in rows:
        refuses(compare.main, [*argv, *(["--out", out] if "--out" not in argv else [])], culprit, capsys,
                watch=[str(tmp_path)])
    assert not out.exists()


@pytest.mark.parametrize("task,metric,cells", [
    ("voc", "bbox/AP50", ["random 60.20 [", "supervised 81.30 [", "MoCo v1 IN-1M 81.50 [", "random 59.02 ["]),
    ("coco", "segm/AP", ["random 28.50 [", "supervised 35.40 [", "MoCo v1 IN-1M 35.10 ["])])
def test_the_moco_papers_rows_stand_beside_the_comparison(tmp_path, task, metric, cells):
    """arXiv:1911.05722 Table 2b (VOC) and 5a (COCO), values as tests/test_protocols.py MOCO_PAPER: in the
    Markdown table with their sources, and in the JSON rows."""
    metrics = {m: 30.0 for m in protocols.get(task).metrics}
    rows = run_compare(tmp_path, write_output(tmp_path / "a", task, [(metrics, None)]),
                       write_output(tmp_path / "b", task, [({k: v + 1 for k, v in metrics.items()}, None)]))
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    line = next(l for l in md.splitlines() if l.startswith(f"| {task} | {metric} |"))
    assert all(c in line for c in cells), line
    table = {"voc": "Table 2b", "coco": "Table 5a"}[task]
    assert f"MoCo paper (arXiv:1911.05722) {table}; detectron2" in md.split("Sources of the published numbers")[1]
    paper = [b for b in row(rows, metric)["baselines"] if b["source"].endswith(table)]
    assert [b["init"] for b in paper] == ["random", "supervised", "MoCo v1 IN-1M"]
