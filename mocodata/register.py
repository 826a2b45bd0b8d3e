"""Registers a data root's sets with Detectron2 under their standard names.

The real VOC/COCO sets and the built-in ones go through the same code: only the root differs
(`--data ROOT` or `$MOCO_DATA`; the built-in sets otherwise). The standard names
(`voc_2007_trainval`, `coco_2017_train`, ...) keep the configs identical to the published ones.
"""
import os

from mocodata.classes import VOC_CLASSES as CLASSES

VOC_SPLITS = {  # name: (year folder, split, year)
    "voc_2007_trainval": ("VOC2007", "trainval", 2007),
    "voc_2012_trainval": ("VOC2012", "trainval", 2012),
    "voc_2007_test": ("VOC2007", "test", 2007),
}
COCO_SPLITS = {"coco_2017_train": "train2017", "coco_2017_val": "val2017"}


def data_root(cli_value=None):
    """The data root: the CLI flag, else $MOCO_DATA, else None (use the built-in sets)."""
    return cli_value or os.environ.get("MOCO_DATA") or None


def _replace(name):
    # detectron2 registers its builtin names at import, relative to ./datasets: re-point them
    from detectron2.data import DatasetCatalog, MetadataCatalog

    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
    if name in MetadataCatalog.list():
        MetadataCatalog.remove(name)


def register_voc(root):
    from detectron2.data.datasets import register_pascal_voc

    for name, (folder, split, year) in VOC_SPLITS.items():
        _replace(name)
        register_pascal_voc(name, os.path.join(root, folder), split, year, class_names=CLASSES)


def register_coco(root):
    from detectron2.data.datasets import register_coco_instances

    for name, split in COCO_SPLITS.items():
        _replace(name)
        register_coco_instances(name, {}, os.path.join(root, "coco", "annotations", f"instances_{split}.json"),
                                os.path.join(root, "coco", split))
