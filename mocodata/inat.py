"""iNaturalist 2018 in its official layout, and the image lists mmpretrain reads from it.

    python -m mocodata inat18-meta ROOT

    ROOT/iNaturalist2018/train_val2018/<supercategory>/<category id>/<image>.jpg   (train_val2018.tar.gz)
    ROOT/iNaturalist2018/train2018.json, val2018.json   COCO-like; each file_name begins with train_val2018/
    ROOT/iNaturalist2018/meta/train.txt, val.txt        written here: '<file_name> <category id>' per image,
                                                        in the JSON's image order

The lists are relative to ROOT/iNaturalist2018/ (the folder holding train_val2018/), because the file
names already begin with train_val2018/: the configs read them with data_root ROOT/iNaturalist2018 and
data_prefix ''. (mmselfsup 0.x joins data_prefix 'data/iNaturalist2018/train_val2018' with the same file
names, i.e. train_val2018/train_val2018/...)
"""
import os

from mococore.files import replace_atomically, text_writer
from mocodata import validate


def write_meta(root):
    """Writes ROOT/iNaturalist2018/meta/{train,val}.txt from the two JSON files, in time linear in the
    number of images (a dict from image id, where mmselfsup's converter compares every image with every
    annotation); the lists replace the old ones only after both JSON files were read and checked.
    Returns {split: number of images}."""
    splits, _ = validate.read_inat_splits(root)
    meta = os.path.join(root, validate.INAT18, "meta")
    lists = {os.path.join(meta, f"{split}.txt"): text_writer("".join(f"{name} {label}\n" for name, label in pairs))
             for split, pairs in splits.items()}
    try:  # both written in full before either replaces its old list
        replace_atomically(lists)
    except OSError as e:
        raise validate.DataError(meta, f"cannot write the image lists ({e.strerror}); make the folder "
                                       "writable") from None
    return {split: len(pairs) for split, pairs in splits.items()}
