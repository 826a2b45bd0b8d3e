"""The converted weights the detectron2 runners read (converters/to_detectron2.py: a pickle of numpy
arrays), read with the numpy-only unpickler of converters/safe_pickle.py. A plain pickle.load runs any
code a file names, and detectron2's checkpointer unpickles a .pkl that way: the runners read a user's
file here first, before the checkpointer sees it."""
import os

from converters.safe_pickle import read_numpy_pickle
from transfer import BadInput

HOW = "converters/to_detectron2.py writes one from any MoCo checkpoint"


def read_model(path, flag="--weights"):
    """The 'model' dict of a detectron2 weights file; BadInput naming the file for anything else."""
    if not os.path.isfile(path):
        raise BadInput(f"{flag} {path}: no such file")
    obj = read_numpy_pickle(path)
    model = obj.get("model") if isinstance(obj, dict) else None
    if not isinstance(model, dict):
        raise BadInput(f"{flag} {path}: not a detectron2 .pkl of numpy arrays (other pickles are never unpickled: "
                       f"they could run code); {HOW}")
    return model
