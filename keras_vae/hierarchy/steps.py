"""The pieces a hierarchy of Gaussian latent layers is made of.

``GaussianStep``: a small MLP from one vector to the parameters of a diagonal Normal over the
next layer, used for the generative conditionals p(z_i | z_{i+1}), the bottom-up posteriors
q(z_{i+1} | z_i) of Burda et al. 2016, and the bottom-up passes of a ladder VAE.

Two ways to combine the bottom-up evidence of layer i with its top-down prior
N(mu_p, sigma_p) (given the draw of the layer above) into the posterior q(z_i | z_{i+1}, x):

- ``precision_merge`` (Ladder VAE, Sønderby et al. 2016, eq. 17-18): the product of the two
  Gaussians, renormalised,
      1/sigma_q^2 = 1/sigma_hat^2 + 1/sigma_p^2,
      mu_q = sigma_q^2 (mu_hat/sigma_hat^2 + mu_p/sigma_p^2).
- ``residual_merge`` (NVAE, Vahdat & Kautz 2020, eq. 2): the posterior is the prior moved by a
  correction computed from the bottom-up and top-down features together,
      mu_q = mu_p + delta_mu,   sigma_q = sigma_p * delta_sigma.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae.config import check_latent_dim
from keras_vae.layers.base import positive_scale, stable_softplus

tfd = tfp.distributions


def diagonal_normal(loc, scale):
    """Independent(Normal(loc, scale), 1): a diagonal Normal over the last axis."""
    return tfd.Independent(tfd.Normal(loc=loc, scale=scale), reinterpreted_batch_ndims=1)


def layer_scale(raw):
    """softplus(raw) + 1e-5 (``layers.base.positive_scale``) with the softplus written so that
    TFLite lowers it without overflow (``stable_softplus``, DESIGN.md trap 8): every scale of a
    hierarchy is also computed by its exported sampler. Within 1.2e-7 of tf.math.softplus."""
    return positive_scale(raw, softplus=stable_softplus)


def precision_merge(loc_hat, scale_hat, loc_prior, scale_prior):
    """(loc, scale) of the normalised product N(loc_hat, scale_hat^2) N(loc_prior,
    scale_prior^2) (Sønderby et al. 2016, eq. 17-18); the arguments broadcast."""
    precision_hat, precision_prior = scale_hat ** -2, scale_prior ** -2
    variance = 1.0 / (precision_hat + precision_prior)
    loc = variance * (loc_hat * precision_hat + loc_prior * precision_prior)
    return loc, tf.sqrt(variance)


def residual_merge(loc_prior, scale_prior, delta_loc, raw_delta_scale):
    """(loc, scale) = (loc_prior + delta_loc, scale_prior * layer_scale(raw_delta_scale))
    (Vahdat & Kautz 2020, eq. 2): the posterior relative to the prior."""
    return loc_prior + delta_loc, scale_prior * layer_scale(raw_delta_scale)


def _on_last_axis(dense, h):
    """``dense`` applied to the last axis of h of any rank >= 1 (a joint distribution traces
    its conditionals on single draws, without a batch axis, which Dense rejects)."""
    if h.shape.rank is not None and h.shape.rank >= 2:
        return dense(h)
    return dense(h[tf.newaxis])[0]


@keras.saving.register_keras_serializable(package="keras_vae")
class GaussianStep(keras.layers.Layer):
    """h [..., input size] -> N(loc(h), diag scale(h)^2) over ``size`` latent variables.

    A body of Dense layers (``hidden_units``, ``activation``; none: the head reads h itself)
    and a Dense head with 2 * size outputs: the mean, and the scale through
    softplus(.) + 1e-5 (``layer_scale``). Works on inputs with any number of
    leading axes ([K, batch, input size] for K draws per example).
    """

    def __init__(self, size, hidden_units=(100, 100), activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.size = check_latent_dim(size)
        self.hidden_units = tuple(int(units) for units in hidden_units)
        self.activation = activation
        self.body = [keras.layers.Dense(units, activation=activation, dtype=self.dtype_policy,
                                        name=f"hidden_{index}")
                     for index, units in enumerate(self.hidden_units)]
        self.head = keras.layers.Dense(2 * self.size, dtype=self.dtype_policy,
                                       name="parameters")

    def build(self, input_shape):
        size = input_shape[-1]
        for layer in self.body:
            layer.build((None, size))
            size = layer.units
        self.head.build((None, size))
        self.built = True

    def feature_size(self, input_size):
        """Width of ``features`` for inputs of width ``input_size``."""
        return self.hidden_units[-1] if self.hidden_units else input_size

    def features(self, h):
        """The body's output for h (h itself without hidden layers)."""
        for layer in self.body:
            h = _on_last_axis(layer, h)
        return h

    def parameters_from_features(self, features):
        """(loc, raw_scale), float32 [..., size], from ``features``."""
        return tf.split(tf.cast(_on_last_axis(self.head, features), tf.float32), 2, axis=-1)

    def call(self, h):
        loc, raw_scale = self.parameters_from_features(self.features(h))
        return diagonal_normal(loc, layer_scale(raw_scale))

    def get_config(self):
        return {**super().get_config(), "size": self.size,
                "hidden_units": list(self.hidden_units), "activation": self.activation}
