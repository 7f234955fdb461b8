"""A mixture of K diagonal Gaussians with learned means, scales and weights as the prior p(z)
(the contract is in ``priors/__init__.py``):

    p(z) = sum_c pi_c N(z; mu_c, diag(sigma_c^2)),   pi = softmax(logits),
    log p(z) = logsumexp_c [log pi_c + log N(z; mu_c, sigma_c^2)]   (nats).

A Gaussian-mixture prior lets the aggregate posterior be multi-modal (Dilokthanakul et al.
2016; Tomczak & Welling 2018 sec. 2 compare it with the VampPrior). No KL between a diagonal
Normal and a mixture is registered in TFP, so training takes the Monte Carlo KL
log q(z|x) - log p(z) at the posterior draws (``objectives.kl_divergence``).

Also the helpers the VampPrior shares: ``GaussianMixture`` (a ``tfd.MixtureSameFamily`` whose
log_prob is computed by matrix products, so memory grows with draws x components and not with
draws x components x latent_dim) and ``mixture_sample_from_noise`` (the converter-safe draw).
"""

import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae.checks import check_positive_int
from keras_vae.config import check_latent_dim

tfd = tfp.distributions

# Smallest component scale: a collapsing component would otherwise make log p(z) unbounded.
SCALE_FLOOR = 1e-3


class GaussianMixture(tfd.MixtureSameFamily):
    """``MixtureSameFamily(Categorical, Independent(Normal))`` whose log_prob expands the square,

        sum_i (z_i - mu_ci)^2 / s_ci^2 = (z^2) . (1/s_c^2) - 2 z . (mu_c / s_c^2)
                                         + sum_i mu_ci^2 / s_ci^2,

    so the log density of n draws under K components is three [n, d] x [d, K] products: TFP's
    own broadcasts an [n, K, d] tensor (1.6 GB for a chunk of 20,000 draws, K = 500, d = 40
    in the K = 5000 evaluation). The expansion loses a few float32 ulps of its largest term
    (about 1e-4 nats at |z| / s ~ 40); sampling, mean and the rest are TFP's.
    """

    def _log_prob(self, x):
        normal = self.components_distribution.distribution
        loc = tf.convert_to_tensor(normal.loc)  # [K, d]
        precision = tf.math.reciprocal(tf.square(tf.convert_to_tensor(normal.scale)))
        x = tf.convert_to_tensor(x, loc.dtype)
        flat = tf.reshape(x, [-1, loc.shape[-1]])  # [n, d]
        quadratic = (tf.matmul(tf.square(flat), precision, transpose_b=True)
                     - 2.0 * tf.matmul(flat, loc * precision, transpose_b=True)
                     + tf.reduce_sum(tf.square(loc) * precision, axis=-1))  # [n, K]
        log_normal = (-0.5 * quadratic + 0.5 * tf.reduce_sum(tf.math.log(precision), axis=-1)
                      - 0.5 * loc.shape[-1] * math.log(2 * math.pi))
        log_weights = tf.nn.log_softmax(self.mixture_distribution.logits_parameter())
        log_prob = tf.reduce_logsumexp(log_weights + log_normal, axis=-1)
        return tf.reshape(log_prob, tf.shape(x)[:-1])


def gaussian_mixture(logits, loc, scale):
    """The float32 mixture with weights softmax(``logits``) [K] of Normal(loc_c, scale_c)
    ([K, d] each), event shape [d], no batch dimensions."""
    return GaussianMixture(
        mixture_distribution=tfd.Categorical(logits=tf.cast(logits, tf.float32)),
        components_distribution=tfd.Independent(
            tfd.Normal(tf.cast(loc, tf.float32), tf.cast(scale, tf.float32)), 1))


def component_indicators(uniform, weights):
    """One-hot [n, K] of the component c drawn with probabilities ``weights`` [K] by the
    uniform draws ``uniform`` [n]: c = #{c' < K - 1 : W_c' <= u}, W the cumulative weights.

    Comparisons, a sum and ``one_hot``: no gather on floats and no random op, which the TFLite
    converter lowers to builtins. The last cumulative weight (1 up to rounding) is left out,
    so a u above a rounded-down total still picks the last component.
    """
    cumulative = tf.cumsum(weights)[:-1]  # [K - 1]
    uniform = tf.reshape(tf.cast(uniform, tf.float32), [-1, 1])
    index = tf.reduce_sum(tf.cast(cumulative[tf.newaxis, :] <= uniform, tf.int32), axis=-1)
    return tf.one_hot(index, tf.shape(weights)[0], dtype=tf.float32)


def mixture_sample_from_noise(noise, weights, loc, scale):
    """z = mu_c + sigma_c * eps [n, d] with c drawn from ``weights`` by ``noise["component_noise"]``
    (uniform [n]) and eps = ``noise["z_noise"]`` (standard Normal [n, d]); the component's mean
    and scale are picked by matrix products with its one-hot row."""
    indicators = component_indicators(noise["component_noise"], weights)
    epsilon = tf.cast(noise["z_noise"], tf.float32)
    return (tf.matmul(indicators, tf.cast(loc, tf.float32))
            + tf.matmul(indicators, tf.cast(scale, tf.float32)) * epsilon)


def mixture_noise_spec(latent_dim):
    """The noise of one mixture draw: a standard Normal vector and a uniform scalar."""
    from keras_vae.priors import NoiseInput

    return {"z_noise": NoiseInput((latent_dim,), "normal"),
            "component_noise": NoiseInput((), "uniform")}


@keras.saving.register_keras_serializable(package="keras_vae")
class MixtureOfGaussiansPrior(keras.layers.Layer):
    """p(z) = sum_c softmax(logits)_c N(z; mu_c, diag(sigma_c^2)), K = ``num_components``.

    Weights (all trained with the model): ``means`` [K, latent_dim], initialised with N(0, 1)
    draws of a fixed seed so the components start spread over the standard prior's mass;
    ``scale_parameters`` [K, latent_dim] with sigma = softplus(.) + 1e-3, starting at sigma = 1;
    ``logits`` [K], starting at equal weights.

    Args:
        latent_dim: number of latent variables.
        num_components: K, the number of Gaussians (default 10).
    """

    needs_encoder = False
    factorized = False  # no KL per latent dimension (free bits: one group only)

    def __init__(self, latent_dim, num_components=10, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = check_latent_dim(latent_dim)
        self.num_components = check_positive_int("num_components", num_components)
        shape = (self.num_components, self.latent_dim)
        # float32 whatever the dtype policy: the prior's densities stay in float32.
        self.means = self.add_weight(
            name="means", shape=shape, dtype="float32",
            initializer=keras.initializers.RandomNormal(stddev=1.0, seed=1234))
        self.scale_parameters = self.add_weight(
            name="scale_parameters", shape=shape, dtype="float32",
            initializer=keras.initializers.Constant(_inverse_softplus(1.0 - SCALE_FLOOR)))
        self.logits = self.add_weight(name="logits", shape=(self.num_components,),
                                      dtype="float32", initializer="zeros")
        self.built = True

    def scales(self):
        """sigma_c = softplus(scale_parameters) + 1e-3, [K, latent_dim]."""
        return tf.nn.softplus(tf.convert_to_tensor(self.scale_parameters)) + SCALE_FLOOR

    def mixture_weights(self):
        """pi = softmax(logits) [K]."""
        return tf.nn.softmax(tf.convert_to_tensor(self.logits))

    def distribution(self):
        """p(z): a ``GaussianMixture`` with event shape [latent_dim]."""
        return gaussian_mixture(self.logits, self.means, self.scales())

    def noise_spec(self):
        """A standard Normal vector (z within the component) and a uniform scalar (the
        component)."""
        return mixture_noise_spec(self.latent_dim)

    def sample_from_noise(self, noise):
        """z [n, latent_dim] ~ p(z) from ``noise`` (``mixture_sample_from_noise``)."""
        return mixture_sample_from_noise(noise, self.mixture_weights(), self.means, self.scales())

    def call(self, inputs=None):
        return self.distribution()

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim,
                "num_components": self.num_components}


def _inverse_softplus(value):
    """x with softplus(x) = value (> 0)."""
    return float(np.log(np.expm1(value)))
