"""Figures of a model: the pictures ``kvae sample``, ``reconstruct``, ``interpolate`` and
``latent-plot`` write.

Two levels. The figure functions take a model and data and return a PIL image or an array;
they use only the model protocol (``sample``, ``encode``, ``decode``, ``reconstruct``) and
leave the pixels to ``plots.py``. The ``write_*`` functions are what a command calls: they
load a run, choose its test images (``runs.test_images``), compute the figure and write the PNG
atomically, creating missing folders (``plots.save_png``), and return what they wrote.
"""

import dataclasses
import pathlib

import numpy as np

from keras_vae import plots

# ------------------------------------------------------------------ figures of a model


def sample_grid(model, num, seed):
    """Means of p(x|z) for ``num`` draws z ~ p(z) (seeded), as a square-ish grid."""
    return plots.image_grid(np.asarray(model.sample(num, seed=seed)))


def reconstruction_grid(model, images):
    """``images`` [N, ...] in the top row, the means of p(x|z = E_q[z|x]) below them."""
    images = np.asarray(images, np.float32)
    pairs = np.concatenate([images, np.asarray(model.reconstruct(images))])
    return plots.image_grid(pairs, num_columns=len(images))


def interpolation_grid(model, images, steps, pairs, seed):
    """One row per pair of test images chosen at random (``seed``): the means of p(x|z) at
    ``steps`` evenly spaced points z on the segment between the posterior means
    E_q[z|x_a] and E_q[z|x_b], both ends included."""
    images = np.asarray(images, np.float32)
    chosen = np.random.default_rng(seed).choice(len(images), size=2 * pairs,
                                                replace=len(images) < 2 * pairs)
    means = np.asarray(model.encode(images[chosen]).mean())
    rows = [interpolation_points(means[2 * i], means[2 * i + 1], steps)
            for i in range(pairs)]
    decoded = model.decode(np.concatenate(rows).astype(np.float32)).mean()
    return plots.image_grid(np.asarray(decoded), num_columns=steps)


def interpolation_points(start, end, num_steps):
    """``num_steps`` evenly spaced points from ``start`` to ``end`` (both included):
    (1 - t) start + t end for t = 0, 1/(num_steps - 1), ..., 1."""
    weights = np.linspace(0.0, 1.0, num_steps)[:, None]
    return (1 - weights) * np.asarray(start)[None] + weights * np.asarray(end)[None]


def principal_components(points, num_components=2):
    """Projection of points [N, D] on their first principal components [N, num_components]:
    the centred points times the top right-singular vectors of the centred matrix."""
    centred = points - points.mean(axis=0)
    _, _, directions = np.linalg.svd(centred, full_matrices=False)
    return centred @ directions[:num_components].T


def latent_points(model, images):
    """[N, 2] points to plot for ``images``: their posterior means E_q[z|x], projected on
    their first two principal components when the latent space has more than two
    dimensions, and drawn on a line (second coordinate 0) when it has one."""
    means = np.asarray(model.encode(np.asarray(images, np.float32)).mean())
    if means.shape[1] == 1:
        return np.concatenate([means, np.zeros_like(means)], axis=1)
    if means.shape[1] == 2:
        return means
    return principal_components(means)


def latent_plot(model, images, labels=None):
    """A scatter plot of ``latent_points``, coloured by label when labels are given."""
    return plots.latent_scatter(latent_points(model, images), labels)


# ------------------------------------------------------------------ one call per command


@dataclasses.dataclass
class Written:
    """What a ``write_*`` function wrote: the PNG, the number of images or points it shows,
    and, when the test images came from the run's own test_examples.npz, that file and the
    number of images it holds."""

    path: pathlib.Path
    count: int
    shipped_test_images: pathlib.Path | None = None
    num_test_images: int | None = None


def write_samples(run, out, num, seed):
    """``sample_grid`` of RUN (a run folder or a .keras file) as the PNG ``out``."""
    from keras_vae import runs

    picture = sample_grid(runs.load_run(run).model, num, seed)
    return Written(plots.save_png(picture, out), num)


def write_reconstructions(run, out, num, dataset=None, data_dir=None):
    """``reconstruction_grid`` of RUN's first ``num`` test images as the PNG ``out``."""
    return _write_with_test_images(run, out, dataset, data_dir, lambda model, images, _: (
        reconstruction_grid(model, images[:num]), len(images[:num])))


def write_interpolations(run, out, steps, pairs, seed, dataset=None, data_dir=None):
    """``interpolation_grid`` of RUN's test images as the PNG ``out``; count: the pairs."""
    return _write_with_test_images(run, out, dataset, data_dir, lambda model, images, _: (
        interpolation_grid(model, images, steps, pairs, seed), pairs))


def write_latent_plot(run, out, num, dataset=None, data_dir=None):
    """``latent_plot`` of RUN's first ``num`` test images as the PNG ``out``."""
    return _write_with_test_images(run, out, dataset, data_dir, lambda model, images, labels: (
        latent_plot(model, images[:num], None if labels is None else np.asarray(labels)[:num]),
        len(images[:num])))


def _write_with_test_images(run, out, dataset, data_dir, draw):
    """Loads RUN and its test images, ``draw(model, images, labels)`` -> (picture, count),
    and writes the picture: the PNG only once the figure is complete."""
    from keras_vae import runs

    loaded = runs.load_run(run)
    images, labels, shipped = runs.test_images(loaded, dataset, data_dir)
    picture, count = draw(loaded.model, images, labels)
    return Written(plots.save_png(picture, out), count, shipped,
                   None if shipped is None else len(images))
