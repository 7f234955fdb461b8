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

    Args:
        output_shape: shape of one image, e.g. (28, 28, 1).
        scale: a positive float (fixed for every pixel), ``"per_pixel"`` (one learned scale per
            pixel, initialised to 1) or ``"per_example"`` (predicted by the network for each
            example and pixel). Learned scales are ``softplus(.) + min_scale``.
        min_scale: floor of learned scales; without one, pixels that never vary (the
            background of MNIST) drive the scale to 0 and the log-likelihood to +inf.
        architecture, hidden_units, activation, network: as in ``GaussianEncoder``.
    """

    distribution_class = tfd.Normal

    def output_meanings(self):
        return {
            "mean": {"range": None,
                     "meaning": "mean pixel intensities of a Normal likelihood (not clipped)"},
            "scale": {"range": [0.0, None], "meaning": "standard deviation of each pixel"},
        }
