"""The continuous Bernoulli likelihood (Loaiza-Ganem & Cunningham 2019) for grey levels in
[0, 1]: the proper density behind "binary cross-entropy on grey pixels"; registered as
``"continuous_bernoulli"``.

For logits l and lambda = sigmoid(l), the density on [0, 1] is

    p(x|lambda) = C(lambda) lambda^x (1 - lambda)^(1 - x),
    log p(x|l)  = x l - softplus(l) + log C(l)                       (nats)

with the normalising constant C(lambda) = 2 artanh(1 - 2 lambda) / (1 - 2 lambda) (2 at
lambda = 1/2). In logit space 1 - 2 lambda = -tanh(l/2) and artanh(1 - 2 lambda) = -l/2, so

    C = l / tanh(l / 2),   log C = log|l| - log tanh(|l| / 2),

which has no cancellation except at l = 0; below |l| = ``TAYLOR_CUTOFF`` its Taylor series
log 2 + l^2/12 - 7 l^4/1440 + 31 l^6/90720 - 127 l^8/4838400 is used instead (the exact form's
gradient 1/l - 1/sinh l cancels there). The mean is not lambda:

    E[x] = lambda / (2 lambda - 1) + 1 / (2 artanh(1 - 2 lambda))
         = 1/2 + 1 / (2 tanh(l / 2)) - 1 / l
         ~ 1/2 + l/12 - l^3/720 + l^5/30240 - l^7/1209600           (|l| small)

Dropping log C, as "BCE on grey pixels" does, is not a log-likelihood: it is not normalised
and its optimum pushes lambda towards 0 and 1 (the paper's figure 1).
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae.layers.decoder import ImageDecoder, unit_interval_check

tfd = tfp.distributions

# Below this |logit| the Taylor series of log C and of the mean are used: their truncation
# error there is below 2e-9, and the exact forms are accurate to ~3e-7 above it.
TAYLOR_CUTOFF = 0.5


def log_normalizer(logits):
    """log C(l) = log(l / tanh(l/2)) in nats, elementwise; finite for every finite l."""
    magnitude = tf.abs(logits)
    small = magnitude < TAYLOR_CUTOFF
    # The exact branch gets a safe input where it is not used: its NaN at l = 0 would
    # otherwise reach the gradient through tf.where.
    safe = tf.where(small, tf.ones_like(magnitude), magnitude)
    exact = tf.math.log(safe) - tf.math.log(tf.tanh(safe / 2))
    square = tf.square(logits)
    series = 0.6931471805599453 + square * (1 / 12 + square * (-7 / 1440 + square * (
        31 / 90720 - square * 127 / 4838400)))
    return tf.where(small, series, exact)


def continuous_bernoulli_mean(logits):
    """E[x] = 1/2 + 1/(2 tanh(l/2)) - 1/l, in [0, 1], elementwise, in converter-safe ops."""
    small = tf.abs(logits) < TAYLOR_CUTOFF
    safe = tf.where(small, tf.ones_like(logits), logits)
    exact = 0.5 + 0.5 / tf.tanh(safe / 2) - 1 / safe
    square = tf.square(logits)
    series = 0.5 + logits * (1 / 12 + square * (-1 / 720 + square * (
        1 / 30240 - square / 1209600)))
    return tf.where(small, series, exact)


class LogitContinuousBernoulli(tfd.ContinuousBernoulli):
    """``tfd.ContinuousBernoulli`` with log_prob(x) = x l - softplus(l) + log C(l) and the mean
    computed as above (``log_normalizer``, ``continuous_bernoulli_mean``), in logit space.
    Sampling and the CDF are TFP's. x outside [0, 1] has density 0 (log_prob -inf); the
    head's data check refuses such data first."""

    def _log_normalizer(self, logits=None):
        return log_normalizer(self._logits if logits is None else logits)

    def _log_prob(self, event):
        logits = tf.convert_to_tensor(self._logits)
        event = tf.cast(event, logits.dtype)
        log_density = event * logits - tf.math.softplus(logits) + log_normalizer(logits)
        outside = (event < 0) | (event > 1)
        return tf.where(outside, tf.constant(-float("inf"), logits.dtype), log_density)

    def _mean(self):
        return continuous_bernoulli_mean(tf.convert_to_tensor(self._logits))


@keras.saving.register_keras_serializable(package="keras_vae")
class ContinuousBernoulliDecoder(ImageDecoder):
    """z -> p(x|z) = Independent(ContinuousBernoulli(logits), len(output_shape)); x in [0, 1].

    log p(x|z) = sum_pixels [x l - softplus(l) + log C(l)] nats: the binary cross-entropy of
    grey levels plus the normalising constant that makes it a density on [0, 1] (see the
    module docstring). Data: grey levels in [0, 1], used as given (not binarised).

    Exports ``mean`` (the continuous Bernoulli mean, which is not lambda) and
    ``probability`` (lambda = sigmoid(l), the parameter).

    Args:
        output_shape: shape of one image, e.g. (28, 28, 1).
        architecture, hidden_units, activation, network: as in ``GaussianEncoder``.

    Reference: Loaiza-Ganem & Cunningham, The continuous Bernoulli: fixing a pervasive error
    in variational autoencoders, NeurIPS 2019.
    """

    data_kind = "unit_interval"

    def call(self, z, training=None):
        logits = self.likelihood_parameters(z, training=training)[..., 0]
        return self._independent(LogitContinuousBernoulli(logits=logits, dtype=tf.float32))

    def data_checks(self, x):
        """Finite, and in [0, 1], where the density lives."""
        return super().data_checks(x) + [unit_interval_check(
            x, "likelihood='continuous_bernoulli' needs grey levels in [0, 1]; divide uint8 "
               "pixels by 255 (kvae: --binarize none).")]

    def export_outputs(self, z):
        logits = self.likelihood_parameters(z)[..., 0]
        return {"mean": continuous_bernoulli_mean(logits), "probability": tf.sigmoid(logits)}

    def reference_outputs(self, distribution):
        return {"mean": distribution.mean(),
                "probability": distribution.distribution.probs_parameter()}

    def output_meanings(self):
        return {
            "mean": {"range": [0.0, 1.0], "meaning": "mean grey level of each pixel under the "
                                                     "continuous Bernoulli (show as intensities)"},
            "probability": {"range": [0.0, 1.0],
                            "meaning": "continuous Bernoulli parameter lambda = sigmoid(logits) "
                                       "of each pixel (not its mean)"},
        }
