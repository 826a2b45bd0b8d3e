"""The shared floor (mococore/): each thing defined once, and every tool using that one definition."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from mococore import errors, files, images, knn, norm


def image_root(tmp_path, ext):
    for split in ("train", "val"):
        for c in ("a", "b"):
            os.makedirs(tmp_path / "imagenet" / split / c)
            Image.new("RGB", (8, 8)).save(tmp_path / "imagenet" / split / c / f"x{'.jpg' if c == 'a' else ext}")
    return str(tmp_path)


@pytest.mark.parametrize("ext,accepted", [(".JPEG", True), (".tif", True), (".webp", False), (".tiff", False)])
def test_every_tool_accepts_the_same_image_folders(tmp_path, ext, accepted):
    """mmpretrain's CustomDataset default extensions (mmpretrain/datasets/custom.py: .jpg .jpeg .png .ppm .bmp
    .pgm .tif, any case): a class folder of other files is refused by the data check, pretraining's
    listing, kNN and the mmpretrain runners alike, never read by one and called empty by another."""
    from mocodata import validate
    from transfer.classification import knn, mmrun

    root = image_root(tmp_path, ext)
    train = os.path.join(root, "imagenet", "train")
    calls = [lambda: validate.check_task("imagenet-val", root), lambda: validate.image_folder(train),
             lambda: knn.image_folder(train, "train"), lambda: mmrun.check_data(root, "imagenet")]
    for call in calls:
        if accepted:
            call()
        else:
            with pytest.raises(errors.UserError, match=r"imagenet/train.*\bb\b"):
                call()
    samples, classes, empty = images.image_folder(train)
    assert classes == ["a", "b"] and empty == ([] if accepted else ["b"])


def test_the_listing_is_torchvisions_order(tmp_path):
    from torchvision.datasets.folder import find_classes, make_dataset

    for c, names in (("b", ["z.png", "a.jpg", "sub/m.bmp"]), ("a", ["y.PNG", "notes.txt"])):
        for n in names:
            os.makedirs(os.path.dirname(tmp_path / c / n), exist_ok=True)
            (tmp_path / c / n).write_bytes(b"")
    samples, classes, _ = images.image_folder(str(tmp_path))
    assert samples == make_dataset(str(tmp_path), find_classes(str(tmp_path))[1], extensions=images.IMAGE_EXTS)
    assert classes == ["a", "b"] and len(samples) == 4


def test_user_errors_share_one_base():
    from converters import ConversionError
    from mocodata.validate import DataError
    from pretrain.config import ConfigError
    from transfer import BadInput

    for cls in (ConversionError, DataError, ConfigError, BadInput):
        assert issubclass(cls, errors.UserError), cls


def test_the_vote_is_the_weighted_sum_of_exp_sim_over_t():
    """dino eval_knn.py knn_classifier: sum_j exp(sim_j / T) one-hot(label_j); here by hand, T = 0.1."""
    scores = knn.vote(torch.tensor([[0.5, 0.1, 0.2]]), torch.tensor([[1, 0, 1]]), 3, T=0.1)
    assert torch.allclose(scores, torch.tensor([[np.exp(1.0), np.exp(5.0) + np.exp(2.0), 0.0]], dtype=torch.float32))


def test_normalisation_constants():
    assert norm.MEAN_255 == [round(255 * m, 3) for m in norm.MEAN] and norm.STD_255 == [round(255 * s, 3) for s in norm.STD]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "final_metrics.json"
    files.atomic_json(str(path), {"a": 1})

    def dies(tmp):
        open(tmp, "w").write('{"a": ')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.atomic_write(str(path), dies)
    assert files.read_json(str(path)) == ({"a": 1}, None) and os.listdir(tmp_path) == ["final_metrics.json"]
    path.write_text('{"a": ')
    assert files.read_json(str(path))[1].startswith("unreadable (JSONDecodeError")


def test_no_file_of_a_group_is_replaced_unless_all_were_written(tmp_path):
    """replace_atomically (the iNat18 lists, train and val): a failure writing the second leaves the first old."""
    a, b = tmp_path / "train.txt", tmp_path / "val.txt"
    a.write_text("old")

    def full(tmp):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        files.replace_atomically({str(a): files.text_writer("new"), str(b): full})
    assert a.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["train.txt"]
    files.replace_atomically({str(a): files.text_writer("new"), str(b): files.text_writer("v")})
    assert (a.read_text(), b.read_text()) == ("new", "v") and oct(a.stat().st_mode & 0o777) == oct(0o666 & ~umask())


def umask():
    m = os.umask(0)
    os.umask(m)
    return m


def test_one_process_per_output_folder(tmp_path):
    fd = files.lock_folder(str(tmp_path), "suite")
    with pytest.raises(errors.UserError, match="another suite is using this folder"):
        files.lock_folder(str(tmp_path), "suite")
    os.close(fd)
    os.close(files.lock_folder(str(tmp_path), "suite"))
