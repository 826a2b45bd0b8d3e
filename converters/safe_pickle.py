"""Recognise a plain pickle of numpy arrays (Detectron2 / Caffe2 weights) without running its code.

torch.load(weights_only=True) refuses numpy arrays, and a full pickle.load runs whatever the
file names. This reader resolves only the globals numpy needs to rebuild arrays; any other
global stops it, so a hostile file is refused, never executed.
"""
import pickle
import zipfile

ALLOWED = {  # numpy 1.x and 2.x spell the module differently
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how pickle protocol 2 spells bytes
}


class NumpyOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def read_numpy_pickle(path):
    """The unpickled object if `path` is a plain (non-zip) pickle made of numpy arrays and plain
    values; None for anything else (a torch zip file, a legacy torch file, other globals)."""
    if zipfile.is_zipfile(path):
        return None
    with open(path, "rb") as f:
        if f.read(1) != b"\x80":  # pickle protocol 2+; older protocols are not what detectron2 writes
            return None
        f.seek(0)
        try:
            return NumpyOnly(f, encoding="latin1").load()
        except Exception:  # not ours to judge: torch.load reports it
            return None


def detectron2_kind(obj):
    """'Detectron2' / 'Caffe2' when the object is such a weights file, else None."""
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("model"), dict) and ("__author__" in obj or "matching_heuristics" in obj):
        return "Detectron2"
    if isinstance(obj.get("blobs"), dict):
        return "Caffe2"
    return None
