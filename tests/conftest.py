import os

import pytest

from mocodata.builtin import DemoSizes, make_demo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """A small built-in data root shared by the tests (the demo's layout, fewer images)."""
    # 20 evaluation images per set, so that every class is present (one split covers all 20)
    sizes = DemoSizes(voc07_trainval=8, voc07_test=20, voc12_trainval=4, coco_train=8, coco_val=20,
                      seg_train=8, seg_aug=4, seg_val=20, imagenet_classes=4, imagenet_train_per_class=6,
                      imagenet_val_per_class=2)
    return make_demo(str(tmp_path_factory.mktemp("data") / "demo"), sizes)


def config_path(*parts):
    return os.path.join(REPO, "configs", *parts)
