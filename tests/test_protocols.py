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
PACKAGES = ("mocodata", "pretrain", "converters", "transfer")
# who may import whom (ARCHITECTURE.md): pretrain and transfer use the data package, transfer uses the
# converters, nothing points back
ALLOWED = {"mocodata": set(), "converters": set(), "pretrain": {"mocodata"}, "transfer": {"mocodata", "converters"}}


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
        assert set(p.published) <= set(p.metrics), p.name  # a published number is always a row
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


def test_each_published_number_is_written_once():
    text = {path: open(path).read() for path in package_sources()}
    for p in protocols.TASKS.values():
        refs = [(m, r) for m, ref in p.published.items() for r in (ref.values() if isinstance(ref, dict) else [ref])]
        for metric, ref in refs:
            pattern = re.compile(rf"(?<![\d.]){re.escape(repr(ref.value))}(?![\d])")
            places = [os.path.relpath(path, REPO) for path, t in text.items() for _ in pattern.finditer(t)]
            assert places and set(places) == {"transfer/protocols.py"}, (p.name, metric, places)


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


def test_pretraining_and_converters_load_no_transfer_module():
    code = ("import sys; import pretrain.run, converters.to_detectron2, converters.to_mmseg; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'transfer'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
