"""The Laplace likelihood: z -> p(x|z) = Independent(Laplace(loc, b), rank of the image), the
proper density behind an "L1 loss", heavier-tailed and so more robust to outlying pixels than
the Normal; registered as ``"laplace"``."""

import keras
import tensorflow_probability as tfp

from keras_vae.layers.location_scale import LocationScaleDecoder

tfd = tfp.distributions


@keras.saving.register_keras_serializable(package="keras_vae")
class LaplaceDecoder(LocationScaleDecoder):
    """z -> p(x|z) = Independent(Laplace(loc, b), len(output_shape)); any real data.

    log p(x|z) = sum_pixels [-|x - loc| / b - log(2 b)] nats: with a fixed b, the L1 error
    divided by b plus a constant. The mean (and median) is loc, the standard deviation
    sqrt(2) b. Exports ``mean`` (loc) and ``scale`` (b). Scale options as ``NormalDecoder``:
    a fixed b, one learned per pixel, or predicted per example, ``softplus(.) + min_scale``.
    """

    distribution_class = tfd.Laplace

    def output_meanings(self):
        return {
            "mean": {"range": None,
                     "meaning": "mean (and median) pixel values of a Laplace likelihood, its "
                                "location (not clipped)"},
            "scale": {"range": [0.0, None],
                      "meaning": "Laplace scale b of each pixel (standard deviation sqrt(2) b)"},
        }
