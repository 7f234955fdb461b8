"""The learned priors' maths: the mixture-of-Gaussians and VampPrior densities against their
closed forms, the Monte Carlo KL against an independent large-sample estimate, draws from the
noise inputs against the distribution, and the importance-weighted log p(x) of a linear-Gaussian
model with a mixture prior against its exact marginal. Training, saving and the CLI:
test_learned_priors_training.py."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy.special import logsumexp

import keras_vae as kv
from keras_vae import evaluation, objectives
from keras_vae.priors import MixtureOfGaussiansPrior, VampPrior, draw_noise
from keras_vae.priors.mixture import component_indicators
from tests.test_evaluation import LinearGaussian

tfd = tfp.distributions


def _softplus_inverse(value):
    return np.log(np.expm1(value))


def _mog(means, scales, weights):
    """A MixtureOfGaussiansPrior with hand-set means [K, d], scales [K, d], weights [K]."""
    means, scales = np.asarray(means, "float32"), np.asarray(scales, "float32")
    prior = MixtureOfGaussiansPrior(means.shape[1], num_components=means.shape[0])
    prior.set_weights([means, _softplus_inverse(scales - 1e-3).astype("float32"),
                       np.log(np.asarray(weights, "float32"))])
    return prior


def _log_mixture(z, log_weights, means, scales):
    """log sum_c pi_c N(z; mu_c, diag s_c^2) by hand (float64): z [n, d] -> [n]."""
    z = np.asarray(z, "float64")[:, None, :]
    log_normal = np.sum(-0.5 * ((z - means) / scales) ** 2 - np.log(scales)
                        - 0.5 * np.log(2 * np.pi), axis=-1)
    return logsumexp(log_weights + log_normal, axis=-1)


MEANS = np.array([[-2.0, 0.5, 1.0], [1.5, -1.0, 0.0], [0.0, 2.0, -1.5]])
SCALES = np.array([[0.5, 1.0, 0.3], [1.2, 0.4, 0.8], [0.7, 0.7, 1.5]])
WEIGHTS = np.array([0.2, 0.5, 0.3])


def test_mixture_log_prob_equals_the_closed_form():
    prior = _mog(MEANS, SCALES, WEIGHTS)
    np.testing.assert_allclose(prior.scales(), SCALES, rtol=1e-5)
    np.testing.assert_allclose(prior.mixture_weights(), WEIGHTS, rtol=1e-5)
    z = np.random.default_rng(0).normal(scale=2.0, size=(40, 3)).astype("float32")
    p = prior.distribution()
    assert p.event_shape == [3] and p.batch_shape == []
    expected = _log_mixture(z, np.log(WEIGHTS), MEANS, SCALES)
    np.testing.assert_allclose(p.log_prob(z), expected, rtol=1e-5, atol=1e-4)
    # Draws with leading axes [K, batch, d], as the Monte Carlo KL passes them.
    np.testing.assert_allclose(p.log_prob(z.reshape(4, 10, 3)), expected.reshape(4, 10),
                               rtol=1e-5, atol=1e-4)


def _vamp_model(data_range=(0.0, 1.0), num_components=7):
    model = kv.VAE(input_shape=(5,), latent_dim=3, hidden_units=(8,), likelihood="normal",
                   prior=VampPrior(3, num_components=num_components, input_shape=(5,),
                                   data_range=data_range, name="prior"))
    rng = np.random.default_rng(1)
    model.prior.pseudo_input_parameters.assign(rng.normal(0.5, 0.6, (num_components, 5)))
    return model


def test_vamp_log_prob_is_the_mean_of_the_posteriors_at_the_clipped_pseudo_inputs():
    model = _vamp_model()
    free = model.prior.pseudo_input_parameters.numpy()
    assert free.min() < 0 and free.max() > 1  # so that the clip is tested
    pseudo_inputs = np.clip(free, 0.0, 1.0)
    np.testing.assert_array_equal(model.prior.pseudo_inputs(), pseudo_inputs)
    q = model.encode(pseudo_inputs)
    means, scales = q.mean().numpy().astype("float64"), q.stddev().numpy().astype("float64")
    z = np.random.default_rng(2).normal(size=(30, 3)).astype("float32")
    expected = _log_mixture(z, np.full(7, -np.log(7)), means, scales)
    np.testing.assert_allclose(model.prior_distribution().log_prob(z), expected,
                               rtol=1e-5, atol=1e-4)
    # For real-valued data the pseudo-inputs are the free weights themselves.
    unconstrained = _vamp_model(data_range=None)
    np.testing.assert_array_equal(unconstrained.prior.pseudo_inputs(),
                                  unconstrained.prior.pseudo_input_parameters.numpy())


def test_the_pseudo_inputs_start_as_in_the_paper_inside_the_data_range():
    prior = VampPrior(4, num_components=500, input_shape=(28, 28, 1))
    values = prior.pseudo_inputs().numpy()
    assert values.shape == (500, 28, 28, 1)
    # N(0.05, 0.01) (Tomczak & Welling's initialisation): 392,000 draws.
    assert values.mean() == pytest.approx(0.05, abs=1e-3)
    assert values.std() == pytest.approx(0.01, abs=1e-3)


def _posterior(rng, batch, latent_dim):
    loc = rng.normal(scale=1.5, size=(batch, latent_dim)).astype("float32")
    scale = rng.uniform(0.3, 1.2, size=(batch, latent_dim)).astype("float32")
    return tfd.Independent(tfd.Normal(loc, scale), 1), loc.astype("float64"), scale


@pytest.mark.parametrize("prior_kind", ["mog", "vamp"])
def test_monte_carlo_kl_equals_an_independent_large_sample_estimate(prior_kind):
    rng = np.random.default_rng(3)
    if prior_kind == "mog":
        prior = _mog(MEANS, SCALES, WEIGHTS).distribution()
        log_weights, means, scales = np.log(WEIGHTS), MEANS, SCALES
    else:
        model = _vamp_model()
        prior = model.prior_distribution()
        q = model.encode(model.prior.pseudo_inputs())
        means, scales = q.mean().numpy(), q.stddev().numpy()
        log_weights = np.full(len(means), -np.log(len(means)))
    posterior, loc, scale = _posterior(rng, 4, 3)
    assert not objectives.has_analytic_kl(posterior, prior)
    # The library's estimate: log q - log p at 20,000 reparameterised draws per example.
    noise = objectives.standard_normal_draws([5, 0], 20_000, [4, 3])
    z = objectives.reparameterized_sample(posterior, noise)
    kl = objectives.kl_divergence(posterior, prior, z).numpy()  # [draws, batch]
    ours, ours_error = kl.mean(0), kl.std(0) / np.sqrt(len(kl))
    # The reference: numpy's own 200,000 draws and the closed-form densities, float64.
    draws = loc + scale * rng.standard_normal((200_000, 4, 3))
    log_q = np.sum(-0.5 * ((draws - loc) / scale) ** 2 - np.log(scale)
                   - 0.5 * np.log(2 * np.pi), axis=-1)
    log_p = _log_mixture(draws.reshape(-1, 3), log_weights, means, scales).reshape(200_000, 4)
    reference = (log_q - log_p).mean(0)
    reference_error = (log_q - log_p).std(0) / np.sqrt(200_000)
    # Two independent Monte Carlo estimates of one KL: within 4 combined standard errors.
    tolerance = 4 * np.sqrt(ours_error**2 + reference_error**2)
    assert np.all(np.abs(ours - reference) < tolerance), (ours, reference, tolerance)
    assert np.all(reference > 0)


def test_component_choice_follows_the_cumulative_weights_at_the_boundaries():
    weights = tf.constant([0.25, 0.5, 0.25])
    u = tf.constant([0.0, 0.2499, 0.25, 0.7499, 0.75, 0.9999999, 1.0])
    np.testing.assert_array_equal(np.argmax(component_indicators(u, weights), axis=1),
                                  [0, 0, 1, 1, 2, 2, 2])


@pytest.mark.parametrize("prior_kind", ["mog", "vamp"])
def test_draws_from_the_noise_inputs_follow_the_prior(prior_kind):
    if prior_kind == "mog":
        # Components 10 apart with scales <= 1.5: every draw is nearest its own mean.
        means, scales, weights = 10 * MEANS, SCALES, WEIGHTS
        prior = _mog(means, scales, weights)
        z = prior.sample_from_noise(draw_noise(prior.noise_spec(), 200_000, seed=4)).numpy()
    else:
        model = _vamp_model(num_components=4)
        q = model.encode(model.prior.pseudo_inputs())
        means, scales = q.mean().numpy(), q.stddev().numpy()
        weights = np.full(4, 0.25)
        noise = draw_noise(model.sampler_noise_spec(), 200_000, seed=4)
        z = model.latent_from_noise(noise).numpy()
        # Which pseudo-input each draw came from: the same uniform noise, 4 equal bins.
        chosen = np.minimum((noise["component_noise"] * 4).astype(int), 3)
    n = len(z)
    if prior_kind == "mog":
        chosen = np.argmin(((z[:, None, :] - means) ** 2).sum(-1), axis=1)
    frequencies = np.bincount(chosen, minlength=len(weights)) / n
    # Binomial standard error of each frequency; 5 of them.
    np.testing.assert_array_less(np.abs(frequencies - weights),
                                 5 * np.sqrt(weights * (1 - weights) / n))
    for c in range(len(weights)):
        draws = z[chosen == c]
        count = len(draws)
        np.testing.assert_array_less(np.abs(draws.mean(0) - means[c]),
                                     5 * scales[c] / np.sqrt(count))
        # The standard error of a sample std of a Normal is about s / sqrt(2 n).
        np.testing.assert_array_less(np.abs(draws.std(0) - scales[c]),
                                     5 * scales[c] / np.sqrt(2 * count))


class LinearGaussianMixture(LinearGaussian):
    """``LinearGaussian`` with a mixture-of-Gaussians prior (a real MixtureOfGaussiansPrior):
    p(x) = sum_c pi_c N(x; W mu_c + b, W diag(s_c^2) W^T + sigma^2 I). The encoder keeps the
    standard-prior posterior of the parent, widened by ``scale_factor``: a proposal that
    covers every component's share of the posterior."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.prior = _mog(0.8 * MEANS, SCALES, WEIGHTS)
        # q: the exact posterior under the Gaussian with the mixture's mean and variances
        # (W^T W is diagonal, so it is diagonal), widened by scale_factor.
        self.prior_mean = WEIGHTS @ (0.8 * MEANS)
        self.prior_variance = WEIGHTS @ (SCALES**2 + (0.8 * MEANS)**2) - self.prior_mean**2
        self.variance = 1 / (1 / self.prior_variance + (self.W**2).sum(0) / self.sigma**2)

    def encode(self, x):
        loc = self.variance * ((x - self.b) @ self.W / self.sigma**2
                               + self.prior_mean / self.prior_variance)
        scale = np.sqrt(self.variance) * self.scale_factor * tf.ones_like(loc)
        return tfd.Independent(tfd.Normal(tf.cast(loc, tf.float32), tf.cast(scale, tf.float32)),
                               1)

    def prior_distribution(self):
        return self.prior.distribution()

    def exact_log_likelihood(self, x):
        W, b = self.W.astype("float64"), self.b.astype("float64")
        terms = []
        for weight, mean, scale in zip(WEIGHTS, 0.8 * MEANS, SCALES):
            covariance = W @ np.diag(scale**2) @ W.T + self.sigma**2 * np.eye(len(b))
            marginal = tfd.MultivariateNormalTriL(W @ mean + b, np.linalg.cholesky(covariance))
            terms.append(np.log(weight) + marginal.log_prob(x.astype("float64")).numpy())
        return logsumexp(np.stack(terms), axis=0)

    def sample_data(self, count, seed):
        rng = np.random.default_rng(seed)
        component = rng.choice(len(WEIGHTS), size=count, p=WEIGHTS)
        z = 0.8 * MEANS[component] + SCALES[component] * rng.normal(size=(count, 3))
        return (z @ self.W.T + self.b + self.sigma * rng.normal(size=(count, len(self.b)))
                ).astype("float32")


def test_importance_weighted_log_likelihood_converges_to_the_exact_mixture_marginal():
    model = LinearGaussianMixture(scale_factor=1.2)
    x = model.sample_data(40, seed=7)
    exact = model.exact_log_likelihood(x)
    k1 = evaluation.log_likelihood(model, x, num_samples=1, seed=1, batch_size=40)
    estimate = evaluation.log_likelihood(model, x, num_samples=5000, seed=1, batch_size=40)
    assert np.mean(exact - k1) > 0.3  # one draw from the proposal is well below log p(x)
    assert np.max(np.abs(estimate - exact)) < 0.05, np.abs(estimate - exact).max()


def test_the_vae_importance_weights_use_the_prior_log_prob():
    model = kv.VAE(input_shape=(5,), latent_dim=3, hidden_units=(8,), likelihood="normal",
                   prior=_mog(MEANS, SCALES, WEIGHTS))
    x = np.random.default_rng(8).normal(size=(6, 5)).astype("float32")
    weights = model.log_importance_weights(x, 4, [3, 1]).numpy()
    q = model.encode(x)
    z = objectives.reparameterized_sample(q, objectives.standard_normal_draws([3, 1], 4, [6, 3]))
    log_likelihood = model.log_likelihood_at(x, z).numpy()
    expected = (log_likelihood - q.log_prob(z).numpy()
                + _log_mixture(z.numpy().reshape(-1, 3), np.log(WEIGHTS), MEANS,
                               SCALES).reshape(4, 6))
    np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-4)
