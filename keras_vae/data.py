"""Datasets: a name or a local path -> ``tf.data`` pipelines of images in [0, 1] (+ labels).

Sources:
- A TFDS image dataset by name (``mnist``, ``fashion_mnist``, ``kmnist``, ``cifar10``, or any
  TFDS dataset with an ``image`` feature). TFDS needs the network the first time; offline,
  pass ``data_dir``.
- ``data_dir`` pointing at a folder with the four MNIST-format IDX files (gzipped or not;
  Fashion-MNIST and KMNIST use the same names), an ``.npz`` file with ``x_train`` and
  ``x_test`` arrays (and optionally ``y_train``, ``y_test``), or a folder of PNG/JPEG images
  (all one size; a test split is held out from them).

Splits: ``train`` minus a held-out ``validation`` part (the last ``validation_fraction`` of
the training examples, never shuffled into training), and the real ``test`` split for
evaluation; nothing is ever trained on test.

Binarisation, for a Bernoulli likelihood (Salakhutdinov & Murray 2008; Burda et al. 2016):
training images are re-binarised every time they are seen (each pixel ~ Bernoulli(intensity)),
evaluation images once, with a fixed seed, so evaluation figures are reproducible.
"""

import dataclasses
import gzip
import hashlib
import pathlib
import warnings

import numpy as np
import tensorflow as tf


from keras_vae.errors import DataError  # noqa: E402,F401 - raised here, owned by errors.py


# ----------------------------------------------------------------------- IDX (MNIST format)

IDX_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}

# SHA-256 of the *decompressed* original MNIST IDX files (the bytes TFDS and torchvision
# verify, gzipped). Checked on the decompressed bytes so gzipped and plain copies both pass.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _find_idx_file(folder, stem):
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz",
                 stem.replace("-idx", ".idx")):
        path = folder / name
        if path.is_file():
            return path
    return None


def read_idx(path, verify_mnist=False):
    """A NumPy array from one IDX file (gzipped or not).

    Raises DataError naming the file for a bad magic number, a truncated or oversized payload.
    With ``verify_mnist``, a SHA-256 that differs from the original MNIST file only warns (the
    offline copy's training images are a faithful rebuild, see its README).
    """
    path = pathlib.Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataError(f"Cannot read {path}: {error}.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()!r}).")
    dtype, num_dims = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * num_dims
    if len(raw) < header:
        raise DataError(f"{path} is truncated: its header needs {header} bytes, "
                        f"the file has {len(raw)}.")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(num_dims))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"{path} is {problem}: shape {shape} needs {expected} bytes, "
                        f"the file has {len(raw)}.")
    stem = path.name.removesuffix(".gz").replace(".idx", "-idx")
    if verify_mnist and stem in MNIST_SHA256:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != MNIST_SHA256[stem]:
            warnings.warn(f"{path} differs from the original MNIST file (SHA-256 {digest[:12]}"
                          f"..., expected {MNIST_SHA256[stem][:12]}...); using it anyway.",
                          stacklevel=2)
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def load_idx_folder(folder, verify_mnist=False):
    """{split: (images uint8 [N, H, W, 1], labels int64 [N])} from the four IDX files."""
    folder = pathlib.Path(folder)
    splits = {}
    for split in ("train", "test"):
        arrays = {}
        for kind in ("images", "labels"):
            stem = IDX_FILES[(split, kind)]
            path = _find_idx_file(folder, stem)
            if path is None:
                raise DataError(f"{folder} has no {stem}[.gz]: an MNIST-format folder needs "
                                f"the four files {', '.join(IDX_FILES.values())} (.gz or not).")
            arrays[kind] = read_idx(path, verify_mnist=verify_mnist)
        images, labels = arrays["images"], arrays["labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{folder}: {split} images of shape {images.shape} do not match "
                            f"labels of shape {labels.shape}; expected [N, H, W] and [N].")
        splits[split] = (images[..., None], labels.astype(np.int64))
    return splits


# ----------------------------------------------------------------------- other local sources

def load_npz(path):
    """{split: (images, labels or None)} from an .npz with x_train, x_test[, y_train, y_test]."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            contents = {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError) as error:
        raise DataError(f"Cannot read {path} as .npz: {error}.") from None
    missing = [key for key in ("x_train", "x_test") if key not in contents]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}: an .npz source needs x_train and "
                        f"x_test arrays (and optionally y_train, y_test); it has "
                        f"{', '.join(sorted(contents)) or 'nothing'}.")
    splits = {}
    for split in ("train", "test"):
        images = _as_image_array(contents[f"x_{split}"], f"{path}: x_{split}")
        labels = contents.get(f"y_{split}")
        if labels is not None and len(labels) != len(images):
            raise DataError(f"{path}: y_{split} has {len(labels)} labels for {len(images)} "
                            f"images.")
        splits[split] = (images, None if labels is None else labels.astype(np.int64))
    return splits


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def load_image_folder(folder, test_fraction=0.1, seed=0):
    """{split: (images uint8 [N, H, W, C], None)} from a folder of PNG/JPEG files of one size;
    a seeded random ``test_fraction`` of them is held out as the test split."""
    folder = pathlib.Path(folder)
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"{folder} has no PNG or JPEG images.")
    images = []
    for path in paths:
        try:
            images.append(tf.io.decode_image(tf.io.read_file(str(path)),
                                             expand_animations=False).numpy())
        except tf.errors.OpError:
            raise DataError(f"Cannot decode {path} as an image; remove it or fix it.") from None
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise DataError(f"{folder} holds images of several shapes {sorted(shapes)[:3]}...; "
                        f"resize them to one size first.")
    images = np.stack(images)
    if len(images) < 2:
        raise DataError(f"{folder} has only {len(images)} image; it needs at least 2.")
    order = np.random.default_rng(seed).permutation(len(images))
    num_test = max(1, int(round(test_fraction * len(images))))
    return {"train": (images[order[num_test:]], None), "test": (images[order[:num_test]], None)}


def _as_image_array(array, what):
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or len(array) == 0:
        raise DataError(f"{what} has shape {array.shape}; expected images [N, H, W] or "
                        f"[N, H, W, C].")
    return array


# ----------------------------------------------------------------------- TFDS

def load_tfds(name, data_dir=None):
    """{split: (images uint8, labels or None)} from a TFDS image dataset, read into memory."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(f"Unknown dataset {name!r}: give a TFDS image dataset name such as "
                        f"mnist, fashion_mnist, kmnist or cifar10, or a local --data-dir.") \
            from None
    if "image" not in builder.info.features:
        raise DataError(f"TFDS dataset {name!r} has no 'image' feature; it is not an image "
                        f"dataset.")
    try:
        builder.download_and_prepare()
    except Exception as error:  # noqa: BLE001 - TFDS raises many types for network failures
        cause = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        raise DataError(f"Cannot download or prepare {name!r} with TFDS ({cause.rstrip(': ')})"
                        f"; on an offline machine pass --data-dir with a local copy (for "
                        f"example the MNIST IDX files).") from None
    splits = {}
    for split in ("train", "test"):
        try:
            arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
        except (KeyError, ValueError) as error:
            raise DataError(f"TFDS dataset {name!r} has no usable {split!r} split "
                            f"({str(error).splitlines()[0]}).") from None
        labels = arrays.get("label")
        splits[split] = (_as_image_array(arrays["image"], f"{name} {split}"),
                         None if labels is None else labels.astype(np.int64))
    return splits


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
    if any(_find_idx_file(path, stem) for stem in IDX_FILES.values()):
        return load_idx_folder(path, verify_mnist=dataset == "mnist")
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*")):
        return load_image_folder(path)
    if (path / "downloads").exists() or any(path.glob("*/*/dataset_info.json")):
        return load_tfds(dataset, data_dir=str(path))
    raise DataError(f"--data-dir {path} holds no MNIST IDX files, .npz or PNG/JPEG images.")


def to_unit_interval(images):
    """Images as float32 in [0, 1]: integers are divided by their dtype's maximum (255 for
    uint8); floats must already lie in [0, 1]."""
    images = np.asarray(images)
    if np.issubdtype(images.dtype, np.integer):
        return (images / np.iinfo(images.dtype).max).astype(np.float32)
    images = images.astype(np.float32)
    if images.size and (images.min() < 0 or images.max() > 1 or not np.isfinite(images).all()):
        raise DataError("Float images must lie in [0, 1]; scale them before use.")
    return images


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
    train = to_unit_interval(arrays["train"][0])
    test = to_unit_interval(arrays["test"][0])
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
        test_labels=arrays["test"][1],
    )
