"""linear-stages-inat18: the recipe equals mmselfsup 0.x's, the meta lists equal what its converter writes
(in linear time), the built-in set is in the official layout and reads through mmpretrain, every data
defect is named, and the suite runs the task on the built-in data (slow)."""
import json
import os
import shutil
from functools import partial

import pytest
import torch
from mmengine.config import Config

from mocodata import __main__ as cli
from mocodata import inat, validate
from tests.badinput import refuses
from tests.conftest import config_path
from tests.test_classification_linear import facts_of
from transfer import fingerprint, protocols
from transfer.classification import linear
from transfer.runner import entry

# mmselfsup 0.x configs/benchmarks/classification/inaturalist2018/resnet50_mhead_8xb32-steplr-84e_inat18.py
# with its bases _base_/models/resnet50_multihead.py and _base_/datasets/inaturalist2018.py, value by value
MMSELFSUP_INAT18 = dict(
    num_classes=8142,  # head.num_classes
    optimizer="SGD", lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True,  # optimizer
    images_per_update=8 * 32,  # samples_per_gpu=32, "total 32x8=256, 8GPU linear cls"
    bn_images=256,  # norm_cfg SyncBN
    head_norm="BN2d affine=False momentum 0.1 (synchronised)",  # SyncBN, momentum=0.1, affine=False
    epochs=84, schedule="step x0.1 at [24, 48, 72]",  # runner max_epochs=84, lr_config step=[24, 48, 72]
    train_crop=224, color_jitter=None, lighting=None,  # RandomResizedCrop(size=224), RandomHorizontalFlip
    train_resize=None, train_center_crop=None, train_random_crop=None,
    test_resize=256, test_crop=224,  # Resize(size=256), CenterCrop(size=224)
    trained="head", backbone_eval=True,  # frozen_stages=4
    pools=[[10, 10, 4], [16, 8, 0], [13, 5, 0], [8, 3, 0], [6, 1, 0]],  # MultiClsHead pool_type='specified'
)


@pytest.mark.parametrize("variant, gpus", [("", 8), ("_lowgpu", 1)])
def test_recipe_equals_mmselfsup(variant, gpus):
    facts = facts_of(f"linear-stages_r50_inat18{variant}", gpus)
    for key, value in MMSELFSUP_INAT18.items():
        assert facts[key] == value, key
    assert fingerprint.deviations("linear-stages-inat18", facts) == []
    cfg = Config.fromfile(config_path("mmpretrain", f"linear-stages_r50_inat18{variant}.py"))
    flips = [t for t in cfg.train_dataloader.dataset.pipeline if t["type"] == "RandomFlip"]
    assert flips == [dict(type="RandomFlip", prob=0.5, direction="horizontal")]
    for loader, split in ((cfg.train_dataloader, "train"), (cfg.val_dataloader, "val"), (cfg.test_dataloader, "val")):
        assert (loader.dataset.ann_file, loader.dataset.data_prefix) == (f"meta/{split}.txt", "")
    assert cfg.data_dir == validate.INAT18


def test_only_the_five_linear_layers_are_trained():
    """mmselfsup's paramwise_options=dict(norm_decay_mult=0.) has nothing to act on: no norm is trained."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    from transfer.classification import stages  # noqa: F401  (registers the Feature1-5 modules)

    model_cfg = Config.fromfile(config_path("mmpretrain", "linear-stages_r50_inat18.py")).model
    model_cfg.head.num_classes = 10  # the parameters' kinds do not depend on the class count
    with DefaultScope.overwrite_default_scope("mmpretrain"):  # another test may have left MMSeg's scope
        model = MODELS.build(model_cfg)
    trained = {n: type(m).__name__ for n, m in model.named_modules() for p in m.parameters(recurse=False)
               if p.requires_grad}
    assert len(trained) == 5 and set(trained.values()) == {"Linear"}, trained


def write_json(path, images, anns, classes):
    json.dump({"info": {}, "images": images, "annotations": anns, "licenses": [],
               "categories": [{"id": c, "name": str(c)} for c in range(classes)]}, open(path, "w"))


def test_meta_lists_are_the_converters_lines(tmp_path):
    """mmselfsup 0.x tools/data_converters/convert_inaturalist.py writes '<file_name> <category_id>' for each
    image, in the order of 'images'; the annotations here come in another order."""
    base = tmp_path / validate.INAT18
    base.mkdir()
    names = ["train_val2018/Aves/2/b1.jpg", "train_val2018/Plantae/0/a0.jpg", "train_val2018/Aves/1/c7.jpg"]
    write_json(base / "train2018.json", [{"id": 10 + i, "file_name": n} for i, n in enumerate(names)],
               [{"id": 1, "image_id": 12, "category_id": 1}, {"id": 2, "image_id": 10, "category_id": 2},
                {"id": 3, "image_id": 11, "category_id": 0}], 3)
    write_json(base / "val2018.json", [{"id": 20, "file_name": "train_val2018/Aves/2/v.jpg"}],
               [{"id": 4, "image_id": 20, "category_id": 2}], 3)
    assert cli.main(["inat18-meta", str(tmp_path)]) == 0
    assert (base / "meta/train.txt").read_text() == ("train_val2018/Aves/2/b1.jpg 2\ntrain_val2018/Plantae/0/a0.jpg 0\n"
                                                     "train_val2018/Aves/1/c7.jpg 1\n")
    assert (base / "meta/val.txt").read_text() == "train_val2018/Aves/2/v.jpg 2\n"
    assert sorted(os.listdir(base / "meta")) == ["train.txt", "val.txt"]  # no .partial left


def test_builtin_set_is_the_official_layout_and_reads_through_mmpretrain(demo_root):
    from mmpretrain.datasets import CustomDataset

    base = os.path.join(demo_root, validate.INAT18)
    assert validate.check_task("inat18", demo_root) == 6 * (8 + 3)
    train = json.load(open(os.path.join(base, "train2018.json")))
    assert set(train) == {"info", "images", "categories", "annotations", "licenses"}
    assert set(train["images"][0]) == {"id", "width", "height", "file_name", "license", "rights_holder"}
    assert set(train["annotations"][0]) == {"id", "image_id", "category_id"}
    _, supercategory, category, _ = train["images"][0]["file_name"].split("/")  # train_val2018/<super>/<cat>/<x>.jpg
    cfg = Config.fromfile(config_path("mmpretrain", "linear-stages_r50_inat18_quick.py"))
    ds = cfg.train_dataloader.dataset
    dataset = CustomDataset(data_root=base, ann_file=ds.ann_file, data_prefix=ds.data_prefix, pipeline=[])
    pairs = [(os.path.relpath(d["img_path"], base), d["gt_label"]) for d in dataset.load_data_list()]
    assert pairs == validate.read_inat(os.path.join(base, "train2018.json"))[0]
    assert all(os.path.isfile(os.path.join(base, p)) for p, _ in pairs)
    assert int(category) == pairs[0][1]


def edit_json(root, split, change):
    path = root / validate.INAT18 / f"{split}2018.json"
    data = json.load(open(path))
    change(data)
    json.dump(data, open(path, "w"))


def set_first_annotation(key, value):
    return lambda d: d["annotations"][0].__setitem__(key, value)


def first_image(root, split="train"):
    return (root / validate.INAT18 / f"meta/{split}.txt").read_text().split("\n")[0].rsplit(" ", 1)[0]


def truncate(path):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


# (name, defect(root), culprit file, problem, is it in the JSON files (so inat18-meta refuses too))
DEFECTS = [
    ("missing_folder", lambda r: shutil.rmtree(r / validate.INAT18), validate.INAT18, "missing folder", True),
    ("missing_json", lambda r: os.remove(r / validate.INAT18 / "val2018.json"), "val2018.json", "missing file", True),
    ("malformed_json", lambda r: (r / validate.INAT18 / "train2018.json").write_text('{"images": ['),
     "train2018.json", "malformed JSON", True),
    ("json_not_an_object", lambda r: (r / validate.INAT18 / "val2018.json").write_text("[]"), "val2018.json",
     "another structure", True),
    ("no_annotations_key", lambda r: edit_json(r, "train", lambda d: d.pop("annotations")),
     "train2018.json", "'annotations'", True),
    ("image_without_annotation", lambda r: edit_json(r, "val", lambda d: d["annotations"].pop(0)),
     "val2018.json", "has no annotation", True),
    ("second_annotation", lambda r: edit_json(r, "train", lambda d: d["annotations"].append(
        dict(d["annotations"][0], id=99999))), "train2018.json", "second annotation", True),
    ("annotation_of_absent_image", lambda r: edit_json(r, "train", lambda d: d["annotations"].append(
        {"id": 99999, "image_id": 99999, "category_id": 0})), "train2018.json", "image_id 99999 is not in", True),
    ("category_out_of_range", lambda r: edit_json(r, "val", set_first_annotation("category_id", 8142)),
     "val2018.json", "category_id 8142 is out of range 0..5", True),
    ("category_ids_not_from_0", lambda r: edit_json(r, "train", lambda d: d["categories"][0].__setitem__("id", 77)),
     "train2018.json", "category ids are not 0..5", True),
    ("duplicate_image_id", lambda r: edit_json(r, "train", lambda d: d["images"][1].__setitem__(
        "id", d["images"][0]["id"])), "train2018.json", "appears twice", True),
    ("file_name_outside_train_val2018", lambda r: edit_json(r, "val", lambda d: d["images"][0].__setitem__(
        "file_name", d["images"][0]["file_name"].replace("train_val2018/", "val2018/"))),
     "val2018.json", "does not begin with train_val2018/", True),
    ("other_val_categories", lambda r: edit_json(r, "val", lambda d: d["categories"].append({"id": 6, "name": "6"})),
     "val2018.json", "7 categories, train2018.json has 6", True),
    ("image_in_both_splits", lambda r: edit_json(r, "val", lambda d: d["images"][0].__setitem__(
        "file_name", first_image(r))), "val2018.json", "must not overlap", True),
    ("missing_list", lambda r: os.remove(r / validate.INAT18 / "meta/train.txt"), "meta/train.txt",
     "python -m mocodata inat18-meta", False),
    ("stale_list", lambda r: edit_json(r, "val", set_first_annotation("category_id", 5)), "meta/val.txt",
     "line 1 is", False),
    ("list_label_out_of_range", lambda r: (r / validate.INAT18 / "meta/val.txt").write_text(
        "train_val2018/Plantae/0/x.jpg 6\n"), "meta/val.txt", "label 6 is out of range 0..5", False),
    ("list_line_without_label", lambda r: (r / validate.INAT18 / "meta/train.txt").write_text(
        "train_val2018/Plantae/0/x.jpg\n"), "meta/train.txt", "is not '<path> <label>'", False),
    ("listed_image_absent", lambda r: os.remove(r / validate.INAT18 / first_image(r, "val")),
     "train_val2018/", "missing file (image listed in val2018.json", False),
    ("truncated_image", lambda r: truncate(r / validate.INAT18 / first_image(r)), "train_val2018/", "truncated", False),
]


@pytest.mark.parametrize("name, defect, culprit, problem, in_json", DEFECTS, ids=[d[0] for d in DEFECTS])
def test_defect_is_named(name, defect, culprit, problem, in_json, demo_root, tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(os.path.join(demo_root, validate.INAT18), root / validate.INAT18)
    defect(root)
    with pytest.raises(validate.DataError) as e:
        validate.check_task("inat18", str(root))
    assert culprit in str(e.value) and problem in str(e.value), str(e.value)
    err = refuses(cli.main, ["check", root, "--task", "inat18"], culprit, capsys)
    assert problem in err
    if in_json:  # the lists are never written from a faulty file, and the old ones stay
        err = refuses(cli.main, ["inat18-meta", root], culprit, capsys, watch=[str(root)])
        assert problem in err


def test_the_runner_refuses_a_root_without_lists(tmp_path, demo_root, capsys):
    root = tmp_path / "data"
    shutil.copytree(os.path.join(demo_root, validate.INAT18), root / validate.INAT18)
    shutil.rmtree(root / validate.INAT18 / "meta")
    argv = ["--config", config_path("mmpretrain", "linear-stages_r50_inat18_quick.py"), "--data-root", root,
            "--work-dir", tmp_path / "work"]
    refuses(partial(entry, linear.main), argv, "inat18-meta", capsys, watch=[str(tmp_path)])
    assert not (tmp_path / "work").exists()


def test_no_published_number_is_borrowed():
    p = protocols.get("linear-stages-inat18")
    assert p.published == {} and p.metrics == tuple(f"feat{i}/top1" for i in range(1, 6))


@pytest.mark.slow
def test_suite_runs_the_task_on_the_builtin_data(tmp_path, demo_root):
    from transfer import run_suite

    out = tmp_path / "suite"
    assert run_suite.main(["--task", "linear-stages-inat18", "--data", demo_root, "--quick", "--out", str(out)]) == 0
    res = json.load(open(out / "results.json"))
    rows = {r["metric"]: r for r in res["summary"] if r["task"] == "linear-stages-inat18"}
    assert sorted(rows) == [f"feat{i}/top1" for i in range(1, 6)]
    assert all(0 <= r["mean"] <= 100 and r["published"] is None for r in rows.values())
    run = next(r for r in res["runs"] if r["task"] == "linear-stages-inat18")
    assert run["config"] == "configs/mmpretrain/linear-stages_r50_inat18_quick.py"
    fp = run["fingerprint"]
    assert fp["recipe"] == "mhead_inat18" and "num_classes: 6 (protocol 8142)" in fp["deviations"]
    assert "linear-stages-inat18" in (out / "results.md").read_text()
    assert torch.load(next(out.glob("linear-stages-inat18/seed0/epoch_*.pth")), map_location="cpu",
                      weights_only=False)["state_dict"]["head.fcs.0.weight"].shape[0] == 6
