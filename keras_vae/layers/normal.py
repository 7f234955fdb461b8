"""The Normal likelihood: z -> p(x|z) = Independent(Normal(loc, scale), rank of the image),
with the scale fixed, learned once per pixel, or predicted per example; registered as
``"normal"``. Its ``log_prob`` carries the normalising constant, so negative ELBOs in nats
are comparable across scales (unlike an "MSE loss")."""

import keras
import tensorflow_probability as tfp

from keras_vae.layers.location_scale import SCALES as NORMAL_SCALES  # noqa: F401
from keras_vae.layers.location_scale import LocationScaleDecoder, check_scale  # noqa: F401

tfd = tfp.distributions


@keras.saving.register_keras_serializable(package="keras_vae")
class NormalDecoder(LocationScaleDecoder):
    """z -> p(x|z) = Independent(Normal(loc, scale), len(output_shape)).

    log p(x|z) = -0.5 sum ((x - loc) / scale)^2 - sum log scale - d/2 log(2 pi) nats, d pixels.
    With a fixed scale this is the scaled mean squared error plus a constant; keeping the
    constant makes the ELBO a real log-density bound. Data are used as given (any finite
    values). Exports ``mean`` (loc) and ``scale`` (the standard deviation of each pixel).

    Args: as ``LocationScaleDecoder`` (output_shape; scale: a positive float, "per_pixel"
    (default) or "per_example"; min_scale; architecture, hidden_units, activation, network).
    """

    distribution_class = tfd.Normal

    def output_meanings(self):
        return {
            "mean": {"range": None,
                     "meaning": "mean pixel intensities of a Normal likelihood (not clipped)"},
            "scale": {"range": [0.0, None], "meaning": "standard deviation of each pixel"},
        }
