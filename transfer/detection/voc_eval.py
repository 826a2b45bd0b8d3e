"""PASCAL VOC detection AP with detectron2's numbers, the overlaps computed once per class.

detectron2's PascalVOCDetectionEvaluator writes one file per class, then runs py-faster-rcnn's
`voc_eval` for each class and each IoU threshold 0.50..0.95 (200 runs for VOC): every run
rebuilds that class's ground truth from all 4,952 images and walks the sorted detections one by
one in Python, for an overlap that does not depend on the threshold. Here each class is prepared
once (its ground truth, its detections parsed from the same strings and sorted by the same
`np.argsort(-confidence)`, each detection's best overlap and best ground-truth box, vectorised
with the same float64 formula and the same +1 pixel convention); each threshold then only
decides which detections are true positives: the first, in score order, above the threshold on
each non-difficult box (later ones are false positives, those on difficult boxes count as
neither). Precision, recall and AP are then detectron2's own `voc_ap`, on arrays equal to the
ones `voc_eval` builds. tests/test_voc_eval.py checks AP, AP50, AP75 and per-class AP against
detectron2 to 1e-9 (including ties in score, empty images, difficult objects, classes without
detections or without ground truth). tools/bench_eval.py times both at VOC07 test size (4,952
images, 15k objects, 30 detections per image; the figures: README, Benchmarks).

Same interface as detectron2's evaluator: `FastPascalVOCDetectionEvaluator(dataset_name)`,
process/evaluate, `{"bbox": {"AP", "AP50", "AP75"}}`; the per-class APs are also kept in
`evaluator.per_class` (class name -> {"AP", "AP50", "AP75"}) and logged.

Box coordinates are read as numbers, not only integers: detectron2's loader
(detectron2/data/datasets/pascal_voc.py) reads `<xmin>20.0</xmin>`, as many export tools write
it, with float(), while its evaluator's parse_rec (detectron2/evaluation/pascal_voc_evaluation.py)
calls int() on it and stops after the whole training. On integer coordinates both read the same.
"""
import xml.etree.ElementTree as ET
from collections import OrderedDict, defaultdict
from functools import lru_cache

import numpy as np
from detectron2.evaluation import PascalVOCDetectionEvaluator
from detectron2.evaluation.pascal_voc_evaluation import voc_ap
from detectron2.utils import comm
from detectron2.utils.file_io import PathManager
from tabulate import tabulate

THRESHOLDS = tuple(range(50, 100, 5))  # detectron2's IoU thresholds, in percent
PAIRS_PER_CHUNK = 1 << 18  # detection x ground-truth overlaps computed at once (8 MB of boxes)


class FastPascalVOCDetectionEvaluator(PascalVOCDetectionEvaluator):
    """detectron2's PascalVOCDetectionEvaluator (same process(), same numbers), a faster evaluate()."""

    def evaluate(self):
        all_predictions = comm.gather(self._predictions, dst=0)
        if not comm.is_main_process():
            return
        predictions = defaultdict(list)
        for predictions_per_rank in all_predictions:
            for clsid, lines in predictions_per_rank.items():
                predictions[clsid].extend(lines)
        del all_predictions

        self._logger.info(
            f"Evaluating {self._dataset_name} using {2007 if self._is_2007 else 2012} metric. "
            "Note that results do not use the official Matlab API.")
        gt = GroundTruth(self._image_set_path, self._anno_file_template, self._class_names)
        aps = defaultdict(list)  # iou -> ap per class, as detectron2 builds it
        self.per_class = OrderedDict()
        for cls_id, cls_name in enumerate(self._class_names):
            per_thresh = class_aps(gt, cls_name, predictions.get(cls_id, []), self._is_2007)
            for thresh, ap in zip(THRESHOLDS, per_thresh):
                aps[thresh].append(ap * 100)
            self.per_class[cls_name] = {"AP": np.mean([ap * 100 for ap in per_thresh]),
                                        "AP50": per_thresh[0] * 100, "AP75": per_thresh[5] * 100}
        self._logger.info("Per-class AP:\n" + tabulate(
            [(name, v["AP"], v["AP50"], v["AP75"]) for name, v in self.per_class.items()],
            headers=["category", "AP", "AP50", "AP75"], tablefmt="pipe", floatfmt=".3f", numalign="left"))

        ret = OrderedDict()
        mAP = {iou: np.mean(x) for iou, x in aps.items()}
        ret["bbox"] = {"AP": np.mean(list(mAP.values())), "AP50": mAP[50], "AP75": mAP[75]}
        return ret


class GroundTruth:
    """The image set's boxes, per class: what voc_eval's `class_recs` holds, as arrays.

    For class c: `boxes[c]` (G, 4) float64 and `difficult[c]` (G,) bool, image after image in the
    image-set order and in file order within an image (voc_eval's argmax breaks ties by that
    order); image i's boxes are rows `start[c][i]:start[c][i] + count[c][i]`. `npos[c]` counts the
    non-difficult boxes over the image-set lines, as voc_eval does (a repeated line counts twice).
    """

    def __init__(self, image_set_path, anno_template, class_names):
        with PathManager.open(image_set_path, "r") as f:
            names = [x.strip() for x in f.readlines()]
        self.index = {}
        for name in names:
            self.index.setdefault(name, len(self.index))
        lines_per_image = np.bincount([self.index[n] for n in names], minlength=len(self.index))
        rows = defaultdict(lambda: ([], [], []))  # class -> (image index, bbox, difficult)
        for name, i in self.index.items():
            for obj in parse_rec(anno_template.format(name)):
                r = rows[obj["name"]]
                r[0].append(i)
                r[1].append(obj["bbox"])
                r[2].append(obj["difficult"])
        self.boxes, self.difficult, self.start, self.count, self.npos = {}, {}, {}, {}, {}
        n = len(self.index)
        for c in set(class_names) | set(rows):
            image, bbox, difficult = rows[c] if c in rows else ([], [], [])
            self.boxes[c] = np.array(bbox, dtype=float).reshape(-1, 4)
            self.difficult[c] = np.array(difficult).astype(bool)
            self.count[c] = np.bincount(np.array(image, dtype=np.int64), minlength=n)
            self.start[c] = np.concatenate(([0], np.cumsum(self.count[c])[:-1]))
            nondifficult = np.bincount(np.array(image, dtype=np.int64), weights=~self.difficult[c], minlength=n)
            self.npos[c] = int(np.dot(lines_per_image, nondifficult.astype(np.int64)))


@lru_cache(maxsize=None)
def parse_rec(filename):
    """detectron2's parse_rec for what the evaluation uses (name, difficult, bbox), cached the same
    way, with the coordinates read by float() as its loader reads them."""
    with PathManager.open(filename) as f:
        tree = ET.parse(f)
    return [{"name": obj.find("name").text, "difficult": int(obj.find("difficult").text),
             "bbox": [float(obj.find("bndbox").find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")]}
            for obj in tree.findall("object")]


def parse_detections(lines):
    """voc_eval's reading of the result lines "image score x0 y0 x1 y1": (image ids, scores, boxes)."""
    n = len(lines)
    tokens = " ".join(lines).split(" ")
    if len(tokens) != 6 * n:  # not six fields a line (none, or odd image ids): voc_eval's own reading
        split = [x.strip().split(" ") for x in lines]
        return ([x[0] for x in split], np.array([float(x[1]) for x in split]),
                np.array([[float(z) for z in x[2:]] for x in split]).reshape(-1, 4))
    image_ids = tokens[0::6]
    confidence = np.fromiter(map(float, tokens[1::6]), dtype=float, count=n)
    coords = [np.fromiter(map(float, tokens[k::6]), dtype=float, count=n) for k in range(2, 6)]
    return image_ids, confidence, np.stack(coords, axis=1).reshape(-1, 4)


def best_overlaps(gt, cls_name, image, bb):
    """For each detection (image index, box): voc_eval's `ovmax` and `jmax` (a row of the class's
    boxes), with its float64 formula; -inf where the image has no box of this class."""
    boxes, start, count = gt.boxes[cls_name], gt.start[cls_name][image], gt.count[cls_name][image]
    nd = len(image)
    ovmax, jmax = np.full(nd, -np.inf), np.zeros(nd, dtype=np.int64)
    width = int(count.max()) if nd else 0
    if width == 0:
        return ovmax, jmax
    cols = np.arange(width)
    step = max(1, PAIRS_PER_CHUNK // width)
    for s in range(0, nd, step):
        sl = slice(s, s + step)
        valid = cols < count[sl, None]
        g = boxes[np.where(valid, start[sl, None] + cols, 0)]  # (n, width, 4)
        d = bb[sl, None, :]
        ixmin = np.maximum(g[..., 0], d[..., 0])
        iymin = np.maximum(g[..., 1], d[..., 1])
        ixmax = np.minimum(g[..., 2], d[..., 2])
        iymax = np.minimum(g[..., 3], d[..., 3])
        iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
        ih = np.maximum(iymax - iymin + 1.0, 0.0)
        inters = iw * ih
        uni = ((d[..., 2] - d[..., 0] + 1.0) * (d[..., 3] - d[..., 1] + 1.0)
               + (g[..., 2] - g[..., 0] + 1.0) * (g[..., 3] - g[..., 1] + 1.0) - inters)
        with np.errstate(divide="ignore", invalid="ignore"):
            overlaps = inters / uni
        overlaps[~valid] = -np.inf
        has_gt = count[sl] > 0
        ovmax[sl] = np.where(has_gt, overlaps.max(axis=1), -np.inf)
        jmax[sl] = np.where(has_gt, start[sl] + overlaps.argmax(axis=1), 0)
    return ovmax, jmax


def class_aps(gt, cls_name, lines, use_07_metric):
    """voc_eval(..., cls_name, ovthresh=t / 100, use_07_metric) for every t in THRESHOLDS."""
    image_ids, confidence, bb = parse_detections(lines)
    sorted_ind = np.argsort(-confidence)  # voc_eval's sort, ties included
    bb = bb[sorted_ind, :]
    image = np.array([gt.index[image_ids[x]] for x in sorted_ind], dtype=np.int64)
    ovmax, jmax = best_overlaps(gt, cls_name, image, bb)
    difficult = gt.difficult[cls_name]
    hit_difficult = difficult[jmax] if len(difficult) else np.zeros(len(jmax), dtype=bool)
    npos = float(gt.npos[cls_name])
    out = []
    for thresh in THRESHOLDS:
        above = ovmax > thresh / 100.0
        candidates = np.flatnonzero(above & ~hit_difficult)
        # the first detection above the threshold on a box takes it; later ones are false positives
        _, first = np.unique(jmax[candidates], return_index=True)
        tp = np.zeros(len(image))
        tp[candidates[first]] = 1.0
        fp = (~above).astype(float)
        fp[candidates] = 1.0 - tp[candidates]
        fp = np.cumsum(fp)
        tp = np.cumsum(tp)
        with np.errstate(divide="ignore", invalid="ignore"):  # npos 0: voc_eval's nan recall
            rec = tp / npos
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        out.append(voc_ap(rec, prec, use_07_metric))
    return out
