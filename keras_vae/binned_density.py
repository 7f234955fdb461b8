"""A density decoder on [0, 1] read as a probability mass over the L = 256 levels of 8-bit data,
so that its log-likelihood can be set beside a discrete likelihood's (bits/dim of the 8-bit
tables).

A continuous head (Normal, continuous Bernoulli) trained on grey levels x = k / 255, fed as
they are (not dequantised), gives a density p(x|z) at the grid points; a density is not a
mass, and the usual conversion "log P(bin) >= log p(x) - D log 256" (Theis et al. 2016) holds
only for uniformly dequantised data. What is exact instead: the same trained p(x|z) defines a
distribution over the levels by integrating it over each level's bin, the bins of the
discretised logistic (``layers/logistic.py``, Salimans et al. 2017; the discretised Gaussian
decoder of Ho et al. 2020, eq. 13):

    P(k|z) = F(b_k) - F(a_k),   a_k = (k - 1/2) / (L - 1),   b_k = (k + 1/2) / (L - 1),

with a_0 and b_{L-1} at the edges of the density's support (-inf and +inf for the Normal, 0
and 1 for the continuous Bernoulli), so the L masses sum to 1. ``BinnedDensityModel`` wraps a
trained model with it: its importance weights p(k, z) / q(z|x) estimate the log-mass of that
discrete model (a lower bound in expectation, rising with K like any L_K).

In closed form, in log space with no cancellation (float64):

    Normal(mu, s):  log P = log Phi(beta) + log(1 - exp(log Phi(alpha) - log Phi(beta)))
                    (mirrored, with Phi(-.), above the mean), alpha, beta = (a - mu)/s, (b - mu)/s
    CB(logit l):    density l e^{lx} / (e^l - 1) on [0, 1]; with m = |l|, w = b - a and
                    u = a (l >= 0) or 1 - b (l < 0):
                    log P = m (u - 1) + log(expm1(m w)) - log(-expm1(-m))   (-> log w at l = 0)
                          = m (u + w - 1) + log(-expm1(-m w)) - log(-expm1(-m))  (no overflow)
"""

import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import objectives

tfd = tfp.distributions

EIGHT_BIT_LEVELS = 256


def bin_edges(x, num_levels=EIGHT_BIT_LEVELS, low=-float("inf"), high=float("inf")):
    """(a, b) float64: the bin of the level nearest x * (L - 1), the end bins reaching to
    ``low`` and ``high``."""
    top = num_levels - 1
    level = tf.round(tf.cast(x, tf.float64) * top)
    a = tf.where(level > 0, (level - 0.5) / top, tf.constant(low, tf.float64))
    b = tf.where(level < top, (level + 0.5) / top, tf.constant(high, tf.float64))
    return a, b


def normal_log_bin_mass(x, loc, scale, num_levels=EIGHT_BIT_LEVELS):
    """log P(level of x) nats, elementwise, of Normal(loc, scale) over the bins (docstring)."""
    loc, scale = tf.cast(loc, tf.float64), tf.cast(scale, tf.float64)
    a, b = bin_edges(x, num_levels)
    alpha, beta = (a - loc) / scale, (b - loc) / scale
    standard = tfd.Normal(tf.constant(0.0, tf.float64), tf.constant(1.0, tf.float64))
    # Below the mean subtract lower-tail masses, above it upper-tail ones: both stay far from 1.
    below = (alpha + beta) < 0
    big = tf.where(below, standard.log_cdf(beta), standard.log_cdf(-alpha))
    small = tf.where(below, standard.log_cdf(alpha), standard.log_cdf(-beta))
    return big + tf.math.log(-tf.math.expm1(small - big))


def continuous_bernoulli_log_bin_mass(x, logits, num_levels=EIGHT_BIT_LEVELS):
    """log P(level of x) nats, elementwise, of the continuous Bernoulli with ``logits``
    over the bins clipped to [0, 1] (docstring)."""
    logits = tf.cast(logits, tf.float64)
    a, b = bin_edges(x, num_levels, low=0.0, high=1.0)
    m = tf.maximum(tf.abs(logits), 1e-12)  # the l -> 0 limit, log w, to 1e-12 relative
    # m (u - 1) + log expm1(m w) with log expm1(y) = y + log(-expm1(-y)): no overflow at
    # m w > 709; u + w - 1 = b - 1 (l >= 0) or -a (l < 0) is never positive.
    w = b - a
    return (m * tf.where(logits >= 0, b - 1.0, -a) + tf.math.log(-tf.math.expm1(-m * w))
            - tf.math.log(-tf.math.expm1(-m)))


def log_bin_mass(distribution, x, num_levels=EIGHT_BIT_LEVELS):
    """log P(levels of x | z) [batch] nats, summed over the event, for p(x|z) =
    ``distribution``: a ``tfd.Independent`` over a Normal or a continuous Bernoulli."""
    inner = distribution.distribution if isinstance(distribution, tfd.Independent) else \
        distribution
    if isinstance(inner, tfd.Normal):
        masses = normal_log_bin_mass(x, inner.loc, inner.scale, num_levels)
    elif isinstance(inner, tfd.ContinuousBernoulli):
        masses = continuous_bernoulli_log_bin_mass(x, inner.logits_parameter(), num_levels)
    else:
        raise TypeError(f"No bin masses for {type(inner).__name__}: this reads a Normal or a "
                        f"continuous Bernoulli decoder as a mass over levels.")
    axes = list(range(1, len(masses.shape)))
    return tf.cast(tf.reduce_sum(masses, axis=axes), tf.float32)


class _BinnedLikelihood:
    """p(level|z) with the ``log_prob`` of ``log_bin_mass``."""

    def __init__(self, distribution, num_levels):
        self.distribution, self.num_levels = distribution, num_levels

    def log_prob(self, x):
        return log_bin_mass(self.distribution, x, self.num_levels)


class BinnedDensityModel:
    """A trained one-layer VAE whose density decoder is read as a mass over the levels, for
    ``evaluation.log_likelihood``: log w_k = log P(k|z_k) + log p(z_k) - log q(z_k|x), the
    draws z_k those of the model's own ``log_importance_weights`` at the same seed."""

    def __init__(self, model, num_levels=EIGHT_BIT_LEVELS):
        self.model, self.num_levels = model, num_levels
        self.decoder = model.decoder  # evaluation's chunk size asks it
        self.weights = model.weights  # the progress file's digest

    def log_importance_weights(self, x, num_samples, seed):
        model = self.model
        return objectives.single_layer_log_weights(
            x, model.encode(x), lambda z: _BinnedLikelihood(model.decode(z), self.num_levels),
            model.prior_distribution(), int(num_samples), seed)
