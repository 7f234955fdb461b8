"""Reconstruction pictures show the data row and the reconstruction row on one scale: a
discrete head's 8-bit levels are drawn as x / 255, as its mean is E[x] / 255 (they were
drawn as raw levels, clipped to white)."""

import numpy as np
import pytest

import keras_vae as kv
from keras_vae import figures

SHAPE = (2, 2, 1)


def _pixels(picture):
    return np.asarray(picture, np.float32) / 255


def _tiny(likelihood):
    model = kv.VAE(SHAPE, latent_dim=2, likelihood=likelihood, hidden_units=(4,))
    model(np.zeros((1, *SHAPE), "float32"))
    return model


@pytest.mark.parametrize("likelihood, scale", [("logistic", 255.0), ("categorical", 255.0),
                                               ("continuous_bernoulli", 1.0)])
def test_the_data_row_is_drawn_on_the_scale_of_the_reconstructions(likelihood, scale):
    intensities = np.array([0.0, 0.2, 0.6, 1.0], np.float32).reshape(1, *SHAPE)
    images = np.repeat(intensities, 3, axis=0) * scale  # levels 0, 51, 153, 255 for 8 bits
    model = _tiny(likelihood)
    pixels = _pixels(figures.reconstruction_grid(model, images))
    # Cells of 2x2 pixels drawn twice the size, padding 2 (4 px): the first image's pixels.
    top = pixels[4:8:2, 4:8:2]
    np.testing.assert_allclose(top.ravel(), intensities.ravel(), atol=1 / 255)
    below = pixels[4 + 8:8 + 8:2, 4:8:2]
    reconstruction = np.asarray(model.reconstruct(images))[0, ..., 0]
    np.testing.assert_allclose(below, reconstruction, atol=1 / 255)
    np.testing.assert_allclose(figures.display_intensities(model, images), images / scale)


def test_a_model_without_a_head_shows_its_data_as_given():
    images = np.full((1, *SHAPE), 0.3, np.float32)
    assert figures.display_intensities(object(), images) is images
