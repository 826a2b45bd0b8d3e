#!/usr/bin/env bash
# Create or refresh the project's virtualenv with the pinned stack (requirements/constraints.txt).
# Idempotent: every step checks what is already there; .venv/.ready is written only when all
# steps passed, so a half-finished install is never trusted. Each failure prints one line that
# names the step and the fix; pip's own output goes to .install.log.
#   PYTHON=python3.11 VENV=.venv PIP_FIND_LINKS=dir-of-prebuilt-wheels bash tools/setup_env.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
LOG=.install.log
C=requirements/constraints.txt
: >"$LOG"
rm -f "$VENV/.ready"

step() {  # step NAME FIX COMMAND...
  local name=$1 fix=$2 t0=$SECONDS
  shift 2
  printf 'setup: %-12s ' "$name"
  if "$@" >>"$LOG" 2>&1; then
    echo "ok ($((SECONDS - t0)) s)"
  else
    echo "FAILED"
    echo "setup: step '$name' failed: $fix (pip output: $LOG)" >&2
    exit 1
  fi
}

check_python() {
  "$PYTHON" -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 12), sys.version' 
}
make_venv() {
  "$VENV/bin/python" -c 'import sys' 2>/dev/null || { rm -rf "$VENV" && "$PYTHON" -m venv "$VENV"; }
}
pip() { "$VENV/bin/python" -m pip install --disable-pip-version-check -c "$C" "$@"; }
mmcv_ok() {
  "$VENV/bin/python" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' 2>/dev/null
}
install_mmcv() {
  mmcv_ok && return 0
  # an sdist whose setup.py imports torch and pkg_resources; PIP_FIND_LINKS may hold a wheel of it
  MMCV_WITH_OPS=1 pip --no-build-isolation mmcv==2.1.0 && mmcv_ok
}
check_stack() {
  "$VENV/bin/python" -c 'import torch, torchvision, mmcv.ops, mmseg.models, detectron2.modeling, timm, pycocotools
import torchvision.ops as ops; ops.nms(torch.zeros(1, 4), torch.ones(1), 0.5)' && "$VENV/bin/python" -m pip check
}

T0=$SECONDS
step python "use Python 3.10-3.12: make PYTHON=python3.11 test" check_python
step venv "python -m venv failed: install your distribution's python3-venv package" make_venv
step pip-tools "the package registry is unreachable or the disk is full" pip pip setuptools wheel
step torch "could not install torch 2.11.0/torchvision 0.26.0 from the registry (network? disk?)" \
  pip torch torchvision
step mmcv "building mmcv 2.1.0 failed: it needs gcc and the Python headers; or point PIP_FIND_LINKS at a folder with a prebuilt mmcv wheel" \
  install_mmcv
# detectron2 at the ViTDet commit: kept if built, else a wheel from PIP_FIND_LINKS, else GitHub, else
# the registry's 0.6 without native ops (ViTDet refuses); the route taken is in $LOG
step detectron2 "see tools/install_detectron2.py: put detectron2-0.6-*.whl (upstream 02b5c4e) in PIP_FIND_LINKS, or install your own build into $VENV first" \
  "$VENV/bin/python" tools/install_detectron2.py --constraints "$C"
grep -h "install_detectron2: route" "$LOG" | tail -n 1 | sed 's/^install_detectron2: /setup:   detectron2 /'  # which route
step project "pip install -e . failed: a requirement conflicts with $C" pip --no-build-isolation -e '.[test]'
step check "the installed stack does not import: remove $VENV and run again" check_stack
touch "$VENV/.ready"
echo "setup: environment ready in $((SECONDS - T0)) s ($VENV)"
