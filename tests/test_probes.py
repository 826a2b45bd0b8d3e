"""The derived probes `linear-sweep` and `logreg`: their values equal dinov2's (written here from the
source), the choice is made on a holdout of train and never reads the validation set, the L-BFGS fit
equals scikit-learn's LogisticRegression, and bad input is refused before any work."""
import json
import os
import shutil
from functools import partial

import numpy as np
import pytest
import torch

from tests.badinput import refuses
from tests.conftest import config_path
from transfer import perimage, protocols
from transfer.classification import holdout, load_config, logreg
from transfer.runner import entry

# dinov2 eval/log_regression.py (facebookresearch/dinov2 @ b8931f7): DEFAULT_MAX_ITER = 1_000;
# C_POWER_RANGE = torch.linspace(-6, 5, 45); LogisticRegression(penalty="l2", tol=1e-12, ...);
# train_dtype default "float64"; make_classification_eval_transform(resize_size=224) (crop_size 224, bicubic);
# hyperparameters chosen on 10% of train: torch.manual_seed(0), randperm, the first len // 10.
DINOV2_LOGREG = dict(max_iter=1000, c_powers={"start": -6, "stop": 5, "num": 45}, tol=1e-12, dtype="float64",
                     preprocess={"resize": 224, "crop": 224, "interpolation": "bicubic"}, holdout_fraction=0.1,
                     holdout_seed=0)
# dinov2 eval/linear.py: 13 learning rates by default (1e-5 ... 0.1), SGD momentum 0.9, weight decay 0,
# Linear init N(0, 0.01), bias 0, the heads' cross-entropies summed.
DINOV2_LINEAR_LRS = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1]


@pytest.mark.parametrize("name", ["logreg_imagenet.yaml", "logreg_imagenet_vit.yaml"])
def test_logreg_recipe_equals_dinov2(name):
    cfg = load_config(config_path("classification", name))
    assert {k: cfg[k] for k in DINOV2_LOGREG} == DINOV2_LOGREG
    assert {k: protocols.get("logreg").facts[k] for k in DINOV2_LOGREG} == DINOV2_LOGREG
    Cs = logreg.c_grid(cfg["c_powers"])
    assert len(Cs) == 45 and Cs[0] == pytest.approx(1e-6) and Cs[-1] == pytest.approx(1e5, rel=1e-6)
    assert Cs[4] == pytest.approx(10 ** -5.0, rel=1e-6)  # 11 decades in 44 steps: 4 steps a decade
    assert cfg["layer"] == ("cls" if "vit" in name else "gap")


def test_sweep_grid_is_thirteen_log_spaced_around_the_recipe_lr():
    f = protocols.get("linear-sweep").facts["lr_factors"]
    assert len(f) == len(DINOV2_LINEAR_LRS) == 13
    assert f[0] == pytest.approx(0.1) and f[6] == 1.0 and f[-1] == pytest.approx(10.0)
    assert np.allclose(np.diff(np.log10(f)), 1 / 6)  # log-spaced
    lrs = [30.0 * x for x in f]  # MoCo v2's recipe: 3 .. 300, outside dinov2's 1e-5 .. 0.1
    assert min(lrs) == pytest.approx(3.0) and min(lrs) > max(DINOV2_LINEAR_LRS)


def test_holdout_is_dinov2s_split():
    for n in (24, 240, 1001):
        torch.manual_seed(0)
        perm = torch.randperm(n)
        fit, held = holdout.split(n)
        assert sorted(held.tolist()) == sorted(perm[: n // 10].tolist())
        assert sorted(fit.tolist() + held.tolist()) == list(range(n))
    assert holdout.best([1, 3, 3, 2]) == 1


def data(n=300, d=20, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    X = rng.standard_normal((n, d)) + 1.5 * rng.standard_normal((classes, d))[y]
    return X.astype(np.float32), y


def rows(X, y, chunk=64):
    return logreg.Rows(X, y, np.arange(len(X)), "cpu", torch.float64, chunk, 1)


@pytest.mark.parametrize("C", [1e-3, 0.1, 10.0])
def test_logreg_fit_equals_sklearn(C):
    """Same objective: scikit-learn's C * sum CE + ||W||^2 / 2 = C n (mean CE + ||W||^2 / (2 C n))."""
    from sklearn.linear_model import LogisticRegression

    X, y = data()
    W, b, _ = logreg.fit(rows(X, y), 4, C, max_iter=2000, tol=1e-10, memory=10)
    sk = LogisticRegression(C=C, solver="lbfgs", tol=1e-10, max_iter=5000).fit(X.astype(np.float64), y)

    def objective(W, b):  # mean CE + ||W||^2 / (2 C n), in float64
        logits = X.astype(np.float64) @ np.asarray(W).T + np.asarray(b)
        logits -= logits.max(1, keepdims=True)
        ce = np.log(np.exp(logits).sum(1)) - logits[np.arange(len(y)), y]
        return ce.mean() + (np.asarray(W) ** 2).sum() / (2 * C * len(y))

    assert objective(W, b) == pytest.approx(objective(sk.coef_, sk.intercept_), rel=1e-9, abs=1e-12)
    assert np.allclose(W.numpy(), sk.coef_, atol=1e-4)  # both stop within 1e-9 of the gradient's zero
    b, skb = b.numpy(), sk.intercept_  # the intercept is defined up to a shift shared by all classes
    assert np.allclose(b - b.mean(), skb - skb.mean(), atol=1e-3)  # unpenalised: the flattest direction
    Xv, yv = data(200, seed=1)
    ours = logreg.accuracy(rows(Xv, yv), W, b=torch.as_tensor(b), topk=(1,))[0]
    assert ours == pytest.approx(100 * sk.score(Xv, yv))


def test_warm_start_reaches_the_cold_optimum_and_chunks_do_not_matter():
    X, y = data()
    cold = logreg.fit(rows(X, y), 4, 0.1, max_iter=2000, tol=1e-10)
    warm = logreg.fit(rows(X, y, chunk=7), 4, 0.1, logreg.fit(rows(X, y), 4, 0.01, tol=1e-10)[:2], 2000, 1e-10)
    assert np.allclose(cold[0].numpy(), warm[0].numpy(), atol=1e-5)
    path, best = logreg.sweep(rows(X[:270], y[:270]), rows(X[270:], y[270:]), 4, [10.0, 1e-4, 1.0], 200, 1e-8, 5,
                              log=lambda *_: None)
    assert [c for c, _, _ in path] == [1e-4, 1.0, 10.0]  # increasing C, each from the last solution
    assert best[1] == [c for c, t, _ in path if t == max(t for _, t, _ in path)][0]


def test_memory_mapped_features_are_read_in_chunks(tmp_path):
    from numpy.lib.format import open_memmap

    X, y = data(100)
    mm = open_memmap(str(tmp_path / "f.npy"), "w+", np.float32, X.shape)
    mm[:] = X
    mm.flush()
    feats = np.load(str(tmp_path / "f.npy"), mmap_mode="r")
    streamed = logreg.Rows(feats, y, np.arange(100), "cpu", torch.float64, 30, resident_gib=0)
    assert streamed.resident is None and [len(x) for x, _ in streamed] == [30, 30, 30, 10]
    assert np.array_equal(torch.cat([x for x, _ in streamed]).numpy(), X.astype(np.float64))


def corrupt_val(demo_root, tmp_path):
    """A copy of the built-in ImageNet whose every validation image is unreadable."""
    root = tmp_path / "root"
    shutil.copytree(os.path.join(demo_root, "imagenet"), root / "imagenet")
    for d, _, files in os.walk(root / "imagenet" / "val"):
        for f in files:
            open(os.path.join(d, f), "wb").write(b"not an image")
    return root


TINY = ["train_cfg.max_epochs=1", "train_cfg.val_interval=2", "default_hooks.checkpoint.interval=1",
        "train_dataloader.batch_size=12", "train_dataloader.dataset.pipeline.1.scale=32",
        "val_dataloader.dataset.pipeline.1.scale=36", "val_dataloader.dataset.pipeline.2.crop_size=32"]


def test_sweep_chooses_on_the_holdout_without_reading_val(tmp_path, demo_root):
    """With every validation image unreadable, the sweep trains its 13 heads, chooses one on the holdout and
    writes the choice; only the final test, by the chosen head, fails on the validation set."""
    from transfer.classification import sweep

    root, work = corrupt_val(demo_root, tmp_path), tmp_path / "work"
    argv = ["--config", config_path("mmpretrain", "linear_mocov2_r50_quick.py"), "--data-root", str(root),
            "--work-dir", str(work), "--cfg-options", *TINY]
    with pytest.raises(Exception, match="image|identify|decode|cannot"):
        sweep.main(argv)
    chosen = json.load(open(work / "sweep.json"))
    assert len(chosen["heads"]) == 13 and chosen["chosen"] in [h["name"] for h in chosen["heads"]]
    lrs = [h["lr"] for h in chosen["heads"]]
    centre = 0.001  # the quick config's lr, for its 8 images per update on BN-standardised features
    assert lrs[0] == pytest.approx(centre / 10) and lrs[6] == pytest.approx(centre)
    assert lrs[-1] == pytest.approx(10 * centre)
    held = open(work / "split" / "holdout.txt").read().splitlines()  # "<class>/<image> <label>", 10% of 24
    assert len(held) == 2 and all(h.rsplit(" ", 1)[1].isdigit() for h in held)
    assert not os.path.exists(work / "final_metrics.json")
    fp = json.load(open(work / "fingerprint.json"))
    assert fp["task"] == "linear-sweep" and fp["heads"] == 13 and fp["holdout_images"] == 2
    assert [d for d in fp["deviations"] if d.startswith("lr:")] == ["lr: 0.001 (protocol 30.0)"]  # the quick lr
    assert not [d for d in fp["deviations"] if d.startswith(("momentum:", "lr_factors", "holdout"))]


def logreg_config(tmp_path, **over):
    path = tmp_path / f"logreg{len(list(tmp_path.glob('logreg*.yaml')))}.yaml"  # one file per call
    keys = {"base": config_path("classification", "logreg_quick.yaml"), "max_iter": 20, **over}
    path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in keys.items()))
    return str(path)


def test_logreg_chooses_on_the_holdout_without_reading_val(tmp_path, demo_root, capsys):
    root, work = corrupt_val(demo_root, tmp_path), tmp_path / "work"
    with pytest.raises(Exception, match="image|identify"):
        logreg.main(["--config", logreg_config(tmp_path), "--data-root", str(root), "--work-dir", str(work)])
    out = capsys.readouterr().out
    assert out.count("logreg: C ") == 45 and "chose C" in out  # all 45 values fitted and the choice made
    assert not os.path.exists(work / "final_metrics.json")


def test_logreg_end_to_end(tmp_path, demo_root):
    work = tmp_path / "work"
    argv = ["--config", logreg_config(tmp_path), "--data-root", demo_root, "--work-dir", str(work)]
    assert logreg.main(argv) == 0
    m, fp = json.load(open(work / "final_metrics.json")), json.load(open(work / "fingerprint.json"))
    assert set(m["logreg"]) == {"top1", "top5", "log10_C", "holdout_top1"} and 0 <= m["logreg"]["top1"] <= 100
    assert fp["chosen_C"] in logreg.c_grid(DINOV2_LOGREG["c_powers"])
    assert m["logreg"]["log10_C"] == pytest.approx(np.log10(fp["chosen_C"]))
    assert fp["holdout_images"] == 2 and len(fp["sweep"]) == 45 and fp["refit_on_all_train"]
    assert any(d.startswith("max_iter: 20") for d in fp["deviations"])
    assert np.load(work / "features" / "train_gap.npy", mmap_mode="r").shape == (24, 2048)
    data = perimage.read(str(work))  # the per-image file gives the run's top-1 back
    assert len(data["ids"]) == 8 and data["ids"][0].count("/") == 1
    assert perimage.metric("logreg/top1", data, np.ones((1, 8)))[0] == pytest.approx(m["logreg"]["top1"])
    assert logreg.main(argv) == 0  # the second run reads the cached features back


def tiny_root(tmp_path):
    root = tmp_path / "tiny"
    for split in ("train", "val"):
        for c in ("a", "b"):
            (root / "imagenet" / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(2):
                (root / "imagenet" / split / c / f"{i}.jpg").write_bytes(b"")
    return str(root)


def test_bad_input_is_refused(tmp_path, demo_root, capsys):
    from transfer.classification import sweep

    work = tmp_path / "work"
    cases = [  # (runner, argv, culprit)
        (logreg, [logreg_config(tmp_path, dtype="float16")], "float16"),
        (logreg, [logreg_config(tmp_path, c_powers={"start": -6, "stop": 5})], "c_powers"),
        (logreg, [logreg_config(tmp_path, holdout_fraction=0)], "holdout_fraction"),
        (logreg, [config_path("classification", "knn_quick.yaml")], "missing recipe keys"),
        (logreg, [logreg_config(tmp_path), "--device", "tpu"], "--device tpu"),
        (logreg, [logreg_config(tmp_path), "--data-root", tiny_root(tmp_path)], "needs at least 10"),
        (sweep, [config_path("mmpretrain", "linear_mocov2_r50_quick.py"), "--data-root", tiny_root(tmp_path)],
         "needs at least 10"),
        (sweep, [config_path("mmpretrain", "linear-stages_r50_quick.py")], "linear-stages"),
    ]
    if not torch.cuda.is_available():
        cases.append((logreg, [logreg_config(tmp_path), "--device", "cuda"], "--device cuda"))
    for module, (cfg, *rest), culprit in cases:
        argv = ["--config", cfg, "--data-root", demo_root, "--work-dir", str(work)] + rest
        refuses(partial(entry, module.main), argv, culprit, capsys, watch=[str(tmp_path), demo_root])
        assert not work.exists()


def test_sweep_of_a_vit_has_both_feature_variants(tmp_path, demo_root):
    """A ViT gets each lr on the class token and on the class token + mean patch token (dinov2's use_avgpool),
    the tokens taken after the final LayerNorm; the backbone stays frozen (the runner's check)."""
    from tests.test_classification_linear import vit_weights
    from transfer.classification import sweep

    weights, work = vit_weights(tmp_path, depth=2, width=64, heads=4, name="tiny"), tmp_path / "work"
    argv = ["--config", config_path("mmpretrain", "linear_mocov3_vit_quick.py"), "--data-root", demo_root,
            "--work-dir", str(work), "--weights", weights, "--cfg-options", *TINY]
    assert sweep.main(argv) == 0
    heads = json.load(open(work / "sweep.json"))["heads"]
    assert [h["variant"] for h in heads] == ["cls"] * 13 + ["cls+avgpool"] * 13
    assert heads[6]["lr"] == heads[19]["lr"] == 0.001  # the quick probe's lr at the grid's centre
    m = json.load(open(work / "final_metrics.json"))
    assert set(m) == {"accuracy", "sweep"} and m["sweep"]["lr"] in [h["lr"] for h in heads]
    trained = torch.load(work / "epoch_1.pth", map_location="cpu", weights_only=False)["state_dict"]
    assert trained["head.fcs.0.weight"].shape == (4, 64) and trained["head.fcs.13.weight"].shape == (4, 128)
    # the quick probe's BatchNorm (affine=False) on each head's input: raw tokens cannot pass its neck
    assert trained["head.norms.cls.running_var"].shape == (64,) and "head.norms.cls.weight" not in trained
    assert trained["head.norms.cls+avgpool.running_var"].shape == (128,) and not [k for k in trained if "neck" in k]
    assert "unchanged by training" in open(next(work.glob("*/*.log"))).read()


@pytest.mark.parametrize("recipe", ["mocov2_r50", "mocov3_r50", "mocov3_vit"])
def test_each_sweep_head_follows_the_recipe_otherwise(recipe):
    """The sweep's effective config is the linear probe's except for the head, its per-head lr multipliers,
    the holdout metric and (ViT) the tokens the head reads: pipeline, batch, epochs, schedule, optimizer equal."""
    from transfer.classification import mmrun, sweep

    path = config_path("mmpretrain", f"linear_{recipe}.py")
    lin, sw = mmrun.build_cfg(path).to_dict(), sweep.build_cfg(path).to_dict()
    assert sw["optim_wrapper"].pop("paramwise_cfg")["custom_keys"]["head.fcs.6."] == {"lr_mult": 1.0}
    assert sw["model"].pop("head")["type"] == "SweepLinearHead"
    assert lin["model"].pop("head")["type"] in ("LinearClsHead", "VisionTransformerClsHead")
    assert sw.pop("val_evaluator")["type"] == "StageAccuracy"
    lin.pop("val_evaluator")
    if recipe.endswith("vit"):
        assert sw["model"]["backbone"].pop("out_type") == "raw"
        assert lin["model"]["backbone"].pop("out_type") == "cls_token"
    assert sw == lin
