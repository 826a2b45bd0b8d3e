"""The protocol table is the one declaration of each task; the layout's imports point one way."""
import ast
import json
import os
import re
import subprocess
import sys
from importlib import import_module

import pytest

from tests.conftest import REPO
from transfer import protocols

SNAPSHOTS = os.path.join(REPO, "tests", "data", "effective_configs")
PACKAGES = ("mococore", "mocodata", "pretrain", "converters", "transfer")
# who may import whom: everything stands on the shared floor (mococore), which imports none of the others;
# pretrain and transfer use the data package, transfer uses the converters, nothing points back
ALLOWED = {"mococore": set(), "mocodata": {"mococore"}, "converters": {"mococore"}, "pretrain": {"mococore", "mocodata"},
           "transfer": {"mococore", "mocodata", "converters"}}


def flavours(p, variant):
    """(tag, config path) of each config a task's variant names: one per pretraining recipe, ViT size or
    architecture where the path depends on it (tag '' where it does not)."""
    rel = p.config(variant)
    out = {}
    for arch in p.archs:
        for recipe in (["mocov3_vit"] if arch.startswith("vit") else ["mocov2_r50", "mocov3_r50"]):
            path = rel.format(recipe=recipe, vit="_vit" if arch.startswith("vit") else "", arch=arch,
                              size=arch.replace("vit_", "")[:1])
            tag = recipe if "{recipe}" in rel else arch if ("{arch}" in rel or "{size}" in rel) else \
                ("vit" if arch.startswith("vit") else "r50") if "{vit}" in rel else ""
            out.setdefault(tag, os.path.join(REPO, "configs", path))
    return sorted(out.items())


CASES = [(t, v, tag, path) for t, p in protocols.TASKS.items() for v in p.configs for tag, path in flavours(p, v)]
EXT = {"detectron2": "yaml", "detectron2-lazy": "py", "mmseg": "py", "mmpretrain": "py", "torch": "json",
       "sklearn": "json"}


def snapshot_name(task, variant, tag):
    return f"{task}_{variant}{'_' + tag if tag else ''}.{EXT[protocols.get(task).framework]}"


def text_of(framework, cfg):
    if framework == "detectron2":
        return cfg.dump()
    if framework == "detectron2-lazy":
        from detectron2.config import LazyConfig

        return re.sub(r" at 0x[0-9a-f]+>", ">", LazyConfig.to_py(cfg)) + "\n"  # functions' addresses
    if framework in ("mmseg", "mmpretrain"):
        return cfg.pretty_text
    return json.dumps(cfg, indent=1) + "\n"


def effective(task, path):
    """The config as the task's runner builds it (no overrides), as text."""
    p = protocols.get(task)
    return text_of(p.framework, import_module(p.runner).build_cfg(path))


@pytest.mark.parametrize("task,variant,tag,path", CASES, ids=[snapshot_name(*c[:3]) for c in CASES])
def test_effective_configs_are_unchanged(task, variant, tag, path):
    """The configs as the runners build them, byte for byte as dumped before the runners were refactored."""
    framework = protocols.get(task).framework
    if framework == "detectron2":  # dumped with detectron2 at upstream 02b5c4e2, whose defaults have keys 0.6 lacks
        pytest.importorskip("detectron2.modeling.backbone.vit", reason="registry detectron2 0.6: other defaults")
    if framework == "detectron2-lazy":
        pytest.importorskip("detectron2.modeling.backbone.vit", reason="registry detectron2 0.6: no ViTDet")
    assert effective(task, path) == open(os.path.join(SNAPSHOTS, snapshot_name(task, variant, tag))).read()


def test_every_task_is_complete():
    for p in protocols.TASKS.values():
        assert p.name and p.runner and "full" in p.configs and "quick" in p.configs, p.name
        for variant in p.configs:
            for _, path in flavours(p, variant):
                assert os.path.isfile(path), path
        assert set(p.published) | set(p.baselines) <= set(p.metrics), p.name  # a published number is always a row
    from mocodata import validate

    assert {p.data for p in protocols.TASKS.values()} <= set(validate.CHECKS)


# per framework: a real key with a new value and where it shows in the effective config, and a misspelt key
OVERRIDES = {
    "detectron2": (["SOLVER.MAX_ITER", "7"], "MAX_ITER: 7\n", ["SOLVER.BASE_LRR", "1"]),
    "detectron2-lazy": (["train.max_iter=7"], "cfg.train.max_iter=7\n", ["optimizer.lrr=1"]),
    "mmseg": ({"train_cfg.max_iters": 7}, "max_iters=7", {"optim_wrapper.optimizer.lrr": 1}),
    "mmpretrain": ({"train_cfg.max_epochs": 7}, "max_epochs=7", {"optim_wrapper.optimizer.lrr": 1}),
}


@pytest.mark.parametrize("task", list(protocols.TASKS))
def test_every_task_builds_its_config_with_its_runner(task):
    """Every runner has build_cfg(config, overrides): a real key reaches the effective config, a misspelt
    one is refused naming it, and a runner that takes no overrides refuses any."""
    from transfer import BadInput

    p = protocols.get(task)
    if p.framework.startswith("detectron2"):
        pytest.importorskip("detectron2.modeling.backbone.vit", reason="registry detectron2 0.6: other defaults")
    build_cfg = import_module(p.runner).build_cfg
    path = dict(flavours(p, "quick"))
    path = path.get("") or path.get("mocov2_r50") or path.get("r50") or next(iter(path.values()))
    if p.framework not in OVERRIDES:
        assert text_of(p.framework, build_cfg(path)) == effective(task, path)
        with pytest.raises(BadInput, match="take none"):
            build_cfg(path, {"k": 1})
        return
    real, shown, typo = OVERRIDES[p.framework]
    before, after = effective(task, path), text_of(p.framework, build_cfg(path, real))
    assert shown not in before and shown in after
    with pytest.raises(BadInput, match="(?i)lrr"):
        build_cfg(path, typo)


def package_sources():
    for pkg in PACKAGES:
        for d, _, files in os.walk(os.path.join(REPO, pkg)):
            for f in files:
                if f.endswith(".py"):
                    yield os.path.join(d, f)


def all_refs(p):
    """(metric, Ref) of a protocol's published numbers and baselines."""
    refs = [(m, r) for m, ref in p.published.items() for r in (ref.values() if isinstance(ref, dict) else [ref])]
    return refs + [(m, r) for m, refs in p.baselines.items() for r in refs]


def test_each_published_number_is_written_once():
    text = {path: open(path).read() for path in package_sources()}
    for p in protocols.TASKS.values():
        refs = all_refs(p)
        for metric, ref in refs:
            pattern = re.compile(rf"(?<![\d.]){re.escape(repr(ref.value))}0*(?![\d])")  # 31.60 is 31.6
            places = [os.path.relpath(path, REPO) for path, t in text.items() for _ in pattern.finditer(t)]
            assert places and set(places) == {"transfer/protocols.py"}, (p.name, metric, places)


# open-mmlab/mmselfsup, branch openselfsup, docs/MODEL_ZOO.md at commit 0b768363, written here from the file:
# rows "ImageNet, torchvision", "Random, kaiming", "MoCo v2, selfsup/moco/r50_v2.py"
MODEL_ZOO = {
    "random": {"svm best layer": ("feat2", 30.54), "low-shot": [9.15, 9.39, 11.09, 12.3, 14.3, 17.41, 21.32, 23.77],
               "imagenet feat1-5, avgpool": [11.37, 16.21, 13.47, 9.07, 6.54, 4.35],
               "places205 feat1-5": [17.19, 21.70, 19.23, 14.59, 11.73], "voc07+12 AP50/AP/AP75": [59.02, 32.83, 31.60]},
    "supervised": {"svm best layer": ("feat5", 87.17),
                   "low-shot": [52.99, 63.55, 73.7, 78.79, 81.76, 83.75, 85.18, 85.97],
                   "imagenet feat1-5, avgpool": [15.18, 33.96, 47.86, 67.56, 76.17, 74.12],
                   "places205 feat1-5": [21.27, 36.10, 43.03, 51.38, 53.05], "voc07+12 AP50/AP/AP75": [81.58, 54.19, 59.80]},
    "MoCo v2 (OpenSelfSup)": {"svm best layer": ("feat5", 84.26),
                              "low-shot": [43.0, 52.48, 63.43, 71.74, 76.35, 78.9, 81.31, 82.45],
                              "imagenet feat1-5, avgpool": [14.74, 32.81, 44.95, 61.61, 66.73, 67.69],
                              "places205 feat1-5": [21.88, 35.75, 43.65, 49.99, 52.57],
                              "voc07+12 AP50/AP/AP75": [82.24, 56.97, 63.43]},
}


def baseline(task, metric, init):
    found = [r for r in protocols.get(task).baselines.get(metric, ()) if r.init == init and "MODEL_ZOO.md" in r.source]
    assert len(found) == 1, (task, metric, init, found)  # once in the table
    assert "MODEL_ZOO.md @0b768363" in found[0].source and found[0].setup, found[0]
    return found[0].value


@pytest.mark.parametrize("init", list(MODEL_ZOO))
def test_baselines_are_the_model_zoo_rows(init):
    row = MODEL_ZOO[init]
    layer, best = row["svm best layer"]
    assert baseline("svm", f"svm/mAP_{layer}", init) == best  # a best-layer number sits in its layer's row
    for k, v in zip(protocols.LOWSHOT_K, row["low-shot"]):
        assert baseline("svm-lowshot", f"svm_lowshot/mAP_feat5_k{k}", init) == v
    for i in range(5):
        assert baseline("linear-stages", f"feat{i + 1}/top1", init) == row["imagenet feat1-5, avgpool"][i]
        assert baseline("linear-stages-places", f"feat{i + 1}/top1", init) == row["places205 feat1-5"][i]
    assert baseline("linear", "accuracy/top1", init) == row["imagenet feat1-5, avgpool"][5]
    for metric, v in zip(("bbox/AP50", "bbox/AP", "bbox/AP75"), row["voc07+12 AP50/AP/AP75"]):
        assert baseline("voc", metric, init) == v
    coco = [r for refs in protocols.get("coco").baselines.values() for r in refs]
    assert coco and not [r for r in coco if "MODEL_ZOO" in r.source]  # the zoo's COCO table is C4 2x: not ours


# He et al., "Momentum Contrast for Unsupervised Visual Representation Learning" (arXiv:1911.05722), written here
# from the paper's tables: rows "random init.", "super. IN-1M", "MoCo IN-1M"; Table 2b (Faster R-CNN R50-C4,
# VOC07+12, AP50/AP/AP75) and Table 5a (Mask R-CNN R50-FPN 1x, COCO, APbb/APbb50/APbb75/APmk/APmk50/APmk75)
MOCO_PAPER = {
    "voc": ("Table 2b", ("bbox/AP50", "bbox/AP", "bbox/AP75"),
            {"random": [60.2, 33.8, 33.1], "supervised": [81.3, 53.5, 58.8], "MoCo v1 IN-1M": [81.5, 55.9, 62.6]}),
    "coco": ("Table 5a", ("bbox/AP", "bbox/AP50", "bbox/AP75", "segm/AP", "segm/AP50", "segm/AP75"),
             {"random": [31.0, 49.5, 33.2, 28.5, 46.8, 30.4], "supervised": [38.9, 59.6, 42.7, 35.4, 56.5, 38.1],
              "MoCo v1 IN-1M": [38.5, 58.9, 42.0, 35.1, 55.9, 37.7]}),
}


@pytest.mark.parametrize("task", list(MOCO_PAPER))
def test_baselines_are_the_moco_paper_rows(task):
    table, metrics, rows = MOCO_PAPER[task]
    for init, values in rows.items():
        for metric, v in zip(metrics, values):
            found = [r for r in protocols.get(task).baselines[metric] if r.init == init and "1911.05722" in r.source]
            assert len(found) == 1, (task, metric, init, found)  # once in the table
            assert found[0].value == v and found[0].source == f"MoCo paper (arXiv:1911.05722) {table}"
            if task == "voc":  # Table 2b's setup is moco's detectron2 config, ours
                assert "detectron2, moco detection/configs/pascal_voc_R_50_C4_24k_moco.yaml (= ours)" in found[0].setup
            else:  # moco released no FPN config: the row says what may differ
                assert "detectron2, Mask R-CNN R50-FPN 1x" in found[0].setup and "not released" in found[0].setup
    # the paper's other tables are other protocols: no other row cites it
    cited = {r.source for p in protocols.TASKS.values() for refs in p.baselines.values() for r in refs}
    assert {s for s in cited if "1911.05722" in s} == {f"MoCo paper (arXiv:1911.05722) {t}" for t, _, _ in
                                                       MOCO_PAPER.values()}


# He et al., "Masked Autoencoders Are Scalable Vision Learners" (arXiv:2111.06377), written here from the paper:
# row "supervised" (pre-train data "IN1K w/ labels") of Table 4 (COCO, ViT Mask R-CNN with FPN: APbox, APmask)
# and Table 5 (ADE20K UperNet mIoU), ViT-B and ViT-L; neither table has a row from scratch
MAE_SUPERVISED = {
    ("coco-vitdet", "bbox/AP"): ("Tab. 4", {"vit_base": 47.9, "vit_large": 49.3}),
    ("coco-vitdet", "segm/AP"): ("Tab. 4", {"vit_base": 42.9, "vit_large": 43.9}),
    ("ade20k-upernet", "sem_seg/mIoU"): ("Tab. 5", {"vit_base": 47.4, "vit_large": 49.9}),
}


@pytest.mark.parametrize("task,metric", list(MAE_SUPERVISED))
def test_vit_baselines_are_the_mae_paper_supervised_rows_shown_for_their_size_only(task, metric):
    table, values = MAE_SUPERVISED[(task, metric)]
    p = protocols.get(task)
    for arch, v in values.items():
        found = p.baseline_refs(arch)[metric]
        assert [(r.value, r.init, r.arch) for r in found] == [(v, "supervised", arch)]
        assert found[0].source == f"MAE paper (arXiv:2111.06377) {table}, row supervised (IN1K w/ labels)"
    assert metric not in p.baseline_refs("vit_small") and not p.baseline_refs("resnet50")  # none measured


def test_a_best_layer_number_says_so_where_it_is_not_feat5():
    random_k96 = [r for r in protocols.get("svm-lowshot").baselines["svm_lowshot/mAP_feat5_k96"] if r.init == "random"]
    assert "feat2, NOT feat5" in random_k96[0].setup
    assert "svm/mAP_feat5" not in {m for m, refs in protocols.get("svm").baselines.items()
                                   for r in refs if r.init == "random"}


def test_every_published_number_names_what_measured_it():
    for p in protocols.TASKS.values():
        for metric, ref in all_refs(p):
            assert ref.source and ref.setup, (p.name, metric, ref)
    coco = protocols.get("coco").refs("mocov2_r50", "resnet50")["bbox/AP"]
    assert coco.value == 40.2 and "mmdetection" in coco.setup and "mask-rcnn_r50_fpn_ms-1x_coco.py" in coco.setup
    voc = protocols.get("voc")
    assert "detectron2" in voc.refs()["bbox/AP50"].setup  # 82.4: moco's detectron2 config, ours
    seeds_voc = [r for r in voc.baselines["bbox/AP50"] if r.value == 81.06]
    assert len(seeds_voc) == 1 and "faster-rcnn_r50-c4_ms-24k_voc0712.py" in seeds_voc[0].setup
    assert not protocols.get("svm").baseline_refs("vit_base")  # ResNet-50 baselines are not shown for a ViT


def imports_of(path):
    """The project modules a file imports, at any depth (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in PACKAGES}


def module_name(path):
    rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def test_imports_point_one_way_and_never_in_a_circle():
    graph = {module_name(p): imports_of(p) for p in package_sources()}
    for mod, deps in graph.items():
        bad = {d for d in deps if d.split(".")[0] not in ALLOWED[mod.split(".")[0]] | {mod.split(".")[0]}}
        assert not bad, f"{mod} imports {bad}"
    graph = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}

    def visit(m, path):
        assert m not in path, f"import circle: {' -> '.join(path[path.index(m):] + [m])}"
        for d in graph[m]:
            visit(d, path + [m])

    for m in graph:
        visit(m, [])
    for pkg in ("mocodata", "pretrain", "converters", "transfer"):  # the floor is what they stand on
        assert any(d.startswith("mococore") for m, deps in graph.items() if m.split(".")[0] == pkg for d in deps), pkg


def test_pretraining_and_converters_load_no_transfer_module():
    code = ("import sys; import pretrain.run, converters.to_detectron2, converters.to_mmseg; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'transfer'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_task_groups_follow_the_backbone_cheap_tiers_first(monkeypatch):
    from dataclasses import replace

    r50 = [p.name for p in protocols.select("all")]
    assert set(r50) == {n for n, p in protocols.TASKS.items() if "resnet50" in p.archs and not p.derived}  # no gaps
    assert [protocols.get(n).tier for n in r50] == sorted(protocols.get(n).tier for n in r50)
    assert r50[0] == "knn" and r50.index("linear") < r50.index("voc") < r50.index("coco")
    assert {p.name for p in protocols.select("all", "vit_base")} == {"knn", "svm", "linear", "finetune", "coco-vitdet",
                                                                    "ade20k-upernet", "seg-upernet"}
    assert {p.name for p in protocols.select("dense")} == {"voc", "coco", "seg", "cityscapes"}
    assert {p.name for p in protocols.select("seeds")} == {"knn", "svm", "svm-lowshot", "linear", "linear-stages",
                                                          "linear-stages-places", "voc", "coco", "seg"}
    assert [p.name for p in protocols.select("voc,classification,voc")][:2] == ["voc", "knn"]  # named order, once
    for p in protocols.TASKS.values():  # every task is in one of the two kinds
        assert {"classification", "dense"} & set(p.groups) and set(p.groups) <= set(protocols.GROUPS), p.name
    # a cheaper protocol of our own (derived) joins `all` (or a group) only when named
    monkeypatch.setitem(protocols.TASKS, "knn-cheap", replace(protocols.get("knn"), name="knn-cheap", derived="cheaper"))
    assert "knn-cheap" not in [p.name for p in protocols.select("all")]
    assert "knn-cheap" not in [p.name for p in protocols.select("classification")]
    assert [p.name for p in protocols.select("all,knn-cheap")][-1] == "knn-cheap"
    assert {"linear-sweep", "logreg"} <= set(protocols.TASKS)
    assert not {"linear-sweep", "logreg"} & {p.name for p in protocols.select("all")}
    with pytest.raises(KeyError, match="nosuch"):
        protocols.select("all,nosuch")


def test_a_protocol_names_a_known_framework_and_weights_form():
    row = dict(name="x", runner="m", configs={}, data="seg", metrics=())
    with pytest.raises(ValueError, match="framework 'mmsegg'"):
        protocols.Protocol(framework="mmsegg", weights="mmseg", **row)
    with pytest.raises(ValueError, match="weights 'pkl'"):
        protocols.Protocol(framework="mmseg", weights="pkl", **row)


def test_the_segmentation_runner_refuses_a_misspelt_override(tmp_path, demo_root, capsys):
    from tests.badinput import refuses
    from transfer.runner import entry
    from transfer.segmentation import train

    argv = ["--config", os.path.join(REPO, "configs", "mmseg", "fcn_r50-d8_quick_voc12aug.py"), "--data-root", demo_root,
            "--work-dir", str(tmp_path / "run"), "--cfg-options", "optim_wrapper.optimizer.lrr=1"]
    refuses(lambda a: entry(train.main, a), argv, "optim_wrapper.optimizer.lrr", capsys, watch=[str(tmp_path)])
    assert not (tmp_path / "run").exists()


# per framework: the override flag on the command line and what the runner's args hold (None: it takes none),
# and its launcher's flag with a value
CONTRACT = {
    "detectron2": (["--opts", "SOLVER.MAX_ITER", "-1"], "opts", ["SOLVER.MAX_ITER", "-1"], ["--num-gpus", "2"]),
    "detectron2-lazy": (["--opts", "train.max_iter=7"], "opts", ["train.max_iter=7"], ["--num-gpus", "2"]),
    "mmseg": (["--cfg-options", "train_cfg.max_iters=7"], "cfg_options", {"train_cfg.max_iters": 7},
              ["--launcher", "pytorch"]),
    "mmpretrain": (["--cfg-options", "train_cfg.max_epochs=7"], "cfg_options", {"train_cfg.max_epochs": 7},
                   ["--launcher", "pytorch"]),
    "torch": (["--opts", "k", "1"], None, None, []),
    "sklearn": (["--opts", "k", "1"], None, None, []),
}


@pytest.mark.parametrize("runner", sorted({p.runner for p in protocols.TASKS.values()}))
def test_every_runner_parses_the_one_contract_command_line(runner, monkeypatch):
    """The parser each runner's entry point parses with was made by transfer.runner.parser, and takes the
    contract's common arguments, its framework's override flag (or refuses one) and its launcher's flags."""
    import argparse

    from transfer import runner as contract

    module, made = import_module(runner), []
    original, parse = contract.parser, argparse.ArgumentParser.parse_args
    (framework,) = {p.framework for p in protocols.TASKS.values() if p.runner == runner}

    def tracked(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    class Parsed(Exception):
        pass

    def stop(self, argv=None, namespace=None):
        raise Parsed(self)

    monkeypatch.setattr(contract, "parser", tracked)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", stop)
    with pytest.raises(Parsed) as caught:  # the entry point's first parse: its command line
        getattr(module, "invoke_main", module.main)(["--help"])
    cli = caught.value.args[0]
    assert any(cli is p for p in made), f"{runner} parses with a parser transfer.runner.parser did not make"
    common = ["--config", "c.cfg", "--data-root", "/data", "--work-dir", "/run", "--seed", "3", "--weights", "w.pkl"]
    flag, dest, value, launcher = CONTRACT[framework]
    args = parse(cli, common + launcher + (flag if dest else []))
    assert (args.config, args.data_root, args.work_dir, args.seed, args.weights) == \
        ("c.cfg", "/data", "/run", 3, "w.pkl")
    if dest is None:  # its recipe is its config: no override flag at all
        with pytest.raises(SystemExit):
            parse(cli, common + flag)
        return
    assert getattr(args, dest) == value
    assert args.launcher == "pytorch" if framework.startswith("mm") else args.num_gpus == 2


@pytest.mark.parametrize("runner", sorted({p.runner for p in protocols.TASKS.values()}))
def test_every_runner_runs_through_the_one_entry_point(runner):
    """`python -m RUNNER` is sys.exit(entry(main)): a user error anywhere in it exits 2 with its paragraph
    (tests/test_detection.py runs one such refusal as a process)."""
    path = os.path.join(REPO, *runner.split(".")) + ".py"
    blocks = [n for n in ast.parse(open(path).read()).body if isinstance(n, ast.If)
              and ast.unparse(n.test) in ("__name__ == '__main__'", '__name__ == "__main__"')]
    assert len(blocks) == 1 and len(blocks[0].body) == 1, runner
    call = ast.unparse(blocks[0].body[0])
    assert re.fullmatch(r"sys\.exit\(entry\(\w+\)\)", call), f"{runner}: {call}"
    module = import_module(runner)
    from transfer.runner import entry

    assert module.entry is entry
