"""The discretised logistic likelihood for 8-bit data (Kingma et al. 2016, IAF; Salimans et
al. 2017, PixelCNN++); registered as ``"logistic"``. Data: integer levels 0 .. L - 1.

Level k sits at u_k = k / (L - 1) on the intensity scale [0, 1], where the logistic lives
(loc mu, scale s). Its mass is the logistic's probability of the bin around u_k, the edge
bins reaching to -inf and +inf so that the L masses sum to 1:

    P(k) = sigmoid(b) - sigmoid(a),   a = (u_k - h - mu) / s,  b = (u_k + h - mu) / s,
    h = 1 / (2 (L - 1)),   a = -inf for k = 0,   b = +inf for k = L - 1.

PixelCNN++ subtracts the two CDFs and, where the difference underflows, falls back on the
log-density at the bin's centre plus the log bin width. Here the difference is factored
exactly instead, sigmoid(b) - sigmoid(a) = sigmoid(b) sigmoid(-a) (1 - exp(a - b)), so

    log P(k) = -softplus(-b) - softplus(a) + log(1 - exp(-(b - a))),   b - a = 2h / s,

a sum of logs with no cancellation in either tail or for tiny s (the edge bins drop the
term of their infinite side); no fallback is needed. The mean sums the probabilities of
exceeding each threshold; ``mean()`` gives it as an intensity (``levels.py``):

    E[x] = sum_{k=0}^{L-2} P(x > k) = sum_{k=0}^{L-2} sigmoid((mu - u_k - h) / s),
    mean() = E[x] / (L - 1).

Reference: Salimans, Karpathy, Chen & Kingma, PixelCNN++, ICLR 2017, sec. 2.1.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae.layers.base import positive_scale, stable_softplus
from keras_vae.layers.levels import DEFAULT_LEVELS, LevelsDecoder

tfd = tfp.distributions

# Floor of the scale on the intensity scale: 1/39 of a bin at 256 levels, so a confident
# pixel can put a mass of 1 - 1e-8 on one level (PixelCNN++'s floor, e^-7 on [-1, 1], allows
# 0.97), while 1/s stays finite.
MIN_SCALE = 1e-4


def log_level_masses(x, loc, scale, num_levels):
    """log P(x) nats, elementwise, of the discretised logistic (module docstring) at integer
    levels x, with loc and scale on the intensity scale.

    Computed in levels (x - (L - 1) loc, over (L - 1) s): the bin edges x -+ 1/2 are then
    exact in float32, which matters when s is a small fraction of a bin."""
    top = num_levels - 1
    x = tf.cast(x, loc.dtype)
    centre = x - top * loc
    inverse_width = 1 / (top * scale)  # b - a: one bin over the scale
    a = (centre - 0.5) * inverse_width
    b = (centre + 0.5) * inverse_width
    zero = tf.zeros_like(centre)
    lower = tf.where(x > 0, -tf.math.softplus(a), zero)  # log sigmoid(-a); 0 when a = -inf
    upper = tf.where(x < top, -tf.math.softplus(-b), zero)  # log sigmoid(b); 0 when b = inf
    bin_term = tf.where((x > 0) & (x < top),
                        tf.math.log(-tf.math.expm1(-inverse_width)), zero)
    return lower + upper + bin_term


def intensity_mean(loc, scale, num_levels):
    """E[x] / (L - 1), elementwise, in [0, 1]: the mean over the L - 1 thresholds k + 1/2 of
    P(x > k), in ops the TFLite converter lowers safely (sigmoid, mean)."""
    top = num_levels - 1
    thresholds = tf.range(top, dtype=loc.dtype) + 0.5
    return tf.reduce_mean(tf.sigmoid((top * loc[..., None] - thresholds)
                                     / (top * scale[..., None])), axis=-1)


class LevelDistribution(tfd.Distribution):
    """Base of the scalar distributions over levels 0 .. ``num_levels`` - 1 whose parameters
    are tensors of one shape: the batch shape, less ``component_axes`` trailing axes."""

    component_axes = 0

    def __init__(self, parameters, num_levels, name):
        for key, value in parameters.items():
            setattr(self, key, tf.convert_to_tensor(value, tf.float32))
        self.num_levels = int(num_levels)
        super().__init__(dtype=tf.float32, reparameterization_type=tfd.NOT_REPARAMETERIZED,
                         validate_args=False, allow_nan_stats=True,
                         parameters={**parameters, "num_levels": num_levels}, name=name)

    def _batch_shape(self):
        return self.loc.shape[:self.loc.shape.rank - self.component_axes]

    def _batch_shape_tensor(self):
        return tf.shape(self.loc)[:tf.rank(self.loc) - self.component_axes]

    def _event_shape(self):
        return tf.TensorShape([])

    def _event_shape_tensor(self):
        return tf.constant([], tf.int32)


class DiscretizedLogistic(LevelDistribution):
    """Scalar discretised logistic over 0 .. ``num_levels`` - 1 (module docstring): loc and
    scale on the intensity scale, of one shape, the batch shape; ``log_prob`` and ``mean``
    (E[x] / (L - 1), an intensity)."""

    def __init__(self, loc, scale, num_levels=DEFAULT_LEVELS, name="DiscretizedLogistic"):
        super().__init__({"loc": loc, "scale": scale}, num_levels, name)

    def _log_prob(self, x):
        return log_level_masses(x, self.loc, self.scale, self.num_levels)

    def _mean(self):
        return intensity_mean(self.loc, self.scale, self.num_levels)


@keras.saving.register_keras_serializable(package="keras_vae")
class LogisticDecoder(LevelsDecoder):
    """z -> p(x|z) = Independent(DiscretizedLogistic(loc, scale), len(output_shape)) over
    integer levels 0 .. num_levels - 1; log p(x|z) = sum_pixels log P(x) nats (a mass).

    Both loc and scale are predicted per example and pixel, scale = softplus(.) + min_scale
    (intensity scale). ``mean()`` and the exported ``mean`` are E[x] / (L - 1), in [0, 1]
    (``levels.py``). Exports also ``loc`` and ``scale``
    (both on the intensity scale: level k is at k / (L - 1)).

    Args:
        output_shape: shape of one example, e.g. (28, 28, 1).
        num_levels: L, 256 for 8-bit data.
        min_scale: floor of the scale on the intensity scale.
        architecture, hidden_units, activation, network: as in ``GaussianEncoder``.
    """

    num_parameters = 2

    def __init__(self, output_shape, num_levels=DEFAULT_LEVELS, min_scale=MIN_SCALE,
                 architecture="mlp", hidden_units=None, activation="relu", network=None,
                 **kwargs):
        super().__init__(output_shape, num_levels, architecture, hidden_units, activation,
                         network, **kwargs)
        self.min_scale = check_min_scale(min_scale)

    def logistic_parameters(self, z, training=None, softplus=tf.math.softplus):
        """(loc, scale) [batch, *output_shape] on the intensity scale."""
        parameters = self.likelihood_parameters(z, training=training)
        return parameters[..., 0], positive_scale(parameters[..., 1], self.min_scale, softplus)

    def call(self, z, training=None):
        loc, scale = self.logistic_parameters(z, training=training)
        return self._independent(DiscretizedLogistic(loc, scale, self.num_levels))

    def export_outputs(self, z):
        loc, scale = self.logistic_parameters(z, softplus=stable_softplus)
        return {"mean": intensity_mean(loc, scale, self.num_levels), "loc": loc,
                "scale": scale}

    def reference_outputs(self, distribution):
        logistic = distribution.distribution
        return {"mean": distribution.mean(), "loc": logistic.loc,
                "scale": logistic.scale}

    def output_meanings(self):
        top = self.num_levels - 1
        return {
            "mean": self.mean_meaning("pixel"),
            "loc": {"range": None, "meaning": f"location of the discretised logistic, on the "
                                              f"intensity scale (level k at k / {top})"},
            "scale": {"range": [0.0, None], "meaning": "scale of the discretised logistic, on "
                                                       "the intensity scale"},
        }

    def get_config(self):
        return {**super().get_config(), "min_scale": self.min_scale}


def check_min_scale(min_scale):
    if isinstance(min_scale, bool) or not isinstance(min_scale, (int, float)) \
            or not min_scale > 0:
        raise ValueError(f"min_scale must be a positive float; received {min_scale!r}.")
    return float(min_scale)
