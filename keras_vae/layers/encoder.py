"""``GaussianEncoder``: x -> q(z|x) = Independent(Normal(loc, scale), 1), a diagonal Normal
posterior over ``latent_dim`` latent variables (Kingma & Welling 2014)."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import networks
from keras_vae.config import check_latent_dim
from keras_vae.layers.base import DistributionLayer, positive_scale

tfd = tfp.distributions


@keras.saving.register_keras_serializable(package="keras_vae")
class GaussianEncoder(DistributionLayer):
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
        input_scale: factor applied to x before the body, so that the networks see values
            of order 1 whatever the data's units: 1 (default) for data in [0, 1]; the VAE
            sets 1/255 for 8-bit levels 0..255 (the likelihood head's
            ``encoder_input_scale``).
    """

    def __init__(self, latent_dim, architecture="mlp", hidden_units=None, activation="relu",
                 network=None, input_scale=1.0, **kwargs):
        super().__init__(architecture, hidden_units, activation, network, **kwargs)
        self.latent_dim = check_latent_dim(latent_dim)
        if isinstance(input_scale, bool) or not isinstance(input_scale, (int, float)) \
                or not input_scale > 0:
            raise ValueError(f"input_scale must be a positive number; received "
                             f"{input_scale!r}.")
        self.input_scale = float(input_scale)

    def _default_network(self, input_shape):
        networks.check_architecture_accepts(self.architecture, input_shape, self.hidden_units)
        return networks.encoder_body(
            self.architecture, input_shape, self.hidden_units, self.activation,
            dtype=self.dtype_policy)

    def _build_head(self, feature_shape):
        self.head = keras.layers.Dense(2 * self.latent_dim, name="posterior_parameters",
                                       dtype=self.dtype_policy)
        self.head.build((None, networks.num_elements(feature_shape[1:])))

    def features(self, x, training=None):
        """The body's output for x, flattened: [batch, num_features] (what the head reads; a
        ladder VAE also passes it up to the next layer)."""
        if self.input_scale != 1.0:
            x = x * keras.ops.cast(self.input_scale, x.dtype)
        features = self.network(x, training=training)
        return keras.ops.reshape(features, (keras.ops.shape(features)[0], -1))

    def parameters_from_features(self, features):
        """(loc, raw_scale) float32 [batch, latent_dim] from the body's ``features``."""
        return tf.split(tf.cast(self.head(features), tf.float32), 2, axis=-1)

    def posterior_parameters(self, x, training=None):
        """(loc, raw_scale) of q(z|x) as float32 tensors [batch, latent_dim]."""
        return self.parameters_from_features(self.features(x, training=training))

    def call(self, x, training=None):
        loc, raw_scale = self.posterior_parameters(x, training=training)
        return tfd.Independent(
            tfd.Normal(loc=loc, scale=positive_scale(raw_scale)), reinterpreted_batch_ndims=1)

    def get_config(self):
        return {**self._common_config(), "latent_dim": self.latent_dim,
                "input_scale": self.input_scale}
