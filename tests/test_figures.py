"""Figures of a model (keras_vae/figures.py), from a stand-in model whose posterior means and
decoded means are known exactly, and PNG files written atomically (plots.save_png)."""

import types

import numpy as np
import pytest
from PIL import Image

from keras_vae import figures, plots
from keras_vae.errors import ConfigError


class _Distribution:
    def __init__(self, mean):
        self._mean = np.asarray(mean, np.float32)

    def mean(self):
        return self._mean


class LinearModel:
    """A stand-in for the model protocol: E_q[z|x] = the first D pixels of x; the decoded
    mean of z is z[0] in every pixel of a 2x2 image; samples are all 0.5."""

    def __init__(self, latent_dim):
        self.latent_dim = latent_dim

    def encode(self, x):
        return _Distribution(np.asarray(x).reshape(len(x), -1)[:, :self.latent_dim])

    def decode(self, z):
        z = np.asarray(z)
        return _Distribution(np.broadcast_to(z[:, :1, None, None], (len(z), 2, 2, 1)))

    def reconstruct(self, x):
        return self.decode(self.encode(x).mean()).mean()

    def sample(self, num, seed=None):
        return np.full((num, 2, 2, 1), 0.5, np.float32)


def _pixels(picture):
    return np.asarray(picture, np.float32) / 255


def test_interpolation_points_are_evenly_spaced_with_both_ends():
    points = figures.interpolation_points([0.0, 2.0], [1.0, -2.0], 5)
    np.testing.assert_allclose(points, [[0, 2], [0.25, 1], [0.5, 0], [0.75, -1], [1, -2]])


def test_principal_components_of_points_on_a_line():
    """Points t (3, 4, 0) + c: all their variance lies along (3, 4, 0)/5, so the first
    component is 5 (t - mean t) up to sign and the second is 0."""
    t = np.linspace(-1, 2, 7)
    points = t[:, None] * np.array([3.0, 4.0, 0.0]) + np.array([1.0, -1.0, 7.0])
    projected = figures.principal_components(points)
    np.testing.assert_allclose(np.abs(projected[:, 0]), np.abs(5 * (t - t.mean())), atol=1e-9)
    np.testing.assert_allclose(projected[:, 1], 0, atol=1e-9)


@pytest.mark.parametrize("latent_dim", [1, 2, 3])
def test_latent_points_are_the_posterior_means_in_two_dimensions(latent_dim):
    images = np.random.default_rng(0).random((6, 2, 2, 1))
    points = figures.latent_points(LinearModel(latent_dim), images)
    means = images.reshape(6, -1)[:, :latent_dim]
    assert points.shape == (6, 2)
    if latent_dim == 1:
        np.testing.assert_allclose(points, np.c_[means, np.zeros(6)], rtol=1e-6)
    elif latent_dim == 2:
        np.testing.assert_allclose(points, means, rtol=1e-6)
    else:
        np.testing.assert_allclose(points, figures.principal_components(means), atol=1e-6)


def test_interpolation_grid_rows_run_from_one_image_to_the_other():
    """The stand-in decodes z to z[0] everywhere: row i goes linearly from the first pixel of
    one chosen image to that of the other."""
    images = np.linspace(0, 1, 10)[:, None, None, None] * np.ones((10, 2, 2, 1))
    picture = figures.interpolation_grid(LinearModel(2), images, steps=3, pairs=2, seed=0)
    chosen = np.random.default_rng(0).choice(10, size=4, replace=False)
    cell = 2 * (2 + 2)  # scale 2 of (2-pixel images plus 2 of padding)
    pixels = _pixels(picture)
    for row in range(2):
        start, end = images[chosen[2 * row], 0, 0, 0], images[chosen[2 * row + 1], 0, 0, 0]
        for step, weight in enumerate([0, 0.5, 1]):
            top, left = 4 + row * cell, 4 + step * cell  # padding 2, scaled by 2
            np.testing.assert_allclose(pixels[top, left], (1 - weight) * start + weight * end,
                                       atol=1 / 255)


def test_reconstruction_grid_puts_images_above_their_reconstructions():
    images = np.full((3, 2, 2, 1), 0.2, np.float32)
    images[:, 0, 0, 0] = [0.0, 0.4, 1.0]  # first pixel: the stand-in's z[0]
    pixels = _pixels(figures.reconstruction_grid(LinearModel(1), images))
    assert pixels.shape == ((2 * 4 + 2) * 2, (3 * 4 + 2) * 2)
    for column, value in enumerate([0.0, 0.4, 1.0]):
        left = 4 + column * 8
        np.testing.assert_allclose(pixels[4, left], value, atol=1 / 255)  # the image
        np.testing.assert_allclose(pixels[4 + 8 + 2, left + 2], value, atol=1 / 255)  # recon.


def test_sample_grid_is_square_ish():
    picture = figures.sample_grid(LinearModel(2), 5, seed=0)
    assert picture.size == ((3 * 4 + 2) * 2, (2 * 4 + 2) * 2)  # 3 columns, 2 rows


def test_save_png_replaces_atomically_and_keeps_the_old_file_on_failure(tmp_path,
                                                                         monkeypatch):
    path = tmp_path / "a" / "b" / "figure.png"
    plots.save_png(Image.new("L", (3, 2), 255), path)
    assert Image.open(path).size == (3, 2)
    old = path.read_bytes()

    broken = types.SimpleNamespace(save=lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        plots.save_png(broken, path)
    assert path.read_bytes() == old and sorted(p.name for p in path.parent.iterdir()) == [
        "figure.png"]

    plots.save_png(Image.new("L", (5, 4), 0), path)
    assert Image.open(path).size == (5, 4)
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        plots.save_png(Image.new("L", (1, 1)), path / "inside.png")
