"""The categorical likelihood over a given number of levels per element (256 grey levels,
or the categories of a tabular field); registered as ``"categorical"``. Data: integer
levels 0 .. L - 1.

    log p(x|z) = sum_elements log_softmax(logits)[x] = -sum_elements CE(x, logits)   (nats)

the softmax cross-entropy of the element's level, with one logit per level and no order
among the levels (unlike the discretised logistic, which ties neighbouring grey levels).
Its mean is sum_k k softmax(logits)_k; ``mean()`` gives it as an intensity, E[x] / (L - 1)
(``levels.py``). The head holds L parameters per element:
with a flat (mlp) body that is L * prod(output_shape) outputs of the last layer (200k for
MNIST at 256 levels), so prefer the conv body, a 1x1 head, for images.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae.layers.levels import DEFAULT_LEVELS, LevelsDecoder

tfd = tfp.distributions


def intensity_mean(logits):
    """sum_k k softmax(logits)_k / (L - 1) over the last axis: the mean level as an
    intensity in [0, 1]."""
    levels = tf.range(tf.shape(logits)[-1], dtype=logits.dtype)
    top = tf.cast(tf.shape(logits)[-1] - 1, logits.dtype)
    return tf.reduce_sum(tf.nn.softmax(logits) * (levels / top), axis=-1)


class LevelCategorical(tfd.Categorical):
    """``tfd.Categorical`` over levels 0 .. L - 1 that takes float levels (the VAE's data are
    float32) and has a mean, the expected level as an intensity (E[x] / (L - 1))."""

    def _log_prob(self, x):
        logits = self.logits_parameter()
        return -tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(x, tf.int32), logits=logits)

    def _mean(self):
        return tf.cast(intensity_mean(self.logits_parameter()), self.dtype)


@keras.saving.register_keras_serializable(package="keras_vae")
class CategoricalDecoder(LevelsDecoder):
    """z -> p(x|z) = Independent(Categorical(logits), len(output_shape)) over integer levels
    0 .. num_levels - 1; log p(x|z) = -sum_elements softmax cross-entropy nats (a mass).

    ``mean()`` and the exported ``mean`` are the expected level / (L - 1), in [0, 1]
    (``levels.py``); it exports also ``probabilities``
    [..., L] (softmax of the logits: all an app needs to draw a level itself).

    Args:
        output_shape: shape of one example, e.g. (28, 28, 1), or (d,) for d tabular fields.
        num_levels: L, the levels of every element (256 for 8-bit pixels).
        architecture, hidden_units, activation, network: as in ``GaussianEncoder``.
    """

    def __init__(self, output_shape, num_levels=DEFAULT_LEVELS, architecture="mlp",
                 hidden_units=None, activation="relu", network=None, **kwargs):
        super().__init__(output_shape, num_levels, architecture, hidden_units, activation,
                         network, **kwargs)
        self.num_parameters = num_levels

    def call(self, z, training=None):
        logits = self.likelihood_parameters(z, training=training)
        return self._independent(LevelCategorical(logits=logits, dtype=tf.float32))

    def export_outputs(self, z):
        logits = self.likelihood_parameters(z)
        return {"mean": intensity_mean(logits),
                "probabilities": tf.nn.softmax(logits)}

    def reference_outputs(self, distribution):
        return {"mean": distribution.mean(),
                "probabilities": distribution.distribution.probs_parameter()}

    def output_meanings(self):
        top = self.num_levels - 1
        return {
            "mean": self.mean_meaning(),
            "probabilities": {"range": [0.0, 1.0], "meaning": f"probability of each level "
                                                              f"0..{top} (last axis)"},
        }
