"""Keras 3 layers whose outputs are ``tensorflow_probability`` distributions.

- ``GaussianEncoder``: x -> q(z|x) = Independent(Normal(loc, scale), 1), a diagonal Normal
  posterior over ``latent_dim`` latent variables (Kingma & Welling 2014).
- ``BernoulliDecoder``: z -> p(x|z) = Independent(Bernoulli(logits), rank of the image).
- ``NormalDecoder``: z -> p(x|z) = Independent(Normal(loc, scale), rank of the image), with the
  scale fixed, learned once per pixel, or predicted per example. Its ``log_prob`` carries the
  normalising constant, so negative ELBOs in nats are comparable across scales (unlike an
  "MSE loss").

Each layer is a body (any Keras network: the default MLP/conv of ``networks.py`` or one the
user passes as ``network``) followed by a small head that produces the distribution's
parameters. The distribution math is done in float32 whatever the layer's compute dtype,
because log-densities summed over 784 pixels lose too much precision in float16.

These are subclassed layers: they can be called on tensors and used inside subclassed models,
but not as nodes of a functional model (Keras 3 functional models carry tensors only).
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import networks
from keras_vae.checks import check_choice
from keras_vae.config import check_latent_dim  # noqa: F401 - kept importable from here

tfd = tfp.distributions

# Smallest standard deviation a layer produces: keeps log(scale) and 1/scale finite in float32
# when the pre-activation is very negative (softplus underflows to exactly 0 below about -104).
MIN_SCALE = 1e-5


def positive_scale(raw, min_scale=MIN_SCALE, softplus=tf.math.softplus):
    """softplus(raw) + min_scale: positive and finite for every finite float32 ``raw``.

    Softplus grows linearly (no overflow, unlike exp for log-variances above ~88) and the
    floor keeps the scale away from 0 for very negative pre-activations. ``softplus`` can be
    swapped for a formulation that a converter lowers safely (``export.stable_softplus``).
    """
    return softplus(raw) + min_scale


def inverse_softplus(value):
    """The pre-activation whose softplus is ``value`` (used to initialise learned scales)."""
    return float(np.log(np.expm1(value)))


class _DistributionLayer(keras.layers.Layer):
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


@keras.saving.register_keras_serializable(package="keras_vae")
class GaussianEncoder(_DistributionLayer):
    """x -> q(z|x) = Independent(Normal(loc(x), scale(x)), 1), event shape [latent_dim].

    The head is one Dense layer with 2 * latent_dim outputs: the first half is the posterior
    mean, the second goes through ``softplus(.) + 1e-5`` to give a positive, finite scale.

    Args:
        latent_dim: number of latent variables (positive int).
        architecture: ``"mlp"`` or ``"conv"``, the default body (see ``networks.py``).
        hidden_units: body sizes; ``None`` gives (200, 200) for mlp, (32, 64) for conv.
        activation: activation of the default body.
        network: optional Keras layer/model used as the body instead of the default; its
            output (any rank) is flattened before the head.
    """

    def __init__(self, latent_dim, architecture="mlp", hidden_units=None, activation="relu",
                 network=None, **kwargs):
        super().__init__(architecture, hidden_units, activation, network, **kwargs)
        self.latent_dim = check_latent_dim(latent_dim)

    def _default_network(self, input_shape):
        networks.check_architecture_accepts(self.architecture, input_shape, self.hidden_units)
        return networks.encoder_body(
            self.architecture, input_shape, self.hidden_units, self.activation,
            dtype=self.dtype_policy)

    def _build_head(self, feature_shape):
        self.head = keras.layers.Dense(2 * self.latent_dim, name="posterior_parameters",
                                       dtype=self.dtype_policy)
        self.head.build((None, networks.num_elements(feature_shape[1:])))

    def posterior_parameters(self, x, training=None):
        """(loc, raw_scale) of q(z|x) as float32 tensors [batch, latent_dim]."""
        features = self.network(x, training=training)
        features = keras.ops.reshape(features, (keras.ops.shape(features)[0], -1))
        parameters = tf.cast(self.head(features), tf.float32)
        return tf.split(parameters, 2, axis=-1)

    def call(self, x, training=None):
        loc, raw_scale = self.posterior_parameters(x, training=training)
        return tfd.Independent(
            tfd.Normal(loc=loc, scale=positive_scale(raw_scale)), reinterpreted_batch_ndims=1)

    def get_config(self):
        return {**self._common_config(), "latent_dim": self.latent_dim}


class _ImageDecoder(_DistributionLayer):
    """z -> parameters [batch, *output_shape, num_parameters] -> a distribution over images.

    The head depends on what the body gives: flat features [batch, units] get a Dense layer
    with prod(output_shape) * num_parameters outputs; a feature map whose leading axes already
    match the image, [batch, *output_shape[:-1], filters], gets a per-pixel Dense (a 1x1
    convolution) with output_shape[-1] * num_parameters outputs.
    """

    num_parameters = 1

    def __init__(self, output_shape, architecture="mlp", hidden_units=None, activation="relu",
                 network=None, **kwargs):
        super().__init__(architecture, hidden_units, activation, network, **kwargs)
        self.image_shape = networks.check_image_shape(output_shape, "output_shape")
        if network is None:
            networks.check_architecture_accepts(
                self.architecture, self.image_shape, self.hidden_units)

    def _default_network(self, input_shape):
        return networks.decoder_body(
            self.architecture, self.image_shape, self.hidden_units, self.activation,
            dtype=self.dtype_policy)

    def _build_head(self, feature_shape):
        pixels = feature_shape[1:-1]
        if len(feature_shape) == 2:
            units = networks.num_elements(self.image_shape) * self.num_parameters
        elif tuple(pixels) == self.image_shape[:-1]:
            units = self.image_shape[-1] * self.num_parameters
        else:
            raise ValueError(
                f"The decoder network outputs features of shape {feature_shape[1:]}, which "
                f"cannot be mapped to images of shape {self.image_shape}: return flat features "
                f"[batch, units] or a map [batch, *{self.image_shape[:-1]}, filters]."
            )
        self.head = keras.layers.Dense(units, name="likelihood_parameters",
                                       dtype=self.dtype_policy)
        self.head.build((None, feature_shape[-1]))

    def likelihood_parameters(self, z, training=None):
        """Float32 parameters [batch, *output_shape, num_parameters] of p(x|z)."""
        parameters = self.head(self.network(z, training=training))
        shape = (keras.ops.shape(z)[0],) + self.image_shape + (self.num_parameters,)
        return tf.cast(keras.ops.reshape(parameters, shape), tf.float32)

    def _independent(self, distribution):
        """Treats every pixel as part of one event: log_prob sums over the image, in nats."""
        return tfd.Independent(distribution, reinterpreted_batch_ndims=len(self.image_shape))

    def get_config(self):
        return {**self._common_config(), "output_shape": list(self.image_shape)}


class LogitBernoulli(tfd.Bernoulli):
    """``tfd.Bernoulli`` whose log_prob(x) = x l - softplus(l) for logits l, in nats.

    The same value as TFP's (1 - x) log sigmoid(-l) + x log sigmoid(l) for every x in [0, 1]
    and finite l, with one softplus per pixel where TFP computes two. The K = 5000 evaluation
    decodes 5e7 images of 784 pixels, so this is most of its arithmetic besides the matmuls
    (benchmarks/RESULTS.md). Dense layers give finite logits; l = +inf would give NaN here.
    """

    def _log_prob(self, event):
        logits = tf.convert_to_tensor(self._logits)
        return tf.cast(event, logits.dtype) * logits - tf.math.softplus(logits)


@keras.saving.register_keras_serializable(package="keras_vae")
class BernoulliDecoder(_ImageDecoder):
    """z -> p(x|z) = Independent(Bernoulli(logits), len(output_shape)); x in [0, 1].

    log p(x|z) = sum_pixels [x log sigmoid(l) + (1 - x) log sigmoid(-l)] nats, i.e. minus the
    binary cross-entropy summed over pixels. ``mean()`` gives the pixel probabilities.

    Args:
        output_shape: shape of one image, e.g. (28, 28, 1).
        architecture, hidden_units, activation, network: as in ``GaussianEncoder``.
    """

    def call(self, z, training=None):
        logits = self.likelihood_parameters(z, training=training)[..., 0]
        return self._independent(LogitBernoulli(logits=logits, dtype=tf.float32))


NORMAL_SCALES = ("per_pixel", "per_example")


@keras.saving.register_keras_serializable(package="keras_vae")
class NormalDecoder(_ImageDecoder):
    """z -> p(x|z) = Independent(Normal(loc, scale), len(output_shape)).

    log p(x|z) = -0.5 sum ((x - loc) / scale)^2 - sum log scale - d/2 log(2 pi) nats, d pixels.
    With a fixed scale this is the scaled mean squared error plus a constant; keeping the
    constant makes the ELBO a real log-density bound.

    Args:
        output_shape: shape of one image, e.g. (28, 28, 1).
        scale: a positive float (fixed for every pixel), ``"per_pixel"`` (one learned scale per
            pixel, initialised to 1) or ``"per_example"`` (predicted by the network for each
            example and pixel). Learned scales are ``softplus(.) + min_scale``.
        min_scale: floor of learned scales; without one, pixels that never vary (the
            background of MNIST) drive the scale to 0 and the log-likelihood to +inf.
        architecture, hidden_units, activation, network: as in ``GaussianEncoder``.
    """

    def __init__(self, output_shape, scale="per_pixel", min_scale=1e-3, architecture="mlp",
                 hidden_units=None, activation="relu", network=None, **kwargs):
        super().__init__(output_shape, architecture, hidden_units, activation, network, **kwargs)
        self.scale = check_scale(scale)
        if not (isinstance(min_scale, (int, float)) and min_scale > 0):
            raise ValueError(f"min_scale must be a positive float; received {min_scale!r}.")
        self.min_scale = float(min_scale)
        if self.scale == "per_example":
            self.num_parameters = 2

    def _build_head(self, feature_shape):
        super()._build_head(feature_shape)
        if self.scale == "per_pixel":
            self.raw_scale = self.add_weight(
                name="raw_scale", shape=self.image_shape,
                initializer=keras.initializers.Constant(inverse_softplus(1.0)))

    def call(self, z, training=None):
        parameters = self.likelihood_parameters(z, training=training)
        return self._independent(
            tfd.Normal(loc=parameters[..., 0], scale=self.scale_from(parameters)))

    def scale_from(self, parameters, softplus=tf.math.softplus):
        """The per-pixel scale [batch, *output_shape] for ``likelihood_parameters`` output."""
        loc = parameters[..., 0]
        if self.scale == "per_example":
            return positive_scale(parameters[..., 1], self.min_scale, softplus)
        if self.scale == "per_pixel":
            scale = positive_scale(tf.cast(self.raw_scale, tf.float32), self.min_scale, softplus)
            return tf.broadcast_to(scale, tf.shape(loc))
        return tf.fill(tf.shape(loc), self.scale)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "min_scale": self.min_scale}


def check_scale(scale):
    """A NormalDecoder scale option: a positive float or one of NORMAL_SCALES."""
    if isinstance(scale, str) and scale in NORMAL_SCALES:
        return scale
    if isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0 \
            and np.isfinite(scale):
        return float(scale)
    raise ValueError(
        f"scale must be a positive float or one of {', '.join(map(repr, NORMAL_SCALES))}; "
        f"received {scale!r}."
    )
