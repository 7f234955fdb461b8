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

ARCHITECTURES = ("mlp", "conv")
DEFAULT_HIDDEN_UNITS = {"mlp": (200, 200), "conv": (32, 64)}


def check_choice(name, value, choices):
    """Raises ValueError naming the argument, the value received and the valid values."""
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"Unknown {name} {value!r}: expected one of {valid}.")
    return value


def resolve_hidden_units(architecture, hidden_units):
    """The hidden sizes as a tuple of positive ints; ``None`` selects the architecture's default."""
    check_choice("architecture", architecture, ARCHITECTURES)
    if hidden_units is None:
        return DEFAULT_HIDDEN_UNITS[architecture]
    if isinstance(hidden_units, int):
        hidden_units = (hidden_units,)
    hidden_units = tuple(hidden_units)
    if not hidden_units or any(
        isinstance(u, bool) or not isinstance(u, int) or u <= 0 for u in hidden_units
    ):
        raise ValueError(
            f"hidden_units must be a non-empty sequence of positive integers, "
            f"for example (200, 200); received {hidden_units!r}."
        )
    return hidden_units


def check_image_shape(shape, name="input_shape"):
    """A data shape (no batch axis) as a tuple of positive ints."""
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a tuple of positive integers such as (28, 28, 1); "
            f"received {shape!r}."
        ) from None
    if not shape or any(d <= 0 for d in shape):
        raise ValueError(
            f"{name} must be a non-empty tuple of positive integers such as (28, 28, 1); "
            f"received {shape!r}."
        )
    return shape


def check_architecture_accepts(architecture, shape, hidden_units):
    """Raises ValueError when ``architecture`` cannot take data of ``shape``."""
    if architecture != "conv":
        return
    factor = 2 ** len(hidden_units)
    if len(shape) != 3:
        raise ValueError(
            f"architecture='conv' takes images of shape (height, width, channels); "
            f"received input_shape={shape}. Use architecture='mlp' for other shapes."
        )
    if shape[0] % factor or shape[1] % factor:
        raise ValueError(
            f"architecture='conv' with {len(hidden_units)} stride-2 layers needs height and "
            f"width divisible by {factor}; received input_shape={shape}. Pad the images, "
            f"use fewer hidden_units, or use architecture='mlp'."
        )


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
