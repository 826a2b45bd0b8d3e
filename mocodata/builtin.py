"""Built-in data sets, written in exactly the on-disk formats of the real ones.

    python -m mocodata make-demo OUT/ [--seed 0] [--scale 1.0]
    python -m mocodata check ROOT [--task voc|coco|seg|imagenet]

Layout under OUT/ (the same layout a user's real data root has; see README):
    VOC2007/, VOC2012/       Annotations/*.xml, JPEGImages/*.jpg, ImageSets/Main/*.txt
    VOC2012/                 + SegmentationClass/*.png, SegmentationClassAug/*.png,
                               ImageSets/Segmentation/{train,aug,val}.txt
    coco/                    annotations/instances_{train,val}2017.json, train2017/, val2017/
    imagenet/                train/<class>/*.jpg, val/<class>/*.jpg
    ADEChallengeData2016/    images/{training,validation}/*.jpg, annotations/.../*.png (0 = unlabelled)
    cityscapes/              leftImg8bit/{train,val}/<city>/*_leftImg8bit.png,
                               gtFine/{train,val}/<city>/*_gtFine_labelTrainIds.png (255 = ignore)
    iNaturalist2018/         train_val2018/<supercategory>/<category id>/<hex>.jpg, {train,val}2018.json,
                               meta/{train,val}.txt (python -m mocodata inat18-meta)
Generation is deterministic from the seed; a finished set is cached and re-used when its
parameters match (OUT/params.json is written last).
"""
import glob
import json
import os
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image
from pycocotools import mask as mask_util

from mocodata import inat, scenes, validate
from mocodata.validate import DataError
from mocodata.classes import VOC_CLASSES as CLASSES


@dataclass
class DemoSizes:
    """Number of images per split; the defaults keep `make demo` within minutes on 2 cores."""
    voc07_trainval: int = 48
    voc07_test: int = 24
    voc12_trainval: int = 24
    coco_train: int = 48
    coco_val: int = 24
    seg_train: int = 32
    seg_aug: int = 16
    seg_val: int = 16
    seg_ade_train: int = 16  # ADE20K layout (the "seg" prefix: scaled() scales it)
    seg_ade_val: int = 8
    seg_city_train: int = 12  # Cityscapes layout, 2 cities
    seg_city_val: int = 6
    imagenet_classes: int = 10
    imagenet_train_per_class: int = 24
    imagenet_val_per_class: int = 6
    inat_classes: int = 6  # iNaturalist 2018 layout (categories 0..5 of two supercategories)
    inat_train_per_class: int = 8
    inat_val_per_class: int = 3
    image_min: int = 128
    image_max: int = 192
    seed: int = 0

    def scaled(self, s):
        counts = {k: max(2, int(round(v * s))) for k, v in asdict(self).items()
                  if k.startswith(("voc", "coco", "seg", "imagenet_t", "imagenet_v", "inat_t", "inat_v"))}
        return DemoSizes(**{**asdict(self), **counts})


def voc_palette():
    """The PASCAL VOC colour map (bit-interleaved), as a flat list of 768 values."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def save_label_png(path, label):
    im = Image.fromarray(label.astype(np.uint8), mode="P")
    im.putpalette(voc_palette())
    im.save(path)


def random_size(rng, sizes):
    return [int(v) for v in rng.integers(sizes.image_min, sizes.image_max + 1, 2)]


def voc_xml(image_id, folder, h, w, objects, rng):
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = folder
    ET.SubElement(root, "filename").text = image_id + ".jpg"
    size = ET.SubElement(root, "size")
    for k, v in (("width", w), ("height", h), ("depth", 3)):
        ET.SubElement(size, k).text = str(v)
    ET.SubElement(root, "segmented").text = "0"
    for o in objects:
        x0, y0, x1, y1 = scenes.mask_box(o["mask"])
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = CLASSES[o["label"]]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        # VOC marks hard objects 'difficult'; the evaluator ignores them: small ones here
        small = (x1 - x0) * (y1 - y0) < 0.01 * h * w
        ET.SubElement(obj, "difficult").text = "1" if small and rng.random() < 0.5 else "0"
        box = ET.SubElement(obj, "bndbox")
        # VOC boxes are 1-based and inclusive
        for k, v in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
            ET.SubElement(box, k).text = str(int(v))
    return ET.ElementTree(root)


def write_voc_detection(root, year, splits, sizes, rng):
    base = os.path.join(root, f"VOC{year}")
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    for split, n in splits.items():
        ids = [f"{year}_{split}_{i:06d}" for i in range(n)]
        for i, image_id in enumerate(ids):
            h, w = random_size(rng, sizes)
            img, objects = scenes.draw_scene(rng, h, w, first_label=i % len(CLASSES))
            Image.fromarray(img).save(os.path.join(base, "JPEGImages", image_id + ".jpg"), quality=92)
            voc_xml(image_id, f"VOC{year}", h, w, objects, rng).write(
                os.path.join(base, "Annotations", image_id + ".xml"))
        with open(os.path.join(base, "ImageSets/Main", split + ".txt"), "w") as f:
            f.write("\n".join(ids) + "\n")


def coco_annotation(ann_id, image_id, o, rng):
    """One COCO instance: a polygon for most objects, an uncompressed-RLE crowd region for some."""
    m = np.asfortranarray(o["mask"].astype(np.uint8))
    rle = mask_util.encode(m)
    x0, y0, x1, y1 = scenes.mask_box(o["mask"])
    ann = {"id": ann_id, "image_id": image_id, "category_id": o["label"] + 1,
           "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float(mask_util.area(rle)), "iscrowd": 0}
    polygons = mask_polygons(o["mask"]) if rng.random() > 0.1 else []
    if polygons:
        ann["segmentation"] = polygons
    else:  # crowd regions are stored as uncompressed RLE, as in COCO's own files
        ann["iscrowd"] = 1
        ann["segmentation"] = {"counts": rle_counts(m), "size": list(m.shape)}
    return ann


def rle_counts(m):
    """Uncompressed COCO RLE counts (column-major runs, starting with zeros)."""
    flat = m.flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    return ([0] + counts) if flat[0] == 1 else counts


def mask_polygons(mask):
    """Polygons (COCO [x0, y0, x1, y1, ...]) tracing the mask's outer contours."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
    return [p for p in polys if len(p) >= 6]


def write_coco(root, sizes, rng):
    base = os.path.join(root, "coco")
    os.makedirs(os.path.join(base, "annotations"), exist_ok=True)
    categories = [{"id": i + 1, "name": c, "supercategory": "shape"} for i, c in enumerate(CLASSES)]
    ann_id = 1
    for split, n in (("train2017", sizes.coco_train), ("val2017", sizes.coco_val)):
        os.makedirs(os.path.join(base, split), exist_ok=True)
        images, anns = [], []
        for i in range(n):
            image_id = (1 if split == "train2017" else 100000) + i
            h, w = random_size(rng, sizes)
            img, objects = scenes.draw_scene(rng, h, w, first_label=i % len(CLASSES))
            name = f"{image_id:012d}.jpg"
            Image.fromarray(img).save(os.path.join(base, split, name), quality=92)
            images.append({"id": image_id, "file_name": name, "height": h, "width": w})
            for o in objects:
                anns.append(coco_annotation(ann_id, image_id, o, rng))
                ann_id += 1
        data = {"info": {"description": "moco-transfer built-in COCO-format set"}, "licenses": [],
                "images": images, "annotations": anns, "categories": categories}
        with open(os.path.join(base, "annotations", f"instances_{split}.json"), "w") as f:
            json.dump(data, f)


def seg_label(h, w, objects):
    """VOC semantic label map: 0 background, class+1 inside objects, 255 on object borders."""
    import cv2

    label = np.zeros((h, w), np.uint8)
    border = np.zeros((h, w), bool)
    for o in objects:
        label[o["mask"]] = o["label"] + 1
        m = o["mask"].astype(np.uint8)
        border |= (cv2.dilate(m, np.ones((3, 3), np.uint8)) - cv2.erode(m, np.ones((3, 3), np.uint8))) > 0
    label[border] = 255
    return label


def write_voc_segmentation(root, sizes, rng):
    base = os.path.join(root, "VOC2012")
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationClassAug", "ImageSets/Segmentation"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    splits = {"train": sizes.seg_train, "aug": sizes.seg_aug, "val": sizes.seg_val}
    for split, n in splits.items():
        ids = [f"2012_seg{split}_{i:06d}" for i in range(n)]
        label_dir = "SegmentationClassAug" if split == "aug" else "SegmentationClass"
        for i, image_id in enumerate(ids):
            h, w = random_size(rng, sizes)
            img, objects = scenes.draw_scene(rng, h, w, first_label=i % len(CLASSES))
            Image.fromarray(img).save(os.path.join(base, "JPEGImages", image_id + ".jpg"), quality=92)
            save_label_png(os.path.join(base, label_dir, image_id + ".png"), seg_label(h, w, objects))
        with open(os.path.join(base, "ImageSets/Segmentation", split + ".txt"), "w") as f:
            f.write("\n".join(ids) + "\n")


def ade_label(h, w, objects):
    """ADE20K annotation: 1 for the background ("wall"), 2 + class inside objects, 0 (unlabelled,
    ignored by reduce_zero_label) on object borders."""
    label = seg_label(h, w, objects).astype(np.int32)
    return np.where(label == 255, 0, label + 1).astype(np.uint8)


def write_ade20k(root, sizes, rng):
    base = os.path.join(root, "ADEChallengeData2016")
    for split, n in (("training", sizes.seg_ade_train), ("validation", sizes.seg_ade_val)):
        for sub in ("images", "annotations"):
            os.makedirs(os.path.join(base, sub, split), exist_ok=True)
        for i in range(n):
            name = f"ADE_{'train' if split == 'training' else 'val'}_{i + 1:08d}"
            h, w = random_size(rng, sizes)
            img, objects = scenes.draw_scene(rng, h, w, first_label=i % len(CLASSES))
            Image.fromarray(img).save(os.path.join(base, "images", split, name + ".jpg"), quality=92)
            Image.fromarray(ade_label(h, w, objects)).save(os.path.join(base, "annotations", split, name + ".png"))


def city_label(h, w, objects):
    """Cityscapes labelTrainIds: 0 ("road") for the background, 1 + class % 18 inside objects
    (19 train ids), 255 on object borders."""
    label = seg_label(h, w, objects).astype(np.int32)
    out = np.where(label == 0, 0, 1 + (label - 1) % 18)
    return np.where(label == 255, 255, out).astype(np.uint8)


def write_cityscapes(root, sizes, rng):
    base = os.path.join(root, "cityscapes")
    for split, n, cities in (("train", sizes.seg_city_train, ("aachen", "bochum")),
                             ("val", sizes.seg_city_val, ("frankfurt", "lindau"))):
        for i in range(n):
            city = cities[i % 2]
            stem = f"{city}_{i:06d}_000019"
            h = random_size(rng, sizes)[0]
            img, objects = scenes.draw_scene(rng, h, 2 * h, first_label=i % len(CLASSES))  # 2:1, as 2048x1024
            for sub, suffix, arr in (("leftImg8bit", "_leftImg8bit.png", img),
                                     ("gtFine", "_gtFine_labelTrainIds.png", city_label(h, 2 * h, objects))):
                os.makedirs(os.path.join(base, sub, split, city), exist_ok=True)
                Image.fromarray(arr).save(os.path.join(base, sub, split, city, stem + suffix))


def write_imagenet(root, sizes, rng):
    """ImageFolder train/ and val/: classes told apart by shape and texture, not by colour. The pictures
    come from a generator of their own, so that changing them never changes the sets drawn after them
    (`rng` is left untouched)."""
    own = np.random.default_rng([sizes.seed, 15])
    for split, n in (("train", sizes.imagenet_train_per_class), ("val", sizes.imagenet_val_per_class)):
        for c in range(sizes.imagenet_classes):
            d = os.path.join(root, "imagenet", split, CLASSES[c])
            os.makedirs(d, exist_ok=True)
            for i in range(n):
                img = scenes.centred_object(own, 96, c)
                Image.fromarray(img).save(os.path.join(d, f"{CLASSES[c]}_{i:05d}.jpg"), quality=92)


def write_inat18(root, sizes):
    """iNaturalist 2018's layout: images under train_val2018/<supercategory>/<category id>/ named by a hex
    digest, train2018.json and val2018.json with the official keys (visipedia/inat_comp 2018 README), ids
    of val after train's as in the official files, then the meta/ lists made by `inat.write_meta`. Its own
    generator, as write_imagenet."""
    own = np.random.default_rng([sizes.seed, 18])
    base = os.path.join(root, validate.INAT18)
    supers = ("Plantae", "Aves")
    categories = [{"id": c, "name": f"species {c}", "supercategory": supers[c % 2], "kingdom": supers[c % 2]}
                  for c in range(sizes.inat_classes)]
    image_id = 0
    for split, n in (("train", sizes.inat_train_per_class), ("val", sizes.inat_val_per_class)):
        images, anns = [], []
        for c in range(sizes.inat_classes):
            folder = f"{validate.INAT18_IMAGES}{supers[c % 2]}/{c}"
            os.makedirs(os.path.join(base, folder), exist_ok=True)
            for _ in range(n):
                name = f"{folder}/{own.bytes(16).hex()}.jpg"
                Image.fromarray(scenes.centred_object(own, 96, c)).save(os.path.join(base, name), quality=92)
                images.append({"id": image_id, "width": 96, "height": 96, "file_name": name, "license": 0,
                               "rights_holder": "moco-transfer built-in"})
                anns.append({"id": image_id, "image_id": image_id, "category_id": c})
                image_id += 1
        data = {"info": {"year": 2018, "description": "moco-transfer built-in iNaturalist 2018-format set"},
                "images": images, "categories": categories, "annotations": anns, "licenses": []}
        with open(os.path.join(base, f"{split}2018.json"), "w") as f:
            json.dump(data, f)
    inat.write_meta(root)


def make_demo(out, sizes=None):
    """Writes every built-in set under `out` (or re-uses it when the parameters match). Builds at
    once into the same folder wait for each other (a lock on the folder above it), then re-use the set."""
    sizes = sizes or DemoSizes()
    params = {"version": 5, **asdict(sizes)}
    if same_params(out, params):
        return out
    check_replaceable(out)
    base = os.path.normpath(os.path.abspath(out))
    os.makedirs(os.path.dirname(base), exist_ok=True)
    with build_lock(os.path.dirname(base), out):
        if same_params(out, params):  # the build we waited for wrote it
            return out
        check_replaceable(out)
        build(out, base, sizes, params)
    return out


def check_replaceable(out):
    """Only an earlier built-in set (its params.json) or an empty folder is ever replaced."""
    if os.path.exists(out) and not (os.path.isdir(out) and (os.path.exists(os.path.join(out, "params.json"))
                                                            or not os.listdir(out))):
        raise DataError(out, "holds files that are not a built-in data set; give a new or empty folder")


def same_params(out, params):
    path = os.path.join(out, "params.json")
    return os.path.exists(path) and json.load(open(path)) == params


@contextmanager
def build_lock(parent, out):
    """An exclusive flock on the parent folder for the build (no lock file left behind; the kernel
    drops it if the process dies). Not mococore's lock_folder: a second build waits here and then reuses the
    first one's set where lock_folder refuses, and the lock cannot be a file inside OUT, which the build
    replaces whole."""
    import fcntl

    fd = os.open(parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            print(f"waiting for another process building the built-in data in {out} ...", file=sys.stderr)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def build(out, base, sizes, params):
    for old in glob.glob(glob.escape(base) + ".partial*"):  # killed builds' leftovers (we hold the lock)
        shutil.rmtree(old, ignore_errors=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(base) + ".partial-", dir=os.path.dirname(base))
    rng = np.random.default_rng(sizes.seed)
    write_voc_detection(tmp, 2007, {"trainval": sizes.voc07_trainval, "test": sizes.voc07_test}, sizes, rng)
    write_voc_detection(tmp, 2012, {"trainval": sizes.voc12_trainval}, sizes, rng)
    write_voc_segmentation(tmp, sizes, rng)
    write_coco(tmp, sizes, rng)
    write_imagenet(tmp, sizes, rng)
    write_ade20k(tmp, sizes, rng)
    write_cityscapes(tmp, sizes, rng)
    write_inat18(tmp, sizes)
    with open(os.path.join(tmp, "params.json"), "w") as f:
        json.dump(params, f, indent=1)
    os.chmod(tmp, 0o755)  # mkdtemp's 0700 would keep the set from other users
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)  # a killed run leaves only its .partial-* folder, never a half set


def default_demo_root():
    return os.environ.get("MOCO_DEMO_DATA", os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), ".cache", "demo-data"))
