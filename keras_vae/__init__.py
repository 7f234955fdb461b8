"""keras-vae: variational autoencoders for TensorFlow, with Keras 3 layers whose outputs are
TensorFlow Probability distributions. Every figure is in nats per example.

The public API (``kv.VAE``, ``kv.GaussianEncoder``, ``kv.evaluation``, ...) is imported on
first use (PEP 562 module ``__getattr__``), so that ``import keras_vae`` and the ``kvae``
command's help and argument errors cost no TensorFlow import (about 4 s and 600 MB). As soon
as Keras is imported, by anyone, the modules that register keras-vae's Keras classes run
(``import_hooks.when_imported``): ``keras.models.load_model`` of a saved VAE then works after
only ``import keras_vae``.
"""

import importlib
import os

# Keras 3 is the Keras this package is written for; tf.keras must not fall back to Keras 2.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")
# TensorFlow's C++ INFO/WARNING lines after start-up bury the output that matters; errors
# still show. Set before TensorFlow is first imported; a user's value wins. (The lines TF
# prints while it starts ignore it on TF 2.21: see quiet.py.)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

# public name -> the module that defines it ("" for a module of the package itself)
_PUBLIC = {
    "VAE": "keras_vae.model",
    "HierarchicalVAE": "keras_vae.hierarchy",
    "GaussianEncoder": "keras_vae.layers",
    "BernoulliDecoder": "keras_vae.layers",
    "NormalDecoder": "keras_vae.layers",
    "StandardNormalPrior": "keras_vae.priors",
    "evaluation": "",
    "hierarchy": "",
    "likelihoods": "",
    "networks": "",
    "objectives": "",
    "presets": "",
    "priors": "",
    "protocol": "",
    "schedules": "",
    "warmup": "",
}

__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name):
    """Imports a public name on first use; it is then an ordinary attribute."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'keras_vae' has no attribute {name!r}")
    if not _PUBLIC[name]:
        return importlib.import_module(f"keras_vae.{name}")  # sets the attribute itself
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *__all__})


def _register_keras_classes():
    """Imports the public API: its modules register their classes with Keras
    (``keras.saving.register_keras_serializable``), which ``load_model`` needs."""
    for name in _PUBLIC:
        __getattr__(name)


from keras_vae import import_hooks  # noqa: E402 - after __getattr__, which the hook uses

import_hooks.when_imported("keras", _register_keras_classes)
