"""Test images that travel with a run (``RUN/test_examples.npz``), so that ``kvae
reconstruct``, ``interpolate`` and ``latent-plot`` work on a machine without the dataset; the
shipped models carry them.

Binary images are packed 8 pixels per byte (10,000 MNIST images: 0.98 MB); others are stored
as 8-bit grey levels, which must represent them exactly (images read from 8-bit files do), and
the integer images 0..255 of a discrete likelihood as those integers.
"""

import pathlib

import numpy as np

from keras_vae import runs
from keras_vae.errors import RunError
from keras_vae.files import replace_atomically


def save_test_examples(directory, images, labels=None):
    """Writes DIRECTORY/test_examples.npz, a copy of test images [n, ...] in [0, 1] (and
    their labels) that travels with the run, so that ``kvae reconstruct``, ``interpolate`` and
    ``latent-plot`` work on a machine without the dataset.

    Binary images are packed 8 pixels per byte (10,000 MNIST images: 0.98 MB); others are
    stored as 8-bit grey levels, which must represent them exactly (images read from 8-bit
    files do), and integer images 0..255 (a discrete likelihood's) as those integers.
    """
    images = np.asarray(images, np.float32)
    arrays = {"shape": np.array(images.shape, np.int64)}
    grey = np.round(images * 255)
    if np.all((images == 0) | (images == 1)):
        arrays["packed_bits"] = np.packbits(images.astype(np.uint8).ravel())
    elif np.abs(grey / 255 - images).max() <= 1e-6 and grey.min() >= 0 and grey.max() <= 255:
        arrays["grey_levels"] = grey.astype(np.uint8)
    elif np.all(images == np.round(images)) and images.min() >= 0 and images.max() <= 255:
        arrays["levels"] = images.astype(np.uint8)
    else:
        raise ValueError("Only binary or 8-bit grey images (k / 255), or integer images "
                         "0..255, can be stored exactly in test_examples.npz.")
    if labels is not None:
        arrays["labels"] = np.asarray(labels)
    path = pathlib.Path(directory) / runs.TEST_EXAMPLES
    if path.exists():
        runs.check_not_protected(path)
    replace_atomically(path, lambda file: np.savez_compressed(file, **arrays), mode="wb")


def load_test_examples(directory):
    """(images float32 [n, ...], labels or None) from DIRECTORY/test_examples.npz, or None
    when the run has none."""
    path = pathlib.Path(directory) / runs.TEST_EXAMPLES
    if not path.exists():
        return None
    try:
        with np.load(path) as saved:
            shape = tuple(saved["shape"])
            if "packed_bits" in saved:
                flat = np.unpackbits(saved["packed_bits"], count=int(np.prod(shape)))
                images = flat.reshape(shape).astype(np.float32)
            elif "levels" in saved:
                images = saved["levels"].astype(np.float32).reshape(shape)
            else:
                images = saved["grey_levels"].astype(np.float32).reshape(shape) / 255
            labels = saved["labels"] if "labels" in saved else None
    except (OSError, ValueError, KeyError) as error:
        raise RunError(f"{path} is corrupt ({error}); delete it or pass --data-dir.") \
            from None
    return images, labels


def bundle_test_examples(directory, count=None, dataset=None, data_dir=None):
    """Copies the first ``count`` (default: all) images of a run's test split, exactly as
    ``kvae evaluate`` sees them (binarised once, with the run's seed), into the run."""
    run = runs.load_run(directory)
    splits = runs.load_splits(run.data_config(dataset, data_dir))
    images = np.concatenate([np.asarray(batch) for batch in splits.test])[:count]
    labels = None if splits.test_labels is None else np.asarray(splits.test_labels)[:count]
    save_test_examples(directory, images, labels)
    return len(images)
