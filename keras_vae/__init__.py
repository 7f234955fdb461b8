"""keras-vae: variational autoencoders for TensorFlow, with Keras 3 layers whose outputs are
TensorFlow Probability distributions. Every figure is in nats per example."""

import os

# Keras 3 is the Keras this package is written for; tf.keras must not fall back to Keras 2.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")
# TensorFlow's C++ INFO/WARNING start-up lines (oneDNN, CUDA probing) bury the output that
# matters; errors still show. Set before TensorFlow is first imported; a user's value wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_vae import (evaluation, networks, objectives, priors, schedules,  # noqa: E402
                       warmup)
from keras_vae.layers import BernoulliDecoder, GaussianEncoder, NormalDecoder  # noqa: E402
from keras_vae.model import VAE  # noqa: E402
from keras_vae.priors import StandardNormalPrior  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "VAE", "GaussianEncoder", "BernoulliDecoder", "NormalDecoder", "StandardNormalPrior",
    "evaluation", "networks", "objectives", "priors", "schedules", "warmup", "__version__",
]
