"""The mixture of discretised logistics for 8-bit data (Salimans et al. 2017, PixelCNN++;
Vahdat & Kautz 2020, NVAE); registered as ``"logistic_mixture"``. Data: integer levels
0 .. L - 1.

Every element (pixel and channel) gets its own K-component mixture,

    P(x) = sum_k pi_k P_k(x),   log P(x) = logsumexp_k [log_softmax(w)_k + log P_k(x)],

with P_k the discretised logistic of ``logistic.py`` (its stable log masses) and mixture
logits w. Channels are modelled independently given z: PixelCNN++ also couples the means of
an RGB pixel's channels linearly, which a VAE decoder that sees z can learn without.
The mean is sum_k pi_k E_k[x]; ``mean()`` gives it as an intensity, E[x] / (L - 1)
(``levels.py``).
"""

import keras
import tensorflow as tf

from keras_vae.layers.base import positive_scale, stable_softplus
from keras_vae.layers.levels import DEFAULT_LEVELS, LevelsDecoder
from keras_vae.layers.logistic import (MIN_SCALE, LevelDistribution, check_min_scale,
                                       intensity_mean, log_level_masses)


DEFAULT_COMPONENTS = 5


class DiscretizedLogisticMixture(LevelDistribution):
    """Scalar mixture of discretised logistics over 0 .. ``num_levels`` - 1: ``logits``,
    ``loc`` and ``scale`` [..., K] (loc and scale on the intensity scale); batch shape their
    leading axes; ``log_prob`` and ``mean`` (E[x] / (L - 1), an intensity)."""

    component_axes = 1

    def __init__(self, logits, loc, scale, num_levels=DEFAULT_LEVELS,
                 name="DiscretizedLogisticMixture"):
        super().__init__({"logits": logits, "loc": loc, "scale": scale}, num_levels, name)

    def _log_prob(self, x):
        component_masses = log_level_masses(tf.cast(x, tf.float32)[..., None], self.loc,
                                            self.scale, self.num_levels)
        return tf.reduce_logsumexp(tf.nn.log_softmax(self.logits) + component_masses, axis=-1)

    def _mean(self):
        return mixture_mean(tf.nn.softmax(self.logits), self.loc, self.scale, self.num_levels)


def mixture_mean(weights, loc, scale, num_levels):
    """sum_k pi_k E_k[x] / (L - 1), in [0, 1]; one component at a time, which keeps the
    largest intermediate at [..., L - 1] instead of [..., K, L - 1]."""
    return tf.add_n([weights[..., k] * intensity_mean(loc[..., k], scale[..., k], num_levels)
                     for k in range(loc.shape[-1])])


@keras.saving.register_keras_serializable(package="keras_vae")
class LogisticMixtureDecoder(LevelsDecoder):
    """z -> p(x|z) = Independent(mixture of K discretised logistics, len(output_shape)) over
    integer levels 0 .. num_levels - 1; log p(x|z) = sum_elements log P(x) nats (a mass).

    Per element the network predicts K mixture logits, K locations and K scales
    (softplus(.) + min_scale, intensity scale): 3K parameters. ``mean()`` and the exported
    ``mean`` are E[x] / (L - 1), in [0, 1] (``levels.py``); it exports also ``weights``,
    ``loc`` and ``scale`` [..., K], everything an app needs to draw x itself.

    Args:
        output_shape: shape of one example, e.g. (28, 28, 1).
        num_components: K, components per element (PixelCNN++ and NVAE use 10 for CIFAR-10;
            5 is the default here, for grey-level images).
        num_levels: L, 256 for 8-bit data.
        min_scale: floor of the scales on the intensity scale.
        architecture, hidden_units, activation, network: as in ``GaussianEncoder``.
    """

    def __init__(self, output_shape, num_components=DEFAULT_COMPONENTS,
                 num_levels=DEFAULT_LEVELS, min_scale=MIN_SCALE, architecture="mlp",
                 hidden_units=None, activation="relu", network=None, **kwargs):
        super().__init__(output_shape, num_levels, architecture, hidden_units, activation,
                         network, **kwargs)
        if isinstance(num_components, bool) or not isinstance(num_components, int) \
                or num_components < 1:
            raise ValueError(f"num_components must be a positive integer; received "
                             f"{num_components!r}.")
        self.num_components = num_components
        self.num_parameters = 3 * num_components
        self.min_scale = check_min_scale(min_scale)

    def mixture_parameters(self, z, training=None, softplus=tf.math.softplus):
        """(logits, loc, scale), each [batch, *output_shape, K]."""
        parameters = self.likelihood_parameters(z, training=training)
        logits, loc, raw_scale = tf.split(parameters, 3, axis=-1)
        return logits, loc, positive_scale(raw_scale, self.min_scale, softplus)

    def call(self, z, training=None):
        logits, loc, scale = self.mixture_parameters(z, training=training)
        return self._independent(DiscretizedLogisticMixture(logits, loc, scale,
                                                            self.num_levels))

    def export_outputs(self, z):
        logits, loc, scale = self.mixture_parameters(z, softplus=stable_softplus)
        weights = tf.nn.softmax(logits)
        return {"mean": mixture_mean(weights, loc, scale, self.num_levels),
                "weights": weights, "loc": loc, "scale": scale}

    def reference_outputs(self, distribution):
        mixture = distribution.distribution
        return {"mean": distribution.mean(),
                "weights": tf.nn.softmax(mixture.logits), "loc": mixture.loc,
                "scale": mixture.scale}

    def output_meanings(self):
        top = self.num_levels - 1
        return {
            "mean": self.mean_meaning(),
            "weights": {"range": [0.0, 1.0], "meaning": "mixture weights of the K components "
                                                        "of each element (last axis)"},
            "loc": {"range": None, "meaning": f"locations of the K discretised logistics, on "
                                              f"the intensity scale (level k at k / {top})"},
            "scale": {"range": [0.0, None], "meaning": "scales of the K discretised logistics, "
                                                       "on the intensity scale"},
        }

    def get_config(self):
        return {**super().get_config(), "num_components": self.num_components,
                "min_scale": self.min_scale}
