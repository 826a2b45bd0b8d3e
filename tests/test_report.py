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


def test_report_shows_the_moco_papers_rows_with_their_tables(tmp_path):
    """The MoCo paper's random init, supervised and MoCo v1 rows (arXiv:1911.05722 Table 2b for VOC, 5a for COCO;
    values: tests/test_protocols.py MOCO_PAPER) stand beside the checkpoint, each citing its table and setup."""
    runs = [done("voc", {"bbox/AP50": 70.0}), done("coco", {"bbox/AP": 30.0, "segm/AP75": 20.0})]
    md = report.write(str(tmp_path), runs, {"weights": None, "arch": "resnet50", "recipe": "mocov2_r50"})
    line = {tuple(c.strip() for c in l.split("|")[1:3]): l for l in md.splitlines() if l.startswith("| ")}
    sources = md.split("Sources of the published numbers")[1]
    notes = {n.split(". ", 1)[1]: n.split(". ", 1)[0] for n in sources.strip().splitlines() if ". " in n}
    table2b = next(n for text, n in notes.items() if text.startswith("MoCo paper (arXiv:1911.05722) Table 2b; "
                                                                      "detectron2, moco detection/configs/"))
    table5a = next(n for text, n in notes.items() if text.startswith("MoCo paper (arXiv:1911.05722) Table 5a; "
                                                                      "detectron2, Mask R-CNN R50-FPN 1x"))
    ap50 = line[("voc", "bbox/AP50")]
    assert f"random 60.20 [{table2b}]" in ap50 and f"supervised 81.30 [{table2b}]" in ap50
    assert f"MoCo v1 IN-1M 81.50 [{table2b}]" in ap50 and "random 59.02 [" in ap50  # beside the zoo's
    assert f"random 31.00 [{table5a}]" in line[("coco", "bbox/AP")] and "supervised 38.90" in line[("coco", "bbox/AP")]
    assert f"MoCo v1 IN-1M 37.70 [{table5a}]" in line[("coco", "segm/AP75")]
    assert "not released" in next(text for text, n in notes.items() if n == table5a)
