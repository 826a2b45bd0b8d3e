"""The benchmarks' data, generated deterministically (no downloads): detection sets at COCO val and VOC07 test
size with their predictions (tools/bench_eval.py; written once under output/bench/ and reused), JPEGs of
ImageNet-like size and texture (tools/bench_pretrain.py, tools/bench_probes.py), and iNaturalist 2018's JSON
files at any fraction of their real size (tools/bench_inat.py).
"""
import json
import os
import pickle
import sys
import xml.etree.ElementTree as ET

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mococore.files import replace_atomically, text_writer  # noqa: E402

COCO_CAT_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
COCO_SIZES = [(480, 640), (640, 480), (427, 640), (640, 427), (426, 640), (375, 500), (500, 375), (612, 612)]
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")
VOC_CLASS_WEIGHTS = np.array([3, 3, 4, 3, 5, 2, 10, 3, 9, 2, 2, 4, 3, 3, 32, 5, 2, 3, 2, 3], dtype=float)
INAT_SUPERS = ("Plantae", "Insecta", "Aves", "Actinopterygii", "Fungi", "Reptilia", "Mollusca", "Mammalia")


def star_polygons(rng, cx, cy, r, vertices=16):
    """(m, 2 * vertices) polygons, star-shaped around (cx, cy), radius about r."""
    m = len(cx)
    ang = np.sort(rng.uniform(0, 2 * np.pi, (m, vertices)), axis=1)
    rad = r[:, None] * rng.uniform(0.55, 1.0, (m, vertices))
    aspect = np.exp(rng.normal(0, 0.35, m))[:, None]
    return np.stack([cx[:, None] + rad * np.cos(ang) * aspect, cy[:, None] + rad * np.sin(ang) / aspect], axis=2)


def clip_polygons(p, h, w):
    p = p.copy()
    p[..., 0] = np.clip(p[..., 0], 0, w)
    p[..., 1] = np.clip(p[..., 1], 0, h)
    return p


def make_coco(folder, n_images, dets_per_image, seed=0):
    """COCO-val-like ground truth (json) and detectron2-style predictions (pickle); cached (the predictions file,
    written last, says the set is whole)."""
    from pycocotools import mask as mask_util

    from mocodata.builtin import rle_counts

    gt_path, pred_path = os.path.join(folder, "instances.json"), os.path.join(folder, "predictions.pkl")
    if os.path.exists(pred_path):
        return gt_path, pred_path
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    cat_p = 1.0 / (np.arange(80) + 3.0) ** 1.1
    cat_p[0] += 1.0  # "person": a quarter of the objects, as in COCO
    cat_p /= cat_p.sum()
    image_ids = np.sort(rng.choice(600_000, n_images, replace=False)) + 1
    images, anns, predictions = [], [], []
    for image_id in image_ids.tolist():
        h, w = COCO_SIZES[rng.integers(len(COCO_SIZES))]
        images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "height": h, "width": w})
        n = min(int(rng.negative_binomial(2, 2 / 9.4)), 60)
        r = np.exp(rng.uniform(np.log(3), np.log(230), n))  # about COCO's small/medium/large mix
        cx, cy = rng.uniform(0, w, n), rng.uniform(0, h, n)
        raw = star_polygons(rng, cx, cy, r)
        polys = clip_polygons(raw, h, w)
        cats = rng.choice(80, n, p=cat_p)
        crowd = rng.random(n) < 0.01
        rles = mask_util.frPyObjects([p.reshape(-1).tolist() for p in polys], h, w) if n else []
        areas = mask_util.area(rles) if n else []
        keep = []
        for j in range(n):
            if areas[j] < 1:
                continue
            keep.append(j)
            x0, y0 = polys[j].min(axis=0)
            x1, y1 = polys[j].max(axis=0)
            ann = {"id": len(anns) + 1, "image_id": image_id, "category_id": COCO_CAT_IDS[cats[j]],
                   "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], "area": float(areas[j]),
                   "iscrowd": int(crowd[j])}
            if crowd[j]:  # COCO's crowd regions: uncompressed RLE
                m = mask_util.decode(rles[j])
                ann["segmentation"] = {"counts": rle_counts(m), "size": [h, w]}
            else:
                ann["segmentation"] = [[round(float(v), 2) for v in polys[j].reshape(-1)]]
            anns.append(ann)
        # detections: 1-3 per found object (shifted, rescaled, sometimes the wrong class), the rest
        # false positives, 100 in all, as Mask R-CNN's top-100
        src = [j for j in keep if not crowd[j] and rng.random() < 0.85]
        src = [j for j in src for _ in range(1 + int(rng.random() < 0.25) + int(rng.random() < 0.05))]
        k = len(src)
        det = raw[src] if k else np.zeros((0, 16, 2))
        rk = r[src] if k else np.zeros(0)
        centre = det.mean(axis=1, keepdims=True)
        det = (centre + (det - centre) * rng.uniform(0.85, 1.15, (k, 1, 1))
               + rng.normal(0, 0.08, (k, 1, 2)) * rk[:, None, None]
               + rng.normal(0, 0.04, (k, 16, 2)) * rk[:, None, None])
        det_cats = np.where(rng.random(k) < 0.9, cats[src] if k else [], rng.choice(80, k, p=cat_p))
        det_scores = rng.uniform(0.3, 1.0, k)
        f = max(dets_per_image - k, 0)
        fp = star_polygons(rng, rng.uniform(0, w, f), rng.uniform(0, h, f),
                           np.exp(rng.uniform(np.log(3), np.log(230), f)))
        det = clip_polygons(np.concatenate([det, fp]), h, w)
        det_cats = np.concatenate([det_cats, rng.choice(80, f, p=cat_p)]).astype(int)
        det_scores = np.concatenate([det_scores, rng.uniform(0.0, 0.6, f) ** 1.5]).astype(np.float32)
        order = np.argsort(-det_scores, kind="stable")[:dets_per_image]
        det, det_cats, det_scores = det[order], det_cats[order], det_scores[order]
        x0y0 = det.min(axis=1) + rng.normal(0, 1.0, (len(det), 2))
        x1y1 = np.maximum(det.max(axis=1) + rng.normal(0, 1.0, (len(det), 2)), x0y0 + 1)
        boxes = np.concatenate([x0y0, x1y1 - x0y0], axis=1).astype(np.float32).tolist()
        rles = mask_util.frPyObjects([p.reshape(-1).tolist() for p in det], h, w) if len(det) else []
        instances = []
        for b, c, s, rle in zip(boxes, det_cats.tolist(), det_scores.tolist(), rles):
            instances.append({"image_id": image_id, "category_id": c, "bbox": b, "score": s,
                              "segmentation": {"size": [h, w], "counts": rle["counts"].decode()}})
        predictions.append({"image_id": image_id, "instances": instances})
    categories = [{"id": c, "name": f"class{c}", "supercategory": "thing"} for c in COCO_CAT_IDS]
    gt = {"info": {"description": "tools/bench_eval.py synthetic COCO val"}, "licenses": [], "images": images,
          "annotations": anns, "categories": categories}
    replace_atomically({gt_path: text_writer(json.dumps(gt)), pred_path: pickled(predictions)})  # pred: the last
    return gt_path, pred_path


def make_voc(folder, n_images, dets_per_image, seed=0):
    """VOC07-test-like annotations (XML, image set) and detections (pickle of arrays); cached (the predictions
    file, written last, says the set is whole)."""
    base, pred_path = os.path.join(folder, "VOC2007"), os.path.join(folder, "predictions.pkl")
    if os.path.exists(pred_path):
        return base, pred_path
    os.makedirs(os.path.join(base, "Annotations"), exist_ok=True)
    os.makedirs(os.path.join(base, "ImageSets", "Main"), exist_ok=True)
    rng = np.random.default_rng(seed)
    cls_p = VOC_CLASS_WEIGHTS / VOC_CLASS_WEIGHTS.sum()
    names = [f"{i:06d}" for i in np.sort(rng.choice(np.arange(1, 9964), n_images, replace=False))]
    predictions = []
    for name in names:
        w, h = int(rng.integers(300, 501)), int(rng.integers(250, 501))
        n = 1 + int(rng.negative_binomial(2, 0.5))
        bw = np.minimum(np.exp(rng.uniform(np.log(12), np.log(w), n)), w - 1)
        bh = np.minimum(bw * np.exp(rng.normal(0, 0.4, n)), h - 1)
        x0 = 1 + rng.uniform(0, w - bw)
        y0 = 1 + rng.uniform(0, h - bh)
        gt = np.stack([x0, y0, np.minimum(x0 + bw, w), np.minimum(y0 + bh, h)], 1).astype(int)
        cats = rng.choice(20, n, p=cls_p)
        difficult = rng.random(n) < np.where(bw * bh < 0.02 * w * h, 0.5, 0.12)
        root = ET.Element("annotation")
        ET.SubElement(root, "filename").text = name + ".jpg"
        size = ET.SubElement(root, "size")
        for k, v in (("width", w), ("height", h), ("depth", 3)):
            ET.SubElement(size, k).text = str(v)
        for b, c, d in zip(gt.tolist(), cats.tolist(), difficult.tolist()):
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = VOC_CLASSES[c]
            ET.SubElement(obj, "pose").text = "Unspecified"
            ET.SubElement(obj, "truncated").text = "0"
            ET.SubElement(obj, "difficult").text = str(int(d))
            box = ET.SubElement(obj, "bndbox")
            for k, v in zip(("xmin", "ymin", "xmax", "ymax"), b):
                ET.SubElement(box, k).text = str(v)
        ET.ElementTree(root).write(os.path.join(base, "Annotations", name + ".xml"))
        # detections in detectron2's coordinates (VOC's 1-based xmin/ymin minus 1)
        src = [j for j in range(n) if rng.random() < 0.9]
        src = [j for j in src for _ in range(1 + int(rng.random() < 0.3) + int(rng.random() < 0.1))]
        k = len(src)
        g = gt[src].astype(float) - [1, 1, 0, 0] if k else np.zeros((0, 4))
        wh = np.concatenate([g[:, 2:] - g[:, :2]] * 2, axis=1)
        boxes = g + rng.normal(0, 0.08, (k, 4)) * wh
        det_cats = np.where(rng.random(k) < 0.85, cats[src] if k else [], rng.choice(20, k, p=cls_p))
        scores = rng.uniform(0.3, 1.0, k)
        f = max(dets_per_image - k, 0)
        fw, fh = np.exp(rng.uniform(np.log(8), np.log(w), f)), np.exp(rng.uniform(np.log(8), np.log(h), f))
        fx, fy = rng.uniform(0, w - fw), rng.uniform(0, h - fh)
        boxes = np.concatenate([boxes, np.stack([fx, fy, fx + fw, fy + fh], 1)])
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        det_cats = np.concatenate([det_cats, rng.choice(20, f, p=cls_p)]).astype(np.int64)
        scores = np.concatenate([scores, rng.uniform(0.05, 0.7, f)]).astype(np.float32)
        order = np.argsort(-scores, kind="stable")[:dets_per_image]
        predictions.append((name, boxes[order].astype(np.float32), scores[order], det_cats[order]))
    replace_atomically({os.path.join(base, "ImageSets", "Main", "test.txt"): text_writer("\n".join(names) + "\n"),
                        pred_path: pickled(predictions)})  # pred: the last
    return base, pred_path


def pickled(obj):
    """The write function, for replace_atomically, that pickles obj."""
    def write(tmp):
        with open(tmp, "wb") as f:
            pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
    return write


def write_jpegs(folder, n, seed=0):
    """n JPEGs of about ImageNet's size (400-600 x 300-450) with a photo-like texture; returns their paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        w, h = int(rng.integers(400, 600)), int(rng.integers(300, 450))
        smooth = cv2.resize(rng.integers(0, 256, (h // 16, w // 16, 3), dtype=np.uint8), (w, h),
                            interpolation=cv2.INTER_CUBIC)
        img = np.clip(smooth + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)  # texture: real JPEG entropy
        paths.append(os.path.join(folder, f"{i}.jpg"))
        cv2.imwrite(paths[-1], img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    return paths


def inat_json(base, n_train, n_val, classes, seed=0):
    """train2018.json and val2018.json shaped like the official ones; returns their sizes in MB."""
    rng = np.random.default_rng(seed)
    cats = [{"id": c, "name": f"{c}", "supercategory": INAT_SUPERS[c % 8], "kingdom": "k", "phylum": "p",
             "class": "c", "order": "o", "family": "f", "genus": "g"} for c in range(classes)]
    sizes, first = {}, 0
    for split, n in (("train", n_train), ("val", n_val)):
        labels = np.concatenate([np.arange(classes), rng.integers(0, classes, max(0, n - classes))])[:n]
        ids = np.arange(first, first + n)
        images = [{"id": int(i), "width": 800, "height": 600, "license": 3, "rights_holder": "someone",
                   "file_name": f"train_val2018/{INAT_SUPERS[c % 8]}/{c}/{rng.bytes(16).hex()}.jpg"}
                  for i, c in zip(ids, labels)]
        order = rng.permutation(n)  # the annotations in another order than the images
        anns = [{"id": int(ids[k]), "image_id": int(ids[k]), "category_id": int(labels[k])} for k in order]
        path = os.path.join(base, f"{split}2018.json")
        with open(path, "w") as f:
            json.dump({"info": {"year": 2018}, "images": images, "categories": cats, "annotations": anns,
                       "licenses": []}, f)
        sizes[split] = os.path.getsize(path) / 2 ** 20
        first += n
    return sizes
