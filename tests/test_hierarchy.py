"""Hierarchical VAEs (keras_vae/hierarchy): the maths against closed forms and the one-layer VAE.

- A two-layer linear-Gaussian model, whose exact log p(x) is a Gaussian with covariance
  B (A A^T + s1^2 I) B^T + s0^2 I, built as a real ``HierarchicalVAE`` with hand-set weights:
  with q the exact posterior the importance-weighted estimate is exact at any K; with a poorer
  q it converges to log p(x) at K = 5000 (bottom-up and top-down inference).
- A hierarchy that collapses to one Gaussian layer (one layer; or a second layer frozen to its
  prior) gives the one-layer VAE's loss and importance weights with the same weights.
- Reparameterised gradients reach every weight; ``.keras`` round trips are exact; the KL
  weight and free bits act on every layer; the joint distributions of ``encode`` and
  ``prior_distribution`` agree with the passes.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras
import keras_vae as kv
from keras_vae import evaluation, presets, train
from keras_vae.errors import ConfigError
from keras_vae.hierarchy import passes
from keras_vae.hierarchy.steps import precision_merge
from keras_vae.layers.base import MIN_SCALE, inverse_softplus

tfd = tfp.distributions

KINDS = [("bottom_up", "precision"), ("top_down", "precision"), ("top_down", "residual")]
SEED = tf.constant([5, 7], tf.int64)


def _binary(count, shape=(28, 28, 1), seed=0):
    return (np.random.default_rng(seed).random((count, *shape)) > 0.5).astype("float32")


def _raw(scale, floor=MIN_SCALE):
    """The raw parameter whose ``positive_scale`` is ``scale``."""
    return inverse_softplus(scale - floor)


def _set(dense, kernel, bias):
    dense.kernel.assign(np.asarray(kernel, np.float32))
    dense.bias.assign(np.asarray(bias, np.float32))


# ----------------------------------------------------------------- linear-Gaussian, two layers


class LinearGaussianTwoLayers:
    """p(z2) = N(0, I2), p(z1|z2) = N(A z2 + a, s1^2 I3), p(x|z1) = N(B z1 + b, s0^2 I6) with
    B = c Q (orthonormal Q) and A axis-aligned, so every exact conditional posterior is a
    diagonal Normal linear in its inputs and fits the model's heads exactly."""

    def __init__(self):
        rng = np.random.default_rng(3)
        self.c, self.s0, self.s1 = 1.5, 0.5, 0.4
        self.Q, _ = np.linalg.qr(rng.normal(size=(6, 3)))
        self.B = self.c * self.Q
        self.A = np.array([[1.2, 0.0], [0.0, 0.6], [0.0, 0.0]])
        self.a = rng.normal(size=3) * 0.5
        self.b = rng.normal(size=6) * 0.5

    def exact_log_likelihood(self, x):
        covariance = (self.B @ (self.A @ self.A.T + self.s1**2 * np.eye(3)) @ self.B.T
                      + self.s0**2 * np.eye(6))
        return tfd.MultivariateNormalTriL(
            self.B @ self.a + self.b, np.linalg.cholesky(covariance)).log_prob(x).numpy()

    def sample_data(self, count, seed):
        rng = np.random.default_rng(seed)
        z2 = rng.normal(size=(count, 2))
        z1 = z2 @ self.A.T + self.a + self.s1 * rng.normal(size=(count, 3))
        return (z1 @ self.B.T + self.b + self.s0 * rng.normal(size=(count, 6))).astype("float32")

    def build(self, inference, loc_shift=0.0, scale_factor=1.0):
        """The model with the exact generative weights and the exact posterior, or one moved
        by ``loc_shift`` and with scales times ``scale_factor`` (a poorer q)."""
        model = kv.HierarchicalVAE((6,), latent_dims=(3, 2), likelihood="normal",
                                   hidden_units=(6,), activation="linear",
                                   latent_hidden_units=(), inference=inference)
        _set(model.encoder.network.layers[-1], np.eye(6), np.zeros(6))  # features = x
        _set(model.decoder.network.layers[-1], np.eye(3, 6), np.zeros(6))  # [z1, 0, 0, 0]
        head = np.zeros((6, 6))
        head[:3] = self.B.T
        _set(model.decoder.head, head, self.b)
        model.decoder.raw_scale.assign(np.full(6, _raw(self.s0, 1e-3), np.float32))
        down = np.zeros((2, 6))
        down[:, :3] = self.A.T
        _set(model.down_steps[0].head, down, np.concatenate([self.a, np.full(3, _raw(self.s1))]))

        def gaussian_head(dense, weight, bias, scale):
            kernel = np.zeros((weight.shape[1], 2 * weight.shape[0]))
            kernel[:, :weight.shape[0]] = weight.T
            _set(dense, kernel, np.concatenate(
                [bias + loc_shift, [_raw(s * scale_factor) for s in scale]]))

        c2, s0, s1 = self.c**2, self.s0, self.s1
        if inference == "top_down":
            # z1: the likelihood of z1 alone, N(B^T (x - b) / c^2, s0^2 / c^2), merged with
            # p(z1|z2) by precision gives p(z1|z2, x) exactly.
            gaussian_head(model.encoder.head, self.B.T / c2, -self.B.T @ self.b / c2,
                          np.full(3, s0 / self.c))
            # z2: p(z2|x), precision P = I + gamma A^T A, gamma = c^2 / (s1^2 c^2 + s0^2).
            total = s1**2 * c2 + s0**2
            precision = 1 + (c2 / total) * np.diag(self.A.T @ self.A)
            weight = (self.A.T @ self.B.T) / total / precision[:, None]
            gaussian_head(model.up_steps[0].head, weight, -weight @ (self.B @ self.a + self.b),
                          precision ** -0.5)
        else:
            # z1: p(z1|x) with p(z1) = N(a, A A^T + s1^2 I) (diagonal: A is axis-aligned).
            prior_variance = np.diag(self.A @ self.A.T) + s1**2
            variance = 1 / (1 / prior_variance + c2 / s0**2)
            weight = variance[:, None] * self.B.T / s0**2
            gaussian_head(model.encoder.head, weight,
                          variance * (self.a / prior_variance - self.B.T @ self.b / s0**2),
                          np.sqrt(variance))
            # z2: p(z2|z1) = p(z2|z1, x), precision I + A^T A / s1^2.
            precision = 1 + np.diag(self.A.T @ self.A) / s1**2
            weight = self.A.T / s1**2 / precision[:, None]
            gaussian_head(model.up_steps[0].head, weight, -weight @ self.a, precision ** -0.5)
        return model


@pytest.mark.parametrize("inference", ["bottom_up", "top_down"])
def test_exact_posterior_makes_the_estimate_exact(inference):
    reference = LinearGaussianTwoLayers()
    model = reference.build(inference)
    x = reference.sample_data(40, seed=1)
    estimate = evaluation.log_likelihood(model, x, num_samples=64, batch_size=40)
    # Every weight p(x, z1, z2) / q(z1, z2 | x) equals p(x) when q is the exact posterior.
    np.testing.assert_allclose(estimate, reference.exact_log_likelihood(x), atol=2e-3)


@pytest.mark.parametrize("inference", ["bottom_up", "top_down"])
def test_estimate_converges_to_the_exact_log_likelihood(inference):
    reference = LinearGaussianTwoLayers()
    model = reference.build(inference, loc_shift=0.3, scale_factor=1.5)
    x = reference.sample_data(100, seed=2)
    exact = reference.exact_log_likelihood(x)
    one = evaluation.log_likelihood(model, x, num_samples=1, batch_size=100)
    many = evaluation.log_likelihood(model, x, num_samples=5000, batch_size=100)
    assert np.mean(exact - one) > 0.3  # q is poor: the ELBO is far below log p(x)
    assert abs(np.mean(exact - many)) < 0.05
    assert np.max(np.abs(exact - many)) < 0.1


def test_generative_pass_draws_the_marginal_of_z1():
    reference = LinearGaussianTwoLayers()
    model = reference.build("top_down")
    noise = kv.priors.draw_noise(model.sampler_noise_spec(), 200_000, seed=4)
    z1 = np.asarray(model.latent_from_noise(noise)["z1"], np.float64)
    np.testing.assert_allclose(z1.mean(0), reference.a, atol=0.01)
    np.testing.assert_allclose(np.cov(z1.T), reference.A @ reference.A.T
                               + reference.s1**2 * np.eye(3), atol=0.015)


def test_precision_merge_is_the_normalised_product():
    loc_a, scale_a, loc_b, scale_b = 0.3, 0.7, -1.1, 1.6
    loc, scale = (float(v) for v in precision_merge(loc_a, scale_a, loc_b, scale_b))
    z = np.linspace(-3, 3, 7)

    def log_normal(z, m, s):
        return -0.5 * ((z - m) / s) ** 2 - np.log(s)

    difference = (log_normal(z, loc_a, scale_a) + log_normal(z, loc_b, scale_b)
                  - log_normal(z, loc, scale))
    np.testing.assert_allclose(difference, difference[0], atol=1e-5)  # constant in z


# ----------------------------------------------------------------- collapse to one layer


def _one_layer_pair(hierarchy_options, **vae_options):
    vae = kv.VAE((28, 28, 1), latent_dim=4, hidden_units=(16,), activation="tanh",
                 **vae_options)
    hierarchy = kv.HierarchicalVAE((28, 28, 1), hidden_units=(16,), activation="tanh",
                                   **hierarchy_options, **vae_options)
    hierarchy.encoder.set_weights(vae.encoder.get_weights())
    hierarchy.decoder.set_weights(vae.decoder.get_weights())
    return vae, hierarchy


def _assert_same_objective(vae, hierarchy, x, rtol=1e-5):
    expected, terms = vae.elbo_terms(x, seed=SEED), hierarchy.elbo_terms(x, seed=SEED)
    for name in ("loss", "elbo", "reconstruction", "kl"):
        np.testing.assert_allclose(getattr(terms, name), getattr(expected, name), rtol=rtol,
                                   atol=1e-4, err_msg=name)
    np.testing.assert_allclose(hierarchy.log_importance_weights(x, 16, SEED),
                               vae.log_importance_weights(x, 16, SEED), rtol=rtol, atol=1e-4)


@pytest.mark.parametrize("inference", ["bottom_up", "top_down"])
@pytest.mark.parametrize("objective", [dict(), dict(objective="iwae", iw_samples=3)])
def test_one_layer_hierarchy_is_the_vae(inference, objective):
    vae, hierarchy = _one_layer_pair(dict(latent_dims=(4,), inference=inference), **objective)
    _assert_same_objective(vae, hierarchy, _binary(6))


def _freeze_to_standard_normal(dense):
    """A Gaussian head whose output is N(0, I) whatever its input."""
    kernel = np.zeros(dense.kernel.shape)
    size = kernel.shape[1] // 2
    _set(dense, kernel, np.concatenate([np.zeros(size), np.full(size, _raw(1.0))]))


def test_bottom_up_hierarchy_with_a_frozen_top_layer_is_the_vae():
    """q(z2|z1) = p(z2) = N(0, I) and p(z1|z2) = N(0, I): the hierarchy is the VAE, whose KL of
    z1 it estimates at the draws (z1 is drawn before the z2 its prior depends on)."""
    vae, hierarchy = _one_layer_pair(dict(latent_dims=(4, 3), inference="bottom_up",
                                          latent_hidden_units=(5,)))
    _freeze_to_standard_normal(hierarchy.up_steps[0].head)
    _freeze_to_standard_normal(hierarchy.down_steps[0].head)
    x = _binary(6)
    np.testing.assert_allclose(hierarchy.log_importance_weights(x, 16, SEED),
                               vae.log_importance_weights(x, 16, SEED), rtol=1e-5, atol=1e-4)
    terms, expected = hierarchy.elbo_terms(x, seed=SEED), vae.elbo_terms(x, seed=SEED)
    np.testing.assert_allclose(terms.reconstruction, expected.reconstruction, rtol=1e-6)
    np.testing.assert_allclose(terms.layer_kl["z2"], 0.0, atol=1e-4)
    # One draw: the hierarchy's ELBO is the VAE's log importance weight at the same noise.
    np.testing.assert_allclose(terms.elbo, vae.log_importance_weights(x, 1, SEED)[0],
                               rtol=1e-5, atol=1e-4)


def test_residual_ladder_with_a_frozen_top_layer_is_the_vae():
    vae, hierarchy = _one_layer_pair(dict(latent_dims=(4, 3), inference="top_down",
                                          merge="residual", latent_hidden_units=(5,)))
    _freeze_to_standard_normal(hierarchy.up_steps[0].head)
    _freeze_to_standard_normal(hierarchy.down_steps[0].head)
    hierarchy.merge_heads[0].kernel.assign(np.zeros(hierarchy.merge_heads[0].kernel.shape))
    x = _binary(6)
    _assert_same_objective(vae, hierarchy, x)
    np.testing.assert_allclose(hierarchy.elbo_terms(x, seed=SEED).layer_kl["z2"], 0.0,
                               atol=1e-4)


# ----------------------------------------------------------------- training and saving


def _small(inference, merge, **options):
    return kv.HierarchicalVAE((28, 28, 1), latent_dims=(6, 4, 3), hidden_units=(16,),
                              latent_hidden_units=(8,), inference=inference, merge=merge,
                              **options)


@pytest.mark.parametrize("inference, merge", KINDS)
@pytest.mark.parametrize("options", [dict(), dict(objective="iwae", iw_samples=3),
                                     dict(prior="mog")])
def test_gradients_reach_every_weight(inference, merge, options):
    model = _small(inference, merge, **options)
    x = _binary(8)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model.elbo_terms(x, training=True).loss)
    gradients = tape.gradient(loss, model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, gradients)
               if g is None or not np.any(np.asarray(g))]
    assert not missing


@pytest.mark.parametrize("inference, merge, options", [
    ("bottom_up", "precision", dict(prior="mog", likelihood="continuous_bernoulli")),
    ("top_down", "precision", dict(prior="vamp", prior_components=3)),
    ("top_down", "residual", dict(architecture="conv", hidden_units=(4, 8))),
])
def test_keras_round_trip_is_exact(tmp_path, inference, merge, options):
    options = dict(options)
    if options.pop("prior_components", None):
        options["prior"] = kv.priors.VampPrior(3, num_components=3, input_shape=(28, 28, 1),
                                               name="prior")
    model = kv.HierarchicalVAE((28, 28, 1), latent_dims=(5, 3), latent_hidden_units=(8,),
                               inference=inference, merge=merge,
                               **{"hidden_units": (16,), **options})
    x = _binary(8)
    model.compile(optimizer="adam")
    model.fit(x, epochs=1, batch_size=4, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is kv.HierarchicalVAE and loaded.get_config() == model.get_config()
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a, b, err_msg=a.path)
    np.testing.assert_array_equal(loaded.log_importance_weights(x, 4, SEED),
                                  model.log_importance_weights(x, 4, SEED))
    np.testing.assert_array_equal(loaded.sample(3, seed=2), model.sample(3, seed=2))


def test_kl_weight_and_free_bits_act_on_every_layer():
    model = _small("top_down", "precision")
    x = _binary(16)
    model.kl_weight = 0.3
    terms = model.elbo_terms(x, seed=SEED)
    np.testing.assert_allclose(tf.add_n(list(terms.layer_kl.values())), terms.kl, rtol=1e-6)
    np.testing.assert_allclose(terms.loss, terms.reconstruction + 0.3 * terms.kl, rtol=1e-6)

    free = _small("top_down", "precision", free_bits=0.2)
    free.set_weights(model.get_weights())
    free.kl_weight = 1.0
    terms = free.elbo_terms(x, seed=SEED)
    layers = passes.posterior_pass(free, x, free._layer_noise(16, 1, SEED))
    floor = sum(np.maximum(0.2, np.mean(passes.layer_kl_per_dimension(layer), axis=0)).sum()
                for layer in layers)
    # Free bits per dimension within each layer (Kingma et al. 2016, eq. 15).
    np.testing.assert_allclose(np.mean(terms.loss), np.mean(terms.reconstruction) + floor,
                               rtol=1e-5)
    assert floor > np.mean(terms.kl)  # some dimensions are below the floor


@pytest.mark.parametrize("preset", ["burda-mnist-2layer", "ladder-mnist"])
def test_two_layer_presets_warm_up_the_kl_of_every_layer(preset):
    """kvae fit's model of the preset (smaller layers) with its callbacks: the KL weight is
    epoch / 4 for the first 4 epochs, so the loss is reconstruction + (epoch / 4) sum_i KL_i,
    then the negative ELBO. Without the warm-up the bottom-up model's z2 collapsed and z1
    kept about 5 units (benchmarks/hvae_recipe.py)."""
    config = presets.train_config(preset, latent_dims=(6, 3), hidden_units=(16,),
                                  latent_hidden_units=(8,))
    model = train.build_model(config, (28, 28, 1))
    [warm_up] = train.warmup_callbacks(config)
    warm_up.set_model(model)
    x = _binary(4)
    for epoch, weight in [(0, 0.0), (1, 0.25), (3, 0.75), (4, 1.0), (9, 1.0)]:
        warm_up.on_epoch_begin(epoch)
        terms = model.elbo_terms(x, seed=SEED)
        assert terms.layer_kl["z2"].numpy().min() > 0.0  # both layers are weighted
        np.testing.assert_allclose(terms.loss, terms.reconstruction + weight * terms.kl,
                                   rtol=1e-6, err_msg=f"epoch {epoch}")
    np.testing.assert_allclose(terms.loss, -terms.elbo, rtol=1e-6)


@pytest.mark.parametrize("inference, merge", KINDS)
def test_joint_distributions_agree_with_the_passes(inference, merge):
    model = _small(inference, merge, prior="mog")
    x = _binary(5)
    noise = model._layer_noise(5, 1, SEED)
    layers = passes.posterior_pass(model, x, noise)
    draw = {layer.name: layer.z[0] for layer in layers}
    np.testing.assert_allclose(model.encode(x).log_prob(**draw),
                               sum(layer.posterior.log_prob(layer.z)[0] for layer in layers),
                               rtol=1e-5)
    np.testing.assert_allclose(model.prior_distribution().log_prob(**draw),
                               sum(layer.prior.log_prob(layer.z)[0] for layer in layers),
                               rtol=1e-5)
    np.testing.assert_array_equal(model.decode(draw).mean(), model.decode(draw["z1"]).mean())
    assert model.sample(4, seed=3).shape == (4, 28, 28, 1)
    np.testing.assert_array_equal(model.sample(4, seed=3), model.sample(4, seed=3))
    diagnostics = model.latent_diagnostics(x, seed=1)
    assert list(diagnostics) == ["z1", "z2", "z3"]
    assert [d.posterior_mean.shape[-1] for d in diagnostics.values()] == [6, 4, 3]


def test_bad_options_name_the_problem():
    with pytest.raises(ConfigError, match="top-down"):
        kv.HierarchicalVAE((28, 28, 1), latent_dims=(4, 2), inference="bottom_up",
                           prior="vamp")
    with pytest.raises(ConfigError, match="latent_dims"):
        kv.HierarchicalVAE((28, 28, 1), latent_dims=(4, 0))
    with pytest.raises(ConfigError, match="inference"):
        kv.HierarchicalVAE((28, 28, 1), inference="sideways")
