"""Frozen-feature classification: weighted kNN against a brute-force vote, the VOC07 AP against
hand-computed values, low-shot sampling, the reference's pooled dimensions, the feature cache, the
runners end to end on the built-in data, and their refusals."""
import os
import shutil
from functools import partial

import numpy as np
import pytest
import torch

from tests.badinput import refuses
from tests.conftest import config_path
from transfer import perimage
from transfer.classification import backbone, knn, logreg, svm
from transfer.runner import entry

KNN, SVM = partial(entry, knn.main), partial(entry, svm.main)  # as `python -m` runs them


def brute_force_knn(bank, bank_labels, queries, query_labels, k, T, num_classes):
    """The weighted vote written out per query, in float64: (top1, top5) in percent."""
    b = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    top1 = top5 = 0
    for q, target in zip(queries, query_labels):
        sims = b @ (q / np.linalg.norm(q))
        nearest = np.argsort(-sims)[:k]
        votes = np.zeros(num_classes)
        for j in nearest:
            votes[bank_labels[j]] += np.exp(sims[j] / T)
        ranked = [c for c in np.argsort(-votes) if votes[c] > 0][:5]
        top1 += ranked[0] == target
        top5 += target in ranked
    return 100.0 * top1 / len(queries), 100.0 * top5 / len(queries)


def test_knn_equals_brute_force_vote_with_chunks():
    rng = np.random.default_rng(0)
    bank, queries = rng.normal(size=(97, 16)).astype(np.float32), rng.normal(size=(23, 16)).astype(np.float32)
    bank_labels, query_labels = rng.integers(0, 7, 97), rng.integers(0, 7, 23)
    # chunks that split both the bank and the queries unevenly
    got = knn.knn_classify(bank, bank_labels, queries, query_labels, [1, 5, 10, 20], 0.07, 7, bank_chunk=13,
                           query_chunk=4)
    for k in (1, 5, 10, 20):
        want = brute_force_knn(bank, bank_labels, queries, query_labels, k, 0.07, 7)
        assert got[k] == pytest.approx(want), k


def test_knn_counts_classes_of_the_data_not_1000():
    # two queries, each equal to a bank row of its class: 100% top-1 with 3 classes
    bank = np.eye(3, dtype=np.float32)
    got = knn.knn_classify(bank, np.array([0, 1, 2]), bank[[2, 0]], np.array([2, 0]), [1], 0.07, 3)
    assert got[1] == (100.0, 100.0)


def test_voc07_ap_is_the_precision_envelope():
    # hand-computed: ranks tp fp tp fp -> (R, P) = (.5, 1) (.5, .5) (1, 2/3) (1, .5); envelope area .5*1 + .5*2/3
    # (the 11-point VOC07 devkit AP would be (6*1 + 5*2/3)/11 = 0.848)
    assert svm.voc07_ap(np.array([1, -1, 1, -1]), np.array([.9, .8, .7, .6])) == pytest.approx(5 / 6)
    # fp tp tp: envelope 2/3 over the whole recall range = 2/3 (sklearn's step AP would be 7/12)
    assert svm.voc07_ap(np.array([-1, 1, 1]), np.array([.9, .8, .7])) == pytest.approx(2 / 3)
    assert svm.voc07_ap(np.array([1, 1, -1]), np.array([.3, .2, .1])) == pytest.approx(1.0)
    # calculate_ap directly: recall .25/.5/.5/1 at precision 1/.5/.4/.6 -> .25*1 + .25*.6 + .5*.6
    assert svm.calculate_ap(np.array([.25, .5, .5, 1.]), np.array([1., .5, .4, .6])) == pytest.approx(0.7)


def test_cv_ap_equals_cross_val_score():
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(2)
    X = svm.normalize(rng.normal(size=(40, 6)))
    y = np.where(X[:, 0] + 0.5 * rng.normal(size=40) > 0.3, 1, -1)
    want = cross_val_score(svm.make_svm(0.1, 0), X, y, cv=3, scoring="average_precision").mean()
    assert svm.cv_ap(X, y, 0.1, 3, 0)[0] == pytest.approx(want, abs=1e-12)


def test_costs_are_mmselfsups_19():
    costs = svm.cost_list([1, 10, 100])
    assert len(costs) == 19 and costs[:4] == [1.0, 10.0, 100.0, 0.0625] and costs[-1] == 2 ** -19


def test_normalize_adds_1e5_to_the_norm_in_float64():
    x = svm.normalize(np.array([[3, 4]], np.float32))
    assert x.dtype == np.float64 and x[0] == pytest.approx([3 / 5.00001, 4 / 5.00001])


def test_lowshot_sample_is_class_balanced_and_seeded():
    rng = np.random.default_rng(1)
    Y = rng.choice([1, 0, 0, 0, -1], size=(300, 20)).astype(np.int32)
    a = svm.lowshot_sample(Y, 4, 3, np.random.default_rng([7, 0, 4]))
    for c in range(20):
        assert (a[:, c] == 1).sum() == 4 and (a[:, c] == 0).sum() == 12
        assert (Y[a[:, c] == 1, c] == 1).all() and (Y[a[:, c] == 0, c] == 0).all()  # never a difficult image
    assert (a == svm.lowshot_sample(Y, 4, 3, np.random.default_rng([7, 0, 4]))).all()
    assert (a != svm.lowshot_sample(Y, 4, 3, np.random.default_rng([7, 1, 4]))).any()


def test_resnet50_pooled_dims_equal_the_reference_table():
    torch.manual_seed(0)
    model = backbone.load_backbone(None, "resnet50")
    feats = backbone.extract(model, torch.randn(1, 3, 224, 224), backbone.RESNET_LAYERS)
    assert {k: v.shape[1] for k, v in feats.items()} == {
        "feat1": 9216, "feat2": 9216, "feat3": 8192, "feat4": 9216, "feat5": 8192, "gap": 2048}


def write_config(tmp_path, base, **over):
    import yaml

    path = tmp_path / f"{os.path.basename(base)[:-5]}_test.yaml"
    path.write_text(yaml.safe_dump({"base": config_path("classification", base), **over}))
    return str(path)


TINY = {"resize": 36, "crop": 32, "interpolation": "bilinear"}
TINY_SQUASH = {"resize": 36, "squash": 32, "interpolation": "bilinear"}


def test_knn_runner_end_to_end(demo_root, tmp_path, capsys):
    cfg = write_config(tmp_path, "knn_quick.yaml", preprocess=TINY, k=[5, 20])
    assert knn.main(["--config", cfg, "--data-root", demo_root, "--work-dir", str(tmp_path / "run")]) == 0
    import json

    metrics = json.load(open(tmp_path / "run" / "final_metrics.json"))["knn"]
    assert set(metrics) == {"top1_k5", "top5_k5", "top1_k20", "top5_k20"}
    assert all(0 <= v <= 100 for v in metrics.values())
    assert (tmp_path / "run" / "fingerprint.json").exists()
    # the per-image file: every val image by its path under val/, its label, the top-1 class at each k
    data = perimage.read(str(tmp_path / "run"))
    val = os.path.join(demo_root, "imagenet", "val")
    assert list(data["ids"]) == sorted(f"{c}/{f}" for c in os.listdir(val) for f in os.listdir(os.path.join(val, c)))
    assert len(data["labels"]) == 8
    for k in (5, 20):
        assert perimage.metric(f"knn/top1_k{k}", data, np.ones((1, 8)))[0] == pytest.approx(metrics[f"top1_k{k}"])


def test_svm_runners_share_the_feature_cache(demo_root, tmp_path, capsys):
    import json

    cache = tmp_path / "features"
    full = write_config(tmp_path, "svm_quick.yaml", preprocess=TINY_SQUASH, layers=["gap"], n_jobs=1)
    args = ["--data-root", demo_root, "--features-dir", str(cache)]
    assert svm.main(["--config", full, "--work-dir", str(tmp_path / "full"), *args]) == 0
    full_map = json.load(open(tmp_path / "full" / "final_metrics.json"))["svm"]["mAP_gap"]
    assert 0 <= full_map <= 100
    stamps = {f: os.path.getmtime(cache / f) for f in os.listdir(cache)}
    assert set(stamps) == {"voc07_trainval_gap.npz", "voc07_test_gap.npz"}
    low = write_config(tmp_path, "svm_lowshot_quick.yaml", preprocess=TINY_SQUASH, layers=["gap"], n_jobs=1,
                       lowshot_k=[2], lowshot_samples=1)
    capsys.readouterr()
    assert svm.main(["--config", low, "--work-dir", str(tmp_path / "low"), *args]) == 0
    assert "read from" in capsys.readouterr().out
    assert {f: os.path.getmtime(cache / f) for f in os.listdir(cache)} == stamps  # not extracted again
    metrics = json.load(open(tmp_path / "low" / "final_metrics.json"))["svm_lowshot"]
    assert set(metrics) == {"mAP_gap_k2"}
    # per-image files: test scores per class (low-shot: per sample) that give the runs' own mAP back
    for run, name, value in (("full", "svm/mAP_gap", full_map),
                             ("low", "svm_lowshot/mAP_gap_k2", metrics["mAP_gap_k2"])):
        data = perimage.read(str(tmp_path / run))
        assert data["labels"].shape == (20, 20) and len(data["ids"]) == 20 and data[name].shape[-2:] == (20, 20)
        assert perimage.metric(name, data, np.ones((1, 20)))[0] == pytest.approx(value, abs=1e-3)


def imagenet_copy(demo_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(os.path.join(demo_root, "imagenet"), root / "imagenet")
    return root


def test_knn_refuses_k_larger_than_the_bank(demo_root, tmp_path, capsys):
    cfg = write_config(tmp_path, "knn_quick.yaml", preprocess=TINY, k=[10, 1000])
    err = refuses(KNN, ["--config", cfg, "--data-root", demo_root, "--work-dir", tmp_path / "run"], "[1000]",
                  capsys, watch=[tmp_path])
    assert "24 train images" in err


def test_knn_refuses_differing_class_lists(demo_root, tmp_path, capsys):
    root = imagenet_copy(demo_root, tmp_path)
    extra = root / "imagenet" / "val" / "zebra"
    extra.mkdir()
    shutil.copy(next(p for p in (root / "imagenet" / "val").rglob("*.jpg")), extra / "z.jpg")
    cfg = write_config(tmp_path, "knn_quick.yaml", preprocess=TINY)
    refuses(KNN, ["--config", cfg, "--data-root", root, "--work-dir", tmp_path / "run"], "zebra", capsys,
            watch=[tmp_path])


def test_knn_refuses_an_empty_class_folder(demo_root, tmp_path, capsys):
    root = imagenet_copy(demo_root, tmp_path)
    empty = next((root / "imagenet" / "train").iterdir())
    for f in empty.iterdir():
        f.unlink()
    cfg = write_config(tmp_path, "knn_quick.yaml", preprocess=TINY)
    refuses(KNN, ["--config", cfg, "--data-root", root, "--work-dir", tmp_path / "run"], str(empty), capsys,
            watch=[tmp_path])


@pytest.mark.parametrize("layers,size,culprit", [(["feat5"], 32, "feat5"), (["feat3"], 32, "feat3")])
def test_svm_refuses_a_stage_map_smaller_than_its_window(demo_root, tmp_path, capsys, layers, size, culprit):
    cfg = write_config(tmp_path, "svm_quick.yaml", layers=layers,
                       preprocess={"resize": size, "squash": size, "interpolation": "bilinear"})
    refuses(SVM, ["--config", cfg, "--data-root", demo_root, "--work-dir", tmp_path / "run"], culprit, capsys,
            watch=[tmp_path])


def test_runners_refuse_an_unknown_preprocessing(demo_root, tmp_path, capsys):
    cfg = write_config(tmp_path, "knn_quick.yaml", preprocess={"resize": 36, "crop": 32, "interpolation": "nearest"})
    refuses(KNN, ["--config", cfg, "--data-root", demo_root, "--work-dir", tmp_path / "run"], "preprocess", capsys,
            watch=[tmp_path])


def test_svm_refuses_per_stage_features_of_a_vit(demo_root, tmp_path, capsys):
    cfg = write_config(tmp_path, "svm_quick.yaml", layers=["feat5"])
    err = refuses(SVM, ["--config", cfg, "--data-root", demo_root, "--work-dir", tmp_path / "run",
                             "--arch", "vit_small"], "feat5", capsys, watch=[tmp_path])
    assert "ViT" in err and "cls" in err


def test_svm_refuses_short_classes_under_the_full_recipe(demo_root, tmp_path, capsys):
    # the built-in trainval has 8 images: nowhere near 96 present images per class
    refuses(SVM, ["--config", config_path("classification", "svm_voc07_lowshot.yaml"), "--data-root", demo_root,
                       "--work-dir", tmp_path / "run"], "needs 96", capsys, watch=[tmp_path])


def test_runners_refuse_a_missing_checkpoint(demo_root, tmp_path, capsys):
    missing = tmp_path / "nope.pth"
    refuses(KNN, ["--config", config_path("classification", "knn_quick.yaml"), "--data-root", demo_root,
                       "--work-dir", tmp_path / "run", "--weights", missing], str(missing), capsys, watch=[tmp_path])


def test_data_checks_of_the_classification_tasks(demo_root, tmp_path):
    from mocodata.validate import DataError, check_task

    assert check_task("voc07-cls", demo_root) == 28  # 8 trainval + 20 test
    root = imagenet_copy(demo_root, tmp_path)
    assert check_task("imagenet-val", str(root)) == 32  # 4 classes x (6 + 2)
    (root / "imagenet" / "val" / "zebra").mkdir()
    with pytest.raises(DataError, match="class folders differ"):
        check_task("imagenet-val", str(root))


def test_vit_checkpoint_loads_strictly_and_gives_the_class_token(tmp_path):
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    vit = VisionTransformer(img_size=32, patch_size=16, embed_dim=64, depth=2, num_heads=4, num_classes=0).eval()
    path = tmp_path / "vit.pth"
    torch.save({"state_dict": vit.state_dict()}, path)
    with pytest.raises(ValueError, match="--num-heads"):  # a plain state dict does not record its heads
        backbone.load_backbone(str(path))
    model = backbone.load_backbone(str(path), num_heads=4)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = vit.forward_features(x)[:, 0]
    torch.testing.assert_close(backbone.extract(model, x, ("cls",))["cls"], want)
    with pytest.raises(ValueError, match="a ViT has only its class token"):
        backbone.extract(model, x, ("feat5",))


@pytest.mark.parametrize("name,expected", [
    ("knn_imagenet.yaml", {"layer": "gap", "k": [10, 20, 100, 200], "temperature": 0.07,
                           "preprocess": {"resize": 256, "crop": 224, "interpolation": "bilinear"}}),
    ("svm_voc07.yaml", {"mode": "full", "costs": [1.0, 10.0, 100.0], "cv_folds": 3, "short_classes": "refuse",
                        "layers": ["feat1", "feat2", "feat3", "feat4", "feat5"], "train_split": "trainval",
                        "preprocess": {"resize": 256, "squash": 224, "interpolation": "bilinear"}}),
    ("svm_voc07_lowshot.yaml", {"mode": "lowshot", "layers": ["feat5"], "lowshot_k": [1, 2, 4, 8, 16, 32, 64, 96],
                                "lowshot_samples": 5, "negatives_per_positive": 19, "short_classes": "refuse"}),
])
def test_full_configs_hold_the_reference_recipe(name, expected):
    from transfer.classification import load_config

    cfg = load_config(config_path("classification", name))
    assert {k: cfg[k] for k in expected} == expected


@pytest.mark.parametrize("name", sorted(os.listdir(config_path("classification"))))
def test_every_config_has_every_recipe_key(name):
    from transfer.classification import load_config, need_keys

    cfg = load_config(config_path("classification", name))
    if cfg["task"] == "logreg":
        keys = logreg.KEYS
    else:
        keys = knn.KEYS if cfg["task"] == "knn" else svm.KEYS + (svm.LOWSHOT_KEYS if cfg["mode"] == "lowshot" else ())
    need_keys(cfg, keys, name)
