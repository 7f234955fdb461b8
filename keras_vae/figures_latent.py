"""Pictures of the latent space: where the posterior means of test images lie (``kvae
latent-plot``) and, for a 2-D latent space, what the decoder makes of a grid of z.

Everything goes through the model protocol (``protocol``): ``latent_sizes`` names the layers,
``latent_diagnostics`` gives each test image's posterior mean E_q[z|x] and KL per dimension
(so a hierarchical model is pictured layer by layer), ``prior_distribution`` the scale of z
and ``decode_layer`` (else ``decode``) the images: a value of a higher layer is decoded with
the layers below it at the means of their conditionals p(z_(i-1) | z_i). The functions
return the figure and the numbers drawn, so a test can check the content, not only the
pixels.

Projections of the means [N, D] to the plane (``LATENT_PROJECTIONS``):

    active   the two dimensions whose means vary most over the data, Var_x(E_q[z_i]) (the
             activity of ``evaluation.active_units``; active above 0.01, Burda et al. 2016)
    pca      the first two principal components, with the share of the variance each holds
    tsne     t-SNE (van der Maaten & Hinton 2008; scikit-learn), neighbourhoods, not distances
    umap     UMAP (McInnes et al. 2018; umap-learn)

The manifold (Kingma & Welling 2014, fig. 4): the decoded means of p(x|z) at z on a grid of
Normal quantiles, z_j = mu_j + sigma_j Phi^-1((k + 1/2) / n) for k = 0 .. n - 1, with mu, sigma
the prior's marginal mean and standard deviation of dimension j: equal prior mass per cell.
"""

import dataclasses
import statistics

import numpy as np

from keras_vae import plots
from keras_vae.config import LATENT_PROJECTIONS
from keras_vae.errors import ConfigError
ENCODE_BATCH = 1000  # test images encoded at once: bounded memory for any test set
PROJECTION_LIBRARIES = {"tsne": ("t-SNE", "scikit-learn"), "umap": ("UMAP", "umap-learn")}


@dataclasses.dataclass
class LatentSummary:
    """One latent layer over a set of images: ``means`` E_q[z|x] [N, D], ``kl_per_dimension``
    KL(q(z_i|x) || p(z_i)) averaged over the images [D] (nats), ``activity`` Var_x(E_q[z_i])
    [D] (the activity of ``evaluation.active_units``)."""

    layer: str
    means: np.ndarray
    kl_per_dimension: np.ndarray
    activity: np.ndarray

    def most_active(self, num):
        """The ``num`` dimensions of highest activity, most active first."""
        return np.argsort(-self.activity, kind="stable")[:num]

    @property
    def active(self):
        """[D] booleans: Var_x(E_q[z_i]) > ``evaluation.ACTIVE_UNIT_THRESHOLD`` (0.01)."""
        from keras_vae.evaluation import ACTIVE_UNIT_THRESHOLD  # TensorFlow: only when drawing

        return self.activity > ACTIVE_UNIT_THRESHOLD


def layer_sizes(model):
    """``model.latent_sizes`` as a dict; {"z": None} for a model with encode and decode alone
    (one layer)."""
    return dict(getattr(model, "latent_sizes", None) or {"z": None})


def chosen_layer(model, layer=None):
    """``layer``, checked against ``model.latent_sizes``; by default the first (next to the
    data). ConfigError listing the layers when it has no such layer."""
    sizes = layer_sizes(model)
    if layer is None:
        return next(iter(sizes))
    if layer not in sizes:
        raise ConfigError(f"The model has no latent layer {layer!r}; its layers: "
                          f"{', '.join(sizes)} (--layer).")
    return layer


def summarise_latents(model, images, layer=None, seed=0):
    """``LatentSummary`` of ``layer`` over ``images``, from ``latent_diagnostics`` in batches of
    ``ENCODE_BATCH`` (``seed``: its stateless seed, for KL estimated by sampling); of a model
    with ``encode`` alone, the means of its one layer and no KL (NaN)."""
    layer = chosen_layer(model, layer)
    images = np.asarray(images, np.float32)
    if not callable(getattr(model, "latent_diagnostics", None)):  # one layer, encode only
        means = np.asarray(model.encode(images).mean(), np.float64)
        return LatentSummary(layer, means, np.full(means.shape[1], np.nan), means.var(axis=0))
    means, kl = [], []
    for start in range(0, len(images), ENCODE_BATCH):
        diagnostics = model.latent_diagnostics(images[start:start + ENCODE_BATCH], seed)[layer]
        means.append(np.asarray(diagnostics.posterior_mean, np.float64))
        kl.append(np.asarray(diagnostics.kl_per_dimension, np.float64))
    means, kl = np.concatenate(means), np.concatenate(kl)
    return LatentSummary(layer, means, kl.mean(axis=0), means.var(axis=0))


def principal_components(points, num_components=2):
    """(projection [N, num_components], share of the total variance of each component): the
    centred points times the top right-singular vectors s_k of the centred matrix, whose
    variances are sigma_k^2 / N out of sum_k sigma_k^2 / N."""
    centred = points - points.mean(axis=0)
    _, singular_values, directions = np.linalg.svd(centred, full_matrices=False)
    variance = singular_values ** 2
    share = variance / variance.sum() if variance.sum() > 0 else np.zeros_like(variance)
    return centred @ directions[:num_components].T, share[:num_components]


@dataclasses.dataclass
class Projection:
    """Points [N, 2] to draw, the labels of their two axes and what they are (for the title)."""

    points: np.ndarray
    axis_labels: tuple
    description: str


def project(summary, projection=None, seed=0):
    """The ``Projection`` of ``summary.means`` by ``projection`` (``LATENT_PROJECTIONS``); by
    default the means themselves when the layer has at most two dimensions, else "pca". A
    one-dimensional layer is drawn on a line (second coordinate 0)."""
    means, name = summary.means, summary.layer
    dimensions = means.shape[1]
    if projection is None and dimensions <= 2:
        if dimensions == 1:
            return Projection(np.c_[means, np.zeros(len(means))], (f"{name} 0", ""),
                              "the one latent dimension")
        return Projection(means, (f"{name} 0", f"{name} 1"), "both latent dimensions")
    projection = projection or "pca"
    if projection not in LATENT_PROJECTIONS:
        raise ConfigError(f"Unknown projection {projection!r}; choose one of "
                          f"{', '.join(LATENT_PROJECTIONS)}.")
    if dimensions == 1:
        raise ConfigError(f"Layer {name} has one dimension: nothing to project; leave out "
                          f"--projection.")
    if projection == "active":
        first, second = summary.most_active(2)
        return Projection(means[:, [first, second]], tuple(
            f"{name} {i} (Var of mean {summary.activity[i]:.2f})" for i in (first, second)),
            "the two most active dimensions")
    if projection == "pca":
        points, share = principal_components(means)
        return Projection(points, tuple(f"PC {k + 1} ({100 * share[k]:.1f}% of variance)"
                                        for k in range(2)),
                          f"first two principal components of {dimensions} dimensions")
    label = PROJECTION_LIBRARIES[projection][0]
    return Projection(_embedding(projection, means, seed), (f"{label} 1", f"{label} 2"),
                      f"{label} of {dimensions} dimensions (distances are not preserved)")


def check_projection_library(projection):
    """ConfigError naming the extra to install when ``projection`` needs a library that is
    missing; checked before any work, so the command stops at once."""
    import importlib.util

    if projection in PROJECTION_LIBRARIES:
        module = {"tsne": "sklearn", "umap": "umap"}[projection]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"--projection {projection} needs "
                              f"{PROJECTION_LIBRARIES[projection][1]}, which is not installed: "
                              f"pip install 'keras-vae[projections]'.")


def _embedding(projection, means, seed):
    """t-SNE or UMAP of the means [N, D] -> [N, 2]; ConfigError naming the extra to install
    when its library is missing."""
    label, package = PROJECTION_LIBRARIES[projection]
    try:
        if projection == "tsne":
            from sklearn.manifold import TSNE

            # perplexity must stay below N; 30 is scikit-learn's default
            method = TSNE(n_components=2, perplexity=min(30.0, (len(means) - 1) / 3),
                          init="pca", random_state=seed)
        else:
            import umap

            method = umap.UMAP(n_components=2, random_state=seed)
    except ImportError:
        raise ConfigError(f"--projection {projection} needs {package}, which is not "
                          f"installed: pip install 'keras-vae[projections]'.") from None
    if len(means) < 5:
        raise ConfigError(f"{label} needs at least 5 points; received {len(means)} (--num).")
    return np.asarray(method.fit_transform(means), np.float64)


def decoded_means(model, z, layer=None):
    """Means of p(x|z) for values z [N, D] of ``layer`` (default: the one next to the data),
    through the model's ``decode_layer`` (``protocol``): the layers below it at the means of
    their conditionals. A model without ``decode_layer`` decodes its one layer with
    ``decode``; ConfigError when it has several."""
    layer = chosen_layer(model, layer)
    z = np.asarray(z, np.float32)
    if callable(getattr(model, "decode_layer", None)):
        return np.asarray(model.decode_layer(z, layer).mean())
    if len(layer_sizes(model)) != 1:
        raise ConfigError(f"This picture decodes one latent layer; the model has "
                          f"{len(model.latent_sizes)} ({', '.join(model.latent_sizes)}) and no "
                          f"decode_layer (keras_vae.protocol) to decode one of them.")
    return np.asarray(model.decode(z).mean())


PRIOR_DRAWS = 2000  # draws of a hierarchy's prior for its layers' marginal moments
PRIOR_SEED = (0, 7)  # their stateless seed: the same sweep every time


def prior_moments(model, dimensions, layer=None):
    """(mean [D], standard deviation [D]) of the prior's marginals over ``layer``: the scale
    the pictures sweep z on. For a model with one layer, from its distribution; for a
    hierarchy, whose marginal p(z_i) has no closed form below the top, estimated from
    ``PRIOR_DRAWS`` seeded joint draws of ``prior_distribution()``. (0, 1) when the prior
    gives neither (NotImplementedError, ...) or is not a distribution over D values."""
    fallback = np.zeros(dimensions), np.ones(dimensions)
    try:
        prior = model.prior_distribution()
        if len(layer_sizes(model)) == 1:
            mean = np.asarray(prior.mean(), np.float64)
            scale = np.asarray(prior.stddev(), np.float64)
        else:
            import tensorflow as tf

            draws = prior.sample(PRIOR_DRAWS, seed=tf.constant(PRIOR_SEED, tf.int32))
            values = np.asarray(draws._asdict()[chosen_layer(model, layer)], np.float64)
            mean, scale = values.mean(axis=0), values.std(axis=0)
    except (NotImplementedError, ValueError, TypeError, AttributeError, KeyError):
        return fallback
    if mean.shape != (dimensions,) or scale.shape != (dimensions,):
        return fallback
    return mean, scale


def normal_quantiles(num):
    """Phi^-1((k + 1/2) / num) for k = 0 .. num - 1: the midpoints of num equal-mass cells."""
    return np.array([statistics.NormalDist().inv_cdf((k + 0.5) / num) for k in range(num)])


@dataclasses.dataclass
class Manifold:
    """``z`` [n, n, 2]: cell (row, column) holds (z_0, z_1), z_0 growing to the right and z_1
    upwards (row 0 at the top); ``images`` [n, n, *image_shape] the decoded means there."""

    z: np.ndarray
    images: np.ndarray


def manifold(model, num=15):
    """The decoded ``Manifold`` of a 2-D latent layer on a ``num`` x ``num`` quantile grid."""
    mean, scale = prior_moments(model, 2)
    quantiles = normal_quantiles(num)
    columns = mean[0] + scale[0] * quantiles
    rows = mean[1] + scale[1] * quantiles[::-1]  # the top row holds the largest z_1
    z = np.stack(np.meshgrid(columns, rows), axis=-1)
    images = decoded_means(model, z.reshape(-1, 2))
    return Manifold(z, images.reshape(num, num, *images.shape[1:]))


@dataclasses.dataclass
class LatentPicture:
    """What ``latent_picture`` drew: the figure, the summary, the projection and the manifold
    (None unless the model has one 2-D latent layer)."""

    figure: object
    summary: LatentSummary
    projection: Projection
    manifold: Manifold | None


def latent_picture(model, images, labels=None, projection=None, layer=None, seed=0,
                   grid_size=15):
    """Scatter of the test images' posterior means under ``projection``, coloured by label,
    and beside it, for an image model with one 2-D latent layer, its decoded ``manifold``."""
    summary = summarise_latents(model, images, layer, seed)
    projected = project(summary, projection, seed)
    two_dimensional = (summary.means.shape[1] == 2 and len(model.latent_sizes) == 1
                       and len(model.image_shape) == 3)  # vectors (tables) have no picture
    grid = manifold(model, grid_size) if two_dimensional else None
    figure = plots.new_figure(1400 if grid is not None else 760, 680)
    axes = figure.add_axes([0.09, 0.09, 0.7, 0.8] if grid is None else
                           [0.05, 0.09, 0.38, 0.8])
    _scatter(axes, projected, labels)
    active = int(np.sum(summary.active))
    axes.set_title(f"Posterior means E_q[{summary.layer}|x] of {len(summary.means)} test "
                   f"images:\n{projected.description} ({active} of {summary.means.shape[1]} "
                   f"dimensions active)", fontsize=11)
    if grid is not None:
        _draw_manifold(figure.add_axes([0.55, 0.09, 0.4, 0.8]), grid, summary.layer)
    return LatentPicture(figure, summary, projected, grid)


def _scatter(axes, projected, labels):
    points = projected.points
    if labels is None:
        axes.scatter(points[:, 0], points[:, 1], s=4, alpha=0.6, color="tab:blue",
                     label="test image", rasterized=True)
        title = None
    else:
        labels = np.asarray(labels)
        colours = plots.class_colours(len(np.unique(labels)))
        for colour, label in zip(colours, np.unique(labels)):
            chosen = labels == label
            axes.scatter(points[chosen, 0], points[chosen, 1], s=4, alpha=0.6, color=colour,
                         label=str(label), rasterized=True)
        title = "label"
    axes.legend(title=title, markerscale=3, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                frameon=False)
    axes.set_xlabel(projected.axis_labels[0])
    axes.set_ylabel(projected.axis_labels[1])
    axes.grid(alpha=0.3)


def _draw_manifold(axes, grid, layer):
    num = grid.z.shape[0]
    height, width = grid.images.shape[2:4]
    plots.show_grid(axes, plots.grid_array(grid.images.reshape(num * num, *grid.images.shape[2:]),
                                           num_columns=num, padding=0))
    ticks = sorted({0, num // 2, num - 1})
    axes.set_xticks([(k + 0.5) * width - 0.5 for k in ticks],
                    [f"{grid.z[0, k, 0]:.2f}" for k in ticks])
    axes.set_yticks([(k + 0.5) * height - 0.5 for k in ticks],
                    [f"{grid.z[k, 0, 1]:.2f}" for k in ticks])
    axes.set_xlabel(f"{layer} 0 (Normal quantiles of the prior)")
    axes.set_ylabel(f"{layer} 1")
    axes.set_title(f"Decoded means of p(x|z) on a {num} x {num} grid of z\n(equal prior mass "
                   f"per cell; Kingma & Welling 2014, fig. 4)", fontsize=11)
