"""Helpers shared by the tests: small data they make, and comparisons."""

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
