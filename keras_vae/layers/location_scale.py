"""``LocationScaleDecoder``: the base of the heads whose p(x|z) is a location (the mean) and a
positive scale per pixel, x ~ loc + scale * (a standard noise): Normal and Laplace.

The scale is fixed, learned once per pixel, or predicted per example, always
``softplus(raw) + min_scale`` (``positive_scale``). A subclass names its distribution
(``distribution_class``) and what its outputs mean; everything else (the scale's weights,
options, export outputs, parameter count, config) is here.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_vae.layers.base import inverse_softplus, positive_scale, stable_softplus
from keras_vae.layers.decoder import ImageDecoder

SCALES = ("per_pixel", "per_example")


class LocationScaleDecoder(ImageDecoder):
    """z -> p(x|z) = Independent(distribution_class(loc, scale), len(output_shape)).

    Data are used as given (any finite values). Exports ``mean`` (loc, which is the mean of a
    symmetric location-scale distribution) and ``scale``.

    Args:
        output_shape: shape of one image, e.g. (28, 28, 1).
        scale: a positive float (fixed for every pixel), ``"per_pixel"`` (one learned scale per
            pixel, initialised to 1) or ``"per_example"`` (predicted by the network for each
            example and pixel). Learned scales are ``softplus(.) + min_scale``.
        min_scale: floor of learned scales; without one, pixels that never vary (the
            background of MNIST) drive the scale to 0 and the log-likelihood to +inf.
        architecture, hidden_units, activation, network: as in ``GaussianEncoder``.
    """

    distribution_class = None  # a tfd location-scale family: tfd.Normal, tfd.Laplace

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
        return self._independent(self.distribution_class(
            loc=parameters[..., 0], scale=self.scale_from(parameters)))

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
        return {"mean": distribution.mean(), "scale": distribution.distribution.scale}

    def count_mean_params(self):
        """All parameters but the per-pixel scale, which the mean does not use."""
        unused = getattr(self, "raw_scale", None)
        return self.count_params() - (0 if unused is None else int(np.prod(unused.shape)))

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "min_scale": self.min_scale}


def check_scale(scale):
    """A location-scale head's scale option: a positive float or one of SCALES."""
    if isinstance(scale, str) and scale in SCALES:
        return scale
    if isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0 \
            and np.isfinite(scale):
        return float(scale)
    raise ValueError(
        f"scale must be a positive float or one of {', '.join(map(repr, SCALES))}; "
        f"received {scale!r}."
    )
