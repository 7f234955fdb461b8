"""metadata.json says what the exported encoder takes, as the likelihood head says it: the
integer levels 0..255 for a discrete head (which scales them itself), intensities in [0, 1]
for the others."""

import json

import numpy as np
import pytest

import keras_vae as kv
from keras_vae import export

SHAPE = (3, 3, 1)


def _tiny(likelihood):
    model = kv.VAE(SHAPE, latent_dim=2, likelihood=likelihood, hidden_units=(6,))
    model(np.zeros((1, *SHAPE), "float32"))
    return model


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("levels-metadata")
    folders = {}
    for likelihood in ("logistic", "bernoulli"):
        model = _tiny(likelihood)
        export.export_tflite(model, root / likelihood)
        folders[likelihood] = (model, root / likelihood,
                               json.loads((root / likelihood / "metadata.json").read_text()))
    return folders


def _encoder_input(metadata):
    (x,) = [entry for entry in metadata["files"]["encoder"]["inputs"] if entry["name"] == "x"]
    return x


def test_a_levels_export_describes_integer_levels_0_to_255(exports):
    model, folder, metadata = exports["logistic"]
    x = _encoder_input(metadata)
    assert x["range"] == [0.0, 255.0]
    assert "integer levels 0..255" in x["meaning"] and "[0, 1]" not in x["meaning"]
    assert "integer levels 0..255" in metadata["preprocessing"]["encoder_input"]
    assert "[0, 1]" not in metadata["preprocessing"]["encoder_input"]
    # What the metadata says is what the file wants: levels as they are give the Keras
    # model's posterior on those levels (the encoder divides by 255 itself).
    levels = np.random.default_rng(0).integers(0, 256, (4, *SHAPE)).astype("float32")
    encode = export.tflite_runner(folder / "encoder.tflite", "encode")
    np.testing.assert_allclose(encode(x=levels)["loc"], model.encode(levels).mean(),
                               atol=1e-5)
    assert not np.allclose(encode(x=levels / 255)["loc"], model.encode(levels).mean(),
                           atol=1e-3)


def test_a_bernoulli_export_still_describes_intensities_in_0_1(exports):
    _, _, metadata = exports["bernoulli"]
    x = _encoder_input(metadata)
    assert x["range"] == [0.0, 1.0]
    assert x["meaning"] == "image, uint8 pixels / 255"  # as the shipped export says
    assert metadata["preprocessing"]["encoder_input"].startswith(
        "float32 [batch, *image_shape], pixel intensities in [0, 1] (uint8 / 255); trained on "
        "binarised images")


@pytest.mark.parametrize("likelihood, top", [("logistic", 255), ("categorical", 255),
                                             ("logistic_mixture", 255),
                                             ("continuous_bernoulli", None), ("normal", None)])
def test_every_head_describes_its_encoder_input(likelihood, top):
    meaning = _tiny(likelihood).decoder.encoder_input_meaning()
    assert meaning["range"] == ([0.0, float(top)] if top else [0.0, 1.0])
