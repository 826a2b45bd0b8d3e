"""FastPascalVOCDetectionEvaluator against detectron2's PascalVOCDetectionEvaluator: AP, AP50, AP75 and
per-class AP to 1e-9 on generated detections, with score ties, empty images, difficult objects, a class
without detections, a class without ground truth and one with only difficult ground truth."""
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

from mocodata.classes import VOC_CLASSES
from transfer.detection.voc_eval import THRESHOLDS, FastPascalVOCDetectionEvaluator

NO_GT, ONLY_DIFFICULT, NO_DETECTIONS = "cow", "sheep", "dog"


@pytest.fixture(scope="module")
def voc_root(demo_root, tmp_path_factory):
    """The built-in VOC07 test annotations, edited: no cow, every sheep difficult, two images without
    objects, and one image listed twice in the image set (voc_eval counts its objects twice)."""
    src = os.path.join(demo_root, "VOC2007")
    root = str(tmp_path_factory.mktemp("voc") / "VOC2007")
    os.makedirs(os.path.join(root, "ImageSets", "Main"))
    shutil.copytree(os.path.join(src, "Annotations"), os.path.join(root, "Annotations"))
    names = open(os.path.join(src, "ImageSets", "Main", "test.txt")).read().split()
    for name in names:
        path = os.path.join(root, "Annotations", name + ".xml")
        tree = ET.parse(path)
        for obj in tree.findall("object"):
            if obj.find("name").text == NO_GT:
                tree.getroot().remove(obj)
            elif obj.find("name").text == ONLY_DIFFICULT:
                obj.find("difficult").text = "1"
        tree.write(path)
    for name in ("empty_0", "empty_1"):
        root_el = ET.Element("annotation")
        ET.SubElement(root_el, "filename").text = name + ".jpg"
        ET.ElementTree(root_el).write(os.path.join(root, "Annotations", name + ".xml"))
    names = names[:5] + ["empty_0"] + names[5:] + ["empty_1", names[3]]
    with open(os.path.join(root, "ImageSets", "Main", "test.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    return root


def register(root, year):
    from detectron2.data import MetadataCatalog

    name = f"voc_evalcheck_{year}"
    if name in MetadataCatalog.list():
        MetadataCatalog.remove(name)
    MetadataCatalog.get(name).set(thing_classes=list(VOC_CLASSES), dirname=root, year=year, split="test")
    return name


def generated_outputs(root, seed, levels):
    """Faster R-CNN-like outputs per image: 1-3 shifted boxes per object (some exact, some on the
    wrong class), false positives, degenerate boxes; scores on a coarse grid (ties after detectron2
    rounds them to 3 decimals: `levels` scores in all, so that the order within a tie changes the
    AP); none for NO_DETECTIONS, none on every 5th image."""
    from detectron2.evaluation.pascal_voc_evaluation import parse_rec
    from detectron2.structures import Boxes, Instances

    rng = np.random.default_rng(seed)
    names = list(dict.fromkeys(open(os.path.join(root, "ImageSets", "Main", "test.txt")).read().split()))
    out = []
    for i, name in enumerate(names):
        boxes, classes, level = [], [], []
        if i % 5 != 4:
            for obj in parse_rec(os.path.join(root, "Annotations", name + ".xml")):
                x0, y0, x1, y1 = obj["bbox"]
                gt = np.array([x0 - 1, y0 - 1, x1, y1], dtype=float)  # detectron2's coordinates
                for k in range(int(rng.integers(0, 4))):
                    noise = 0 if k == 0 and rng.random() < 0.3 else rng.normal(0, 0.1, 4) * (x1 - x0 + y1 - y0) / 2
                    boxes.append(gt + noise)
                    level.append(int(rng.integers(levels // 2, levels + 1)))
                    right = rng.random() < 0.85
                    classes.append(VOC_CLASSES.index(obj["name"]) if right else int(rng.integers(20)))
            for _ in range(int(rng.integers(5, 30))):
                x, y = rng.uniform(0, 150, 2)
                boxes.append([x, y, x + rng.uniform(0, 60), y + rng.uniform(0, 60)])  # some zero-width
                level.append(int(rng.integers(1, levels // 2 + 1)))
                classes.append(int(rng.integers(20)))
        keep = [k for k, c in enumerate(classes) if VOC_CLASSES[c] != NO_DETECTIONS]
        inst = Instances((1, 1))
        inst.pred_boxes = Boxes(torch.tensor(np.array([boxes[k] for k in keep]), dtype=torch.float32).reshape(-1, 4))
        inst.scores = torch.tensor(np.array([level[k] for k in keep]) / levels + rng.uniform(0, 4e-4, len(keep)),
                                   dtype=torch.float32)
        inst.pred_classes = torch.tensor([classes[k] for k in keep], dtype=torch.int64)
        out.append(({"image_id": name}, {"instances": inst}))
    return out


def evaluate(evaluator, outputs):
    evaluator.reset()
    for inp, outp in outputs:
        evaluator.process([inp], [outp])
    return evaluator.evaluate()


def reference_per_class(evaluator, use_07_metric):
    """detectron2's voc_eval per class and threshold, on the lines its evaluator wrote."""
    from detectron2.evaluation.pascal_voc_evaluation import voc_eval

    out = {}
    with tempfile.TemporaryDirectory() as d:
        template = os.path.join(d, "{}.txt")
        for cls_id, cls_name in enumerate(evaluator._class_names):
            with open(template.format(cls_name), "w") as f:
                f.write("\n".join(evaluator._predictions.get(cls_id, [""])))
            aps = [voc_eval(template, evaluator._anno_file_template, evaluator._image_set_path, cls_name,
                            ovthresh=t / 100.0, use_07_metric=use_07_metric)[2] * 100 for t in THRESHOLDS]
            out[cls_name] = {"AP": np.mean(aps), "AP50": aps[0], "AP75": aps[5]}
    return out


@pytest.mark.parametrize("year,seed,levels", [(2007, 0, 4), (2007, 1, 4), (2007, 2, 40), (2012, 0, 4)])
def test_same_numbers_as_detectron2(voc_root, year, seed, levels):
    from detectron2.evaluation import PascalVOCDetectionEvaluator

    name = register(voc_root, year)
    outputs = generated_outputs(voc_root, seed, levels)
    ref_ev = PascalVOCDetectionEvaluator(name)
    with np.errstate(divide="ignore", invalid="ignore"):  # voc_eval divides by 0 for the class without GT
        ref = evaluate(ref_ev, outputs)
    ours_ev = FastPascalVOCDetectionEvaluator(name)
    ours = evaluate(ours_ev, outputs)

    assert ours.keys() == ref.keys() == {"bbox"} and ours["bbox"].keys() == ref["bbox"].keys() == {"AP", "AP50", "AP75"}
    if year == 2007:
        assert 20 < ref["bbox"]["AP50"] < 90  # an imperfect result: the comparison means something
        for k in ("AP", "AP50", "AP75"):
            assert abs(ours["bbox"][k] - ref["bbox"][k]) <= 1e-9, k
    else:  # all-point AP of a class without ground truth is nan, and so is detectron2's mean
        assert all(np.isnan(v) for v in ref["bbox"].values()) and all(np.isnan(v) for v in ours["bbox"].values())

    with np.errstate(divide="ignore", invalid="ignore"):
        ref_per_class = reference_per_class(ref_ev, year == 2007)
    assert list(ours_ev.per_class) == list(VOC_CLASSES)
    for cls_name, ref_aps in ref_per_class.items():
        for k, v in ref_aps.items():
            got = ours_ev.per_class[cls_name][k]
            assert (np.isnan(v) and np.isnan(got)) or abs(got - v) <= 1e-9, (cls_name, k)
    assert ours_ev.per_class[NO_DETECTIONS]["AP"] == 0 and ours_ev.per_class["person"]["AP50"] > 0
    if year == 2007:
        assert ours_ev.per_class[NO_GT]["AP"] == 0 and ours_ev.per_class[ONLY_DIFFICULT]["AP"] == 0


def test_perfect_and_empty(voc_root):
    from detectron2.evaluation.pascal_voc_evaluation import parse_rec
    from detectron2.structures import Boxes, Instances

    name = register(voc_root, 2007)
    names = list(dict.fromkeys(open(os.path.join(voc_root, "ImageSets", "Main", "test.txt")).read().split()))

    def outputs(perfect):
        for n in names:
            objs = parse_rec(os.path.join(voc_root, "Annotations", n + ".xml")) if perfect else []
            inst = Instances((1, 1))
            inst.pred_boxes = Boxes(torch.tensor([[o["bbox"][0] - 1, o["bbox"][1] - 1, *o["bbox"][2:]] for o in objs],
                                                 dtype=torch.float32).reshape(-1, 4))
            inst.scores = torch.ones(len(objs))
            inst.pred_classes = torch.tensor([VOC_CLASSES.index(o["name"]) for o in objs], dtype=torch.int64)
            yield {"image_id": n}, {"instances": inst}

    ev = FastPascalVOCDetectionEvaluator(name)
    res = evaluate(ev, outputs(True))["bbox"]
    # every class with non-difficult ground truth is found exactly (but for the image listed twice,
    # whose objects voc_eval counts twice); the classes without such ground truth score 0
    twice = {o["name"] for o in parse_rec(os.path.join(voc_root, "Annotations", names[3] + ".xml"))}
    perfect = [c for c in VOC_CLASSES if c not in twice | {NO_GT, ONLY_DIFFICULT}]
    assert len(perfect) > 10 and all(ev.per_class[c]["AP"] == pytest.approx(100) for c in perfect)
    assert all(ev.per_class[c]["AP"] < 100 for c in twice)
    assert ev.per_class[NO_GT]["AP"] == 0 and ev.per_class[ONLY_DIFFICULT]["AP"] == 0
    assert 0 < res["AP"] < 100
    assert evaluate(ev, outputs(False))["bbox"] == {"AP": 0, "AP50": 0, "AP75": 0}


def test_float_coordinates_give_detectron2s_numbers_on_the_integer_ones(voc_root, tmp_path):
    """`<xmin>20.0</xmin>`: detectron2's loader reads it, its evaluator stopped on int('20.0') after the
    whole training. Ours reads it and scores what detectron2's evaluator scores on the same boxes
    written as integers."""
    from detectron2.evaluation import PascalVOCDetectionEvaluator

    from tests.test_data import float_coordinates

    float_root = str(tmp_path / "VOC2007")
    shutil.copytree(voc_root, float_root)
    for path in (tmp_path / "VOC2007" / "Annotations").iterdir():
        path.write_text(float_coordinates(path.read_text()))
    assert ".0</xmax>" in path.read_text()
    outputs = generated_outputs(voc_root, 0, 4)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = evaluate(PascalVOCDetectionEvaluator(register(voc_root, 2007)), outputs)["bbox"]
    ours = evaluate(FastPascalVOCDetectionEvaluator(register(float_root, 2007)), outputs)["bbox"]
    assert 20 < ref["AP50"] < 90
    for k in ("AP", "AP50", "AP75"):
        assert abs(ours[k] - ref[k]) <= 1e-9, k
