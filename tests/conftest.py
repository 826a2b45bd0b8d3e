import os

import pytest

from transfer.data import DemoSizes, make_demo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """A small built-in data root shared by the tests (the demo's layout, fewer images)."""
    return make_demo(str(tmp_path_factory.mktemp("data") / "demo"), DemoSizes().scaled(0.25))


def config_path(*parts):
    return os.path.join(REPO, "configs", *parts)
