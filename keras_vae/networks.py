"""Default bodies of the encoder and decoder: the networks between data and distribution heads.

A body maps its input to features; a distribution layer (``layers.py``) puts a head on
the features that produces the parameters of a ``tfd.Distribution``. Two architectures:

- ``"mlp"``: flatten, then one ``Dense`` layer per entry of ``hidden_units``; the decoder
  mirrors the encoder (784-200-200 / 200-200-784 for Burda et al. 2016).
- ``"conv"``: one stride-2 ``Conv2D`` per entry of ``hidden_units`` (the entries are filter
  counts), then flatten; the decoder projects to the smallest feature map and upsamples with
  stride-2 ``Conv2DTranspose`` layers back to the image's height and width. Images need rank 3
  (height, width, channels) with height and width divisible by ``2 ** len(hidden_units)``.
"""

import math

import keras

# The vocabulary and checks of body options live in config.py; these names stay importable
# from here for code written against earlier versions.
from keras_vae.config import (ARCHITECTURES, DEFAULT_HIDDEN_UNITS,  # noqa: E402,F401
                              check_architecture_accepts, check_image_shape,
                              resolve_hidden_units)
from keras_vae.checks import check_choice  # noqa: E402,F401


def encoder_body(architecture, input_shape, hidden_units, activation, dtype=None):
    """x [batch, *input_shape] -> features [batch, num_features]; ``dtype``: the layers'
    dtype policy (None: the global one)."""
    if architecture == "mlp":
        layers = [keras.layers.Flatten(dtype=dtype)]
        layers += [keras.layers.Dense(units, activation=activation, dtype=dtype)
                   for units in hidden_units]
    else:
        layers = [
            keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation=activation,
                                dtype=dtype)
            for filters in hidden_units
        ]
        layers.append(keras.layers.Flatten(dtype=dtype))
    return keras.Sequential(layers, name="encoder_body")


def decoder_body(architecture, output_shape, hidden_units, activation, dtype=None):
    """z [batch, latent_dim] -> features: [batch, units] (mlp) or [batch, height, width, filters]
    (conv); ``dtype``: the layers' dtype policy (None: the global one)."""
    if architecture == "mlp":
        layers = [
            keras.layers.Dense(units, activation=activation, dtype=dtype)
            for units in reversed(hidden_units)
        ]
    else:
        factor = 2 ** len(hidden_units)
        height, width = output_shape[0] // factor, output_shape[1] // factor
        deepest = hidden_units[-1]
        layers = [
            keras.layers.Dense(height * width * deepest, activation=activation, dtype=dtype),
            keras.layers.Reshape((height, width, deepest), dtype=dtype),
        ]
        layers += [
            keras.layers.Conv2DTranspose(
                filters, 3, strides=2, padding="same", activation=activation, dtype=dtype
            )
            for filters in reversed(hidden_units)
        ]
    return keras.Sequential(layers, name="decoder_body")


def num_elements(shape):
    """Number of scalars in a tensor of ``shape`` (no batch axis)."""
    return math.prod(shape)
