"""Datasets: a name or a local path -> ``tf.data`` pipelines of images in [0, 1] (+ labels).

Sources:
- A TFDS image dataset by name (``mnist``, ``fashion_mnist``, ``kmnist``, ``cifar10``, or any
  TFDS dataset with an ``image`` feature). TFDS needs the network the first time; offline,
  pass ``data_dir``.
- ``data_dir`` pointing at a folder with the four MNIST-format IDX files (gzipped or not;
  Fashion-MNIST and KMNIST use the same names), an ``.npz`` file with ``x_train`` and
  ``x_test`` arrays (and optionally ``y_train``, ``y_test``), or a folder of PNG/JPEG images
  (all one size; a test split is held out from them).
The readers are in ``data_files.py`` (local files) and ``data_tfds.py`` (TFDS, which fails at
once offline); this module picks one, checks the values (``to_unit_interval``: uint8 and other
integer grey levels 0..255 are divided by 255, floats must already lie in [0, 1]) and builds
the pipelines. ``check_examples_shape`` is the one check that data fit a model's input.

Splits: ``train`` minus a held-out ``validation`` part (the last ``validation_fraction`` of
the training examples, never shuffled into training), and the real ``test`` split for
evaluation; nothing is ever trained on test.

Binarisation, for a Bernoulli likelihood (Salakhutdinov & Murray 2008; Burda et al. 2016):
training images are re-binarised every time they are seen (each pixel ~ Bernoulli(intensity)),
evaluation images once, with a fixed seed, so evaluation figures are reproducible.
"""

import dataclasses
import pathlib

import numpy as np
import tensorflow as tf

# The sources live in their own modules; their names stay importable from here.
from keras_vae.data_files import (IDX_FILES, IMAGE_SUFFIXES, MNIST_SHA256,  # noqa: F401
                                  find_idx_file, load_idx_folder, load_image_folder, load_npz,
                                  read_idx)
from keras_vae.data_tfds import load_tfds  # noqa: F401
from keras_vae.errors import DataError  # noqa: F401 - raised here, owned by errors.py


# ----------------------------------------------------------------------- one entry point

MNIST_FORMAT_DATASETS = ("mnist", "fashion_mnist", "kmnist")


def load_arrays(dataset, data_dir=None):
    """{"train": (images, labels), "test": (images, labels)} as NumPy arrays; labels may be
    None. ``data_dir`` chooses a local source (see the module docstring); otherwise TFDS."""
    if data_dir is None:
        return load_tfds(dataset)
    path = pathlib.Path(data_dir)
    if not path.exists():
        raise DataError(f"--data-dir {path} does not exist.")
    if path.is_file():
        if path.suffix == ".npz":
            return load_npz(path)
        raise DataError(f"--data-dir {path} is a file but not an .npz; give a folder or an .npz.")
    if any(find_idx_file(path, stem) for stem in IDX_FILES.values()):
        return load_idx_folder(path, verify_mnist=dataset == "mnist")
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*")):
        return load_image_folder(path)
    if (path / "downloads").exists() or any(path.glob("*/*/dataset_info.json")):
        return load_tfds(dataset, data_dir=str(path))
    raise DataError(f"--data-dir {path} holds no MNIST IDX files, .npz or PNG/JPEG images.")


def to_unit_interval(images, what="The images"):
    """Images as float32 in [0, 1], or a DataError that says what is wrong with them.

    - bool: False/True -> 0/1;
    - integers of any dtype (uint8, int64, uint16 ...): 8-bit grey levels 0..255, divided by
      255; values outside 0..255 are an error (their scale is unknown: rescale them first);
    - floats: intensities in [0, 1], kept as they are; floats up to 255 are an error that
      says to divide by 255 (they are most likely grey levels, but a silent guess could as
      well be wrong); NaN, inf, negative or larger values are an error;
    - complex numbers, strings, objects and any other kind: an error.
    ``what`` names the images in the messages ("the training images of data.npz").
    """
    images = np.asarray(images)
    kind = images.dtype.kind
    if kind not in "biuf":
        described = {"c": "complex numbers", "U": "text", "S": "bytes",
                     "O": "Python objects"}.get(kind, f"{images.dtype} values")
        raise DataError(f"{what} hold {described}; pixels must be real numbers: uint8 grey "
                        f"levels 0..255 or floats in [0, 1].")
    if images.size == 0:
        raise DataError(f"{what} have no pixels (shape {images.shape}).")
    if kind == "b":
        return images.astype(np.float32)
    low, high = images.min(), images.max()
    if kind in "iu":
        if low < 0 or high > 255:
            raise DataError(f"{what} hold integers from {low} to {high}; integer pixels must "
                            f"be 8-bit grey levels 0..255 (divided by 255 here): rescale "
                            f"them to 0..255, or to floats in [0, 1].")
        return (images / 255).astype(np.float32)
    if not np.isfinite(images).all():
        raise DataError(f"{what} hold NaN or infinite values; clean the data first.")
    if low < 0 or high > 255:
        raise DataError(f"{what} hold floats from {low:g} to {high:g}; pixels must be floats "
                        f"in [0, 1]: rescale them.")
    if high > 1:
        raise DataError(f"{what} hold floats up to {high:g}: they look like grey levels "
                        f"0..255, but float pixels must lie in [0, 1]; divide them by 255 (or "
                        f"store them as uint8).")
    return images.astype(np.float32)


def describe_shape(shape):
    """(28, 28, 1) -> "28x28x1"."""
    return "x".join(str(int(d)) for d in shape)


def check_examples_shape(shape, expected, source):
    """DataError unless examples of ``shape`` (no batch axis) are what a model that takes
    ``expected`` can read; ``source`` names where they came from (a path or dataset)."""
    if tuple(int(d) for d in shape) != tuple(int(d) for d in expected):
        raise DataError(f"The data in {source} are {describe_shape(shape)} but the model "
                        f"takes {describe_shape(expected)}; pass --data-dir (or --dataset) "
                        f"with data of the shape it was trained on, or train a model on these "
                        f"data.")


@dataclasses.dataclass
class Splits:
    """The three pipelines and what the model needs to know about them."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    image_shape: tuple
    num_train: int
    num_validation: int
    num_test: int
    test_labels: object = None
    source: str = ""  # where the data came from, for messages: a path or "TFDS dataset 'x'"


def binarize(images, seed):
    """Bernoulli(intensity) draws of [..] images in [0, 1]; ``seed`` is a stateless [2] seed."""
    return tf.cast(tf.random.stateless_uniform(tf.shape(images), seed=seed) < images,
                   tf.float32)


def _pipeline(images, batch_size, binarization, seed, shuffle):
    """images float32 [N, ...] -> batched, prefetched dataset of images.

    ``binarization``: None (continuous), "dynamic" (a fresh draw each epoch, from a seeded
    random stream re-randomised every iteration) or "fixed" (one seeded draw per example,
    the same whatever the batch size, computed once and cached).

    Training batches are built from shuffled indices with one gather and one vectorised
    binarisation per batch, not a map call per image: on a 2-core machine every cycle the
    input pipeline spends is taken from training (see ``benchmarks/throughput.py``).
    """
    if binarization == "fixed":
        dataset = tf.data.Dataset.from_tensor_slices(images).enumerate().map(
            lambda index, image: binarize(image, tf.stack([tf.constant(seed, tf.int64), index])),
            num_parallel_calls=tf.data.AUTOTUNE)
        return _shard_by_data(dataset.cache().batch(batch_size).prefetch(tf.data.AUTOTUNE))
    images = tf.constant(images)
    indices = tf.data.Dataset.range(len(images))
    if shuffle:
        indices = indices.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    batches = indices.batch(batch_size)
    if binarization == "dynamic":
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(batches, seeds).map(
            lambda index, pair: binarize(tf.gather(images, index), pair),
            num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = batches.map(lambda index: tf.gather(images, index),
                              num_parallel_calls=tf.data.AUTOTUNE)
    return _shard_by_data(dataset.prefetch(tf.data.AUTOTUNE))


def _shard_by_data(dataset):
    """``dataset`` marked to be sharded by data across the workers of a multi-worker strategy.

    The images are in memory, so there are no files to share out: every worker runs the same
    seeded pipeline and keeps its own replicas' part of each global batch. Without a strategy,
    or with one worker, this changes nothing.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def make_splits(dataset, data_dir=None, batch_size=100, binarized=True,
                validation_fraction=0.1, seed=0):
    """Train / validation / test pipelines of float32 images in [0, 1] (labels dropped).

    Args:
        dataset: a TFDS name (``mnist``...), also used to recognise MNIST checksums.
        data_dir: a local source (IDX folder, .npz, image folder) or None for TFDS.
        batch_size: examples per batch (the global batch under a distribution strategy).
        binarized: dynamic binarisation of train, fixed seeded binarisation of validation and
            test (for a Bernoulli likelihood); False keeps continuous intensities.
        validation_fraction: the last fraction of the training split, held out (0 for none).
        seed: seeds shuffling and binarisation.
    """
    if not 0 <= validation_fraction < 1:
        raise DataError(f"validation_fraction must be in [0, 1); received {validation_fraction}.")
    arrays = load_arrays(dataset, data_dir)
    source = str(data_dir) if data_dir is not None else f"TFDS dataset {dataset!r}"
    train = to_unit_interval(arrays["train"][0], f"The training images of {source}")
    test = to_unit_interval(arrays["test"][0], f"The test images of {source}")
    if train.shape[1:] != test.shape[1:]:
        raise DataError(f"The training images of {source} are "
                        f"{describe_shape(train.shape[1:])} but its test images are "
                        f"{describe_shape(test.shape[1:])}; both splits need one shape.")
    num_validation = int(round(validation_fraction * len(train)))
    if len(train) - num_validation < 1:
        raise DataError(f"Only {len(train)} training examples: too few to hold out "
                        f"{num_validation} for validation.")
    train, validation = train[:len(train) - num_validation], train[len(train) - num_validation:]
    dynamic, fixed = ("dynamic", "fixed") if binarized else (None, None)
    return Splits(
        train=_pipeline(train, batch_size, dynamic, seed, shuffle=True),
        validation=_pipeline(validation, batch_size, fixed, seed + 1, shuffle=False),
        test=_pipeline(test, batch_size, fixed, seed + 2, shuffle=False),
        image_shape=tuple(train.shape[1:]),
        num_train=len(train), num_validation=len(validation), num_test=len(test),
        test_labels=arrays["test"][1], source=source,
    )
