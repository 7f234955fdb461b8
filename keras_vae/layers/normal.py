"""The Normal likelihood: z -> p(x|z) = Independent(Normal(loc, scale), rank of the image),
with the scale fixed, learned once per pixel, or predicted per example; registered as
``"normal"``. Its ``log_prob`` carries the normalising constant, so negative ELBOs in nats
are comparable across scales (unlike an "MSE loss")."""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae.layers.base import inverse_softplus, positive_scale, stable_softplus
from keras_vae.layers.decoder import ImageDecoder

tfd = tfp.distributions

NORMAL_SCALES = ("per_pixel", "per_example")


@keras.saving.register_keras_serializable(package="keras_vae")
class NormalDecoder(ImageDecoder):
    """z -> p(x|z) = Independent(Normal(loc, scale), len(output_shape)).

    log p(x|z) = -0.5 sum ((x - loc) / scale)^2 - sum log scale - d/2 log(2 pi) nats, d pixels.
    With a fixed scale this is the scaled mean squared error plus a constant; keeping the
    constant makes the ELBO a real log-density bound. Data are used as given (any finite
    values). Exports ``mean`` (loc) and ``scale`` (the standard deviation of each pixel).

    Args:
        output_shape: shape of one image, e.g. (28, 28, 1).
        scale: a positive float (fixed for every pixel), ``"per_pixel"`` (one learned scale per
            pixel, initialised to 1) or ``"per_example"`` (predicted by the network for each
            example and pixel). Learned scales are ``softplus(.) + min_scale``.
        min_scale: floor of learned scales; without one, pixels that never vary (the
            background of MNIST) drive the scale to 0 and the log-likelihood to +inf.
        architecture, hidden_units, activation, network: as in ``GaussianEncoder``.
    """

    def __init__(self, output_shape, scale="per_pixel", min_scale=1e-3, architecture="mlp",
                 hidden_units=None, activation="relu", network=None, **kwargs):
        super().__init__(output_shape, architecture, hidden_units, activation, network, **kwargs)
        self.scale = check_scale(scale)
        if not (isinstance(min_scale, (int, float)) and min_scale > 0):
            raise ValueError(f"min_scale must be a positive float; received {min_scale!r}.")
        self.min_scale = float(min_scale)
        if self.scale == "per_example":
            self.num_parameters = 2

    def _build_head(self, feature_shape):
        super()._build_head(feature_shape)
        if self.scale == "per_pixel":
            self.raw_scale = self.add_weight(
                name="raw_scale", shape=self.image_shape,
                initializer=keras.initializers.Constant(inverse_softplus(1.0)))

    def call(self, z, training=None):
        parameters = self.likelihood_parameters(z, training=training)
        return self._independent(
            tfd.Normal(loc=parameters[..., 0], scale=self.scale_from(parameters)))

    def scale_from(self, parameters, softplus=tf.math.softplus):
        """The per-pixel scale [batch, *output_shape] for ``likelihood_parameters`` output."""
        loc = parameters[..., 0]
        if self.scale == "per_example":
            return positive_scale(parameters[..., 1], self.min_scale, softplus)
        if self.scale == "per_pixel":
            scale = positive_scale(tf.cast(self.raw_scale, tf.float32), self.min_scale, softplus)
            return tf.broadcast_to(scale, tf.shape(loc))
        return tf.fill(tf.shape(loc), self.scale)

    def export_outputs(self, z):
        parameters = self.likelihood_parameters(z)
        return {"mean": parameters[..., 0],
                "scale": self.scale_from(parameters, softplus=stable_softplus)}

    def reference_outputs(self, distribution):
        return {"mean": distribution.mean(), "scale": distribution.stddev()}

    def output_meanings(self):
        return {
            "mean": {"range": None,
                     "meaning": "mean pixel intensities of a Normal likelihood (not clipped)"},
            "scale": {"range": [0.0, None], "meaning": "standard deviation of each pixel"},
        }

    def count_mean_params(self):
        """All parameters but the per-pixel scale, which the mean does not use."""
        unused = getattr(self, "raw_scale", None)
        return self.count_params() - (0 if unused is None else int(np.prod(unused.shape)))

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "min_scale": self.min_scale}


def check_scale(scale):
    """A NormalDecoder scale option: a positive float or one of NORMAL_SCALES."""
    if isinstance(scale, str) and scale in NORMAL_SCALES:
        return scale
    if isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0 \
            and np.isfinite(scale):
        return float(scale)
    raise ValueError(
        f"scale must be a positive float or one of {', '.join(map(repr, NORMAL_SCALES))}; "
        f"received {scale!r}."
    )
