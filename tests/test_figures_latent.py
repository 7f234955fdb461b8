"""Pictures of the latent space (keras_vae/figures_latent.py, figures_traversal.py): the numbers
they draw, from a stand-in of the model protocol whose posterior means, KL and decoder are known
exactly, and from the shipped model."""

import statistics
import sys

import numpy as np
import pytest

from keras_vae import evaluation, figures, figures_latent, figures_traversal, plots
from keras_vae.errors import ConfigError
from keras_vae.protocol import LayerDiagnostics


class _Normal:
    def __init__(self, mean, stddev):
        self._mean, self._stddev = np.asarray(mean, np.float32), np.asarray(stddev, np.float32)

    def mean(self):
        return self._mean

    def stddev(self):
        return self._stddev


class StandIn:
    """The model protocol, exactly known: E_q[z|x] = the first D pixels of x (std 1), so
    KL(q(z_i|x) || N(0, 1)) = m_i^2 / 2; the prior N(prior_mean, prior_std); the decoder puts
    z_0 in pixel (0, 0) and z_1 in pixel (0, 1) of a 2x2 image and ignores every other
    dimension."""

    def __init__(self, latent_dim, prior_mean=0.0, prior_std=1.0):
        self.latent_dim = latent_dim
        self.latent_sizes = {"z": latent_dim}
        self.image_shape = (2, 2, 1)
        self.prior = _Normal(np.full(latent_dim, prior_mean), np.full(latent_dim, prior_std))
        self.decoded = []

    def encode(self, x):
        return _Normal(np.asarray(x).reshape(len(x), -1)[:, :self.latent_dim], 1.0)

    def latent_diagnostics(self, x, seed):
        means = self.encode(x).mean()
        return {"z": LayerDiagnostics(means, means ** 2 / 2)}

    def prior_distribution(self):
        return self.prior

    def decode(self, z):
        z = np.asarray(z, np.float32)
        self.decoded.append(z)
        images = np.zeros((len(z), 2, 2, 1), np.float32)
        images[:, 0, 0, 0] = z[:, 0]
        if z.shape[1] > 1:
            images[:, 0, 1, 0] = z[:, 1]
        return _Normal(images, 1.0)


def _images(means, size=4):
    """Images [N, 2, 2, 1] whose first pixels are ``means`` [N, D] (D <= 4)."""
    images = np.zeros((len(means), size), np.float32)
    images[:, :means.shape[1]] = means
    return images.reshape(len(means), 2, 2, 1)


def test_summary_gives_means_kl_and_activity_as_evaluation_defines_them():
    means = np.random.default_rng(0).normal(size=(2500, 3)) * [1.0, 0.5, 0.01]
    summary = figures_latent.summarise_latents(StandIn(3), _images(means))  # 3 batches
    np.testing.assert_allclose(summary.means, means, rtol=1e-6)
    np.testing.assert_allclose(summary.kl_per_dimension, (means ** 2 / 2).mean(0), rtol=1e-5)
    np.testing.assert_allclose(summary.activity, means.var(0), rtol=1e-5)
    assert list(summary.most_active(2)) == [0, 1]


def test_pca_projection_equals_a_hand_computed_pca():
    """Means t (3, 4, 0) + c: all the variance lies along (3, 4, 0)/5, so PC 1 is
    5 (t - mean t) up to sign, PC 2 is 0, and PC 1 holds 100% of the variance."""
    t = np.linspace(-1, 2, 40)
    means = t[:, None] * np.array([3.0, 4.0, 0.0]) + np.array([0.5, -0.5, 0.25])
    picture = figures_latent.latent_picture(StandIn(3), _images(means), projection="pca")
    points = picture.projection.points
    np.testing.assert_allclose(np.abs(points[:, 0]), np.abs(5 * (t - t.mean())), atol=1e-5)
    np.testing.assert_allclose(points[:, 1], 0, atol=1e-5)
    assert picture.projection.axis_labels[0] == "PC 1 (100.0% of variance)"
    axes = picture.figure.axes[0]
    assert axes.get_xlabel() == "PC 1 (100.0% of variance)"
    assert "principal components" in axes.get_title() and picture.manifold is None
    # the drawn points are the projection
    np.testing.assert_allclose(axes.collections[0].get_offsets(), points, atol=1e-12)


def test_pca_by_hand_on_random_means_matches_the_covariance_eigenvectors():
    means = np.random.default_rng(1).normal(size=(300, 4)) * [3.0, 2.0, 1.0, 0.5]
    points, share = figures_latent.principal_components(means)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(means.T, bias=True))
    order = np.argsort(eigenvalues)[::-1]
    by_hand = (means - means.mean(0)) @ eigenvectors[:, order[:2]]
    np.testing.assert_allclose(np.abs(points), np.abs(by_hand), atol=1e-9)
    np.testing.assert_allclose(share, eigenvalues[order[:2]] / eigenvalues.sum(), rtol=1e-9)


def test_active_projection_takes_the_two_dimensions_whose_means_vary_most():
    means = np.random.default_rng(2).normal(size=(200, 4)) * [0.1, 2.0, 0.001, 1.0]
    projected = figures_latent.project(figures_latent.summarise_latents(
        StandIn(4), _images(means)), "active")
    np.testing.assert_allclose(projected.points, means[:, [1, 3]], rtol=1e-5)
    assert projected.axis_labels[0].startswith("z 1 (Var of mean")


def test_labels_colour_the_classes_and_fill_the_legend():
    means = np.random.default_rng(3).normal(size=(30, 2))
    labels = np.repeat([0, 1, 2], 10)
    picture = figures_latent.latent_picture(StandIn(2), _images(means), labels)
    axes = picture.figure.axes[0]
    legend = axes.get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["0", "1", "2"]
    assert legend.get_title().get_text() == "label"
    for label, collection in enumerate(axes.collections):
        np.testing.assert_allclose(collection.get_offsets(), means[labels == label], rtol=1e-6)
    colours = [tuple(c.get_facecolor()[0][:3]) for c in axes.collections]
    assert len(set(colours)) == 3


def test_two_dimensional_latents_get_the_decoded_quantile_grid():
    """The manifold decodes z at Normal quantiles Phi^-1((k + 1/2)/n) scaled by the prior:
    for n = 3 they are -0.9674, 0, 0.9674 standard deviations."""
    model = StandIn(2, prior_mean=1.0, prior_std=2.0)
    means = np.random.default_rng(4).normal(size=(20, 2))
    picture = figures_latent.latent_picture(model, _images(means), grid_size=3)
    quantile = statistics.NormalDist().inv_cdf(5 / 6)
    np.testing.assert_allclose(figures_latent.normal_quantiles(3), [-quantile, 0, quantile])
    grid = picture.manifold
    expected = 1.0 + 2.0 * np.array([-quantile, 0.0, quantile])
    np.testing.assert_allclose(grid.z[0, :, 0], expected, rtol=1e-6)  # z_0 to the right
    np.testing.assert_allclose(grid.z[:, 0, 1], expected[::-1], rtol=1e-6)  # z_1 upwards
    np.testing.assert_allclose(model.decoded[-1], grid.z.reshape(-1, 2), rtol=1e-6)
    # the stand-in decodes z into its first two pixels: the images are the grid itself
    np.testing.assert_allclose(grid.images[..., 0, 0, 0], grid.z[..., 0], rtol=1e-6)
    np.testing.assert_allclose(grid.images[..., 0, 1, 0], grid.z[..., 1], rtol=1e-6)
    assert len(picture.figure.axes) == 2
    assert "Kingma & Welling" in picture.figure.axes[1].get_title()
    # the scatter shows the means themselves, on axes named after the latent dimensions
    np.testing.assert_allclose(picture.projection.points, means, rtol=1e-6)
    assert picture.figure.axes[0].get_xlabel() == "z 0"


def test_one_dimensional_latents_are_drawn_on_a_line():
    means = np.linspace(-2, 2, 9)[:, None]
    points = figures_latent.project(figures_latent.summarise_latents(StandIn(1),
                                                                     _images(means))).points
    np.testing.assert_allclose(points, np.c_[means, np.zeros(9)], rtol=1e-6)
    with pytest.raises(ConfigError, match="one dimension"):
        figures_latent.project(figures_latent.summarise_latents(StandIn(1), _images(means)),
                               "pca")


def test_tsne_projection_gives_two_coordinates_per_image():
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(5)
    means = np.concatenate([rng.normal(-3, 0.1, (20, 3)), rng.normal(3, 0.1, (20, 3))])
    projected = figures_latent.project(figures_latent.summarise_latents(
        StandIn(3), _images(means)), "tsne")
    assert projected.points.shape == (40, 2) and projected.axis_labels == ("t-SNE 1", "t-SNE 2")
    # the two clusters stay apart: every point is nearer its own cluster's centre
    first, second = projected.points[:20].mean(0), projected.points[20:].mean(0)
    assert np.linalg.norm(projected.points[:20] - first, axis=1).max() < np.linalg.norm(
        first - second)


@pytest.mark.parametrize("projection, package", [("umap", "umap"), ("tsne", "sklearn")])
def test_a_missing_projection_library_names_the_extra(monkeypatch, projection, package):
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, f"{package}.manifold", None)
    summary = figures_latent.summarise_latents(StandIn(3), _images(np.ones((10, 3))))
    with pytest.raises(ConfigError, match=r"needs .*, which is not installed: pip install "
                                          r"'keras-vae\[projections\]'"):
        figures_latent.project(summary, projection)


def test_unknown_layer_lists_the_layers():
    with pytest.raises(ConfigError, match="no latent layer 'z9'; its layers: z"):
        figures_latent.summarise_latents(StandIn(2), _images(np.ones((3, 2))), "z9")


# ------------------------------------------------------------------ traversals


def test_traversal_sweeps_one_coordinate_and_holds_the_others():
    """Dimension 0 and 1 are decoded (active), 2 is ignored by the decoder and its means do not
    vary (inactive): its row is constant; the rows sweep prior mean + t x prior std."""
    rng = np.random.default_rng(6)
    means = np.c_[rng.normal(size=50) * 2.0, rng.normal(size=50), np.full(50, 0.3)]
    model = StandIn(3, prior_mean=0.5, prior_std=2.0)
    result = figures_traversal.traversal(model, _images(means), image_index=7,
                                         num_dimensions=3, steps=5, span=2.0)
    assert list(result.dimensions) == [0, 1, 2]  # by activity
    np.testing.assert_allclose(result.offsets, [-2, -1, 0, 1, 2])
    np.testing.assert_allclose(result.values, 0.5 + 2.0 * np.tile(result.offsets, (3, 1)))
    np.testing.assert_allclose(result.start, means[7], rtol=1e-6)
    decoded = model.decoded[-1].reshape(3, 5, 3)
    for row, dimension in enumerate(result.dimensions):
        others = [d for d in range(3) if d != dimension]
        np.testing.assert_allclose(decoded[row][:, dimension], result.values[row], rtol=1e-6)
        np.testing.assert_allclose(decoded[row][:, others], np.tile(means[7, others], (5, 1)),
                                   rtol=1e-6)
    spread = result.images.reshape(3, 5, -1).std(axis=1).max(axis=1)
    assert spread[0] > 0.5 and spread[1] > 0.5 and spread[2] == 0  # the ignored one: constant
    np.testing.assert_allclose(result.activity, means.var(0)[[0, 1, 2]], rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(result.kl_per_dimension, (means ** 2 / 2).mean(0), rtol=1e-5)
    figure = figures_traversal.traversal_figure(result)
    labels = [tick.get_text() for tick in figure.axes[0].get_yticklabels()]
    assert labels[0].startswith("z 0: KL") and labels[2].endswith(", inactive")
    assert [tick.get_text() for tick in figure.axes[0].get_xticklabels()] == [
        "-2.0", "-1.0", "+0.0", "+1.0", "+2.0"]


def test_traversal_refuses_an_image_index_outside_the_test_set():
    with pytest.raises(ConfigError, match="--image-index 5 is outside the 5 test images"):
        figures_traversal.traversal(StandIn(2), _images(np.ones((5, 2))), image_index=5)


def test_pictures_that_decode_refuse_a_hierarchy_in_one_line():
    model = StandIn(2)
    model.latent_sizes = {"z1": 2, "z2": 2}
    with pytest.raises(ConfigError, match="decodes one latent layer; the model has 2 "
                                          r"\(z1, z2\)"):
        figures_latent.decoded_means(model, np.zeros((1, 2)))


# ------------------------------------------------------------------ the shipped model


@pytest.fixture(scope="module")
def shipped():
    from keras_vae import runs
    from tests.test_shipped_model import SHIPPED

    loaded = runs.load_run(SHIPPED)
    images, labels, _ = runs.test_images(loaded)
    return loaded.model, images[:1000], labels[:1000]


def test_shipped_traversal_of_inactive_dimensions_is_constant_and_of_active_ones_not(shipped):
    """The shipped model uses 17 of its 50 dimensions (metrics.json): sweeping an unused one
    over +-3 prior standard deviations leaves the digit as it is, an active one redraws it."""
    model, images, _ = shipped
    result = figures_traversal.traversal(model, images, num_dimensions=50, steps=5)
    change = np.abs(result.images - result.images[:, 2:3]).reshape(50, -1).max(axis=1)
    active = result.active
    np.testing.assert_array_equal(active, result.activity > evaluation.ACTIVE_UNIT_THRESHOLD)
    assert 10 <= active.sum() <= 25
    assert change[active].min() > 0.25  # 0.34 measured: pixel probabilities move
    assert change[~active].max() < 0.1, change[~active].max()  # 0.055 measured
    assert np.all(np.diff(result.activity) <= 0)  # rows ordered by activity


def test_shipped_latent_picture_is_a_labelled_pca_of_the_means(shipped):
    model, images, labels = shipped
    picture = figures_latent.latent_picture(model, images, labels)
    means = np.asarray(model.encode(images).mean(), np.float64)
    np.testing.assert_allclose(np.abs(picture.projection.points),
                               np.abs(figures_latent.principal_components(means)[0]), atol=1e-4)
    axes = picture.figure.axes[0]
    assert axes.get_xlabel().startswith("PC 1 (") and "% of variance)" in axes.get_xlabel()
    assert "Posterior means" in axes.get_title() and len(axes.get_legend().get_texts()) == 10
    assert figures.latent_points(model, images[:5]).shape == (5, 2)


def test_picture_pngs_have_their_size(tmp_path, shipped):
    model, images, labels = shipped
    picture = figures_latent.latent_picture(model, images[:100], labels[:100])
    path = plots.save_png(picture.figure, tmp_path / "latent.png")
    from PIL import Image

    with Image.open(path) as png:
        assert png.size == (760, 680)
    result = figures_traversal.traversal(model, images[:100], num_dimensions=4, steps=6)
    path = plots.save_png(figures_traversal.traversal_figure(result), tmp_path / "t.png")
    with Image.open(path) as png:  # margins plus 2 screen pixels per image pixel
        assert png.size == (300 + 2 * (6 * 30 + 2) + 30, 70 + 2 * (4 * 30 + 2) + 80)
