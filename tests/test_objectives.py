"""Objectives: KL against its closed form and a Monte Carlo estimate, the Monte Carlo KL path
for priors without a registered KL, the reparameterisation trick and the ELBO terms."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import objectives

tfd = tfp.distributions


def _diagonal_normal(loc, scale):
    return tfd.Independent(tfd.Normal(loc, scale), reinterpreted_batch_ndims=1)


def _standard_normal(latent_dim):
    return _diagonal_normal(tf.zeros([latent_dim]), tf.ones([latent_dim]))


def _closed_form_kl(mu, sigma):
    """KL(N(mu, sigma^2) || N(0, 1)) summed over dimensions: 0.5 sum(s^2 + m^2 - 1 - log s^2)."""
    return 0.5 * np.sum(sigma**2 + mu**2 - 1 - np.log(sigma**2), axis=-1)


def test_analytic_kl_matches_closed_form():
    rng = np.random.default_rng(0)
    mu = rng.normal(scale=2.0, size=(16, 5)).astype("float32")
    sigma = np.exp(rng.normal(size=(16, 5))).astype("float32")
    posterior = _diagonal_normal(mu, sigma)
    kl = objectives.kl_divergence(posterior, _standard_normal(5), z=None)
    np.testing.assert_allclose(kl, _closed_form_kl(mu.astype("float64"), sigma.astype("float64")),
                               rtol=1e-5)


def test_analytic_kl_matches_seeded_monte_carlo_estimate():
    mu = np.array([[0.5, -1.0, 2.0]], "float32")
    sigma = np.array([[0.3, 1.5, 0.8]], "float32")
    posterior, prior = _diagonal_normal(mu, sigma), _standard_normal(3)
    z = posterior.sample(200_000, seed=tf.constant([0, 1], tf.int32))
    log_ratio = (posterior.log_prob(z) - prior.log_prob(z)).numpy()
    analytic = objectives.kl_divergence(posterior, prior, z=None).numpy()
    # 5 standard errors of the mean: fails by chance about once in 3.5 million runs.
    tolerance = 5 * log_ratio.std() / np.sqrt(log_ratio.size)
    assert abs(log_ratio.mean() - analytic[0]) < tolerance


def test_kl_without_registered_closed_form_uses_monte_carlo_at_the_given_z():
    # A one-component mixture is a standard Normal, but TFP registers no KL for it.
    mixture = tfd.MixtureSameFamily(
        tfd.Categorical(logits=[0.0]),
        _diagonal_normal(tf.zeros([1, 2]), tf.ones([1, 2])))
    mu = np.array([[1.0, -0.5]], "float32")
    sigma = np.array([[0.7, 1.2]], "float32")
    posterior = _diagonal_normal(mu, sigma)
    assert objectives.has_analytic_kl(posterior, _standard_normal(2))
    assert not objectives.has_analytic_kl(posterior, mixture)

    z = posterior.sample(100_000, seed=tf.constant([3, 4], tf.int32))
    estimate = objectives.kl_divergence(posterior, mixture, z).numpy()

    np.testing.assert_allclose(estimate, posterior.log_prob(z) - mixture.log_prob(z), rtol=1e-6)
    tolerance = 5 * estimate.std() / np.sqrt(estimate.size)  # 5 standard errors, as above
    assert abs(estimate.mean() - _closed_form_kl(mu, sigma)[0]) < tolerance


def test_reparameterized_sample_passes_gradients_to_loc_and_scale():
    loc = tf.Variable([[0.5, -1.0]])
    scale = tf.Variable([[2.0, 0.5]])
    noise = tf.constant([[0.3, -1.2]])
    with tf.GradientTape(persistent=True) as tape:
        z = objectives.reparameterized_sample(_diagonal_normal(loc, scale), noise)
        total = tf.reduce_sum(z)
    np.testing.assert_allclose(z, loc.numpy() + scale.numpy() * noise.numpy(), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(total, loc), [[1.0, 1.0]])
    np.testing.assert_allclose(tape.gradient(total, scale), noise)  # dz/dscale = eps


def test_reparameterized_sample_rejects_non_normal_posteriors():
    with pytest.raises(TypeError, match="needs a Normal posterior; received Laplace"):
        objectives.reparameterized_sample(tfd.Laplace(0.0, 1.0), tf.zeros([1]))


@pytest.mark.parametrize("kl_weight", [0.0, 0.5, 1.0, 4.0])
def test_negative_elbo_terms_follow_their_formulas(kl_weight):
    rng = np.random.default_rng(5)
    mu = rng.normal(size=(3, 2)).astype("float32")
    sigma = np.exp(rng.normal(size=(3, 2))).astype("float32")
    posterior = _diagonal_normal(mu, sigma)
    z = mu + sigma * rng.normal(size=(3, 2)).astype("float32")
    x = (rng.random((3, 4)) > 0.5).astype("float32")
    likelihood = tfd.Independent(tfd.Bernoulli(logits=tf.fill([3, 4], 0.0)), 1)

    log_likelihood = likelihood.log_prob(x)[tf.newaxis]  # K = 1 draw: [1, batch]
    terms = objectives.negative_elbo(log_likelihood, posterior, _standard_normal(2), z[None],
                                     kl_weight=kl_weight)

    reconstruction = np.full(3, 4 * np.log(2.0))  # four fair coins: 4 log 2 nats
    kl = _closed_form_kl(mu, sigma)
    np.testing.assert_allclose(terms.reconstruction, reconstruction, rtol=1e-6)
    np.testing.assert_allclose(terms.kl, kl, rtol=1e-5)
    np.testing.assert_allclose(terms.loss, reconstruction + kl_weight * kl, rtol=1e-5)
    np.testing.assert_allclose(terms.elbo, -(reconstruction + kl), rtol=1e-5)


# ---------------------------------------------------------------- free bits, IWAE, warm-up


def _kl_dimensions(mu, sigma):
    return 0.5 * (sigma**2 + mu**2 - 1 - np.log(sigma**2))


@pytest.mark.parametrize("groups", [None, 2])
@pytest.mark.parametrize("kl_weight", [1.0, 3.0])
def test_free_bits_floor_the_batch_mean_kl_of_each_group(groups, kl_weight):
    # Hand-set posteriors: dimensions 0 and 1 carry about 1 nat, 2 and 3 almost none.
    mu = np.array([[1.4, -1.3, 0.1, 0.0], [-1.5, 1.2, 0.0, 0.1], [1.3, 1.5, -0.1, 0.0]],
                  "float32")
    sigma = np.array([[0.5, 0.6, 0.95, 1.0]] * 3, "float32")
    loc = tf.Variable(mu)
    noise = np.random.default_rng(0).normal(size=(1, 3, 4)).astype("float32")
    free_bits = 0.4
    with tf.GradientTape() as tape:
        posterior = _diagonal_normal(loc, sigma)
        z = objectives.reparameterized_sample(posterior, noise)
        terms = objectives.negative_elbo(tf.zeros([1, 3]), posterior, _standard_normal(4), z,
                                         kl_weight=kl_weight, free_bits=free_bits,
                                         free_bits_groups=groups)
        mean_loss = tf.reduce_mean(terms.loss)
    per_dim = _kl_dimensions(mu.astype("float64"), sigma.astype("float64"))
    per_group = per_dim.reshape(3, groups, -1).sum(-1) if groups else per_dim
    means = per_group.mean(0)
    # sum_g max(lambda, E_x[KL_g]): the loss's batch mean, exactly (Kingma et al. 2016).
    np.testing.assert_allclose(mean_loss, kl_weight * np.maximum(free_bits, means).sum(),
                               rtol=1e-5)
    np.testing.assert_allclose(terms.kl, per_dim.sum(1), rtol=1e-5)  # the true rate, reported
    # Gradient: beta * dKL/dmu / batch = beta * mu / 3 for groups above the floor, 0 below.
    above = np.repeat(means > free_bits, per_dim.shape[1] // len(means))
    assert above.any() and not above.all()
    expected = np.where(above, kl_weight * mu / 3, 0.0)
    np.testing.assert_allclose(tape.gradient(mean_loss, loc), expected, rtol=1e-5, atol=1e-7)


def test_free_bits_reject_groups_that_do_not_divide_the_latents():
    with pytest.raises(ValueError, match="free_bits_groups must divide latent_dim=4"):
        objectives.kl_groups(tf.zeros([2, 4]), 3)


def test_iwae_bound_is_the_log_mean_of_the_weights():
    rng = np.random.default_rng(7)
    mu = rng.normal(size=(3, 2)).astype("float32")
    sigma = np.exp(rng.normal(scale=0.3, size=(3, 2))).astype("float32")
    posterior, prior = _diagonal_normal(mu, sigma), _standard_normal(2)
    z = objectives.reparameterized_sample(posterior, rng.normal(size=(5, 3, 2)).astype("float32"))
    log_likelihood = rng.normal(loc=-50.0, scale=3.0, size=(5, 3)).astype("float32")
    terms = objectives.negative_iwae(log_likelihood, posterior, prior, z)

    log_weights = (log_likelihood.astype("float64") + prior.log_prob(z).numpy()
                   - posterior.log_prob(z).numpy())
    top = log_weights.max(0)
    bound = top + np.log(np.mean(np.exp(log_weights - top), axis=0))
    np.testing.assert_allclose(-terms.loss, bound, rtol=1e-5)
    # Jensen, draw by draw: log mean w >= mean log w, the K-sample Monte Carlo ELBO.
    assert np.all(bound >= log_weights.mean(0) - 1e-5)
    np.testing.assert_allclose(objectives.iwae_bound(log_weights[:1]), log_weights[0])


def test_kl_weight_scales_only_the_kl_inside_the_importance_weights():
    mu, sigma = np.zeros((1, 2), "float32"), np.full((1, 2), 0.5, "float32")
    posterior, prior = _diagonal_normal(mu, sigma), _standard_normal(2)
    z = np.full((1, 1, 2), 0.3, "float32")
    log_ratio = (posterior.log_prob(z) - prior.log_prob(z)).numpy()
    weights = objectives.log_importance_weights(np.array([[-7.0]], "float32"), posterior,
                                                prior, z, kl_weight=0.25)
    np.testing.assert_allclose(weights, -7.0 - 0.25 * log_ratio, rtol=1e-6)


# ---------------------------------------------------------------- draws and log weights


def test_standard_normal_draws_take_draw_k_from_its_own_seed():
    draws = objectives.standard_normal_draws([4, 20], 5, [3, 2]).numpy()
    for k in range(5):
        np.testing.assert_array_equal(draws[k], tf.random.stateless_normal([3, 2], [4, 20 + k]))
    # So draws in chunks equal draws at once; an integer seed s means [s, 0].
    np.testing.assert_array_equal(objectives.standard_normal_draws([4, 22], 3, [3, 2]),
                                  draws[2:])
    np.testing.assert_array_equal(objectives.standard_normal_draws(4, 1, [2]),
                                  objectives.standard_normal_draws([4, 0], 1, [2]))


def test_single_layer_log_weights_and_the_two_bounds_derived_from_them():
    mu, sigma = np.array([[0.5, -1.0]], "float32"), np.array([[0.8, 1.3]], "float32")
    posterior, prior = _diagonal_normal(mu, sigma), _standard_normal(2)
    x = np.array([[1.0, 0.0, 1.0]], "float32")

    def decode(z):  # p(x|z) with logits = z @ A
        return tfd.Independent(tfd.Bernoulli(logits=z @ np.ones((2, 3), "float32")), 1)

    log_weights = objectives.single_layer_log_weights(x, posterior, decode, prior, 3, [9, 0])
    z = mu + sigma * objectives.standard_normal_draws([9, 0], 3, [1, 2]).numpy()
    expected = [decode(z[k]).log_prob(x) + prior.log_prob(z[k]) - posterior.log_prob(z[k])
                for k in range(3)]
    np.testing.assert_allclose(log_weights, np.stack(expected), rtol=1e-5)
    np.testing.assert_allclose(objectives.monte_carlo_elbo(log_weights),
                               np.mean(expected, axis=0), rtol=1e-5)
    np.testing.assert_allclose(objectives.iwae_bound(log_weights),
                               np.log(np.mean(np.exp(np.stack(expected)), axis=0)), rtol=1e-5)
