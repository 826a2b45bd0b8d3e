"""The suite's report: every row shows the published MoCo number and the baselines beside it, each with a
numbered source that names the framework and config that measured it."""
import csv
import json

from transfer import report


def done(task, metrics):
    return {"task": task, "seed": 0, "status": "done", "config": "c", "run_dir": "/nonexistent", "metrics": metrics,
            "fingerprint": None}


def test_report_shows_random_and_supervised_baselines_with_sources(tmp_path):
    runs = [done("svm", {"svm/mAP_feat5": 50.0, "svm/mAP_feat2": 40.0}), done("voc", {"bbox/AP50": 70.0})]
    md = report.write(str(tmp_path), runs, {"weights": None, "arch": "resnet50", "recipe": "mocov2_r50"})
    feat2 = next(line for line in md.splitlines() if line.startswith("| svm | svm/mAP_feat2 |"))
    assert "random 30.54 [" in feat2  # the random row's best layer is feat2: its number sits there
    ap50 = next(line for line in md.splitlines() if line.startswith("| voc | bbox/AP50 |"))
    assert "| 82.40 [" in ap50 and "random 59.02 [" in ap50 and "supervised 81.58 [" in ap50
    assert "supervised 81.30 [" in ap50 and "MoCo v2 (mmselfsup) 81.06 [" in ap50
    sources = md.split("Sources of the published numbers")[1]
    assert "OpenSelfSup docs/MODEL_ZOO.md @0b768363" in sources and "moco detection/README" in sources
    assert "faster-rcnn_r50-c4_ms-24k_voc0712.py: NOT ours" in sources
    for ref in ap50.split("|")[5:7]:  # every footnote number a cell cites is listed under the table
        for n in [c.split("]")[0] for c in ref.split("[")[1:]]:
            assert f"\n{n}. " in sources
    rows = {(r["task"], r["metric"]): r for r in json.load(open(tmp_path / "results.json"))["summary"]}
    assert {b["init"] for b in rows[("voc", "bbox/AP50")]["baselines"]} >= {"random", "supervised"}
    with open(tmp_path / "results.csv") as f:
        csv_rows = {(r["task"], r["metric"]): r for r in csv.DictReader(f)}
    assert "random 59.02 (OpenSelfSup docs/MODEL_ZOO.md @0b768363; detectron2" in csv_rows[("voc", "bbox/AP50")]["baselines"]


def test_a_vit_report_shows_no_resnet_baselines(tmp_path):
    md = report.write(str(tmp_path), [done("svm", {"svm/mAP_cls": 50.0})],
                      {"weights": "v.pth", "arch": "vit_base", "recipe": "mocov3_vit"})
    assert "30.54" not in md and "87.17" not in md
