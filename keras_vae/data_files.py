"""Local data files -> NumPy arrays: the MNIST IDX format, ``.npz`` archives, image folders
(CSV tables: ``data_tables.py``).

Each loader returns ``{"train": (examples, labels or None), "test": (examples, labels or
None)}`` with images ``[N, H, W, C]`` (or, from an ``.npz``, flat vectors ``[N, d]``) in the
file's own dtype; ``data_values.model_values`` then checks their values and scales them for
the likelihood. Every problem with a file is a ``DataError`` that names the file.

IDX is the format of LeCun's MNIST files (also Fashion-MNIST and KMNIST): a 4-byte magic
number (two zero bytes, a type code, the number of dimensions), one big-endian uint32 per
dimension, then the values in C order (http://yann.lecun.com/exdb/mnist/).
"""

import gzip
import hashlib
import math
import pathlib
import warnings

import numpy as np

from keras_vae.errors import DataError

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

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def find_idx_file(folder, stem):
    """The path of IDX file ``stem`` in ``folder`` (``.gz`` or not, ``-idx`` or ``.idx``), or
    None."""
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz",
                 stem.replace("-idx", ".idx")):
        path = folder / name
        if path.is_file():
            return path
    return None


def read_idx(path, verify_mnist=False):
    """A NumPy array from one IDX file (gzipped or not).

    Raises DataError naming the file for a bad magic number, or a payload shorter or longer
    than its header's shape says. With ``verify_mnist``, a SHA-256 that differs from the
    original MNIST file only warns (the offline copy's training images are a faithful
    rebuild, see its README).
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
    # math.prod of Python ints: a corrupt header's huge dimensions cannot overflow.
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"{path} is {problem}: shape {shape} needs {expected} bytes, "
                        f"the file has {len(raw)}; the file is damaged, fetch it again.")
    stem = path.name.removesuffix(".gz").replace(".idx", "-idx")
    if verify_mnist and stem in MNIST_SHA256:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != MNIST_SHA256[stem]:
            warnings.warn(f"{path} differs from the original MNIST file (SHA-256 {digest[:12]}"
                          f"..., expected {MNIST_SHA256[stem][:12]}...); using it anyway.",
                          stacklevel=2)
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def load_idx_folder(folder, verify_mnist=False):
    """{split: (images [N, H, W, 1], labels int64 [N])} from the four IDX files."""
    folder = pathlib.Path(folder)
    splits = {}
    for split in ("train", "test"):
        arrays = {}
        for kind in ("images", "labels"):
            stem = IDX_FILES[(split, kind)]
            path = find_idx_file(folder, stem)
            if path is None:
                raise DataError(f"{folder} has no {stem}[.gz]: an MNIST-format folder needs "
                                f"the four files {', '.join(IDX_FILES.values())} (.gz or not).")
            arrays[kind] = read_idx(path, verify_mnist=verify_mnist)
        images, labels = arrays["images"], arrays["labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{folder}: {split} images of shape {images.shape} do not match "
                            f"labels of shape {labels.shape}; expected [N, H, W] and [N].")
        splits[split] = (images[..., None], as_labels(labels, f"{folder}: {split} labels"))
    return splits


def load_npz(path):
    """{split: (examples, labels or None)} from an .npz with x_train, x_test[, y_train,
    y_test]: images [N, H, W] or [N, H, W, C], or flat vectors [N, d] (tabular data)."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            contents = {key: arrays[key] for key in arrays.files}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise DataError(f"{path} holds Python objects, not numeric arrays; save the "
                            f"images as numbers (uint8 0..255 or floats in [0, 1]).") from None
        raise DataError(f"Cannot read {path} as .npz: {error}.") from None
    except OSError as error:
        raise DataError(f"Cannot read {path} as .npz: {error}.") from None
    missing = [key for key in ("x_train", "x_test") if key not in contents]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}: an .npz source needs x_train and "
                        f"x_test arrays (and optionally y_train, y_test); it has "
                        f"{', '.join(sorted(contents)) or 'nothing'}.")
    splits = {}
    for split in ("train", "test"):
        images = as_examples(contents[f"x_{split}"], f"{path}: x_{split}")
        labels = contents.get(f"y_{split}")
        if labels is not None:
            labels = as_labels(labels, f"{path}: y_{split}")
            if len(labels) != len(images):
                raise DataError(f"{path}: y_{split} has {len(labels)} labels for "
                                f"{len(images)} images.")
        splits[split] = (images, labels)
    return splits


def load_image_folder(folder, test_fraction=0.1, seed=0):
    """{split: (images [N, H, W, C], None)} from a folder of PNG/JPEG files of one size; a
    seeded random ``test_fraction`` of them is held out as the test split (``hold_out_test``).

    Images come as uint8 grey levels 0..255 (16-bit PNGs are decoded to 8 bits), scaled, or
    kept for a discrete likelihood, by ``data_values``.
    """
    import tensorflow as tf  # here: the other sources do not need it

    folder = pathlib.Path(folder)
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"{folder} has no PNG or JPEG images.")
    images = []
    for path in paths:
        try:
            image = tf.io.decode_image(tf.io.read_file(str(path)),
                                       expand_animations=False).numpy()
        except tf.errors.OpError:
            raise DataError(f"Cannot decode {path} as an image; remove it or fix it.") from None
        images.append(image)
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise DataError(f"{folder} holds images of several shapes {sorted(shapes)[:3]}...; "
                        f"resize them to one size first.")
    images = np.stack(images)
    if len(images) < 2:
        raise DataError(f"{folder} has only {len(images)} image; it needs at least 2.")
    return hold_out_test(images, None, test_fraction, seed)


def hold_out_test(examples, labels, test_fraction, seed):
    """{"train": ..., "test": ...} of (examples, labels or None): a seeded random
    ``test_fraction`` of the examples (at least one) is the test split, for sources that come
    as one set (an image folder, a CSV file)."""
    order = np.random.default_rng(seed).permutation(len(examples))
    num_test = max(1, int(round(test_fraction * len(examples))))
    parts = {"train": order[num_test:], "test": order[:num_test]}
    return {split: (examples[chosen], None if labels is None else labels[chosen])
            for split, chosen in parts.items()}


def as_examples(array, what):
    """``array`` as examples: flat vectors [N, d] as they are, images [N, H, W, C] (a channel
    axis added to [N, H, W])."""
    array = np.asarray(array)
    if array.ndim == 2 and array.size:
        return array
    if array.ndim in (3, 4):
        return as_image_array(array, what)
    raise DataError(f"{what} has shape {array.shape}; expected flat vectors [N, d] or images "
                    f"[N, H, W] or [N, H, W, C].")


def as_image_array(array, what):
    """``array`` as images [N, H, W, C] (a channel axis added to [N, H, W])."""
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or len(array) == 0:
        raise DataError(f"{what} has shape {array.shape}; expected images [N, H, W] or "
                        f"[N, H, W, C].")
    return array


def as_labels(labels, what):
    """Class labels as int64 [N]; DataError for labels that are not whole numbers."""
    labels = np.asarray(labels)
    if labels.dtype.kind in "biu":
        return labels.astype(np.int64)
    if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) \
            and np.array_equal(labels, np.round(labels)):
        return labels.astype(np.int64)
    raise DataError(f"{what} holds {labels.dtype} values; labels must be whole-number class "
                    f"indices (or leave them out).")
