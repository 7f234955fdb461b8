"""The Bernoulli likelihood: z -> p(x|z) = Independent(Bernoulli(logits), rank of the image),
for data in [0, 1] (binarised grey levels); registered as ``"bernoulli"``."""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae.layers.decoder import ImageDecoder, unit_interval_check

tfd = tfp.distributions


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
class BernoulliDecoder(ImageDecoder):
    """z -> p(x|z) = Independent(Bernoulli(logits), len(output_shape)); x in [0, 1].

    log p(x|z) = sum_pixels [x log sigmoid(l) + (1 - x) log sigmoid(-l)] nats, i.e. minus the
    binary cross-entropy summed over pixels. ``mean()`` gives the pixel probabilities.
    Its data are binarised grey levels (``binarize``): dynamically in training, with a fixed
    seed for validation and test (Burda et al. 2016).

    Exports ``mean`` (pixel probabilities, sigmoid(l)) and ``logits`` (l).

    Args:
        output_shape: shape of one image, e.g. (28, 28, 1).
        architecture, hidden_units, activation, network: as in ``GaussianEncoder``.
    """

    data_kind = "binary"  # so binarize = True

    def call(self, z, training=None):
        logits = self.likelihood_parameters(z, training=training)[..., 0]
        return self._independent(LogitBernoulli(logits=logits, dtype=tf.float32))

    def data_checks(self, x):
        """Finite, and in [0, 1]: log_prob of x outside it is garbage, not an error."""
        return super().data_checks(x) + [unit_interval_check(
            x, "likelihood='bernoulli' needs data in [0, 1]; scale images to [0, 1] "
               "(divide uint8 pixels by 255) or use likelihood='normal'.")]

    # Mean intensities are clipped to [MEAN_CLIP, 1 - MEAN_CLIP] before the logit, so that a
    # pixel that is always 0 (MNIST's borders) gets a finite bias, -6.9 (yburda/iwae:
    # datasets.py get_train_bias_np).
    MEAN_CLIP = 1e-3

    @classmethod
    def output_bias_for_mean(cls, mean_image):
        """logit(clip(m, 1e-3, 1 - 1e-3)) = log m - log(1 - m) per pixel, flat float32: then
        sigmoid(bias) is the mean training image (clipped) at features 0."""
        mean = np.clip(np.asarray(mean_image, np.float64), cls.MEAN_CLIP, 1 - cls.MEAN_CLIP)
        return (np.log(mean) - np.log1p(-mean)).astype(np.float32).reshape(-1)

    def export_outputs(self, z):
        logits = self.likelihood_parameters(z)[..., 0]
        return {"mean": tf.sigmoid(logits), "logits": logits}

    def reference_outputs(self, distribution):
        return {"mean": distribution.mean(), "logits": distribution.distribution.logits}

    def output_meanings(self):
        return {
            "mean": {"range": [0.0, 1.0], "meaning": "Bernoulli pixel probabilities, the mean "
                                                     "image (show as intensities)"},
            "logits": {"range": None, "meaning": "log-odds of each pixel being 1"},
        }
