"""Shared test setup.

Two logical CPU devices are configured here, at import, because TensorFlow only accepts
them before it initialises (DESIGN.md, trap 4); the MirroredStrategy tests use both, every
other test runs on the first as usual.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from keras_vae import quiet  # noqa: E402

# The test log shows what the tests print, not TensorFlow's start-up lines (KVAE_DEBUG=1
# shows them), as the kvae command does.
quiet.silence_tensorflow_start_up()

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from tests.helpers import prototype_images, write_idx_folder  # noqa: E402


# Files that run one long chain of steps in order (test_readme.py: every documented command in
# one clone, about 8.5 of the suite's 24 worker-minutes). Under `-n 2 --dist loadfile` a file
# is one unit of work given to whichever worker is free, so a long file collected late ends
# the run alone; collected first, it runs beside everything else.
LONGEST_FILES = ("tests/test_readme.py",)


def pytest_collection_modifyitems(config, items):
    """The tests of ``LONGEST_FILES`` first, every file's own order kept."""
    items.sort(key=lambda item: not item.nodeid.startswith(LONGEST_FILES))


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same Python, NumPy and TensorFlow seeds."""
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture(scope="session")
def structured_data():
    """(train, test) images of shape (8, 8, 1) from ``prototype_images``."""
    train, _ = prototype_images(2000, seed=1)
    test, _ = prototype_images(500, seed=2)
    return train, test


@pytest.fixture()
def idx_folder(tmp_path):
    """A folder of four MNIST-named IDX files: 60 train and 20 test random 8x8 images."""
    folder = tmp_path / "idx"
    folder.mkdir()
    write_idx_folder(folder, num_train=60, num_test=20, size=8)
    return folder
