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

from mocodata import validate


def write_meta(root):
    """Writes ROOT/iNaturalist2018/meta/{train,val}.txt from the two JSON files, in time linear in the
    number of images (a dict from image id, where mmselfsup's converter compares every image with every
    annotation); the lists replace the old ones only after both JSON files were read and checked.
    Returns {split: number of images}."""
    splits, _ = validate.read_inat_splits(root)
    meta = os.path.join(root, validate.INAT18, "meta")
    paths = {split: os.path.join(meta, f"{split}.txt") for split in splits}
    try:
        os.makedirs(meta, exist_ok=True)
        for split, pairs in splits.items():  # both written in full before either replaces its old list
            with open(paths[split] + ".partial", "w") as f:
                f.writelines(f"{name} {label}\n" for name, label in pairs)
        for path in paths.values():
            os.replace(path + ".partial", path)
    except OSError as e:
        for path in paths.values():
            if os.path.exists(path + ".partial"):
                os.remove(path + ".partial")
        raise validate.DataError(meta, f"cannot write the image lists ({e.strerror}); make the folder "
                                       "writable") from None
    return {split: len(pairs) for split, pairs in splits.items()}
