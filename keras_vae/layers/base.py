"""What every distribution layer shares: a body network, a head of parameters, safe scales.

A distribution layer is a body (any Keras network: the default MLP/conv of ``networks.py`` or
one the user passes as ``network``) followed by a small head that produces the parameters of
a ``tfd.Distribution``. The distribution math is done in float32 whatever the layer's compute
dtype, because log-densities summed over 784 pixels lose too much precision in float16.

Scales are ``softplus(raw) + floor`` (``positive_scale``); ``stable_softplus`` is the same
function written with ops that the TFLite converter lowers without overflow (DESIGN.md
trap 8), used by every export.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_vae import networks
from keras_vae.checks import check_choice

# Smallest standard deviation a layer produces: keeps log(scale) and 1/scale finite in float32
# when the pre-activation is very negative (softplus underflows to exactly 0 below about -104).
MIN_SCALE = 1e-5


def positive_scale(raw, min_scale=MIN_SCALE, softplus=tf.math.softplus):
    """softplus(raw) + min_scale: positive and finite for every finite float32 ``raw``.

    Softplus grows linearly (no overflow, unlike exp for log-variances above ~88) and the
    floor keeps the scale away from 0 for very negative pre-activations. ``softplus`` can be
    swapped for a formulation that a converter lowers safely (``stable_softplus``).
    """
    return softplus(raw) + min_scale


def stable_softplus(x):
    """softplus(x) = max(x, 0) + log(1 + exp(-|x|)), finite for every finite float32 x.

    TFLite lowers ``tf.math.softplus`` to log(exp(x) + 1), which is inf above x ~ 88 (trap 8);
    here exp(-|x|) <= 1 cannot overflow. It differs from softplus by less than 1.2e-7 (the
    float32 rounding of 1 + exp(-|x|)), far inside the export's parity tolerance.
    """
    return tf.nn.relu(x) + tf.math.log(1.0 + tf.exp(-tf.abs(x)))


def inverse_softplus(value):
    """The pre-activation whose softplus is ``value`` (used to initialise learned scales)."""
    return float(np.log(np.expm1(value)))


class DistributionLayer(keras.layers.Layer):
    """A body network followed by a head that outputs distribution parameters.

    Subclasses set ``self.network`` (or leave it ``None`` to build the default body in
    ``build``) and implement ``_default_network``, ``_build_head`` and ``call``.
    """

    def __init__(self, architecture="mlp", hidden_units=None, activation="relu",
                 network=None, **kwargs):
        super().__init__(**kwargs)
        self.architecture = check_choice(
            "architecture", architecture, networks.ARCHITECTURES)
        self.hidden_units = networks.resolve_hidden_units(architecture, hidden_units)
        self.activation = activation
        if network is not None and not isinstance(network, keras.layers.Layer):
            raise TypeError(
                f"network must be a Keras layer or model; received {type(network).__name__}."
            )
        self.user_network = network is not None
        self.network = network

    def build(self, input_shape):
        # Sublayers made here take this layer's dtype policy, not the global one: a model
        # trained in mixed precision then reloads in mixed precision whatever the global policy.
        if self.network is None:
            self.network = self._default_network(tuple(input_shape[1:]))
        # A forward pass on one zero example builds every body (Sequential, functional or
        # subclassed) and tells the head the feature shape, which compute_output_shape cannot
        # do for arbitrary subclassed networks.
        features = self.network(tf.zeros((1,) + tuple(input_shape[1:]), self.compute_dtype))
        self._build_head(tuple(features.shape))
        self.built = True

    def _common_config(self):
        config = super().get_config()
        config.update(
            architecture=self.architecture,
            hidden_units=list(self.hidden_units),
            activation=self.activation,
            network=keras.saving.serialize_keras_object(self.network)
            if self.user_network else None,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("network") is not None:
            config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)
