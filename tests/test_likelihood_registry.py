"""The likelihood registry (TF-free names and data facts) and a walk-through: a user's
Laplace decoder head written here (the library has its own, ``layers/laplace.py``),
registered here as "my_laplace", that trains, saves, reloads and exports through the library
without a change to any library file."""

import json
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras_vae as kv
from keras_vae import config, export, likelihoods
from keras_vae.layers import (ImageDecoder, inverse_softplus, positive_scale,
                              stable_softplus)

tfd = tfp.distributions
REPOSITORY = pathlib.Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- a new likelihood, in a test


@keras.saving.register_keras_serializable(package="tests")
class LaplaceDecoder(ImageDecoder):
    """z -> p(x|z) = prod_pixels Laplace(x; mu(z), b), one learned scale b per pixel.

    log p(x|z) = sum_pixels [-|x - mu| / b - log(2 b)] nats. Data are used as given.
    """

    def _build_head(self, feature_shape):
        super()._build_head(feature_shape)
        self.raw_scale = self.add_weight(
            name="raw_scale", shape=self.image_shape,
            initializer=keras.initializers.Constant(inverse_softplus(1.0)))

    def _scale(self, loc, softplus=tf.math.softplus):
        scale = positive_scale(tf.cast(self.raw_scale, tf.float32), softplus=softplus)
        return tf.broadcast_to(scale, tf.shape(loc))

    def call(self, z, training=None):
        loc = self.likelihood_parameters(z, training=training)[..., 0]
        return self._independent(tfd.Laplace(loc=loc, scale=self._scale(loc)))

    def export_outputs(self, z):
        loc = self.likelihood_parameters(z)[..., 0]
        return {"mean": loc, "scale": self._scale(loc, softplus=stable_softplus)}

    def reference_outputs(self, distribution):
        return {"mean": distribution.mean(), "scale": distribution.distribution.scale}

    def output_meanings(self):
        return {"mean": {"range": None, "meaning": "Laplace location of each pixel"},
                "scale": {"range": [0.0, None], "meaning": "Laplace scale b of each pixel"}}

    def count_mean_params(self):
        return self.count_params() - int(np.prod(self.image_shape))


@pytest.fixture()
def laplace():
    """"my_laplace" registered for one test, then removed so that other tests see the
    built-in registry only."""
    likelihoods.register("my_laplace", LaplaceDecoder)
    yield
    likelihoods.unregister("my_laplace")


def test_laplace_log_prob_matches_the_closed_form():
    decoder = LaplaceDecoder((2, 3), network=keras.layers.Identity())
    decoder.build((None, 4))
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(4, 6)).astype("float32")
    bias = rng.normal(size=6).astype("float32")
    raw = rng.normal(size=(2, 3)).astype("float32")
    decoder.head.set_weights([kernel, bias])
    decoder.raw_scale.assign(raw)
    z = rng.normal(size=(5, 4)).astype("float32")
    x = rng.normal(size=(5, 2, 3)).astype("float32")

    mu = (z @ kernel + bias).reshape(5, 2, 3).astype("float64")
    b = np.logaddexp(0.0, raw.astype("float64")) + 1e-5  # softplus + MIN_SCALE
    expected = np.sum(-np.abs(x - mu) / b - np.log(2 * b), axis=(1, 2))
    np.testing.assert_allclose(decoder(z).log_prob(x), expected, rtol=1e-5)


def test_a_new_likelihood_trains_saves_and_exports_with_its_own_metadata(laplace, tmp_path):
    x = np.random.default_rng(1).normal(2.0, 3.0, size=(64, 6, 6, 1)).astype("float32")
    model = kv.VAE((6, 6, 1), latent_dim=2, hidden_units=(8,), likelihood="my_laplace")
    assert isinstance(model.decoder, LaplaceDecoder) and model.likelihood == "my_laplace"
    before = model.decoder.raw_scale.numpy().copy()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    # Data far outside [0, 1]: the Laplace head checks finiteness only, as it says.
    history = model.fit(x, batch_size=32, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    assert not np.allclose(model.decoder.raw_scale.numpy(), before)  # the step trained it

    model.save(tmp_path / "laplace.keras")
    loaded = keras.models.load_model(tmp_path / "laplace.keras")
    assert isinstance(loaded.decoder, LaplaceDecoder) and loaded.likelihood == "my_laplace"
    z = np.random.default_rng(2).standard_normal((4, 2)).astype("float32")
    np.testing.assert_array_equal(loaded.decode(z).log_prob(x[:4]),
                                  model.decode(z).log_prob(x[:4]))

    report = export.export_saved_model(loaded, tmp_path / "saved_model")
    assert max(report["max_abs_difference"]["decode"].values()) <= 1e-5
    decode = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["decode"]
    outputs = decode(z=tf.constant(z))
    assert sorted(outputs) == ["mean", "scale"]
    np.testing.assert_allclose(outputs["scale"], model.decode(z).distribution.scale,
                               rtol=1e-6)

    metadata = export.export_tflite(loaded, tmp_path / "tflite")
    assert metadata["likelihood"] == "my_laplace"
    (mean,) = metadata["files"]["decoder"]["outputs"]
    assert (mean["name"], mean["range"], mean["meaning"]) == (
        "mean", None, "Laplace location of each pixel")
    assert "binarised" not in metadata["preprocessing"]["encoder_input"]
    runner = export.tflite_runner(tmp_path / "tflite" / "decoder.tflite", "decode")
    np.testing.assert_allclose(runner(z=z)["mean"], model.decode(z).mean(), atol=1e-5)


def test_an_unregistered_head_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"LaplaceDecoder, is a likelihood head that is not "
                                         r"registered; register it first"):
        kv.VAE((6, 6, 1), latent_dim=2, decoder=LaplaceDecoder((6, 6, 1), hidden_units=(8,)))
    with pytest.raises(ValueError, match="Unknown likelihood 'my_laplace': expected one of "
                                         "'bernoulli', 'normal', 'continuous_bernoulli'"):
        kv.VAE((6, 6, 1), latent_dim=2, likelihood="my_laplace")


# ---------------------------------------------------------------- the registry


BUILT_IN_DATA = {"bernoulli": "binary", "normal": "real", "continuous_bernoulli": "unit_interval",
                 "laplace": "real", "logistic": "levels", "logistic_mixture": "levels",
                 "categorical": "levels"}


def test_registry_knows_the_built_in_heads_and_their_data():
    assert config.LIKELIHOODS == likelihoods.names() == tuple(BUILT_IN_DATA)
    assert {name: likelihoods.data_kind(name) for name in likelihoods.names()} == BUILT_IN_DATA
    assert likelihoods.needs_binarized_data("bernoulli")
    assert not any(likelihoods.needs_binarized_data(name) for name in BUILT_IN_DATA
                   if name != "bernoulli")
    # The TF-free fact and the head's own agree (head_class refuses a disagreement).
    for name in likelihoods.names():
        assert likelihoods.head_class(name).binarize == likelihoods.needs_binarized_data(name)
    assert likelihoods.HEADS["normal"] is kv.NormalDecoder and "my_laplace" not in likelihoods.HEADS
    assert likelihoods.name_of(kv.BernoulliDecoder((4,))) == "bernoulli"


def test_data_kind_is_a_registry_fact_that_the_head_repeats(laplace):
    assert likelihoods.data_kind("bernoulli") == "binary"
    assert likelihoods.data_kind("normal") == "real"
    assert likelihoods.data_kind("my_laplace") == "real"  # from the class: ImageDecoder's
    for name in likelihoods.names():
        assert likelihoods.data_kind(name) in likelihoods.DATA_KINDS
        assert likelihoods.head_class(name).data_kind == likelihoods.data_kind(name)
        assert likelihoods.needs_binarized_data(name) == (likelihoods.data_kind(name) == "binary")
    # binarize and data say one thing: either implies the other, a contradiction is refused.
    assert likelihoods.register("pixels", LaplaceDecoder, binarize=True, replace=True).data \
        == "binary"
    assert likelihoods.register("pixels", "a:B", data="binary", replace=True).binarize
    with pytest.raises(ValueError, match="binarize=False contradicts data='binary'"):
        likelihoods.register("pixels", "a:B", binarize=False, data="binary", replace=True)
    with pytest.raises(ValueError, match="Unknown data 'grey'"):
        likelihoods.register("pixels", "a:B", data="grey", replace=True)
    likelihoods.register("pixels", "tests.test_likelihood_registry:LaplaceDecoder",
                         data="levels", replace=True)
    with pytest.raises(ValueError, match="registered with data='levels' but its head "
                                         "LaplaceDecoder says data_kind='real'"):
        likelihoods.head_class("pixels")
    likelihoods.unregister("pixels")
    # A head class states its data; one that sets only the older binarize gets "binary".
    assert type("Levels", (LaplaceDecoder,), {"data_kind": "levels"}).binarize is False
    assert type("Binary", (LaplaceDecoder,), {"binarize": True}).data_kind == "binary"


def test_registry_refuses_what_cannot_work():
    with pytest.raises(ValueError, match="Unknown likelihood 'poisson': expected one of "
                                         "'bernoulli', 'normal', 'continuous_bernoulli'"):
        likelihoods.needs_binarized_data("poisson")
    with pytest.raises(ValueError, match="'normal' is already registered .* replace=True"):
        likelihoods.register("normal", LaplaceDecoder)
    with pytest.raises(ValueError, match="head must be a class or 'module:ClassName'"):
        likelihoods.register("my_laplace", "tests.test_likelihood_registry.LaplaceDecoder")
    assert "my_laplace" not in likelihoods.names()


@pytest.mark.parametrize("head, binarize, message", [
    ("tests.test_likelihood_registry:Missing", None, "cannot be imported"),
    ("tests.test_likelihood_registry:LaplaceDecoder", True,
     "registered with binarize=True but its head LaplaceDecoder says binarize=False"),
])
def test_a_wrong_registration_fails_when_the_head_is_first_needed(head, binarize, message):
    likelihoods.register("my_laplace", head, binarize=binarize)
    try:
        assert likelihoods.needs_binarized_data("my_laplace") is bool(binarize)  # no import
        with pytest.raises(ValueError, match=message):
            kv.VAE((6, 6, 1), latent_dim=2, likelihood="my_laplace")
    finally:
        likelihoods.unregister("my_laplace")


def test_a_head_registered_by_path_is_imported_when_a_model_needs_it():
    likelihoods.register("my_laplace", "tests.test_likelihood_registry:LaplaceDecoder")
    try:
        model = kv.VAE((6, 6, 1), latent_dim=2, hidden_units=(8,), likelihood="my_laplace")
        assert type(model.decoder) is LaplaceDecoder
    finally:
        likelihoods.unregister("my_laplace")


NO_TENSORFLOW = textwrap.dedent("""
    import sys, types
    # Only these modules, not keras_vae/__init__.py (whose imports are another matter).
    package = types.ModuleType("keras_vae")
    package.__path__ = [sys.argv[1]]
    sys.modules["keras_vae"] = package
    from keras_vae import config, likelihoods
    assert likelihoods.needs_binarized_data("bernoulli") and config.LIKELIHOODS
    assert likelihoods.data_kind("normal") == "real"
    assert likelihoods.data_kind("logistic") == "levels"
    assert "8-bit" in likelihoods.bits_per_dim_meaning("logistic")
    print(sorted(name for name in ("tensorflow", "keras") if name in sys.modules))
""")


def test_the_registry_and_config_import_no_tensorflow():
    process = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, str(REPOSITORY / "keras_vae")],
        capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr[-2000:]
    assert json.loads(process.stdout.strip().replace("'", '"')) == []
