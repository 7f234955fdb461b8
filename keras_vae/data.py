"""Datasets: a name or a local path -> ``tf.data`` pipelines of examples (+ labels): images,
or flat vectors (tabular data), with the values the likelihood needs.

Sources:
- A TFDS image dataset by name (``mnist``, ``fashion_mnist``, ``kmnist``, ``cifar10``, or any
  TFDS dataset with an ``image`` feature). TFDS needs the network the first time; offline,
  pass ``data_dir``.
- ``data_dir`` pointing at a folder with the four MNIST-format IDX files (gzipped or not;
  Fashion-MNIST and KMNIST use the same names), an ``.npz`` file with ``x_train`` and
  ``x_test`` arrays (and optionally ``y_train``, ``y_test``): images or flat vectors [N, d],
  a folder of PNG/JPEG images (all one size; a test split is held out from them), or a
  ``.csv`` table of numeric columns (``data_tables.py``; a test split is held out).
The readers are in ``data_files.py`` (local files), ``data_tables.py`` (CSV) and
``data_tfds.py`` (TFDS, which fails at once offline); this module picks one, applies the value
rule of the likelihood's data kind (``data_values.model_values``: images to [0, 1], or the
8-bit integers for a discrete likelihood; vectors as they are) and builds the pipelines.
``check_examples_shape`` is the one check that data fit a model's input.

Splits: ``train`` minus a held-out ``validation`` part (the last ``validation_fraction`` of
the training examples, never shuffled into training), and the real ``test`` split for
evaluation; nothing is ever trained on test.

Binarisation, for a binary likelihood such as Bernoulli (Salakhutdinov & Murray 2008; Burda et
al. 2016; ``config.BINARIZATIONS``): "dynamic" re-binarises training images every time they
are seen (each pixel ~ Bernoulli(intensity)); "static" binarises them once, with a fixed seed,
and reshuffles those draws every epoch; evaluation images are binarised once with a fixed seed
under both, so evaluation figures are reproducible; "none" (every other likelihood) keeps the
values.
"""

import dataclasses
import pathlib

import numpy as np
import tensorflow as tf

# The sources and the value rule live in their own modules; their names stay importable
# from here.
from keras_vae.data_files import (IDX_FILES, IMAGE_SUFFIXES, MNIST_SHA256,  # noqa: F401
                                  find_idx_file, load_idx_folder, load_image_folder, load_npz,
                                  read_idx)
from keras_vae.data_tables import load_csv
from keras_vae.data_tfds import load_tfds  # noqa: F401
from keras_vae.data_values import model_values, to_unit_interval  # noqa: F401
from keras_vae.errors import DataError  # noqa: F401 - raised here, owned by errors.py


# ----------------------------------------------------------------------- one entry point

MNIST_FORMAT_DATASETS = ("mnist", "fashion_mnist", "kmnist")


def load_arrays(dataset, data_dir=None, label_column=None):
    """{"train": (examples, labels), "test": (examples, labels)} as NumPy arrays; labels may be
    None. ``data_dir`` chooses a local source (see the module docstring); otherwise TFDS.
    ``label_column``: a CSV's column of class labels (only for a .csv)."""
    path = None if data_dir is None else pathlib.Path(data_dir)
    if label_column is not None and (path is None or path.suffix.lower() != ".csv"):
        raise DataError(f"--label-column names a column of a CSV file; the data here are "
                        f"{path or f'the TFDS dataset {dataset!r}'}: leave it out.")
    if path is None:
        return load_tfds(dataset)
    if not path.exists():
        raise DataError(f"--data-dir {path} does not exist.")
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return load_npz(path)
        if path.suffix.lower() == ".csv":
            return load_csv(path, label_column)
        raise DataError(f"--data-dir {path} is a file but not an .npz or a .csv; give a "
                        f"folder, an .npz or a .csv.")
    if any(find_idx_file(path, stem) for stem in IDX_FILES.values()):
        return load_idx_folder(path, verify_mnist=dataset == "mnist")
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*")):
        return load_image_folder(path)
    if (path / "downloads").exists() or any(path.glob("*/*/dataset_info.json")):
        return load_tfds(dataset, data_dir=str(path))
    raise DataError(f"--data-dir {path} holds no MNIST IDX files, .npz or PNG/JPEG images.")


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
    # float32 [*image_shape]: the mean training example as the model sees it, in expectation
    # (under dynamic binarisation the mean grey level is the mean of the binary draws)
    train_mean: object = None


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


def binarized_once(images, seed, batch_size=1000):
    """images float32 [N, ...] in [0, 1] -> one fixed binarisation as a NumPy array: example i
    drawn with the stateless seed [seed, i], exactly as a "fixed" pipeline draws it."""
    return np.concatenate([np.asarray(batch) for batch in
                           _pipeline(images, batch_size, "fixed", seed, shuffle=False)]
                          or [np.zeros((0,) + images.shape[1:], np.float32)])


def make_splits(dataset, data_dir=None, batch_size=100, binarized=True,
                validation_fraction=0.1, seed=0, likelihood=None, binarize=None,
                label_column=None):
    """Train / validation / test pipelines of float32 examples (labels dropped), with the
    values the likelihood's data kind needs (``data_values.model_values``).

    Args:
        dataset: a TFDS name (``mnist``...), also used to recognise MNIST checksums.
        data_dir: a local source (IDX folder, .npz, image folder, .csv) or None for TFDS.
        batch_size: examples per batch (the global batch under a distribution strategy).
        binarized: without ``likelihood``: True for a Bernoulli likelihood's data, False for
            a Normal's (grey levels in [0, 1]); the older spelling of ``likelihood``.
        validation_fraction: the last fraction of the training split, held out (0 for none).
        seed: seeds shuffling and binarisation.
        likelihood: the registered likelihood whose data these are; its data kind
            (``likelihoods.data_kind``) chooses the value rule and whether to binarise.
        binarize: "dynamic" or "static" binarisation of train for a binary likelihood, with a
            fixed seeded binarisation of validation and test under both, or "none"
            (``config.resolve_binarize``; default: the likelihood's).
        label_column: a CSV's column of class labels (``data_tables.load_csv``).
    """
    from keras_vae import likelihoods
    from keras_vae.config import resolve_binarize

    if not 0 <= validation_fraction < 1:
        raise DataError(f"validation_fraction must be in [0, 1); received {validation_fraction}.")
    likelihood = likelihood or ("bernoulli" if binarized else "normal")
    binarize = resolve_binarize(binarize, likelihood)
    kind = likelihoods.data_kind(likelihood)
    arrays = load_arrays(dataset, data_dir, label_column)
    source = str(data_dir) if data_dir is not None else f"TFDS dataset {dataset!r}"
    noun = "examples" if np.ndim(arrays["train"][0]) == 2 else "images"
    train, test = (model_values(arrays[split][0], kind, f"The {name} {noun} of {source}",
                                likelihood)
                   for split, name in (("train", "training"), ("test", "test")))
    if train.shape[1:] != test.shape[1:]:
        raise DataError(f"The training {noun} of {source} are "
                        f"{describe_shape(train.shape[1:])} but its test {noun} are "
                        f"{describe_shape(test.shape[1:])}; both splits need one shape.")
    num_validation = int(round(validation_fraction * len(train)))
    if len(train) - num_validation < 1:
        raise DataError(f"Only {len(train)} training examples: too few to hold out "
                        f"{num_validation} for validation.")
    train, validation = train[:len(train) - num_validation], train[len(train) - num_validation:]
    if binarize == "static":
        train = binarized_once(train, seed)
    dynamic, fixed = {"dynamic": ("dynamic", "fixed"), "static": (None, "fixed"),
                      "none": (None, None)}[binarize]
    return Splits(
        train=_pipeline(train, batch_size, dynamic, seed, shuffle=True),
        validation=_pipeline(validation, batch_size, fixed, seed + 1, shuffle=False),
        test=_pipeline(test, batch_size, fixed, seed + 2, shuffle=False),
        image_shape=tuple(train.shape[1:]),
        num_train=len(train), num_validation=len(validation), num_test=len(test),
        test_labels=arrays["test"][1], source=source,
        train_mean=train.mean(axis=0, dtype=np.float64).astype(np.float32),
    )
