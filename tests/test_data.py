"""Built-in data: real formats read by the frameworks' own loaders and evaluators; strict checks."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

from mocodata import __main__ as cli
from mocodata import builtin as data
from mocodata import register, validate
from transfer import report


def test_generation_is_deterministic_and_cached(tmp_path):
    sizes = data.DemoSizes().scaled(0.1)
    a = data.make_demo(str(tmp_path / "a"), sizes)
    b = data.make_demo(str(tmp_path / "b"), sizes)
    rel = "VOC2007/JPEGImages/2007_trainval_000000.jpg"
    assert open(os.path.join(a, rel), "rb").read() == open(os.path.join(b, rel), "rb").read()
    stamp = os.path.getmtime(os.path.join(a, "params.json"))
    data.make_demo(a, sizes)  # same parameters: re-used, not rewritten
    assert os.path.getmtime(os.path.join(a, "params.json")) == stamp
    c = data.make_demo(str(tmp_path / "c"), data.DemoSizes(seed=1).scaled(0.1))
    assert open(os.path.join(c, rel), "rb").read() != open(os.path.join(a, rel), "rb").read()


def test_builtin_sets_validate(demo_root):
    for task in ("voc", "coco", "seg", "imagenet"):
        assert validate.check_task(task, demo_root) > 0


def d2_instances(boxes, classes, h, w, masks=None):
    from detectron2.structures import Boxes, Instances

    inst = Instances((h, w))
    inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.scores = torch.ones(len(classes))
    inst.pred_classes = torch.tensor(classes, dtype=torch.int64)
    if masks is not None:
        inst.pred_masks = torch.as_tensor(np.array(masks, dtype=bool)).reshape(-1, h, w)
    return inst


def run_evaluator(evaluator, dicts, predict):
    evaluator.reset()
    for d in dicts:
        evaluator.process([{"image_id": d["image_id"]}], [{"instances": predict(d)}])
    return evaluator.evaluate()


def test_voc_evaluator_perfect_and_empty(demo_root):
    from detectron2.data import DatasetCatalog
    from detectron2.evaluation import PascalVOCDetectionEvaluator

    register.register_voc(demo_root)
    dicts = DatasetCatalog.get("voc_2007_test")
    assert dicts and all(os.path.exists(d["file_name"]) for d in dicts)
    ev = PascalVOCDetectionEvaluator("voc_2007_test")

    def perfect(d):  # detectron2's loader shifted VOC's 1-based boxes by -1: undo for the evaluator
        anns = d["annotations"]
        return d2_instances([a["bbox"] for a in anns], [a["category_id"] for a in anns], d["height"], d["width"])

    res = run_evaluator(ev, dicts, perfect)["bbox"]
    assert res["AP50"] == pytest.approx(100.0) and res["AP"] > 90
    res = run_evaluator(ev, dicts, lambda d: d2_instances([], [], d["height"], d["width"]))["bbox"]
    assert res["AP50"] == 0 and res["AP"] == 0


@pytest.mark.parametrize("fast", [False, True])
def test_coco_evaluator_perfect_and_empty(demo_root, fast, tmp_path):
    from detectron2.data import DatasetCatalog
    from detectron2.evaluation import COCOEvaluator
    from pycocotools import mask as mask_util

    from transfer.detection.coco_eval import FastCOCOEvaluator

    register.register_coco(demo_root)
    dicts = DatasetCatalog.get("coco_2017_val")
    ev = (FastCOCOEvaluator("coco_2017_val", output_dir=str(tmp_path)) if fast
          else COCOEvaluator("coco_2017_val", output_dir=str(tmp_path), use_fast_impl=False))

    def perfect(d):
        anns = [a for a in d["annotations"] if not a.get("iscrowd")]
        h, w = d["height"], d["width"]
        masks = []
        for a in anns:
            seg = a["segmentation"]
            rles = mask_util.frPyObjects(seg, h, w)
            masks.append(mask_util.decode(mask_util.merge(rles)).astype(bool))
        boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns]
        return d2_instances(boxes, [a["category_id"] for a in anns], h, w, masks)

    res = run_evaluator(ev, dicts, perfect)
    assert res["bbox"]["AP"] == pytest.approx(100.0)
    assert res["segm"]["AP"] == pytest.approx(100.0)
    res = run_evaluator(ev, dicts, lambda d: d2_instances([], [], d["height"], d["width"], np.zeros((0, d["height"], d["width"]))))
    assert report.flat_metrics(res)["bbox/AP"] is None  # detectron2 says NaN for "no predictions": n/a, never 0


def test_mmseg_dataset_and_iou_metric_perfect_and_empty(demo_root):
    from mmseg.datasets import PascalVOCDataset
    from mmseg.evaluation import IoUMetric
    from mmseg.utils import register_all_modules

    register_all_modules()
    voc = os.path.join(demo_root, "VOC2012")
    ds = PascalVOCDataset(data_root=voc, data_prefix=dict(img_path="JPEGImages", seg_map_path="SegmentationClass"),
                          ann_file="ImageSets/Segmentation/val.txt",
                          pipeline=[dict(type="LoadImageFromFile"), dict(type="LoadAnnotations")])
    assert len(ds) == len(open(os.path.join(voc, "ImageSets/Segmentation/val.txt")).read().split())

    def score(pred_fn):
        metric = IoUMetric(iou_metrics=["mIoU"])
        metric.dataset_meta = ds.metainfo
        for i in range(len(ds)):
            gt = torch.from_numpy(ds[i]["gt_seg_map"].astype(np.int64))
            sample = {"pred_sem_seg": {"data": pred_fn(gt)[None]}, "gt_sem_seg": {"data": gt[None]}}
            metric.process({}, [sample])
        return metric.compute_metrics(metric.results)["mIoU"]

    assert score(lambda gt: gt.clone()) == pytest.approx(100.0)
    # every pixel labelled with a wrong class: no class overlaps its ground truth
    assert score(lambda gt: torch.where(gt == 255, gt, (gt + 1) % 21)) == 0


# --- validation: each defect gives an error naming the file and the problem -------------------

def broken_copy(demo_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(demo_root, root)
    return root


def first_line(path):
    return open(path).read().split()[0]


def defect_missing_folder(root):
    shutil.rmtree(root / "VOC2012")
    return "voc", "VOC2012", "missing folder"


def defect_missing_image(root):
    i = first_line(root / "VOC2007/ImageSets/Main/trainval.txt")
    os.remove(root / f"VOC2007/JPEGImages/{i}.jpg")
    return "voc", f"{i}.jpg", "missing file"


def defect_truncated_image(root):
    i = first_line(root / "VOC2007/ImageSets/Main/test.txt")
    p = root / f"VOC2007/JPEGImages/{i}.jpg"
    p.write_bytes(p.read_bytes()[:-200])
    return "voc", f"{i}.jpg", "truncated"


def defect_unreadable_image(root):
    img = json.load(open(root / "coco/annotations/instances_val2017.json"))["images"][0]["file_name"]
    (root / "coco/val2017" / img).write_bytes(b"this is not an image")
    return "coco", img, "unreadable image"


def defect_malformed_xml(root):
    i = first_line(root / "VOC2012/ImageSets/Main/trainval.txt")
    (root / f"VOC2012/Annotations/{i}.xml").write_text("<annotation><size>")
    return "voc", f"{i}.xml", "malformed VOC XML"


def defect_unknown_class(root):
    i = first_line(root / "VOC2007/ImageSets/Main/trainval.txt")
    p = root / f"VOC2007/Annotations/{i}.xml"
    text = p.read_text()
    name = text.split("<name>")[1].split("</name>")[0]
    p.write_text(text.replace(f"<name>{name}</name>", "<name>unicorn</name>", 1))
    return "voc", f"{i}.xml", "class 'unicorn'"


def defect_box_outside(root):
    i = first_line(root / "VOC2007/ImageSets/Main/trainval.txt")
    p = root / f"VOC2007/Annotations/{i}.xml"
    text = p.read_text()
    xmax = text.split("<xmax>")[1].split("</xmax>")[0]
    p.write_text(text.replace(f"<xmax>{xmax}</xmax>", "<xmax>5000</xmax>", 1))
    return "voc", f"{i}.xml", "outside"


def defect_malformed_json(root):
    (root / "coco/annotations/instances_train2017.json").write_text('{"images": [')
    return "coco", "instances_train2017.json", "malformed JSON"


def defect_coco_bad_category(root):
    p = root / "coco/annotations/instances_val2017.json"
    d = json.load(open(p))
    d["annotations"][0]["category_id"] = 999
    json.dump(d, open(p, "w"))
    return "coco", "instances_val2017.json", "category_id 999"


def defect_coco_box_outside(root):
    p = root / "coco/annotations/instances_train2017.json"
    d = json.load(open(p))
    d["annotations"][0]["bbox"] = [-20, 0, 10, 10]
    json.dump(d, open(p, "w"))
    return "coco", "instances_train2017.json", "outside"


def defect_label_size(root):
    from PIL import Image

    i = first_line(root / "VOC2012/ImageSets/Segmentation/val.txt")
    p = root / f"VOC2012/SegmentationClass/{i}.png"
    Image.open(p).resize((17, 9)).save(p)
    return "seg", f"{i}.png", "label map size"


def defect_empty_split(root):
    (root / "VOC2012/ImageSets/Segmentation/aug.txt").write_text("")
    return "seg", "aug.txt", "empty split list"


def defect_trailing_blank_line(root):  # passed the check, then the VOC evaluator read an image called ''
    p = root / "VOC2007/ImageSets/Main/test.txt"
    p.write_text(p.read_text() + "\n")
    return "voc", "test.txt", "is blank"


def defect_blank_line_in_seg_list(root):
    p = root / "VOC2012/ImageSets/Segmentation/val.txt"
    p.write_text("\n" + p.read_text())
    return "seg", "val.txt", "line 1 is blank"


def defect_xml_without_difficult(root):
    i = first_line(root / "VOC2007/ImageSets/Main/test.txt")
    p = root / f"VOC2007/Annotations/{i}.xml"
    text = p.read_text()
    p.write_text(text.replace("<difficult>0</difficult>", "").replace("<difficult>1</difficult>", ""))
    return "voc", f"{i}.xml", "<difficult>"


def defect_exif_rotated_jpeg(root):  # the loaders turn it; its XML keeps the unturned size
    from PIL import Image

    i = first_line(root / "VOC2007/ImageSets/Main/trainval.txt")
    p = root / f"VOC2007/JPEGImages/{i}.jpg"
    im = Image.open(p)
    exif = im.getexif()
    exif[0x0112] = 6
    if im.width != im.height:
        im.save(p, exif=exif.tobytes())
        return "voc", f"{i}.xml", "EXIF rotation"
    raise AssertionError("square image: pick another")


def label_path(root):
    i = first_line(root / "VOC2012/ImageSets/Segmentation/val.txt")
    return root / f"VOC2012/SegmentationClass/{i}.png", f"{i}.png"


def defect_rgb_label(root):
    from PIL import Image

    p, name = label_path(root)
    Image.open(p).convert("RGB").save(p)
    return "seg", name, "mode RGB"


def defect_16bit_label(root):  # read by MMCV as values over 255: every pixel ignored
    import numpy as np
    from PIL import Image

    p, name = label_path(root)
    Image.fromarray(np.asarray(Image.open(p)).astype(np.uint16) * 257).save(p)
    return "seg", name, "mode I;16"


def defect_label_id_over_20(root):
    import numpy as np
    from PIL import Image

    p, name = label_path(root)
    im = Image.open(p)
    a = np.asarray(im).copy()
    a[0, 0] = 37
    out = Image.fromarray(a, mode="P")
    out.putpalette(im.getpalette())
    out.save(p)
    return "seg", name, "[37]"


def defect_one_pixel_image(root):
    from PIL import Image

    d = next((root / "imagenet/train").iterdir())
    Image.new("RGB", (1, 1)).save(d / "tiny.jpg")
    return "imagenet", "tiny.jpg", "at least 8 pixels"


def defect_coco_duplicate_image_id(root):
    p = root / "coco/annotations/instances_val2017.json"
    d = json.load(open(p))
    d["images"][1]["id"] = d["images"][0]["id"]
    json.dump(d, open(p, "w"))
    return "coco", "instances_val2017.json", "appears 2 times"


def defect_voc_list_names_image_twice(root):  # passed the check; the image trained and counted twice
    p = root / "VOC2007/ImageSets/Main/test.txt"
    p.write_text(p.read_text() + first_line(p) + "\n")
    return "voc", "test.txt", "names '"


def coco_edit(root, split, edit):
    p = root / f"coco/annotations/instances_{split}.json"
    d = json.load(open(p))
    edit(d)
    json.dump(d, open(p, "w"))


def defect_coco_duplicate_annotation_id(root):  # passed the check; detectron2 asserted before training
    coco_edit(root, "train2017", lambda d: d["annotations"][1].update(id=d["annotations"][0]["id"]))
    return "coco", "instances_train2017.json", "annotation id"


def defect_coco_two_point_polygon(root):  # passed; detectron2 dropped the mask with a logged warning
    coco_edit(root, "val2017", lambda d: d["annotations"][0].update(segmentation=[[1, 1, 5, 5]]))
    return "coco", "instances_val2017.json", "polygon of 4 numbers"


def defect_coco_val_without_annotations(root):  # passed; AP is undefined without ground truth
    coco_edit(root, "val2017", lambda d: d.update(annotations=[]))
    return "coco", "instances_val2017.json", "no annotations"


def defect_class_folder_links_to_parent(root):  # the folder walk would visit every image again
    os.symlink("..", root / "imagenet/train/loop")
    return "imagenet", "loop", "links to"


def defect_empty_imagefolder(root):
    for d in (root / "imagenet/train").iterdir():
        shutil.rmtree(d)
    return "imagenet", "train", "no images"


DEFECTS = [defect_missing_folder, defect_missing_image, defect_truncated_image, defect_unreadable_image,
           defect_malformed_xml, defect_unknown_class, defect_box_outside, defect_malformed_json,
           defect_coco_bad_category, defect_coco_box_outside, defect_label_size, defect_empty_split,
           defect_empty_imagefolder, defect_trailing_blank_line, defect_blank_line_in_seg_list,
           defect_xml_without_difficult, defect_exif_rotated_jpeg, defect_rgb_label, defect_16bit_label,
           defect_label_id_over_20, defect_one_pixel_image, defect_coco_duplicate_image_id,
           defect_class_folder_links_to_parent, defect_voc_list_names_image_twice,
           defect_coco_duplicate_annotation_id, defect_coco_two_point_polygon, defect_coco_val_without_annotations]


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda f: f.__name__[7:])
def test_defect_is_named(defect, demo_root, tmp_path, capsys):
    root = broken_copy(demo_root, tmp_path)
    task, filename, problem = defect(root)
    with pytest.raises(validate.DataError) as e:
        validate.check_task(task, str(root))
    assert filename in str(e.value) and problem in str(e.value)
    # the CLI: a non-zero exit and the same message
    assert cli.main(["check", str(root), "--task", task]) == 2
    assert problem in capsys.readouterr().err


def test_float_voc_coordinates_are_accepted(demo_root, tmp_path):
    """`<xmin>20.0</xmin>`, as export tools write it: detectron2's loader reads it, so the check
    accepts it (the VOC evaluator reads it too: tests/test_voc_eval.py)."""
    from detectron2.data.datasets.pascal_voc import load_voc_instances

    root = broken_copy(demo_root, tmp_path)
    voc = root / "VOC2007"
    before = load_voc_instances(str(voc), "test", data.CLASSES)
    for xml in (voc / "Annotations").iterdir():
        xml.write_text(float_coordinates(xml.read_text()))
    assert ".0</xmin>" in xml.read_text()
    assert validate.check_task("voc", str(root)) > 0
    assert load_voc_instances(str(voc), "test", data.CLASSES) == before


def float_coordinates(xml_text):
    import re

    return re.sub(r"<(xmin|ymin|xmax|ymax)>(\d+)</", r"<\1>\2.0</", xml_text)


def test_checking_a_real_sized_set_shows_progress(capsys):
    from mocodata import validate

    assert list(validate.progress(list(range(2500)), "COCO train2017")) == list(range(2500))
    assert "checking COCO train2017" in capsys.readouterr().err
    assert list(validate.progress([1, 2], "demo")) == [1, 2] and capsys.readouterr().err == ""


def test_two_make_demo_at_once_both_end_with_a_valid_set(tmp_path):
    """Both built in the same fixed .partial folder, each removing it first: both exited 0 and left a
    set without VOC2007/. Now the second waits for the first and re-uses its set."""
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "mocodata", "make-demo", str(out), "--scale", "0.1"]
    first = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and first.poll() is None and not any(".partial" in f for f in os.listdir(tmp_path)):
        time.sleep(0.01)
    assert first.poll() is None, "the first build ended before the second started"
    second = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = [p.communicate(timeout=300) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], [r[1][-1000:] for r in results]
    assert "waiting for another process" in results[1][1]
    for task in ("voc", "coco", "seg", "imagenet"):
        assert validate.check_task(task, str(out)) > 0
    assert sorted(os.listdir(tmp_path)) == ["demo"]  # no build folder left behind
