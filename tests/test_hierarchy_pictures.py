"""Pictures of a hierarchy (issue 22): each picture of a layer shows that layer. Posterior means
come from ``latent_diagnostics`` of the layer asked for, a value of a higher layer is decoded
along the generative path (``decode_layer``: the layers below at the means of p(z_(i-1) | z_i),
as ``passes.generative_pass`` computes them with zero noise), the prior's scale of a layer is
its marginal's; training-plot draws each layer's KL and active units; the epoch line and
latent_history.csv speak per layer."""

import io

import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import figures, figures_latent, figures_training, figures_traversal, plots
from keras_vae import latent_history
from keras_vae.callbacks.epoch_progress import EpochProgress
from keras_vae.hierarchy import HierarchicalVAE, passes
from tests.helpers import prototype_images

SEED = tf.constant([0, 0], tf.int64)


def _model(latent_dims=(6, 3), inference="top_down"):
    return HierarchicalVAE(input_shape=(8, 8, 1), latent_dims=latent_dims, hidden_units=(16,),
                           latent_hidden_units=(8,), inference=inference)


def _images(num=40):
    return prototype_images(num, seed=3)[0]


def _generative_decode(model, layer, z):
    """Means of p(x | z1) with z1 from z at ``layer`` through ``passes.generative_pass`` at
    zero noise (the exported sampler's path), layers above ``layer`` ignored."""
    names = list(model.latent_sizes)
    top = names.index(layer)
    z = tf.constant(z, tf.float32)
    noise = {name: tf.zeros((len(z), model.latent_sizes[name])) for name in names[:top]}
    draws = passes.generative_pass(_CutAt(model, names[:top + 1]), z, noise)
    return np.asarray(model.decode(draws).mean())


class _CutAt:
    """``model`` seen as a hierarchy of its lowest layers ``names``: what generative_pass
    reads (latent_sizes, down_steps)."""

    def __init__(self, model, names):
        self.latent_sizes = {name: model.latent_sizes[name] for name in names}
        self.down_steps = model.down_steps


@pytest.mark.parametrize("latent_dims, inference", [((6, 3), "top_down"),
                                                    ((6, 4, 2), "bottom_up")])
def test_decode_layer_follows_the_generative_path(latent_dims, inference):
    model = _model(latent_dims, inference)
    rng = np.random.default_rng(0)
    for layer, size in model.latent_sizes.items():
        z = rng.normal(size=(5, size)).astype(np.float32)
        decoded = np.asarray(model.decode_layer(z, layer).mean())
        np.testing.assert_allclose(decoded, _generative_decode(model, layer, z), atol=1e-6)
    with pytest.raises(ValueError, match="no latent layer 'z9'"):
        model.decode_layer(np.zeros((1, 3), np.float32), "z9")


def test_the_vae_decodes_its_one_layer():
    model = kv.VAE(input_shape=(8, 8, 1), latent_dim=3, hidden_units=(16,))
    z = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.decode_layer(z, "z").mean(), model.decode(z).mean())
    with pytest.raises(ValueError, match="one latent layer, 'z'"):
        model.decode_layer(z, "z2")


def _layer_means(model, images, layer):
    return np.asarray(model.latent_diagnostics(images, seed=0)[layer].posterior_mean, np.float64)


def test_interpolation_of_a_layer_decodes_that_layers_means():
    model, images = _model(), _images()
    steps, pairs, seed = 5, 2, 4
    chosen = np.random.default_rng(seed).choice(len(images), size=2 * pairs, replace=False)
    for layer in ("z1", "z2"):
        means = _layer_means(model, images[chosen], layer)
        rows = np.concatenate([figures.interpolation_points(means[2 * i], means[2 * i + 1],
                                                            steps) for i in range(pairs)])
        expected = plots.image_grid(_generative_decode(model, layer, rows), num_columns=steps)
        picture = figures.interpolation_grid(model, images, steps, pairs, seed, layer)
        np.testing.assert_array_equal(np.asarray(picture), np.asarray(expected))
    # the default is the layer next to the data, whose ends are the reconstructions
    default = figures.interpolation_grid(model, images, steps, pairs, seed)
    z1 = figures.interpolation_grid(model, images, steps, pairs, seed, "z1")
    z2 = figures.interpolation_grid(model, images, steps, pairs, seed, "z2")
    assert np.array_equal(np.asarray(default), np.asarray(z1))
    assert not np.array_equal(np.asarray(z1), np.asarray(z2))
    ends = np.asarray(model.reconstruct(images[chosen[:2]]))
    np.testing.assert_allclose(_generative_decode(model, "z1", _layer_means(
        model, images[chosen[:2]], "z1")), ends, atol=1e-6)


def test_a_traversal_of_a_higher_layer_sweeps_that_layer_from_the_images_posterior_mean():
    model, images = _model(), _images()
    result = figures_traversal.traversal(model, images, image_index=3, num_dimensions=2,
                                         steps=3, span=2.0, layer="z2")
    means = _layer_means(model, images, "z2")
    assert result.layer == "z2" and result.start.shape == (3,)
    np.testing.assert_allclose(result.start, means[3], rtol=1e-6)
    np.testing.assert_array_equal(result.dimensions, np.argsort(-means.var(0),
                                                                kind="stable")[:2])
    mean, scale = figures_latent.prior_moments(model, 3, "z2")
    for row, dimension in enumerate(result.dimensions):
        z = np.tile(means[3], (3, 1))
        z[:, dimension] = mean[dimension] + np.array([-2.0, 0.0, 2.0]) * scale[dimension]
        np.testing.assert_allclose(result.values[row], z[:, dimension], rtol=1e-6)
        np.testing.assert_allclose(result.images[row], _generative_decode(model, "z2", z),
                                   atol=1e-6)
    kl = np.asarray(model.latent_diagnostics(images, seed=0)["z2"].kl_per_dimension).mean(0)
    np.testing.assert_allclose(result.kl_per_dimension, kl[result.dimensions], rtol=1e-5)
    # the figure names the layer below's path
    figure = figures_traversal.traversal_figure(result)
    assert "layers below z2" in figure.axes[0].get_xlabel()


def test_prior_moments_of_a_layer_are_its_marginals():
    model = _model()
    mean, scale = figures_latent.prior_moments(model, 3, "z2")  # p(z2) = N(0, I)
    np.testing.assert_allclose(mean, 0.0, atol=0.1)
    np.testing.assert_allclose(scale, 1.0, atol=0.1)
    # p(z1) = E_z2[p(z1 | z2)]: mean E[mu(z2)], variance E[sigma^2(z2)] + Var[mu(z2)]
    z2 = tf.random.stateless_normal([20000, 3], seed=[5, 5])
    conditional = model.down_steps[0](z2)
    mu, sigma = np.asarray(conditional.mean()), np.asarray(conditional.stddev())
    mean, scale = figures_latent.prior_moments(model, 6, "z1")
    np.testing.assert_allclose(mean, mu.mean(0), atol=0.1)
    np.testing.assert_allclose(scale, np.sqrt((sigma**2).mean(0) + mu.var(0)), atol=0.1)


def test_the_latent_plot_of_a_layer_shows_that_layers_means():
    model, images = _model(), _images()
    for layer, size in (("z2", 3), ("z1", 6)):
        picture = figures_latent.latent_picture(model, images, projection="active",
                                                layer=layer)
        means = _layer_means(model, images, layer)
        assert picture.summary.layer == layer and picture.summary.means.shape == (40, size)
        first, second = np.argsort(-means.var(0), kind="stable")[:2]
        np.testing.assert_allclose(picture.projection.points, means[:, [first, second]],
                                   rtol=1e-5)
        assert f"E_q[{layer}|x]" in picture.figure.axes[0].get_title()
        assert picture.manifold is None
        pca = figures_latent.principal_components(means)[0]
        np.testing.assert_allclose(np.abs(figures.latent_points(model, images, layer)),
                                   np.abs(pca), rtol=1e-4, atol=1e-6)


def test_training_plot_draws_each_layers_kl_and_active_units():
    epochs = np.arange(3.0)
    history = {"epoch": epochs, "loss": 50 - epochs, "elbo": epochs - 50, "kl": 3 + epochs,
               "reconstruction": 47 - 2 * epochs, "kl_z1": 2 + epochs, "kl_z2": np.ones(3),
               "val_kl": 4 + epochs, "val_kl_z1": 2.5 + epochs, "val_kl_z2": 1.5 * np.ones(3),
               "kl_weight": np.array([0.5, 1.0, 1.0])}
    layers = {"z1": (np.array([0.5, 0.0]), 1), "z2": (np.array([0.25, 0.75, 0.0]), 2)}
    rows = [{"epoch": e, **latent_history.history_row(layers)} for e in range(3)]
    columns = {name: np.array([float(row[name]) for row in rows]) for name in rows[0]}
    latent = latent_history.from_columns(columns, "latent_history.csv")
    np.testing.assert_array_equal(latent.layer_kl("z2"), np.tile([0.25, 0.75, 0.0], (3, 1)))
    _, plotted = figures_training.training_figure(history, latent)
    kl_panel = plotted[figures_training.KL_PANEL]
    np.testing.assert_array_equal(kl_panel["z1, training"][1], history["kl_z1"])
    np.testing.assert_array_equal(kl_panel["z2, validation"][1], history["val_kl_z2"])
    assert sorted(kl_panel) == sorted(["training", "validation", "z1, training",
                                       "z1, validation", "z2, training", "z2, validation"])
    collapse = plotted[figures_training.COLLAPSE_TITLE]
    assert list(collapse) == ["z1 0", "z1 1", "z2 1", "z2 0", "z2 2"]  # by final KL per layer
    np.testing.assert_array_equal(collapse["z2 1"][1], [0.75] * 3)
    units = plotted[figures_training.ACTIVE_TITLE]
    assert {label: list(values[1]) for label, values in units.items()} == {
        "z1 (of 2)": [1, 1, 1], "z2 (of 3)": [2, 2, 2]}


def test_a_one_layer_latent_history_keeps_its_columns():
    row = latent_history.history_row({"z": (np.array([0.5, 0.25]), 1)})
    assert row == {"active_units": 1, "kl_dim_0": 0.5, "kl_dim_1": 0.25}
    latent = latent_history.from_columns(
        {"epoch": np.zeros(1), **{k: np.array([v]) for k, v in row.items()}}, "f.csv")
    assert list(latent.layers) == [None] and latent.kl.tolist() == [[0.5, 0.25]]


class _Layered:
    latent_sizes = {"z1": 8, "z2": 4}


def test_the_epoch_line_gives_active_units_per_layer():
    stream = io.StringIO()
    progress = EpochProgress(stream)
    progress.set_model(_Layered())
    progress.set_params({"epochs": 2})
    progress.on_epoch_end(0, {"kl": 3.0, "kl_z1": 2.0, "kl_z2": 1.0, "active_units": 7,
                              "active_units_z1": 5, "active_units_z2": 2})
    assert stream.getvalue().endswith(
        ", kl 3, kl_z1 2, kl_z2 1, active units z1 5/8, z2 2/4\n")
