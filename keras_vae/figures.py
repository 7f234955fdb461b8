"""Figures of a model: the pictures ``kvae sample``, ``reconstruct``, ``interpolate``,
``latent-plot``, ``traverse``, ``training-plot`` and ``rate-distortion`` write.

Two levels. The figure functions take a model and data and return a PIL image, a matplotlib
figure or an array; they use only the model protocol (``sample``, ``reconstruct``,
``latent_diagnostics`` for the posterior means of a layer, ``decode_layer`` or ``decode``), so
a hierarchy is pictured layer by layer (``--layer``), and leave the pixels to ``plots.py``.
Image grids
are here; the latent space is pictured in ``figures_latent`` and ``figures_traversal``,
training and the rate-distortion plane in ``figures_training``. The ``write_*`` functions are
what a command calls: they load a run, choose its test images (``runs.test_images``),
compute the figure and write the PNG atomically, creating missing folders
(``plots.save_png``), and return what they wrote.
"""

import dataclasses
import pathlib

import numpy as np

from keras_vae import figures_latent, plots
from keras_vae.errors import RunError

# ------------------------------------------------------------------ figures of a model


def sample_grid(model, num, seed):
    """Means of p(x|z) for ``num`` draws z ~ p(z) (seeded), as a square-ish grid."""
    return plots.image_grid(np.asarray(model.sample(num, seed=seed)))


def reconstruction_grid(model, images):
    """``images`` [N, ...] in the top row, the means of p(x|z = E_q[z|x]) below them, both
    on the means' scale (``display_intensities``)."""
    images = np.asarray(images, np.float32)
    pairs = np.concatenate([display_intensities(model, images),
                            np.asarray(model.reconstruct(images))])
    return plots.image_grid(pairs, num_columns=len(images))


def display_intensities(model, images):
    """The data ``images`` on the scale of the model's means, as a picture shows them: the
    likelihood head says how (8-bit levels: x / 255, as its mean is E[x] / 255); a model
    without a ``decoder`` head that says it shows its data as they are."""
    convert = getattr(getattr(model, "decoder", None), "display_intensities", None)
    return images if convert is None else np.asarray(convert(images), np.float32)


def interpolation_grid(model, images, steps, pairs, seed, layer=None):
    """One row per pair of test images chosen at random (``seed``): the means of p(x|z) at
    ``steps`` evenly spaced points z on the segment between the posterior means
    E_q[z|x_a] and E_q[z|x_b] of ``layer`` (default: the one next to the data), both ends
    included; a higher layer of a hierarchy is decoded with the layers below it at their
    conditional means (``figures_latent.decoded_means``)."""
    images = np.asarray(images, np.float32)
    chosen = np.random.default_rng(seed).choice(len(images), size=2 * pairs,
                                                replace=len(images) < 2 * pairs)
    summary = figures_latent.summarise_latents(model, images[chosen], layer)
    rows = [interpolation_points(summary.means[2 * i], summary.means[2 * i + 1], steps)
            for i in range(pairs)]
    decoded = figures_latent.decoded_means(model, np.concatenate(rows), summary.layer)
    return plots.image_grid(decoded, num_columns=steps)


def interpolation_points(start, end, num_steps):
    """``num_steps`` evenly spaced points from ``start`` to ``end`` (both included):
    (1 - t) start + t end for t = 0, 1/(num_steps - 1), ..., 1."""
    weights = np.linspace(0.0, 1.0, num_steps)[:, None]
    return (1 - weights) * np.asarray(start)[None] + weights * np.asarray(end)[None]


def principal_components(points, num_components=2):
    """Projection of points [N, D] on their first principal components [N, num_components]
    (``figures_latent.principal_components`` without the variance shares)."""
    return figures_latent.principal_components(points, num_components)[0]


def latent_points(model, images, layer=None):
    """[N, 2] points to plot for ``images``: their posterior means E_q[z|x] of ``layer``
    (default: the one next to the data), projected on their first two principal components
    when the layer has more than two dimensions, and drawn on a line (second coordinate 0)
    when it has one."""
    return figures_latent.project(figures_latent.summarise_latents(model, images, layer)).points


def latent_plot(model, images, labels=None, projection=None):
    """The matplotlib figure of ``figures_latent.latent_picture``."""
    return figures_latent.latent_picture(model, images, labels, projection).figure


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


def write_interpolations(run, out, steps, pairs, seed, dataset=None, data_dir=None,
                         layer=None):
    """``interpolation_grid`` of RUN's test images as the PNG ``out``; count: the pairs."""
    return _write_with_test_images(run, out, dataset, data_dir, lambda model, images, _: (
        interpolation_grid(model, images, steps, pairs, seed, layer), pairs))


def write_latent_plot(run, out, num, dataset=None, data_dir=None, projection=None,
                      layer=None, seed=0):
    """``figures_latent.latent_picture`` of RUN's first ``num`` test images as the PNG
    ``out``."""
    figures_latent.check_projection_library(projection)
    return _write_with_test_images(run, out, dataset, data_dir, lambda model, images, labels: (
        figures_latent.latent_picture(
            model, images[:num], None if labels is None else np.asarray(labels)[:num],
            projection, layer, seed).figure, len(images[:num])))


def write_traversal(run, out, num_dimensions=8, steps=9, span=3.0, image_index=0, layer=None,
                    dataset=None, data_dir=None):
    """``figures_traversal.traversal`` of RUN's test image ``image_index`` (activity over all
    its test images) as the PNG ``out``; count: the rows."""
    from keras_vae import figures_traversal

    def draw(model, images, _):
        result = figures_traversal.traversal(model, images, image_index, num_dimensions,
                                             steps, span, layer)
        return figures_traversal.traversal_figure(result), len(result.dimensions)

    return _write_with_test_images(run, out, dataset, data_dir, draw)


def write_training_plot(run, out):
    """``figures_training.training_figure`` of a run folder's history.csv (and
    latent_history.csv) as the PNG ``out``; count: the epochs. Needs no model."""
    from keras_vae import figures_training, runs

    directory = pathlib.Path(run)
    if not directory.is_dir():
        raise RunError(f"{run} is not a run folder: give the folder kvae fit wrote (it holds "
                       f"{runs.HISTORY}).")
    history = figures_training.read_csv_columns(directory / runs.HISTORY)
    latent = figures_training.read_latent_history(directory / runs.LATENT_HISTORY)
    figure, _ = figures_training.training_figure(
        history, latent, f"Training of {directory.resolve().name}: {len(history['epoch'])} "
                         f"epochs, nats per example", _recorded_kl_weight(directory))
    return Written(plots.save_png(figure, out), len(history["epoch"]))


def _write_with_test_images(run, out, dataset, data_dir, draw):
    """Loads RUN and its test images, ``draw(model, images, labels)`` -> (picture, count),
    and writes the picture: the PNG only once the figure is complete."""
    from keras_vae import runs

    loaded = runs.load_run(run)
    images, labels, shipped = runs.test_images(loaded, dataset, data_dir)
    picture, count = draw(loaded.model, images, labels)
    return Written(plots.save_png(picture, out), count, shipped,
                   None if shipped is None else len(images))


def _recorded_kl_weight(directory):
    """The KL weight (the warm-up's target) of a run folder's config.json, None when it has
    no readable one."""
    import json

    from keras_vae import runs

    try:
        return float(json.loads((directory / runs.CONFIG).read_text())["train"]["kl_weight"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def rate_point(run, dataset=None, data_dir=None):
    """(``figures_training.RatePoint``, evaluated) of RUN: rate and distortion from its
    metrics.json (``kvae evaluate``), or when it has none (a bare .keras file, a run not yet
    evaluated) from ``runs.test_metrics`` on its test images, seed 0, kept in memory
    (evaluated: True). The KL weight comes from config.json, else from the model."""
    from keras_vae import runs
    from keras_vae.figures_training import RatePoint

    path = pathlib.Path(run)
    metrics = runs.read_metrics(path) if path.is_dir() else None
    kl_weight = _recorded_kl_weight(path)
    evaluated = metrics is None or not {"kl", "reconstruction"} <= metrics.keys()
    if evaluated:
        loaded = runs.load_run(path)
        images, _, _ = runs.test_images(loaded, dataset, data_dir)
        metrics, _ = runs.test_metrics(loaded.model, images)
        if kl_weight is None and getattr(loaded.model, "kl_weight", None) is not None:
            kl_weight = float(loaded.model.kl_weight)
    name = path.name if path.is_dir() else path.stem
    return RatePoint(name, float(metrics["kl"]), float(metrics["reconstruction"]),
                     kl_weight), evaluated


def write_rate_distortion(points, out):
    """``figures_training.rate_distortion_figure`` of ``points`` (``rate_point``) as the PNG
    ``out``; count: the runs."""
    from keras_vae import figures_training

    figure, _ = figures_training.rate_distortion_figure(points)
    return Written(plots.save_png(figure, out), len(points))
