"""Every built-in likelihood head beyond Bernoulli and Normal through the library: a
training step, .keras round trip, SavedModel and TFLite parity, metadata, its data check,
the encoder's input scale, and what evaluation's bits per dimension mean. (Their formulas:
tests/test_likelihood_closed_forms.py.)"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import evaluation, export, likelihoods
from keras_vae.layers import CategoricalDecoder, LogisticDecoder

HEADS = {  # name -> (head options, data maker)
    "continuous_bernoulli": ({}, lambda rng, shape: rng.random(shape)),
    "laplace": ({"scale": "per_example"}, lambda rng, shape: rng.normal(0.5, 2.0, shape)),
    "logistic": ({}, lambda rng, shape: rng.integers(0, 256, shape)),
    "logistic_mixture": ({"num_components": 3}, lambda rng, shape: rng.integers(0, 256, shape)),
    "categorical": ({"num_levels": 7}, lambda rng, shape: rng.integers(0, 7, shape)),
}
SHAPE = (5, 5, 1)


def _model(name):
    options, _ = HEADS[name]
    decoder = likelihoods.head_class(name)(SHAPE, hidden_units=(8,), **options)
    return kv.VAE(SHAPE, latent_dim=2, hidden_units=(8,), likelihood=name, decoder=decoder)


def _data(name, num, seed=0):
    return HEADS[name][1](np.random.default_rng(seed), (num, *SHAPE)).astype("float32")


@pytest.mark.parametrize("name", list(HEADS))
def test_each_head_trains_round_trips_exports_and_says_what_it_exports(name, tmp_path):
    keras.utils.set_random_seed(0)
    model, x = _model(name), _data(name, 32)
    assert model.likelihood == name and likelihoods.name_of(model.decoder) == name
    before = [weight.numpy().copy() for weight in model.decoder.head.weights]
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, batch_size=16, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    assert not all(np.allclose(a, b.numpy()) for a, b in zip(before, model.decoder.head.weights))

    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded.decoder) is type(model.decoder)
    assert loaded.decoder.get_config() == model.decoder.get_config()
    z = np.random.default_rng(1).standard_normal((4, 2)).astype("float32")
    np.testing.assert_array_equal(loaded.decode(z).log_prob(x[:4]),
                                  model.decode(z).log_prob(x[:4]))
    np.testing.assert_array_equal(loaded.decode(z).mean(), model.decode(z).mean())

    # Exports check their own parity (1e-5) and refuse to write otherwise.
    report = export.export_saved_model(loaded, tmp_path / "saved_model")
    assert max(report["max_abs_difference"]["decode"].values()) <= 1e-5
    decode = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["decode"]
    outputs = decode(z=tf.constant(z))
    reference = model.decoder.reference_outputs(model.decode(z))
    assert sorted(outputs) == sorted(model.decoder.output_meanings()) == sorted(reference)
    for output, value in reference.items():
        np.testing.assert_allclose(outputs[output], value, atol=1e-5)

    metadata = export.export_tflite(loaded, tmp_path / "tflite")
    assert metadata["likelihood"] == name
    (mean,) = metadata["files"]["decoder"]["outputs"]
    assert mean["name"] == "mean" and mean["meaning"] == \
        model.decoder.output_meanings()["mean"]["meaning"]
    runner = export.tflite_runner(tmp_path / "tflite" / "decoder.tflite", "decode")
    np.testing.assert_allclose(runner(z=z)["mean"], reference["mean"], atol=1e-5)


@pytest.mark.parametrize("name, values, message", [
    ("logistic", [0.0, 0.5],
     r"The discrete likelihood 'logistic' needs integer data in 0\.\.255; pass --binarize "
     r"none with 8-bit data"),
    ("logistic_mixture", [0.0, 256.0], r"'logistic_mixture' needs integer data in 0\.\.255"),
    ("categorical", [-1.0, 3.0], r"'categorical' needs integer data in 0\.\.255"),
    ("continuous_bernoulli", [0.0, 1.5], r"needs grey levels in \[0, 1\]; divide uint8"),
    ("continuous_bernoulli", [-0.1, 1.0], r"needs grey levels in \[0, 1\]"),
    ("laplace", [0.0, np.inf], "NaN or inf in its input data"),
])
def test_bad_data_give_one_clear_message(name, values, message):
    decoder = likelihoods.head_class(name)((2,))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        decoder.data_checks(tf.constant(values, tf.float32))


def test_grey_levels_in_a_discrete_model_fail_in_fit_with_the_fix():
    model = _model("logistic")
    model.compile(optimizer="adam")
    with pytest.raises(tf.errors.InvalidArgumentError, match="needs integer data in 0..255"):
        model.fit(_data("logistic", 8) / 255.0, epochs=1, verbose=0)


def test_levels_heads_draw_levels_from_an_exported_mean():
    drawn = LogisticDecoder((3,)).draw_data(tf.constant([[0.0, 0.5, 1.0]]), [0, 0])
    np.testing.assert_array_equal(drawn, [[0.0, 128.0, 255.0]])
    assert "integer levels 0..6" in CategoricalDecoder((3,), num_levels=7).data_preparation


# ---------------------------------------------------------------- bits per dimension


def test_evaluation_says_what_bits_per_dimension_mean():
    model, x = _model("logistic"), _data("logistic", 20)
    metrics, _ = evaluation.evaluate(model, x, batch_size=10)
    assert metrics["bits_per_dim_meaning"] == likelihoods.bits_per_dim_meaning("logistic")
    assert "8-bit tables" in metrics["bits_per_dim_meaning"]
    np.testing.assert_allclose(metrics["bits_per_dim"],
                               -metrics["elbo"] / (np.prod(SHAPE) * np.log(2)), rtol=1e-12)
    assert "add 8" in likelihoods.bits_per_dim_meaning("continuous_bernoulli")
    assert "not comparable" in likelihoods.bits_per_dim_meaning("laplace")


def test_the_encoder_sees_8_bit_levels_as_intensities(tmp_path):
    # On raw 0..255 inputs the first layer's activations are 255 times too large (an MNIST VAE
    # trained to 2.10 bits/dim in 5 epochs instead of 1.67), and the exported encoder's
    # outputs too large for the 1e-5 parity of float32.
    model, x = _model("logistic"), _data("logistic", 4)
    assert model.encoder.input_scale == pytest.approx(1 / 255)
    assert _model("categorical").encoder.input_scale == pytest.approx(1 / 6)
    assert _model("laplace").encoder.input_scale == 1.0  # data used as given
    same_network = kv.GaussianEncoder(2, hidden_units=(8,))
    same_network.build((None, *SHAPE))
    same_network.set_weights(model.encoder.get_weights())
    np.testing.assert_allclose(model.encode(x).mean(), same_network(x / 255).mean(), rtol=1e-6)
    model.save(tmp_path / "model.keras")
    assert keras.models.load_model(tmp_path / "model.keras").encoder.input_scale == \
        model.encoder.input_scale
    with pytest.raises(ValueError, match="input_scale must be a positive number"):
        kv.GaussianEncoder(2, input_scale=0)


def test_importance_sampling_chunks_shrink_with_the_heads_outputs(monkeypatch):
    # A categorical over 256 levels decodes 256 numbers per pixel: a Bernoulli-sized chunk of
    # 20,000 decoder rows would need 16 GB for MNIST. The chunk shrinks by the outputs per
    # value, and the estimate does not depend on the chunk (stateless seeds per draw).
    monkeypatch.setattr(evaluation, "DECODER_ROWS_PER_CHUNK", 700)
    model, x = _model("categorical"), _data("categorical", 10)  # 7 outputs per value
    chunks = []
    original = model.log_importance_weights

    def recording(x, num_samples, seed):
        chunks.append(num_samples)
        return original(x, num_samples, seed)

    monkeypatch.setattr(model, "log_importance_weights", recording)
    estimate = evaluation.log_likelihood(model, x, num_samples=20, batch_size=10)
    assert chunks == [700 // (10 * 7)]
    np.testing.assert_allclose(estimate, evaluation.log_likelihood(
        model, x, num_samples=20, batch_size=10, chunk_size=20), rtol=1e-6)


def _check_in_a_graph(decoder, values):
    """Runs the head's data checks inside a tf.function, as training does; returns the error."""

    @tf.function
    def checked(x):
        with tf.control_dependencies(decoder.data_checks(x)):
            return tf.identity(x)

    with pytest.raises(tf.errors.InvalidArgumentError) as failure:
        checked(tf.constant(values, tf.float32))
    return failure.value


def test_the_cli_shows_a_failed_data_check_as_its_own_message():
    # In a graph a failed tf.debugging.Assert says "Graph execution error:" first; kvae's one
    # line is the check's message instead, quotes unescaped.
    from keras_vae.cli.main import _first_line

    error = _check_in_a_graph(LogisticDecoder((2,)), [0.0, 0.5])
    assert _first_line(error) == (
        "The discrete likelihood 'logistic' needs integer data in 0..255; pass --binarize "
        "none with 8-bit data (uint8 pixels as they are, not divided by 255).")
    error = _check_in_a_graph(likelihoods.head_class("continuous_bernoulli")((2,)), [0.0, 2.0])
    assert _first_line(error).startswith(
        "likelihood='continuous_bernoulli' needs grey levels in [0, 1]; divide uint8")
