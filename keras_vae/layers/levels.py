"""``LevelsDecoder``: the base of the heads over discrete levels, x in {0, 1, ..., L - 1}
(8-bit pixels: L = 256, the integers 0 .. 255 as they are, not divided by 255).

Their log_prob is a probability mass, so -log p(x) / (D ln 2) is bits per dimension on the
scale of the published 8-bit tables (PixelCNN++, NVAE). What every such head shares is here:
the number of levels, the data check (integers in 0 .. L - 1), how data are drawn for export
checks, and the export's intensity scale: an exported ``mean`` is E[x] / (L - 1) in [0, 1],
the picture an app shows, whereas the distribution's ``mean()`` is E[x] in levels, on the
data's own scale.
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

    def intensities(self, levels):
        """Values in levels (E[x], ...) as intensities in [0, 1]: levels / (L - 1)."""
        return levels / (self.num_levels - 1)

    def get_config(self):
        return {**super().get_config(), "num_levels": self.num_levels}
