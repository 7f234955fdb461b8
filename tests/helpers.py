"""Helpers shared by the tests: small data they make, and comparisons."""

import csv
import gzip
import os
import pathlib

import numpy as np

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def mnist_dir():
    """The offline MNIST folder ($KVAE_MNIST_DIR, else ../shared/data/mnist beside the repo),
    or None when its four files are not there."""
    default = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    folder = pathlib.Path(os.environ.get("KVAE_MNIST_DIR", default))
    return folder if all((folder / name).exists() for name in MNIST_FILES) else None


def prototype_images(num_examples, seed, shape=(8, 8, 1), num_prototypes=4, flip=0.05):
    """Binary images: one of ``num_prototypes`` fixed random patterns with ``flip`` of the
    pixels flipped. A latent code that names the prototype explains almost everything, so a
    VAE should beat the per-pixel independent model by a wide margin."""
    prototypes = np.random.default_rng(0).random((num_prototypes,) + shape) > 0.5
    rng = np.random.default_rng(seed)
    labels = rng.integers(num_prototypes, size=num_examples)
    flips = rng.random((num_examples,) + shape) < flip
    return (prototypes[labels] ^ flips).astype("float32"), labels


def max_abs_difference(first, second):
    """Largest absolute difference between two lists of arrays of equal shapes."""
    assert len(first) == len(second)
    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
               for a, b in zip(first, second))


def idx_bytes(array):
    """IDX encoding of a uint8 array: magic 0 0 8 ndim, big-endian sizes, then the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_folder(folder, num_train=30, num_test=10, size=6, gzipped=True, seed=0):
    """Four MNIST-named IDX files of random images; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {}
    from keras_vae import data

    for (split, kind), stem in data.IDX_FILES.items():
        count = num_train if split == "train" else num_test
        array = (rng.integers(0, 256, (count, size, size)) if kind == "images"
                 else rng.integers(0, 10, count))
        arrays[(split, kind)] = array
        payload = idx_bytes(array)
        if gzipped:
            (folder / (stem + ".gz")).write_bytes(gzip.compress(payload))
        else:
            (folder / stem).write_bytes(payload)
    return arrays


def tiny_train_config(data_dir, **overrides):
    """A TrainConfig for the small IDX folders the tests write: a 16-unit MLP, 2 latents,
    batch 10, 2 epochs."""
    from keras_vae import train

    options = dict(dataset="custom", data_dir=str(data_dir), hidden_units=(16,), latent_dim=2,
                   batch_size=10, epochs=2)
    options.update(overrides)
    return train.TrainConfig(**options)


def csv_rows(path):
    """The rows of a CSV file (history.csv) as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def closed_form_kl(q):
    """KL(q || N(0, I)) = 0.5 sum(sigma^2 + mu^2 - 1 - log sigma^2) in nats, per example, from
    a diagonal Normal posterior's own parameters (float64)."""
    mu = q.mean().numpy().astype("float64")
    sigma = q.stddev().numpy().astype("float64")
    return 0.5 * np.sum(sigma**2 + mu**2 - 1 - np.log(sigma**2), axis=-1)


def model_weights(run):
    """The weights of RUN/model.keras, as a list of arrays."""
    import keras

    return keras.models.load_model(pathlib.Path(run) / "model.keras").get_weights()


def interrupt_after_epoch(epoch):
    """A Keras callback that presses Ctrl-C (KeyboardInterrupt) at the end of ``epoch``
    (0-based). Passed to train.fit, it runs after the run's own checkpoint of that epoch."""
    import keras

    class InterruptAfterEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, finished, logs=None):
            if finished == epoch:
                raise KeyboardInterrupt

    return InterruptAfterEpoch()
