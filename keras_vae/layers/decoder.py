"""``ImageDecoder``: the base of every likelihood head, z -> p(x|z) over images.

A likelihood is one subclass of ``ImageDecoder`` (one module: ``bernoulli.py``,
``normal.py``, or a user's own) plus one line in the registry (``keras_vae/likelihoods.py``).
The head owns every fact about its likelihood, and the rest of the package asks it instead
of comparing names:

- ``call(z)``: the distribution p(x|z), event shape ``output_shape``, log_prob in nats
  summed over pixels (wrap per-pixel distributions with ``self._independent``).
- ``binarize``: True when its data are binarised grey levels (each pixel 1 with probability
  its intensity, Salakhutdinov & Murray 2008), drawn by ``draw_data``. The data pipeline
  asks the registry (``likelihoods.needs_binarized_data``), which holds the same fact
  without importing TensorFlow; ``likelihoods.head_class`` checks that the two agree.
- ``data_kind``: which data it takes, one of ``likelihoods.DATA_KINDS`` ("binary",
  "unit_interval", "real", "levels"); the registry's ``likelihoods.data_kind`` holds the
  same fact, checked likewise. ``binarize`` is ``data_kind == "binary"``.
- ``data_checks(x)``: the run-time value checks its data need (every head: finite values;
  Bernoulli: values in [0, 1]), run by ``VAE`` on every batch it trains or evaluates on.
- ``encoder_input_meaning()``: the range and meaning of the data as an export's encoder
  takes them (metadata.json); ``display_intensities(x)``: the data on the scale of
  ``mean()``, for pictures that show both (8-bit levels: x / 255).
- ``export_outputs(z)``: the tensors an export's ``decode`` returns, ``"mean"`` first,
  written with ops the TFLite converter lowers safely (``stable_softplus``, DESIGN.md
  trap 8; no sampling, which needs Flex ops); ``reference_outputs(p)``: the same values
  from the Keras distribution, to check the export against; ``output_meanings()``: value
  range and meaning of each, for metadata.json; ``count_mean_params()``: the parameters
  that the exported mean depends on (a file holding fewer has lost weights, trap 7).
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import networks
from keras_vae.errors import ConfigError
from keras_vae.layers.base import DistributionLayer

tfd = tfp.distributions


class ImageDecoder(DistributionLayer):
    """z -> parameters [batch, *output_shape, num_parameters] -> a distribution over images.

    The head depends on what the body gives: flat features [batch, units] get a Dense layer
    with prod(output_shape) * num_parameters outputs; a feature map whose leading axes already
    match the image, [batch, *output_shape[:-1], filters], gets a per-pixel Dense (a 1x1
    convolution) with output_shape[-1] * num_parameters outputs.

    Subclasses implement ``call``, ``export_outputs``, ``reference_outputs`` and
    ``output_meanings`` (see the module docstring), and set ``num_parameters`` (per pixel)
    and ``data_kind`` when they differ from 1 and "real" (``binarize`` follows it).
    """

    num_parameters = 1
    binarize = False
    data_kind = "real"

    def __init_subclass__(cls, **kwargs):
        # binarize and data_kind state one fact; a head may set either (binarize came first).
        super().__init_subclass__(**kwargs)
        if "data_kind" in vars(cls):
            cls.binarize = cls.data_kind == "binary"
        elif "binarize" in vars(cls) and (cls.binarize or cls.data_kind == "binary"):
            cls.data_kind = "binary" if cls.binarize else "real"

    def __init__(self, output_shape, architecture="mlp", hidden_units=None, activation="relu",
                 network=None, **kwargs):
        super().__init__(architecture, hidden_units, activation, network, **kwargs)
        self.image_shape = networks.check_image_shape(output_shape, "output_shape")
        if network is None:
            networks.check_architecture_accepts(
                self.architecture, self.image_shape, self.hidden_units)

    def _default_network(self, input_shape):
        return networks.decoder_body(
            self.architecture, self.image_shape, self.hidden_units, self.activation,
            dtype=self.dtype_policy)

    def _build_head(self, feature_shape):
        pixels = feature_shape[1:-1]
        if len(feature_shape) == 2:
            units = networks.num_elements(self.image_shape) * self.num_parameters
        elif tuple(pixels) == self.image_shape[:-1]:
            units = self.image_shape[-1] * self.num_parameters
        else:
            raise ValueError(
                f"The decoder network outputs features of shape {feature_shape[1:]}, which "
                f"cannot be mapped to images of shape {self.image_shape}: return flat features "
                f"[batch, units] or a map [batch, *{self.image_shape[:-1]}, filters]."
            )
        self.head = keras.layers.Dense(units, name="likelihood_parameters",
                                       dtype=self.dtype_policy)
        self.head.build((None, feature_shape[-1]))

    def likelihood_parameters(self, z, training=None):
        """Float32 parameters [batch, *output_shape, num_parameters] of p(x|z)."""
        parameters = self.head(self.network(z, training=training))
        shape = (keras.ops.shape(z)[0],) + self.image_shape + (self.num_parameters,)
        return tf.cast(keras.ops.reshape(parameters, shape), tf.float32)

    def _independent(self, distribution):
        """Treats every pixel as part of one event: log_prob sums over the image, in nats."""
        return tfd.Independent(distribution, reinterpreted_batch_ndims=len(self.image_shape))

    # ------------------------------------------------------------- what the head says

    def data_checks(self, x):
        """Run-time checks (``tf.debugging.Assert`` ops) of float32 data x for this head.

        Every head needs finite data: NaN or inf would otherwise give a NaN loss, not an
        error. One Assert per check: the assert_* helpers build several conds each, and graph
        construction is the slow part of a short fit.
        """
        return [tf.debugging.Assert(
            tf.reduce_all(tf.math.is_finite(x)),
            ["The VAE received NaN or inf in its input data; clean the data first."])]

    # The factor the VAE's encoder applies to this head's data (``GaussianEncoder``'s
    # input_scale), so that its network sees values of order 1: 1 for data in [0, 1].
    encoder_input_scale = 1.0

    def draw_data(self, intensities, seed):
        """Data such as this head is trained on, from grey levels in [0, 1]: binarised draws
        (``data.binarize``, stateless ``seed`` [2]) when ``binarize``, else unchanged."""
        if not self.binarize:
            return intensities
        from keras_vae.data import binarize

        return binarize(intensities, seed)

    def encoder_input_meaning(self):
        """The encoder's input x as an export takes it, for metadata.json: the data this head
        is trained on (every head but the levels ones: intensities). {"range", "meaning"} of
        the x tensor, and "preprocessing": how an app turns its pixels into x."""
        return {"range": [0.0, 1.0], "meaning": "image, uint8 pixels / 255",
                "preprocessing": "pixel intensities in [0, 1] (uint8 / 255)"}

    def display_intensities(self, x):
        """Data x on the scale of ``mean()``, the intensities in [0, 1] a picture shows, so
        that an image and its reconstruction are drawn alike: unchanged but for levels."""
        return x

    @property
    def data_preparation(self):
        """How the training data were prepared, for metadata.json; None: used as given."""
        if self.binarize:
            return "trained on binarised images (a pixel is 1 with probability intensity)"
        return None

    def export_outputs(self, z):
        """{name: float32 [batch, *output_shape]} with "mean" first, in converter-safe ops."""
        raise NotImplementedError(
            f"{type(self).__name__} does not say what an export returns: implement "
            f"export_outputs, reference_outputs and output_meanings (layers/decoder.py).")

    def reference_outputs(self, distribution):
        """The values of ``export_outputs`` computed from p(x|z) = ``self(z)``."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement reference_outputs (layers/decoder.py).")

    def output_meanings(self):
        """{name of an export output: {"range": [low, high] (None: unbounded), "meaning"}}."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement output_meanings (layers/decoder.py).")

    @classmethod
    def output_bias_for_mean(cls, mean_image):
        """The output bias float32 [pixels * num_parameters] whose p(x|z) has mean
        ``mean_image`` when the body's features are 0 (``decoder_bias="data-mean"``); heads
        without one raise a ConfigError, which a run raises before it makes any folder."""
        raise ConfigError(f"decoder_bias='data-mean' has no formula for the {cls.__name__} "
                          f"head (only likelihood='bernoulli' has one); use --decoder-bias "
                          f"zero.")

    def start_output_bias(self, mean_image):
        """Sets the flat head's output bias to ``output_bias_for_mean(mean_image)``: the
        decoder starts at the mean training image instead of at parameters 0, so the first
        epochs learn the images' differences, not their average (Burda et al.'s code)."""
        bias = np.asarray(self.output_bias_for_mean(mean_image), np.float32).reshape(-1)
        if tuple(self.head.bias.shape) != bias.shape:
            raise ConfigError(f"decoder_bias='data-mean' needs one output bias per pixel; this "
                              f"decoder's head has {self.head.bias.shape[0]} (a per-pixel head, "
                              f"as architecture='conv' has): use architecture='mlp' or "
                              f"decoder_bias='zero'.")
        self.head.bias.assign(bias)

    def count_mean_params(self):
        """Parameters the exported mean depends on: all of them unless a head says less."""
        return self.count_params()

    def get_config(self):
        return {**self._common_config(), "output_shape": list(self.image_shape)}


def unit_interval_check(x, message):
    """A run-time check (``tf.debugging.Assert``) that every value of x lies in [0, 1]."""
    return tf.debugging.Assert(
        tf.logical_and(tf.reduce_min(x) >= 0.0, tf.reduce_max(x) <= 1.0), [message])
