"""The VampPrior (Tomczak & Welling, VAE with a VampPrior, AISTATS 2018): the prior is the
mixture of the model's own posteriors at K learned pseudo-inputs u_1 .. u_K,

    p(z) = (1/K) sum_k q(z | u_k),     log p(z) = logsumexp_k log q(z|u_k) - log K   (nats),

the "variational mixture of posteriors" that approximates the aggregate posterior, the prior
that maximises the ELBO (their eq. 8-9). The contract is in ``priors/__init__.py``.

The pseudo-inputs are the layer's weights; the encoder is the model's, passed in at every call
(``needs_encoder``; ``VAE._prior_arguments``) and never stored here, so a ``.keras`` file saves
it once, with the model. Each call encodes the K pseudo-inputs: one more encoder pass on K
examples per training step (K = 500 is their default, about twice the cost of a batch-100 step
of an MLP VAE).

The pseudo-inputs are kept in the data's range as in the paper: u = clip(v, low, high) of free
weights v (their hard tanh) for data in [low, high] (``data_range``, default (0, 1), the grey
levels behind binarised images), initialised at N(low + 0.05 w, 0.01 w) with w = high - low
(their N(0.05, 0.01)); for real-valued data (``data_range=None``: tabular vectors under a
Normal likelihood) u = v unconstrained, initialised at N(0, 0.1) near the mean of standardised
data. ``data_range_of(head)`` chooses between the two from the likelihood.
"""

import keras
import tensorflow as tf

from keras_vae.checks import check_positive_int
from keras_vae.config import check_image_shape, check_latent_dim
from keras_vae.errors import ConfigError
from keras_vae.priors.mixture import (gaussian_mixture, mixture_noise_spec,
                                      mixture_sample_from_noise)


def data_range_of(head):
    """The range of the data of a likelihood's decoder head (class or instance): its
    ``data_range`` attribute when it declares one, (0, 1) for binarised data, else None
    (real-valued data, unconstrained pseudo-inputs)."""
    declared = getattr(head, "data_range", None)
    if declared is not None:
        return tuple(float(v) for v in declared)
    return (0.0, 1.0) if getattr(head, "binarize", False) else None


def _check_data_range(data_range):
    if data_range is None:
        return None
    try:
        low, high = (float(v) for v in data_range)
    except (TypeError, ValueError):
        raise ConfigError(f"data_range must be (low, high) or None; received "
                          f"{data_range!r}.") from None
    if not low < high:
        raise ConfigError(f"data_range must be (low, high) with low < high; received "
                          f"{data_range!r}.")
    return (low, high)


@keras.saving.register_keras_serializable(package="keras_vae")
class VampPrior(keras.layers.Layer):
    """p(z) = (1/K) sum_k q(z|u_k) at K = ``num_components`` learned pseudo-inputs u_k.

    Args:
        latent_dim: number of latent variables (the encoder's).
        num_components: K, the number of pseudo-inputs (default 500, the paper's for MNIST).
        input_shape: the shape of one example, e.g. (28, 28, 1): the pseudo-inputs' shape,
            which must equal the model's.
        data_range: (low, high) the pseudo-inputs are clipped to, default (0, 1); None for
            real-valued data (unconstrained pseudo-inputs).
    """

    needs_encoder = True
    factorized = False  # no KL per latent dimension (free bits: one group only)

    def __init__(self, latent_dim, num_components=500, input_shape=None,
                 data_range=(0.0, 1.0), **kwargs):
        super().__init__(**kwargs)
        if input_shape is None:
            raise ConfigError("VampPrior needs input_shape, the shape of one example (the "
                              "pseudo-inputs'), e.g. VampPrior(latent_dim, input_shape=(28, 28, "
                              "1)).")
        self.latent_dim = check_latent_dim(latent_dim)
        self.num_components = check_positive_int("num_components", num_components)
        self.image_shape = check_image_shape(input_shape)
        self.data_range = _check_data_range(data_range)
        if self.data_range is None:
            initializer = keras.initializers.RandomNormal(mean=0.0, stddev=0.1, seed=1234)
        else:
            low, high = self.data_range
            initializer = keras.initializers.RandomNormal(
                mean=low + 0.05 * (high - low), stddev=0.01 * (high - low), seed=1234)
        self.pseudo_input_parameters = self.add_weight(
            name="pseudo_input_parameters", shape=(self.num_components,) + self.image_shape,
            dtype="float32", initializer=initializer)
        self.built = True

    def pseudo_inputs(self):
        """u_k [K, *input_shape]: the free weights, clipped to ``data_range`` when it is set."""
        values = tf.convert_to_tensor(self.pseudo_input_parameters)
        if self.data_range is None:
            return values
        return tf.clip_by_value(values, *self.data_range)

    def components(self, encoder):
        """(loc, scale) [K, latent_dim] of q(z|u_k), from the model's ``encoder``."""
        if encoder is None:
            raise ConfigError("The VampPrior is the mixture of the encoder's posteriors at its "
                              "pseudo-inputs: pass encoder= (the model does: use "
                              "model.prior_distribution()).")
        posterior = encoder(tf.cast(self.pseudo_inputs(), encoder.compute_dtype))
        normal = posterior.distribution if hasattr(posterior, "distribution") else posterior
        if normal.loc.shape[-1] != self.latent_dim:
            raise ConfigError(f"The VampPrior has latent_dim={self.latent_dim} but the encoder "
                              f"gives {normal.loc.shape[-1]} latents; they must agree.")
        return tf.cast(normal.loc, tf.float32), tf.cast(normal.scale, tf.float32)

    def distribution(self, encoder=None):
        """p(z) = (1/K) sum_k q(z|u_k): a ``GaussianMixture`` with equal weights."""
        loc, scale = self.components(encoder)
        return gaussian_mixture(tf.zeros([self.num_components]), loc, scale)

    def noise_spec(self):
        """A standard Normal vector and a uniform scalar (the pseudo-input), as the MoG."""
        return mixture_noise_spec(self.latent_dim)

    def sample_from_noise(self, noise, encoder=None):
        """z = mu(u_c) + sigma(u_c) * eps [n, latent_dim], c uniform over the K pseudo-inputs."""
        loc, scale = self.components(encoder)
        weights = tf.fill([self.num_components], 1.0 / self.num_components)
        return mixture_sample_from_noise(noise, weights, loc, scale)

    def call(self, inputs=None, encoder=None):
        return self.distribution(encoder)

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim,
                "num_components": self.num_components, "input_shape": list(self.image_shape),
                "data_range": None if self.data_range is None else list(self.data_range)}
