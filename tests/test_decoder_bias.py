"""decoder_bias="data-mean": the Bernoulli head's output bias starts at the logits of the
mean training image (Burda et al.'s code), on fresh runs only; the default "zero" changes
nothing, and heads without the formula refuse in one line before any folder is made."""

import dataclasses
import gzip
import json

import keras
import numpy as np
import pytest

from keras_vae import data, runs, train
from keras_vae.errors import ConfigError
from keras_vae.model import VAE
from tests.helpers import idx_bytes, tiny_train_config
from tests.test_cli import assert_one_line_error, run_kvae


def _logit(p):
    return np.log(p) - np.log1p(-p)


@pytest.fixture()
def hand_made(tmp_path):
    """An IDX folder of 8 training images of 2x2 pixels: pixel 0 always 0, pixel 1 always
    255 (both clipped), pixels 2 and 3 with known means; returns (folder, its mean image of
    the first 6, the training split at validation_fraction 0.25)."""
    folder = tmp_path / "hand"
    folder.mkdir()
    images = np.zeros((8, 2, 2), np.uint8)
    images[:, 0, 1] = 255
    images[:, 1, 0] = [51, 102, 153, 204, 255, 0, 9, 9]
    images[:, 1, 1] = [255, 255, 0, 0, 0, 0, 9, 9]
    arrays = {("train", "images"): images, ("train", "labels"): np.zeros(8, np.uint8),
              ("test", "images"): images[:4], ("test", "labels"): np.zeros(4, np.uint8)}
    for key, stem in data.IDX_FILES.items():
        (folder / (stem + ".gz")).write_bytes(gzip.compress(idx_bytes(arrays[key])))
    mean = images[:6].reshape(6, 2, 2, 1).mean(axis=0) / 255.0
    return folder, mean


class _BiasAtStart(keras.callbacks.Callback):
    """Keeps the decoder's output bias as training begins (after fit's initialisation)."""

    def on_train_begin(self, logs=None):
        self.bias = np.array(self.model.decoder.head.bias.numpy())


def _fit(config, run, **options):
    start = _BiasAtStart()
    train.fit(config, run, verbose=0, callbacks=[start], **options)
    return start.bias


def test_data_mean_bias_is_the_logit_of_the_clipped_training_mean(hand_made, tmp_path):
    folder, mean = hand_made
    config = tiny_train_config(folder, decoder_bias="data-mean", validation_fraction=0.25,
                               batch_size=2, epochs=1)
    bias = _fit(config, tmp_path / "run")
    expected = _logit(np.clip(mean, 1e-3, 1 - 1e-3)).reshape(-1)
    np.testing.assert_allclose(bias, expected, rtol=1e-6)
    np.testing.assert_allclose(bias[:2], [_logit(1e-3), -_logit(1e-3)], rtol=1e-6)  # clipped
    record = json.loads((tmp_path / "run" / runs.CONFIG).read_text())
    assert record["train"]["decoder_bias"] == "data-mean"


def test_default_zero_leaves_the_bias_at_zero(hand_made, tmp_path):
    folder, _ = hand_made
    config = tiny_train_config(folder, validation_fraction=0.25, batch_size=2, epochs=1)
    assert config.decoder_bias == "zero"
    np.testing.assert_array_equal(_fit(config, tmp_path / "run"), np.zeros(4, np.float32))
    record = json.loads((tmp_path / "run" / runs.CONFIG).read_text())
    assert record["train"]["decoder_bias"] == "zero"


@pytest.mark.parametrize("model", ["vae", "hvae"])
def test_decoded_mean_at_zero_features_is_the_data_mean(model, hand_made):
    _, mean = hand_made
    config = tiny_train_config("unused", model=model, latent_dims=(3, 2) if model == "hvae"
                               else None, decoder_bias="data-mean")
    vae = train.build_model(config, (2, 2, 1))
    vae.decoder.start_output_bias(mean)
    for weight in vae.decoder.weights:  # a body and kernel of zeros: features 0
        if weight is not vae.decoder.head.bias:
            weight.assign(np.zeros(weight.shape, np.float32))
    decoded = vae.decoder(np.zeros((1, vae.latent_dim), np.float32)).mean().numpy()[0]
    np.testing.assert_allclose(decoded, np.clip(mean, 1e-3, 1 - 1e-3), rtol=1e-5)


def test_resume_keeps_the_trained_bias(hand_made, tmp_path):
    folder, mean = hand_made
    config = tiny_train_config(folder, decoder_bias="data-mean", validation_fraction=0.25,
                               batch_size=2, epochs=1, learning_rate=0.05,
                               learning_rate_schedule="constant")
    run = tmp_path / "run"
    _fit(config, run)
    trained = keras.models.load_model(run / runs.MODEL).decoder.head.bias.numpy()
    assert not np.allclose(trained, _logit(np.clip(mean, 1e-3, 1 - 1e-3)).reshape(-1))
    resumed = _fit(dataclasses.replace(config, epochs=2), run, resume=True)
    np.testing.assert_array_equal(resumed, trained)


def test_a_per_pixel_head_refuses_in_the_library():
    vae = VAE(input_shape=(4, 4, 1), latent_dim=2, architecture="conv", hidden_units=(2,))
    with pytest.raises(ConfigError, match="per-pixel head.*architecture='mlp'"):
        vae.decoder.start_output_bias(np.full((4, 4, 1), 0.5))


@pytest.mark.parametrize("options, pattern", [
    (["--architecture", "conv", "--hidden-units", "4"],
     "conv decoder's per-pixel head.*--architecture mlp"),
    (["--likelihood", "normal"], "NormalDecoder head.*--decoder-bias zero"),
])
def test_kvae_fit_refuses_heads_without_the_formula(options, pattern, idx_folder, tmp_path,
                                                    monkeypatch, capsys):
    run = tmp_path / "run"
    status, _, err = run_kvae(monkeypatch, capsys, "fit", "--dataset", "custom", "--data-dir",
                              idx_folder, "--decoder-bias", "data-mean", "--epochs", "1",
                              "--output", run, *options)
    assert_one_line_error(status, err, pattern)
    assert not run.exists() and not runs.partial_dir(run).exists()
