"""Checks a data root before any training starts: every problem names the file and what is wrong.

The checks are cheap enough for the real sets (no full decode): the image header gives its
size, and the file's last bytes show whether a JPEG/PNG was cut short.
"""
import json
import os
import xml.etree.ElementTree as ET

from PIL import Image

from mococore.errors import UserError
from mococore.images import IMAGE_EXTS, image_folder as list_image_folder
from mocodata.classes import VOC_CLASSES as CLASSES


class DataError(UserError):
    """A data set problem: str(e) is '<path>: <what is wrong>'."""

    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


def need_dir(path, what):
    if not os.path.isdir(path):
        raise DataError(path, f"missing folder ({what})")


def need_file(path, what):
    if not os.path.isfile(path):
        raise DataError(path, f"missing file ({what})")


MIN_SIDE = 8  # smaller images break the frameworks' resize and crop steps


def image_size(path):
    """(width, height) of a readable, complete image as the loaders see it (EXIF rotation applied,
    as detectron2 and MMCV do); raises DataError otherwise."""
    need_file(path, "image")
    try:
        with Image.open(path) as im:
            size = im.size
            fmt = im.format
            rotated = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # EXIF orientation: a quarter turn
    except Exception as e:
        raise DataError(path, f"unreadable image ({type(e).__name__}: {e})") from None
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 16))
        tail = f.read()
    # a complete JPEG ends with the EOI marker, a complete PNG with its IEND chunk
    if (fmt == "JPEG" and b"\xff\xd9" not in tail) or (fmt == "PNG" and b"IEND" not in tail):
        raise DataError(path, "truncated image (the file ends before the image data does)")
    if min(size) < MIN_SIDE:
        raise DataError(path, f"a {size[0]}x{size[1]} image; images must be at least {MIN_SIDE} pixels on each side")
    return size[::-1] if rotated else size


def progress(items, what):
    """A bar for the real sets (thousands of files); silent for the built-in ones."""
    from tqdm import tqdm

    return tqdm(items, desc=f"checking {what}", unit="img", mininterval=5, disable=len(items) < 2000)


def read_ids(path):
    """The ids of a split list, one per line. A blank line is refused: the VOC evaluator and MMSeg
    read it as an image called ''. So is an id listed twice: the loaders train on it twice and
    the VOC evaluator counts its objects twice."""
    need_file(path, "split list")
    lines = open(path).read().splitlines()
    blank = [i + 1 for i, line in enumerate(lines) if not line.strip()]
    if blank:
        raise DataError(path, f"line {blank[0]} is blank ({len(blank)} blank lines); remove them")
    if not lines:
        raise DataError(path, "empty split list")
    ids, first = [line.split()[0] for line in lines], {}
    for i, image_id in enumerate(ids):
        if image_id in first:
            raise DataError(path, f"line {i + 1} names '{image_id}' again (first on line {first[image_id] + 1}); "
                                  "each image once")
        first[image_id] = i
    return ids


def check_voc_split(dirname, split, classes=CLASSES):
    """One VOC detection split: its list, every XML, every image named by it. Returns the count."""
    need_dir(dirname, "PASCAL VOC year folder, e.g. VOC2007")
    ids = read_ids(os.path.join(dirname, "ImageSets", "Main", split + ".txt"))
    for image_id in progress(ids, f"{os.path.basename(dirname)} {split}"):
        xml_path = os.path.join(dirname, "Annotations", image_id + ".xml")
        need_file(xml_path, f"annotation of '{image_id}' listed in {split}.txt")
        try:
            tree = ET.parse(xml_path)
            w = int(tree.findtext("size/width"))
            h = int(tree.findtext("size/height"))
        except (ET.ParseError, TypeError, ValueError) as e:
            raise DataError(xml_path, f"malformed VOC XML ({e})") from None
        img_path = os.path.join(dirname, "JPEGImages", image_id + ".jpg")
        if image_size(img_path) != (w, h):
            raise DataError(xml_path, f"size {w}x{h} differs from its image's {image_size(img_path)} (as loaded, "
                                      "EXIF rotation applied): fix the XML or the image")
        for obj in tree.findall("object"):
            name = obj.findtext("name")
            if name not in classes:
                raise DataError(xml_path, f"class '{name}' is not one of the {len(classes)} classes")
            if obj.findtext("difficult") not in ("0", "1"):  # the VOC evaluator reads int(difficult)
                raise DataError(xml_path, f"object '{name}' has no <difficult>0|1</difficult>; add it")
            try:
                x0, y0, x1, y1 = (float(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax"))
            except (TypeError, ValueError):
                raise DataError(xml_path, f"object '{name}' has a malformed bndbox") from None
            if not (1 <= x0 <= x1 <= w and 1 <= y0 <= y1 <= h):
                raise DataError(xml_path, f"box ({x0:g},{y0:g},{x1:g},{y1:g}) of '{name}' is outside the {w}x{h} image")
    return len(ids)


def check_coco(json_path, image_dir):
    """A COCO instances file and its image folder. Returns the number of images."""
    need_file(json_path, "COCO annotation file")
    need_dir(image_dir, "COCO image folder")
    try:
        data = json.load(open(json_path))
        images, anns, cats = data["images"], data["annotations"], data["categories"]
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(json_path, f"malformed JSON ({e})") from None
    except (KeyError, TypeError) as e:
        raise DataError(json_path, f"not a COCO instances file (missing {e})") from None
    cat_ids = {c["id"] for c in cats}
    # duplicate image ids: pycocotools keeps one of them, the other is never evaluated;
    # duplicate annotation ids: detectron2's load_coco_json asserts before training
    for what, items in (("image", images), ("annotation", anns)):
        dup = duplicate([x.get("id") for x in items])
        if dup is not None:
            raise DataError(json_path, f"{what} id {dup[0]} appears {dup[1]} times in '{what}s'; ids must be unique")
    if images and not anns:  # detectron2 drops images without annotations from training; AP needs ground truth
        raise DataError(json_path, f"{len(images)} images but no annotations: nothing to train on or to "
                                   "evaluate against (AP is undefined)")
    sizes = {}
    for im in progress(images, os.path.basename(json_path)):
        path = os.path.join(image_dir, im["file_name"])
        w, h = image_size(path)
        if (w, h) != (im["width"], im["height"]):
            raise DataError(path, f"size {w}x{h} differs from {im['width']}x{im['height']} in {json_path}")
        sizes[im["id"]] = (w, h)
    for a in anns:
        where = f"{json_path} (annotation {a.get('id')})"
        if a["image_id"] not in sizes:
            raise DataError(where, f"image_id {a['image_id']} is not in 'images'")
        if a["category_id"] not in cat_ids:
            raise DataError(where, f"category_id {a['category_id']} is not in 'categories'")
        x, y, bw, bh = a["bbox"]
        w, h = sizes[a["image_id"]]
        if x < 0 or y < 0 or bw < 0 or bh < 0 or x + bw > w + 1 or y + bh > h + 1:
            raise DataError(where, f"bbox {a['bbox']} is outside the {w}x{h} image")
        # a polygon is x,y pairs, at least 3 points: detectron2's load_coco_json drops the others and
        # the object then trains without a mask, with only a logged warning
        for poly in a.get("segmentation") if isinstance(a.get("segmentation"), list) else ():
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
                n = len(poly) if isinstance(poly, list) else type(poly).__name__
                raise DataError(where, f"a segmentation polygon of {n} numbers; a polygon needs x,y pairs for at "
                                       "least 3 points (6 numbers or more)")
    return len(images)


def duplicate(ids):
    """(the first id listed more than once, its count) or None."""
    seen = set()
    for i in ids:
        if i in seen:
            return i, ids.count(i)
        seen.add(i)
    return None


def check_voc_seg(dirname, splits=("train", "aug", "val")):
    """VOC12aug: split lists, images, and palette label maps of the same size."""
    need_dir(dirname, "VOC2012 folder")
    n = 0
    for split in splits:
        ids = read_ids(os.path.join(dirname, "ImageSets", "Segmentation", split + ".txt"))
        label_dir = "SegmentationClassAug" if split == "aug" else "SegmentationClass"
        for image_id in progress(ids, f"VOC2012 segmentation {split}"):
            img_size = image_size(os.path.join(dirname, "JPEGImages", image_id + ".jpg"))
            label_path = os.path.join(dirname, label_dir, image_id + ".png")
            if image_size(label_path) != img_size:
                raise DataError(label_path, f"label map size {image_size(label_path)} differs from its image's {img_size}")
            check_label_values(label_path, 20)
        n += len(ids)
    return n


def check_label_values(path, max_id):
    """A one-channel 8-bit label map whose values are class ids 0..max_id or 255 (ignore)."""
    import numpy as np

    with Image.open(path) as im:
        if im.mode not in ("P", "L"):  # RGB is read as three channels; 16-bit as values over 255
            raise DataError(path, f"label map in mode {im.mode}; save it as an 8-bit palette (P) or grey (L) PNG "
                                  "of class ids")
        values = np.unique(np.asarray(im))
    bad = values[(values > max_id) & (values != 255)]
    if bad.size:
        raise DataError(path, f"label values {bad.tolist()[:5]} are neither class ids 0..{max_id} nor 255 (ignore)")


def image_folder(root):
    """([(path, class index)], classes) of an ImageFolder, or a DataError that says what is wrong."""
    if not os.path.isdir(root):
        raise DataError(root, "missing data folder (expected <root>/<class>/<image>.jpg)")
    check_class_links(root)
    samples, classes, empty = list_image_folder(root)
    if not classes:
        raise DataError(root, "no class folders (expected <root>/<class>/<image>.jpg)")
    if empty:
        raise DataError(os.path.join(root, empty[0]), f"empty class folder (no {'/'.join(IMAGE_EXTS)} images; "
                                                      f"{len(empty)} such folders)")
    return samples, classes


def check_class_links(root):
    """A class folder that links to the root or above it makes the folder walk visit everything again
    (an epoch 50x longer, every image in several classes)."""
    real = os.path.realpath(root)
    for d in sorted(os.listdir(root)):
        target = os.path.realpath(os.path.join(root, d))
        if os.path.isdir(target) and (real == target or real.startswith(target + os.sep)):
            raise DataError(os.path.join(root, d), f"class folder links to {target}, which contains the data "
                                                   "folder itself; remove the link")


def check_imagefolder(root):
    """An ImageNet-style train/<class>/*.jpg folder. Returns the number of images."""
    need_dir(root, "image folder with one sub-folder per class")
    check_class_links(root)
    files = [p for p, _ in list_image_folder(root)[0]]
    if not files:
        raise DataError(root, "no images: expected <root>/<class>/<image>.jpg")
    for f in progress(files, root):
        image_size(f)
    return len(files)


def check_voc(root):
    return (check_voc_split(os.path.join(root, "VOC2007"), "trainval")
            + check_voc_split(os.path.join(root, "VOC2012"), "trainval")
            + check_voc_split(os.path.join(root, "VOC2007"), "test"))


def check_coco_root(root):
    coco = os.path.join(root, "coco")
    return sum(check_coco(os.path.join(coco, "annotations", f"instances_{s}.json"), os.path.join(coco, s))
               for s in ("train2017", "val2017"))


def check_label_pairs(pairs, what, fix):
    """(image, label map) pairs: both readable, same size, one-channel labels. Returns the count."""
    if not pairs:
        raise DataError(what, f"no images found; {fix}")
    for img_path, label_path in progress(pairs, what):
        img_size = image_size(img_path)
        need_file(label_path, f"label map of {os.path.basename(img_path)}; {fix}")
        if image_size(label_path) != img_size:
            raise DataError(label_path, f"label map size {image_size(label_path)} differs from its image's {img_size}")
        with Image.open(label_path) as im:
            if im.mode not in ("L", "P"):
                raise DataError(label_path, f"label map is {im.mode}, not one channel of class ids; {fix}")
    return len(pairs)


def check_ade20k(root):
    """ADEChallengeData2016/{images,annotations}/{training,validation}: a .png per .jpg."""
    base = os.path.join(root, "ADEChallengeData2016")
    need_dir(base, "ADE20K (ADEChallengeData2016.zip from the MIT Scene Parsing benchmark, unzipped)")
    n = 0
    for split in ("training", "validation"):
        img_dir = os.path.join(base, "images", split)
        need_dir(img_dir, f"ADE20K {split} images")
        pairs = [(os.path.join(img_dir, f), os.path.join(base, "annotations", split, f[:-4] + ".png"))
                 for f in sorted(os.listdir(img_dir)) if f.endswith(".jpg")]
        n += check_label_pairs(pairs, img_dir, "ADE20K pairs images/<split>/X.jpg with annotations/<split>/X.png")
    return n


def check_cityscapes(root):
    """cityscapes/leftImg8bit/{train,val}/<city>/*_leftImg8bit.png with gtFine *_gtFine_labelTrainIds.png."""
    base = os.path.join(root, "cityscapes")
    fix = ("make the 19-class train-id maps with mmseg's tools/dataset_converters/cityscapes.py "
           "(or cityscapesscripts' createTrainIdLabelImgs)")
    need_dir(base, "Cityscapes (leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip, unzipped)")
    n = 0
    for split in ("train", "val"):
        img_dir = os.path.join(base, "leftImg8bit", split)
        need_dir(img_dir, f"Cityscapes {split} images, one folder per city")
        pairs = []
        for city in sorted(os.listdir(img_dir)):
            for f in sorted(os.listdir(os.path.join(img_dir, city))):
                if f.endswith("_leftImg8bit.png"):
                    label = f.replace("_leftImg8bit.png", "_gtFine_labelTrainIds.png")
                    pairs.append((os.path.join(img_dir, city, f), os.path.join(base, "gtFine", split, city, label)))
        n += check_label_pairs(pairs, img_dir, fix)
    return n


def check_train_val(root, name="imagenet"):
    """<root>/<name>/train/ and val/ with the same class folders, none empty (the class index of an image
    comes from its folder: kNN and linear evaluation). Returns the number of images."""
    dirs = [os.path.join(root, name, s) for s in ("train", "val")]
    n = sum(check_imagefolder(d) for d in dirs)
    lists = [sorted(c for c in os.listdir(d) if os.path.isdir(os.path.join(d, c))) for d in dirs]
    if lists[0] != lists[1]:
        only = sorted(set(lists[0]) ^ set(lists[1]))
        raise DataError(dirs[1], f"class folders differ from {dirs[0]} ({len(only)} in one only, e.g. {only[:3]})")
    for d in dirs:
        empty = list_image_folder(d)[2]
        if empty:
            raise DataError(os.path.join(d, empty[0]), f"empty class folder (no {'/'.join(IMAGE_EXTS)} images)")
    return n


INAT18 = "iNaturalist2018"  # the folder the official archives unpack into, under the data root
INAT18_IMAGES = "train_val2018/"  # every file_name of train2018.json and val2018.json begins with it


def read_inat(json_path):
    """([(file_name, label)] in the order of 'images', number of classes) of an iNaturalist 2018 file.
    The format is COCO's (visipedia/inat_comp 2018 README): images {id, file_name}, annotations
    {image_id, category_id}, categories {id}. The label is the category id (mmselfsup 0.x
    tools/data_converters/convert_inaturalist.py), so the ids must be 0..C-1. Linear in the number of
    images: the annotations are looked up by image id, not compared with every image."""
    need_file(json_path, "iNaturalist 2018 annotation file (train2018.json.tar.gz / val2018.json.tar.gz, unpacked)")
    try:
        data = json.load(open(json_path))
        images, anns, cats = data["images"], data["annotations"], data["categories"]
        cat_ids = sorted(c["id"] for c in cats)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(json_path, f"malformed JSON ({e})") from None
    except (KeyError, TypeError) as e:
        why = f"no {e} key" if isinstance(e, KeyError) else "another structure"
        raise DataError(json_path, f"not an iNaturalist 2018 file ({why}; expected an object with lists 'images', "
                                   "'annotations' and 'categories', each category with an 'id')") from None
    n = len(cat_ids)
    if cat_ids != list(range(n)):
        odd = [i for i in cat_ids if i not in range(n)][:3]
        raise DataError(json_path, f"category ids are not 0..{n - 1} (e.g. {odd}); the labels are the category ids, "
                                   "as in the official files")
    label = {}
    for a in anns:
        if not isinstance(a, dict) or not isinstance(a.get("image_id"), (int, str)) or "category_id" not in a:
            raise DataError(json_path, f"annotation {str(a)[:200]} has no image_id or category_id")
        cat = a["category_id"]
        if type(cat) is not int or not 0 <= cat < n:
            raise DataError(json_path, f"annotation {a}: category_id {cat!r} is out of range 0..{n - 1}")
        if a["image_id"] in label:
            raise DataError(json_path, f"annotation {a}: image {a['image_id']} has a second annotation "
                                       f"(category {label[a['image_id']]} before); one label per image")
        label[a["image_id"]] = cat
    pairs, seen = [], set()
    for im in images:
        if not (isinstance(im, dict) and isinstance(im.get("id"), (int, str)) and isinstance(im.get("file_name"), str)):
            raise DataError(json_path, f"image {str(im)[:200]} has no id or file_name")
        if im["id"] in seen:
            raise DataError(json_path, f"image {im}: id {im['id']} appears twice in 'images'; ids must be unique")
        if im["id"] not in label:
            raise DataError(json_path, f"image {im}: id {im['id']} has no annotation, so no label")
        if not im["file_name"].startswith(INAT18_IMAGES):
            raise DataError(json_path, f"image {im}: file_name does not begin with {INAT18_IMAGES} "
                                       "(the official layout: train_val2018/<supercategory>/<category>/<image>.jpg)")
        seen.add(im["id"])
        pairs.append((im["file_name"], label[im["id"]]))
    orphan = next((a for a in anns if a["image_id"] not in seen), None)
    if orphan is not None:
        raise DataError(json_path, f"annotation {orphan}: image_id {orphan['image_id']} is not in 'images'")
    if not pairs:
        raise DataError(json_path, "no images")
    return pairs, n


def read_image_list(path, num_classes):
    """[(path, label)] of an mmpretrain annotation list ('<path> <label>' a line, mmpretrain
    CustomDataset reads it with rsplit(' ', 1)); labels must be 0..num_classes-1."""
    need_file(path, "image list; write it with: python -m mocodata inat18-meta ROOT")
    out = []
    for i, line in enumerate(open(path).read().splitlines(), 1):
        name, _, label = line.rpartition(" ")
        if not name or not (label.isascii() and label.isdigit()):
            raise DataError(path, f"line {i} {line[:200]!r} is not '<path> <label>'")
        if int(label) >= num_classes:
            raise DataError(path, f"line {i} {line[:200]!r}: label {label} is out of range 0..{num_classes - 1}")
        out.append((name, int(label)))
    return out


def read_inat_splits(root):
    """({'train': [(file_name, label)], 'val': [...]}, number of classes) of ROOT/iNaturalist2018/, both
    files read and checked against each other (the same categories, no image in both)."""
    base = os.path.join(root, INAT18)
    need_dir(base, "iNaturalist 2018: train_val2018.tar.gz, train2018.json.tar.gz, val2018.json.tar.gz unpacked")
    (train, classes), (val, val_classes) = (read_inat(os.path.join(base, f"{s}2018.json")) for s in ("train", "val"))
    if val_classes != classes:
        raise DataError(os.path.join(base, "val2018.json"), f"{val_classes} categories, train2018.json has {classes}")
    both = {name for name, _ in train} & {name for name, _ in val}
    if both:
        raise DataError(os.path.join(base, "val2018.json"), f"{len(both)} images are in train2018.json too "
                                                            f"(e.g. {sorted(both)[0]}); the splits must not overlap")
    return {"train": train, "val": val}, classes


def check_inat18(root):
    """ROOT/iNaturalist2018/: both JSON files, the meta/ lists made from them (the same images and labels,
    in the same order) and every image they name. Returns the number of images."""
    base = os.path.join(root, INAT18)
    splits, classes = read_inat_splits(root)
    for split, pairs in splits.items():
        meta = os.path.join(base, "meta", f"{split}.txt")
        listed = read_image_list(meta, classes)
        if listed != pairs:
            i = next((i for i, (a, b) in enumerate(zip(listed, pairs)) if a != b), min(len(listed), len(pairs)))
            got, want = (" ".join(map(str, x[i])) if i < len(x) else "the end" for x in (listed, pairs))
            raise DataError(meta, f"line {i + 1} is '{got}', {split}2018.json gives '{want}' ({len(listed)} lines for "
                                  f"{len(pairs)} images); rewrite it: python -m mocodata inat18-meta {root}")
        for name, _ in progress(pairs, f"iNaturalist 2018 {split}"):
            need_file(os.path.join(base, name), f"image listed in {split}2018.json and meta/{split}.txt")
            image_size(os.path.join(base, name))
    return sum(len(pairs) for pairs in splits.values())


# data check name (transfer.protocols.Protocol.data) -> the check of what it reads under the root
CHECKS = {
    "voc": check_voc,
    "coco": check_coco_root,
    "seg": lambda root: check_voc_seg(os.path.join(root, "VOC2012")),
    "imagenet": lambda root: check_imagefolder(os.path.join(root, "imagenet", "train")),
    "imagenet-val": check_train_val,
    "places205": lambda root: check_train_val(root, "places205"),
    "voc07-cls": lambda root: sum(check_voc_split(os.path.join(root, "VOC2007"), s) for s in ("trainval", "test")),
    "ade20k": check_ade20k,
    "cityscapes": check_cityscapes,
    "inat18": check_inat18,
}


# what each check reads under the data root (`run_suite --task list`, README)
LAYOUTS = {
    "voc": "VOC2007/ (trainval, test), VOC2012/ (trainval)",
    "coco": "coco/annotations/instances_{train,val}2017.json, coco/{train,val}2017/",
    "seg": "VOC2012/ with SegmentationClass/, SegmentationClassAug/, ImageSets/Segmentation/{train,aug,val}.txt",
    "imagenet": "imagenet/train/<class>/",
    "imagenet-val": "imagenet/{train,val}/<class>/",
    "places205": "places205/{train,val}/<class>/",
    "voc07-cls": "VOC2007/ (trainval, test)",
    "ade20k": "ADEChallengeData2016/{images,annotations}/{training,validation}/",
    "cityscapes": "cityscapes/leftImg8bit/{train,val}/<city>/, gtFine/ with *_labelTrainIds.png",
    "inat18": "iNaturalist2018/{train,val}2018.json, train_val2018/, meta/{train,val}.txt "
              "(python -m mocodata inat18-meta)",
}


def check_task(task, root):
    """Validates what `task` reads under the data root; returns the number of images."""
    need_dir(root, "data root")
    if task not in CHECKS:
        raise ValueError(f"unknown data check '{task}' (one of {', '.join(CHECKS)})")
    return CHECKS[task](root)
