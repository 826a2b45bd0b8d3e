"""Install detectron2 at the upstream commit ViTDet needs, with native ops, by the best route at hand.

This is the one place where the project works around detectron2's packaging; the README's
install notes describe it. Run it with the environment's own python:

    PIP_FIND_LINKS=/path/to/wheels .venv/bin/python tools/install_detectron2.py -c requirements/constraints.txt

Routes, first that works wins; the installer prints which one it took:
1. keep: the detectron2 already in the environment is that build (it has
   `detectron2.modeling.backbone.vit` and a compiled `_C`). An older build without them, such as
   the registry-0.6 route below, is replaced.
2. wheel: a `detectron2==0.6` wheel from the `PIP_FIND_LINKS` folders (CI and developers keep the
   upstream build there), installed with `--no-index` and accepted only if it imports with native ops.
3. source: pip builds the upstream commit from GitHub (a machine with network and a compiler).
4. registry: the registry's `pb1-detectron2==0.6` sdist, detectron2 0.6's source tree without
   `detectron2/layers/csrc`. We build a pure-Python wheel named `detectron2` from it:
   - `ext_modules` is emptied, and `detectron2/_C.py` is added: a placeholder whose every op
     raises `NativeOpsMissing` with the way to get them (deformable convolution, rotated boxes
     and the fast COCO evaluator need them; Faster/Mask R-CNN use torchvision's ops);
   - the NumPy aliases removed in NumPy 1.24 (`np.bool`, `np.int`, `np.float`, ...) and
     Pillow 10's removed `Image.LINEAR` are replaced by what they always meant.
   This 0.6 has no ViTDet: the coco-vitdet task refuses with the command that gets routes 2 or 3.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tarfile
import tempfile

SDIST = "pb1-detectron2==0.6"
COMMIT = "02b5c4e295e990042a714712c21dc79b731e8833"  # the upstream commit with ViTDet (still "0.6")
SOURCE = f"git+https://github.com/facebookresearch/detectron2.git@{COMMIT}"
# How a user gets the full build; printed by the registry route and by the ViTDet runner's refusal.
UPGRADE = (
    f"PIP_FIND_LINKS=<folder with detectron2-0.6-cp3XX-*.whl built at {COMMIT[:12]}> "
    "python tools/install_detectron2.py -c requirements/constraints.txt, "
    f"or on a machine with network: pip install --no-build-isolation '{SOURCE}'"
)

PLACEHOLDER = '''"""Placeholder for detectron2's native ops (written by moco-transfer's installer).

This detectron2 was built from the registry's sdist, which lacks the C++/CUDA sources.
"""


class NativeOpsMissing(RuntimeError):
    pass


def get_compiler_version():
    return "none: native ops not built (registry install)"


def get_cuda_version():
    return "none: native ops not built (registry install)"


def has_cuda():
    return False


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise NativeOpsMissing(
        f"detectron2._C.{name} is a native op, and this detectron2 was installed from the "
        "registry without them (deformable conv, rotated boxes, the fast COCO evaluator). "
        "Build detectron2 from source into this environment "
        "(pip install --no-build-isolation "
        "'git+https://github.com/facebookresearch/detectron2.git@02b5c4e295e990042a714712c21dc79b731e8833') "
        "or rerun tools/install_detectron2.py with PIP_FIND_LINKS pointing at a wheel of that build."
    )
'''

# Aliases removed from NumPy 1.24 and Pillow 10, and the names they always stood for.
API_FIXES = [
    (re.compile(r"\bnp\.bool\b(?!_)"), "bool"),
    (re.compile(r"\bnp\.int\b(?![_0-9])"), "int"),
    (re.compile(r"\bnp\.float\b(?![_0-9])"), "float"),
    (re.compile(r"\bnp\.complex\b(?![_0-9])"), "complex"),
    (re.compile(r"\bnp\.object\b(?!_)"), "object"),
    (re.compile(r"\bnp\.str\b(?!_)"), "str"),
    (re.compile(r"\bImage\.LINEAR\b"), "Image.BILINEAR"),
]


# Prints the package folder; exit 1 = no detectron2, 3 = importable but not the full build.
PROBE = """
import os, sys
import detectron2
from detectron2 import _C
print(os.path.dirname(detectron2.__file__))
if not _C.__file__.endswith(".so"):
    sys.exit(3)  # the registry route's placeholder _C.py
import detectron2.modeling.backbone.vit
print(_C.get_compiler_version())
"""


def probe():
    """('full' | 'partial' | None, detail) for the detectron2 in this environment."""
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    if r.returncode == 0:
        return "full", r.stdout.split()[0]
    if r.stdout.strip():
        return "partial", r.stdout.split()[0]
    return None, (r.stderr.strip().splitlines() or ["no output"])[-1]


def pip(*args, check=True):
    return subprocess.run([sys.executable, "-m", "pip", *args], check=check).returncode == 0


def fetch_sdist(workdir):
    # --no-build-isolation: its setup.py imports torch, which is already in this environment
    pip("download", SDIST, "--no-deps", "--no-binary", ":all:", "--no-build-isolation", "-d", workdir)
    archives = glob.glob(os.path.join(workdir, "*.tar.gz"))
    if len(archives) != 1:
        sys.exit(f"install_detectron2: expected one sdist in {workdir}, found {archives}")
    with tarfile.open(archives[0]) as tar:
        tar.extractall(workdir, filter="data")
    roots = [os.path.dirname(p) for p in glob.glob(os.path.join(workdir, "*", "setup.py"))]
    if len(roots) != 1:
        sys.exit(f"install_detectron2: no single source tree with setup.py in {archives[0]}")
    return roots[0]


def patch_source(root):
    setup_py = os.path.join(root, "setup.py")
    text = open(setup_py).read()
    # the distribution is named detectron2, as a source build is, so that requirements match
    edits = [('name="pb1-detectron2"', 'name="detectron2"'), ("ext_modules=get_extensions(),", "ext_modules=[],")]
    for old, new in edits:
        if old not in text:
            sys.exit(f"install_detectron2: {setup_py} has no '{old}'; the sdist changed, update this script")
        text = text.replace(old, new)
    with open(setup_py, "w") as f:
        f.write(text)
    with open(os.path.join(root, "detectron2", "_C.py"), "w") as f:
        f.write(PLACEHOLDER)

    fixed = 0
    for path in glob.glob(os.path.join(root, "detectron2", "**", "*.py"), recursive=True):
        src = open(path).read()
        new = src
        for pattern, repl in API_FIXES:
            new = pattern.sub(repl, new)
        if new != src:
            fixed += 1
            with open(path, "w") as f:
                f.write(new)
    print(f"install_detectron2: dropped the C++ extension, fixed removed NumPy/Pillow names in {fixed} files")


def install_wheel(find_links, constraints):
    """Route 2: the prebuilt upstream wheel from local folders, nothing from the network."""
    links = [x for d in find_links for x in ("--find-links", d)]
    # --force-reinstall: an older build answers to the same version string 0.6
    if not pip("install", "--no-index", "--no-deps", "--force-reinstall", *links, "detectron2==0.6", check=False):
        return False
    # its dependencies (fvcore, iopath, ...) from the registry as usual, before the import probe needs them
    if pip("install", *constraints, *links, "detectron2==0.6", check=False) and probe()[0] == "full":
        return True
    print("install_detectron2: the wheel installed but lacks ViTDet or native ops; removing it")
    pip("uninstall", "-y", "detectron2", check=False)
    return False


def install_source(constraints):
    """Route 3: pip builds the upstream commit (needs GitHub, a compiler and torch already here)."""
    ok = pip("install", "--no-build-isolation", *constraints, SOURCE, check=False)
    return ok and probe()[0] == "full"


def install_registry(constraints):
    """Route 4: the registry's sdist as a pure-Python wheel (no native ops, no ViTDet)."""
    with tempfile.TemporaryDirectory() as workdir:
        root = fetch_sdist(workdir)
        patch_source(root)
        pip("wheel", "--no-deps", "--no-build-isolation", "-w", workdir, root)
        wheel = glob.glob(os.path.join(workdir, "detectron2-*.whl"))
        pip("install", "--force-reinstall", "--no-deps", *wheel)
        pip("install", *constraints, *wheel)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-c", "--constraints", default=None, help="pip constraints file")
    parser.add_argument("--no-source", action="store_true", help="skip route 3 (no network to GitHub)")
    args = parser.parse_args()
    constraints = ["-c", args.constraints] if args.constraints else []

    state, where = probe()
    if state == "full":
        print(f"install_detectron2: route keep: the upstream build with native ops is already at {where}")
        return
    if state == "partial":
        print(f"install_detectron2: replacing the detectron2 at {where} (no ViTDet or no native ops)")
    find_links = os.environ.get("PIP_FIND_LINKS", "").split()
    if find_links and install_wheel(find_links, constraints):
        print(f"install_detectron2: route wheel: detectron2 {COMMIT[:12]} with native ops from {find_links}")
        return
    if not args.no_source and install_source(constraints):
        print(f"install_detectron2: route source: built detectron2 {COMMIT[:12]} from GitHub")
        return
    install_registry(constraints)
    if probe()[0] is None:
        sys.exit("install_detectron2: detectron2 installed but does not import")
    print(
        "install_detectron2: route registry: detectron2 0.6 without native ops or ViTDet; the "
        f"coco-vitdet task will refuse. To get them: {UPGRADE}"
    )


if __name__ == "__main__":
    main()
