"""``LevelsDecoder``: the base of the heads over discrete levels, x in {0, 1, ..., L - 1}
(8-bit pixels: L = 256, the integers 0 .. 255 as they are, not divided by 255).

Their log_prob is a probability mass, so -log p(x) / (D ln 2) is bits per dimension on the
scale of the published 8-bit tables (PixelCNN++, NVAE). What every such head shares is here:
the number of levels, the data check (integers in 0 .. L - 1), how data are drawn for
export checks, what an export's encoder takes (the levels themselves, ``encoder_input_meaning``)
and how pictures show them (``display_intensities``: x / (L - 1), the scale of the mean).

Their distributions' ``mean()``, and so ``VAE.sample``, ``reconstruct`` and an export's
``mean``, is the expected level as an intensity, E[x] / (L - 1) in [0, 1], not E[x] in
levels: every user of a mean treats it as an image in [0, 1] (the pictures, the export's
metadata and the apps that show it), and an export's 1e-5 parity is below one float32 ulp
of values near 255 (1.5e-5). E[x] in levels is ``mean() * (L - 1)``.
"""

import tensorflow as tf

from keras_vae.layers.decoder import ImageDecoder

DEFAULT_LEVELS = 256  # 8-bit data


class LevelsDecoder(ImageDecoder):
    """A head whose data are integer levels 0 .. ``num_levels`` - 1 (see the module docstring).

    Args:
        output_shape: shape of one example, e.g. (28, 28, 1).
        num_levels: L, the number of levels of every element (256 for 8-bit pixels).
        architecture, hidden_units, activation, network: as in ``GaussianEncoder``.
    """

    data_kind = "levels"

    def __init__(self, output_shape, num_levels=DEFAULT_LEVELS, architecture="mlp",
                 hidden_units=None, activation="relu", network=None, **kwargs):
        super().__init__(output_shape, architecture, hidden_units, activation, network, **kwargs)
        if isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels < 2:
            raise ValueError(f"num_levels must be an integer of at least 2 (256 for 8-bit "
                             f"data); received {num_levels!r}.")
        self.num_levels = num_levels

    @property
    def encoder_input_scale(self):
        """1 / (L - 1): the encoder's network sees the levels as intensities in [0, 1] (on
        raw 0..255 inputs an MNIST VAE trained to 2.10 bits/dim in 5 epochs, to 1.67 on
        scaled ones)."""
        return 1.0 / (self.num_levels - 1)

    def mean_meaning(self, element="element"):
        """metadata.json's entry for the exported "mean" of every levels head: E[x] / (L - 1)."""
        return {"range": [0.0, 1.0], "meaning": f"expected level of each {element} / "
                                                f"{self.num_levels - 1} (show as intensities)"}

    def encoder_input_meaning(self):
        """The levels as they are, not intensities: the encoder scales them itself
        (``encoder_input_scale``), in the Keras model and in every export."""
        top = self.num_levels - 1
        return {"range": [0.0, float(top)],
                "meaning": f"image, integer levels 0..{top} as float32 (not divided by {top})",
                "preprocessing": f"integer levels 0..{top} (8-bit pixels as they are, not "
                                 f"divided by {top}: the encoder divides them itself)"}

    def display_intensities(self, x):
        """x / (L - 1): levels as the intensities in [0, 1] that ``mean()`` gives."""
        return x / (self.num_levels - 1)

    @property
    def likelihood_name(self):
        from keras_vae import likelihoods

        return likelihoods.name_of(self) or type(self).__name__

    def data_checks(self, x):
        """Finite, whole numbers, in 0 .. L - 1: a mass at 0.5 or at 256 is garbage."""
        top = self.num_levels - 1
        return super().data_checks(x) + [tf.debugging.Assert(
            tf.reduce_all((x == tf.round(x)) & (x >= 0.0) & (x <= top)),
            [f"The discrete likelihood '{self.likelihood_name}' needs integer data in "
             f"0..{top}; pass --binarize none with 8-bit data (uint8 pixels as they are, "
             f"not divided by 255)."])]

    def draw_data(self, intensities, seed):
        """Levels round(intensity * (L - 1)) from grey levels in [0, 1] (an exported mean)."""
        top = self.num_levels - 1
        return tf.clip_by_value(tf.round(tf.cast(intensities, tf.float32) * top), 0.0, top)

    @property
    def data_preparation(self):
        return (f"trained on integer levels 0..{self.num_levels - 1} (8-bit pixels as they "
                f"are, not divided by 255)")

    def get_config(self):
        return {**super().get_config(), "num_levels": self.num_levels}
