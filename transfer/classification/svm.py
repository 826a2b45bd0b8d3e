"""VOC07 linear SVMs on frozen features, full and low-shot, as the fssb / mmselfsup svm_voc07 tools
(facebookresearch/fair_self_supervision_benchmark tools/svm/; mmselfsup 0.x tools/benchmarks/classification/svm_voc07).

    python -m transfer.classification.svm --config configs/classification/svm_voc07.yaml \
        --data-root ROOT --work-dir RUN [--weights CKPT]

- Labels per (image, class): 1 present, -1 difficult only, 0 absent (VOC devkit's <class>_<split>.txt,
  here read from the XML the same way; fssb create_voc_data_files.py maps them to 1/-1/0).
- Features: x / (||x|| + 1e-5) in float64 (svm_helper normalize_features).
- One LinearSVC per class: C, class_weight {1: 2, -1: 1}, intercept_scaling 1, l2, squared_hinge,
  dual, tol 1e-4, max_iter 2000, random_state = --seed (the reference leaves it unseeded).
- Costs: the config's list + 0.5**4 .. 0.5**19 (svm_helper parse_cost_list; mmselfsup passes
  "1,10,100": 19 costs).
- full: per (class, cost) 3-fold cross_val_score(scoring='average_precision') on trainval, where
  difficult counts as NEGATIVE; each class keeps its best CV cost (first on ties, np.argmax);
  refit on all trainval; test AP drops that class's difficult images; mean over classes.
  Only the chosen cost is refit (the reference refits every cost and keeps one: same models).
- low-shot: per k and each of `samples` samples, per class k positives and
  negatives_per_positive * k absent images (19k in the reference), no difficult; no CV: each cost
  is tested, and per k the cost with the best mean TEST mAP over samples is reported
  (fssb aggregate_low_shot_svm_stats). Sampling is seeded from --seed (the reference is not).
- Test AP: all-point interpolated precision envelope (svm_helper calculate_ap), not 11-point.
- ConvergenceWarnings (mmselfsup#103) are counted and logged, not printed per fit; the fits run
  over all cores with joblib (`n_jobs`).
Refused before any work: a layer the backbone does not have (a ViT has only `cls`), and a class
with too few positives (fewer than the CV folds, fewer than the largest low-shot k, or none in
test) unless the config says `short_classes: skip` (quick configs), which drops it and says so.
"""
import os
import sys
import time
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import torch

from mocodata.classes import VOC_CLASSES
from transfer import perimage
from transfer.runner import entry
from transfer.classification import BadInput, build_cfg, build_model, atomic_json, need_keys, parser, write_results
from transfer.classification import backbone, features

KEYS = ("mode", "voc_dir", "train_split", "test_split", "layers", "preprocess", "costs", "cv_folds",
        "short_classes", "n_jobs", "batch_size", "workers")
LOWSHOT_KEYS = ("lowshot_k", "lowshot_samples", "negatives_per_positive")


def voc_labels(voc_dir, split):
    """(paths, labels (N, 20) int32 of 1/0/-1) of a VOC split, in the split list's order."""
    listing = os.path.join(voc_dir, "ImageSets", "Main", split + ".txt")
    if not os.path.isfile(listing):
        raise BadInput(f"{listing}: missing split list; check --data-root (it holds VOC2007/)")
    ids = [line.split()[0] for line in open(listing) if line.strip()]
    labels = np.zeros((len(ids), len(VOC_CLASSES)), np.int32)
    for n, image_id in enumerate(ids):
        xml = os.path.join(voc_dir, "Annotations", image_id + ".xml")
        try:
            objects = ET.parse(xml).findall("object")
        except (OSError, ET.ParseError) as e:
            raise BadInput(f"{xml}: unreadable annotation ({e}); run `python -m mocodata check`") from None
        for o in objects:
            name = (o.findtext("name") or "").strip()
            if name not in VOC_CLASSES:
                raise BadInput(f"{xml}: object class '{name}' is not one of the 20 VOC classes; fix the annotation")
            c = VOC_CLASSES.index(name)
            if o.findtext("difficult", "0").strip() == "1":
                labels[n, c] = labels[n, c] or -1  # difficult only if no plain instance
            else:
                labels[n, c] = 1
    return [os.path.join(voc_dir, "JPEGImages", i + ".jpg") for i in ids], labels


def cost_list(base):
    return [float(c) for c in base] + [0.5 ** n for n in range(4, 20)]


def normalize(x):
    x = np.asarray(x, np.float64)
    return x / (np.linalg.norm(x, axis=1) + 1e-5)[:, None]


def calculate_ap(rec, prec):
    """Area under the precision envelope, summed where recall changes (svm_helper calculate_ap)."""
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.where(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))


def voc07_ap(targets, scores):
    """AP of scores for targets > 0 (svm_helper get_precision_recall), difficult already removed."""
    order = np.argsort(scores)[::-1]
    tp = (np.asarray(targets)[order] > 0).astype(np.float64)
    ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
    return calculate_ap(ctp / tp.sum(), ctp / (ctp + cfp))


def make_svm(cost, seed):
    from sklearn.svm import LinearSVC

    return LinearSVC(C=cost, class_weight={1: 2, -1: 1}, intercept_scaling=1.0, penalty="l2", loss="squared_hinge",
                     dual=True, tol=1e-4, max_iter=2000, random_state=seed)


def quietly(fn, *args, **kwargs):
    """(fn(...), number of ConvergenceWarnings it raised)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        out = fn(*args, **kwargs)
    return out, sum(issubclass(w.category, ConvergenceWarning) for w in caught)


def cv_ap(X, y, cost, folds, seed):
    """(mean CV AP, warnings) of one (class, cost): what train_svm_kfold.py's
    cross_val_score(clf, X, y, cv=folds, scoring='average_precision') computes (unshuffled
    StratifiedKFold, sklearn's AP of the decision function), without its per-call overhead
    (its setup costs far more than the fit itself on small sets)."""
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import StratifiedKFold

    scores, n_warn = [], 0
    for tr, te in StratifiedKFold(folds).split(X, y):
        clf, n = quietly(make_svm(cost, seed).fit, X[tr], y[tr])
        scores.append(average_precision_score(y[te], clf.decision_function(X[te])))
        n_warn += n
    return float(np.mean(scores)), n_warn


def svm_target(column):
    """SVM targets of one class: present 1, absent and difficult -1 (difficult trains as negative)."""
    return np.where(column == 1, 1, -1)


def test_ap(clf, X_test, column):
    keep = column != -1
    return voc07_ap(column[keep], clf.decision_function(X_test[keep]))


def parallel(jobs, n_jobs):
    from joblib import Parallel, parallel_config

    # one BLAS thread per worker: liblinear is single-threaded, and n_jobs workers each running
    # a full BLAS pool made all cores 3x slower than one (measured, tools/bench_classification.py)
    with parallel_config(backend="loky", inner_max_num_threads=1):
        return Parallel(n_jobs=n_jobs)(jobs)


def run_full(Xtr, Ytr, Xte, Yte, classes, cfg, seed, log):
    """{'mAP', 'ap', 'cost', 'cv', 'warnings'}: CV picks each class's cost, refit, test."""
    from joblib import delayed

    costs = cost_list(cfg["costs"])
    cv = parallel((delayed(cv_ap)(Xtr, svm_target(Ytr[:, c]), C, cfg["cv_folds"], seed)
                   for c in classes for C in costs), cfg["n_jobs"])
    cv_mat = np.array([a for a, _ in cv]).reshape(len(classes), len(costs))
    chosen = [costs[j] for j in np.argmax(cv_mat, axis=1)]
    fits = parallel((delayed(quietly)(make_svm(C, seed).fit, Xtr, svm_target(Ytr[:, c]))
                     for c, C in zip(classes, chosen)), cfg["n_jobs"])
    ap = [test_ap(clf, Xte, Yte[:, c]) for c, (clf, _) in zip(classes, fits)]
    n_warn = sum(n for _, n in cv) + sum(n for _, n in fits)
    log(f"svm: {n_warn} of {len(cv) * cfg['cv_folds'] + len(fits)} fits hit max_iter=2000 (ConvergenceWarning)")
    scores = np.full((len(Xte), Yte.shape[1]), np.nan, np.float32)  # per image and class, for transfer/perimage.py
    for c, (clf, _) in zip(classes, fits):
        scores[:, c] = clf.decision_function(Xte)
    return {"mAP": 100.0 * float(np.mean(ap)), "ap": dict(zip((VOC_CLASSES[c] for c in classes), ap)),
            "cost": dict(zip((VOC_CLASSES[c] for c in classes), chosen)), "cv": cv_mat.tolist(), "warnings": n_warn,
            "scores": scores}


def lowshot_sample(Y, k, negatives_per_positive, rng, classes=None):
    """Train targets (N, C): per class k present (1) and negatives_per_positive*k absent (0) images,
    every other entry -1 (ignored); difficult images are never drawn (create_voc_low_shot_samples)."""
    out = -np.ones_like(Y)
    for c in range(Y.shape[1]) if classes is None else classes:
        for label, n in ((1, k), (0, negatives_per_positive * k)):
            pool = np.flatnonzero(Y[:, c] == label)
            out[rng.choice(pool, size=n, replace=False), c] = label
    return out


def lowshot_task(Xtr, column, Xte, test_column, costs, seed):
    """(test AP per cost, warnings) of one class of one sample."""
    keep = column != -1
    aps, n_warn = [], 0
    for C in costs:
        clf, n = quietly(make_svm(C, seed).fit, Xtr[keep], np.where(column[keep] == 1, 1, -1))
        aps.append(test_ap(clf, Xte, test_column))
        n_warn += n
    return aps, n_warn


def lowshot_scores(Xtr, column, Xte, cost, seed):
    """Test decision values of one class of one sample at one cost: lowshot_task's classifier, refit."""
    keep = column != -1
    clf, _ = quietly(make_svm(cost, seed).fit, Xtr[keep], np.where(column[keep] == 1, 1, -1))
    return clf.decision_function(Xte)


def run_lowshot(Xtr, Ytr, Xte, Yte, classes, cfg, seed, log):
    """{k: {'mAP', 'std', 'min', 'max', 'cost', 'scores'}}: per k the cost with the best mean test mAP over
    samples, and at that cost the test decision values (samples, images, classes) for transfer/perimage.py."""
    from joblib import delayed

    costs, ks, S = cost_list(cfg["costs"]), cfg["lowshot_k"], cfg["lowshot_samples"]
    samples = {(s, k): lowshot_sample(Ytr, k, cfg["negatives_per_positive"], np.random.default_rng([seed, s, k]),
                                      classes) for s in range(S) for k in ks}
    res = parallel((delayed(lowshot_task)(Xtr, samples[s, k][:, c], Xte, Yte[:, c], costs, seed)
                    for s in range(S) for k in ks for c in classes), cfg["n_jobs"])
    ap = np.array([a for a, _ in res]).reshape(S, len(ks), len(classes), len(costs)).mean(axis=2)  # (S, K, costs)
    n_warn = sum(n for _, n in res)
    log(f"svm low-shot: {n_warn} of {len(res) * len(costs)} fits hit max_iter=2000 (ConvergenceWarning)")
    out = {}
    for j, k in enumerate(ks):
        best = int(np.argmax(ap[:, j].mean(axis=0)))
        col = 100.0 * ap[:, j, best]
        out[k] = {"mAP": float(col.mean()), "std": float(col.std()), "min": float(col.min()),
                  "max": float(col.max()), "cost": costs[best]}
    # the classifiers of the reported cost, fitted again (seeded: the same ones) for their test scores
    refit = iter(parallel((delayed(lowshot_scores)(Xtr, samples[s, k][:, c], Xte, out[k]["cost"], seed)
                           for k in ks for s in range(S) for c in classes), cfg["n_jobs"]))
    for k in ks:
        out[k]["scores"] = np.full((S, len(Xte), Yte.shape[1]), np.nan, np.float32)
        for s in range(S):
            for c in classes:
                out[k]["scores"][s, :, c] = next(refit)
    return out, n_warn


def short_classes(cfg, Ytr, Yte):
    """{class index: why} for classes without enough images for the recipe."""
    need_pos = max(cfg["lowshot_k"]) if cfg["mode"] == "lowshot" else cfg["cv_folds"]
    need_neg = cfg["negatives_per_positive"] * need_pos if cfg["mode"] == "lowshot" else cfg["cv_folds"]
    out = {}
    for c in range(len(VOC_CLASSES)):
        pos, neg, test_pos = (Ytr[:, c] == 1).sum(), (Ytr[:, c] != 1).sum(), (Yte[:, c] == 1).sum()
        if cfg["mode"] == "lowshot":
            neg = (Ytr[:, c] == 0).sum()
        if pos < need_pos or neg < need_neg or test_pos == 0:
            out[c] = (f"{pos} present / {neg} negative {cfg['train_split']} images (needs {need_pos} / {need_neg}), "
                      f"{test_pos} present {cfg['test_split']} images (needs 1)")
    return out


def check_data(cfg, root):
    voc = os.path.join(root, cfg["voc_dir"])
    train, test = voc_labels(voc, cfg["train_split"]), voc_labels(voc, cfg["test_split"])
    short = short_classes(cfg, train[1], test[1])
    if short and cfg["short_classes"] != "skip":
        c, why = next(iter(short.items()))
        raise BadInput(f"{voc}: class '{VOC_CLASSES[c]}' has {why} ({len(short)} classes short); this data cannot "
                       f"run the {cfg['_path']} recipe: use the full VOC2007, or a quick config")
    classes = [c for c in range(len(VOC_CLASSES)) if c not in short]
    if not classes:
        raise BadInput(f"{voc}: no class has enough images for {cfg['_path']} (e.g. {next(iter(short.values()))})")
    return train, test, classes, {VOC_CLASSES[c]: why for c, why in short.items()}


def prepare(args):
    """Everything checked before any work: config, data, weights, layers. Raises BadInput."""
    cfg = build_cfg(args.config)
    need_keys(cfg, KEYS + (LOWSHOT_KEYS if cfg.get("mode") == "lowshot" else ()), args.config)
    if cfg["mode"] not in ("full", "lowshot") or cfg["short_classes"] not in ("refuse", "skip"):
        raise BadInput(f"--config {args.config}: mode must be full|lowshot and short_classes refuse|skip")
    cfg["_path"] = args.config
    data = check_data(cfg, args.data_root)
    model = build_model(args, cfg["layers"], cfg["preprocess"])
    return cfg, data, model


def main(argv=None):
    args = parser(__doc__.split("\n")[0]).parse_args(argv)
    cfg, (train, test, classes, skipped), model = prepare(args)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    common = dict(layers=cfg["layers"], pre=cfg["preprocess"], cache_dir=args.features_dir or os.path.join(
        args.work_dir, "features"), batch_size=cfg["batch_size"], workers=cfg["workers"])
    wkey = features.weights_key(args.weights, args.arch, args.seed)
    ftr = features.get(model, wkey, train[0], train[1], "voc07_" + cfg["train_split"], **common)
    fte = features.get(model, wkey, test[0], test[1], "voc07_" + cfg["test_split"], **common)
    if skipped:
        print(f"svm: {len(skipped)} classes skipped (short_classes: skip): {sorted(skipped)}")
    metrics, details, scores = evaluate(cfg, ftr, fte, classes, args.seed)
    details["skipped_classes"] = skipped
    atomic_json(os.path.join(args.work_dir, "svm_details.json"), details)
    ids = [os.path.splitext(os.path.basename(p))[0] for p in test[0]]  # VOC image ids
    perimage.write(args.work_dir, ids, fte[cfg["layers"][0]].labels, scores)
    write_results(args.work_dir, cfg.get("task", "svm"), metrics, facts(cfg, args, model, train, test, skipped))
    return 0


def evaluate(cfg, ftr, fte, classes, seed):
    """({group: {metric: value}}, details, {metric: per-image test scores}) for every layer of the config."""
    metrics, details, scores = {}, {}, {}
    for layer in cfg["layers"]:
        start = time.time()
        Xtr, Xte = normalize(ftr[layer].feats), normalize(fte[layer].feats)
        if cfg["mode"] == "full":
            r = run_full(Xtr, ftr[layer].labels, Xte, fte[layer].labels, classes, cfg, seed, print)
            metrics.setdefault("svm", {})[f"mAP_{layer}"] = r["mAP"]
            scores[f"svm/mAP_{layer}"] = r.pop("scores")
            print(f"svm {layer}: mAP {r['mAP']:.2f} ({time.time() - start:.0f} s)")
        else:
            r, _ = run_lowshot(Xtr, ftr[layer].labels, Xte, fte[layer].labels, classes, cfg, seed, print)
            for k, row in r.items():
                metrics.setdefault("svm_lowshot", {})[f"mAP_{layer}_k{k}"] = row["mAP"]
                scores[f"svm_lowshot/mAP_{layer}_k{k}"] = row.pop("scores")
                print(f"svm low-shot {layer} k={k}: mAP {row['mAP']:.2f} +- {row['std']:.2f} (cost {row['cost']:g})")
            r = {str(k): v for k, v in r.items()}
        details[layer] = r
    return metrics, details, scores


def facts(cfg, args, model, train, test, skipped):
    from transfer.fingerprint import versions

    f = dict(mode=cfg["mode"], layers=list(cfg["layers"]), preprocess=cfg["preprocess"], costs=cost_list(cfg["costs"]),
             cv_folds=cfg["cv_folds"], normalise="x/(||x||+1e-5) float64", train_images=len(train[0]),
             test_images=len(test[0]), classes=len(VOC_CLASSES) - len(skipped), skipped_classes=sorted(skipped),
             arch="vit" if backbone.is_vit(model) else "resnet50", weights=args.weights or "random init",
             seed=args.seed, versions=versions())
    if cfg["mode"] == "lowshot":
        f.update(lowshot_k=list(cfg["lowshot_k"]), lowshot_samples=cfg["lowshot_samples"],
                 negatives_per_positive=cfg["negatives_per_positive"])
    return f


if __name__ == "__main__":
    sys.exit(entry(main))
