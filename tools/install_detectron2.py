"""Install detectron2 0.6 from the package registry, without its native ops.

This is the one place where the project works around detectron2's packaging; the README's
install notes describe it. Run it with the environment's own python:

    .venv/bin/python tools/install_detectron2.py

1. An importable detectron2 (a user's own source build, with its native ops) is kept untouched.
2. Otherwise the registry's `pb1-detectron2==0.6` sdist is downloaded. It is detectron2 0.6's
   source tree without `detectron2/layers/csrc`, so its C++ extension cannot be compiled. We
   build a pure-Python wheel named `detectron2` from it instead:
   - `ext_modules` is emptied, and `detectron2/_C.py` is added: a placeholder whose every op
     raises `NativeOpsMissing` with the way to get them (deformable convolution, rotated boxes
     and the fast COCO evaluator need them; Faster/Mask R-CNN use torchvision's ops);
   - the NumPy aliases removed in NumPy 1.24 (`np.bool`, `np.int`, `np.float`, ...) and
     Pillow 10's removed `Image.LINEAR` are replaced by what they always meant.
3. The wheel is installed with pip, dependencies resolved against the project's constraints.
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
        "(pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git'); "
        "the project's installer keeps an importable detectron2 untouched."
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


def detectron2_importable():
    probe = "import detectron2, os; print(os.path.dirname(detectron2.__file__))"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def pip(*args):
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--constraints", default=None, help="pip constraints file")
    args = parser.parse_args()

    found = detectron2_importable()
    if found:
        print(f"install_detectron2: keeping the detectron2 already importable at {found}")
        return
    with tempfile.TemporaryDirectory() as workdir:
        root = fetch_sdist(workdir)
        patch_source(root)
        pip("wheel", "--no-deps", "--no-build-isolation", "-w", workdir, root)
        wheel = glob.glob(os.path.join(workdir, "detectron2-*.whl"))
        constraints = ["-c", args.constraints] if args.constraints else []
        pip("install", *constraints, *wheel)
    if not detectron2_importable():
        sys.exit("install_detectron2: detectron2 installed but does not import")


if __name__ == "__main__":
    main()
