"""Evaluation: the importance-weighted log-likelihood against the exact log p(x) of a
linear-Gaussian model, its chunking, stability and seeding; rate, KL per dimension and active
units against closed forms; ``evaluate`` end to end on a small VAE.

The linear-Gaussian model is a plain object that implements only the model protocol
(``keras_vae.protocol``), by hand: the evaluation depends on nothing else of a model."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras_vae as kv
from keras_vae import evaluation, protocol

tfd = tfp.distributions


class LinearGaussian:
    """p(z) = N(0, I), p(x|z) = N(W z + b, sigma^2 I), so p(x) = N(b, W W^T + sigma^2 I).

    W has orthogonal columns (W^T W = diag(s^2)), so the exact posterior is a diagonal Normal:
    Var = sigma^2 / (sigma^2 + s^2), mean = Var * W^T (x - b) / sigma^2. ``scale_factor`` and
    ``shift`` make the encoder's q deliberately inexact. Written against the protocol only.
    """

    def __init__(self, data_dim=6, latent_dim=3, sigma=0.5, scale_factor=1.0, shift=0.0,
                 max_decoder_rows=None):
        rng = np.random.default_rng(0)
        columns, _ = np.linalg.qr(rng.normal(size=(data_dim, latent_dim)))
        self.W = (columns * np.array([2.0, 1.0, 0.5])[:latent_dim]).astype("float32")
        self.b = rng.normal(size=data_dim).astype("float32")
        self.sigma, self.scale_factor, self.shift = sigma, scale_factor, shift
        self.variance = (sigma**2 / (sigma**2 + (self.W**2).sum(0))).astype("float32")
        self.max_decoder_rows = max_decoder_rows
        self.image_shape = (data_dim,)
        self.latent_sizes = {"z": latent_dim}

    def encode(self, x):
        loc = (x - self.b) @ self.W * self.variance / self.sigma**2 + self.shift
        scale = np.sqrt(self.variance) * self.scale_factor * tf.ones_like(loc)
        return tfd.Independent(tfd.Normal(loc, scale), 1)

    def decode(self, z):
        if self.max_decoder_rows is not None:
            tf.debugging.assert_less_equal(tf.shape(z)[0], self.max_decoder_rows,
                                           message="decoder given more rows than one chunk")
        return tfd.Independent(tfd.Normal(z @ self.W.T + self.b, self.sigma), 1)

    def prior_distribution(self):
        latent_dim = self.W.shape[1]
        return tfd.Independent(tfd.Normal(tf.zeros([latent_dim]), tf.ones([latent_dim])), 1)

    def sample(self, num_samples, seed=None):
        z = self.prior_distribution().sample(num_samples, seed=[seed or 0, 0])
        return self.decode(z).mean()

    def reconstruct(self, x):
        return self.decode(self.encode(x).mean()).mean()

    def log_importance_weights(self, x, num_samples, seed):
        """log p(x|z_k) + log p(z_k) - log q(z_k|x) [K, batch], z_k from q with seed [a, b+k]."""
        seed = tf.cast(seed, tf.int64)
        q = self.encode(x)
        z = tf.map_fn(lambda k: q.sample(seed=tf.cast(seed + tf.stack([0 * k, k]), tf.int32)),
                      tf.range(num_samples, dtype=tf.int64), fn_output_signature=tf.float32)
        batch = tf.shape(x)[0]
        flat = tf.reshape(z, [num_samples * batch, -1])  # one decoder call for the K draws
        log_likelihood = tf.reshape(self.decode(flat).log_prob(tf.tile(x, [num_samples, 1])),
                                    [num_samples, batch])
        return log_likelihood + self.prior_distribution().log_prob(z) - q.log_prob(z)

    def elbo_terms(self, x, seed=None):
        """One draw, analytic KL (the closed forms of ``_closed_form_elbo``)."""
        q = self.encode(x)
        z = q.sample(seed=tf.cast(seed, tf.int32))
        reconstruction = -self.decode(z).log_prob(x)
        kl = tfd.kl_divergence(q, self.prior_distribution())
        return kv.objectives.ELBOTerms(loss=reconstruction + kl, elbo=-(reconstruction + kl),
                                       reconstruction=reconstruction, kl=kl)

    def latent_diagnostics(self, x, seed):
        q = self.encode(x)
        kl = tfd.kl_divergence(q.distribution, self.prior_distribution().distribution)
        return {"z": protocol.LayerDiagnostics(q.mean(), kl)}

    def sampler_noise_spec(self):
        return {"z_noise": kv.priors.NoiseInput((self.W.shape[1],), "normal")}

    def latent_from_noise(self, noise):
        return tf.convert_to_tensor(noise["z_noise"])

    def exact_log_likelihood(self, x):
        covariance = self.W @ self.W.T + self.sigma**2 * np.eye(len(self.b))
        exact = tfd.MultivariateNormalTriL(self.b.astype("float64"),
                                           np.linalg.cholesky(covariance.astype("float64")))
        return exact.log_prob(x.astype("float64")).numpy()

    def sample_data(self, count, seed):
        rng = np.random.default_rng(seed)
        z = rng.normal(size=(count, self.W.shape[1]))
        return (z @ self.W.T + self.b + self.sigma * rng.normal(size=(count, len(self.b)))
                ).astype("float32")


def test_exact_posterior_gives_the_exact_log_likelihood():
    model = LinearGaussian()
    x = model.sample_data(50, seed=1)
    estimate = evaluation.log_likelihood(model, x, num_samples=5000, batch_size=25)
    # With q = p(z|x) every weight p(x, z)/q(z|x) equals p(x): the estimate is exact at any K.
    assert np.max(np.abs(estimate - model.exact_log_likelihood(x))) < 0.05
    assert np.max(np.abs(estimate - model.exact_log_likelihood(x))) < 1e-3


def test_bound_tightens_with_k_and_stays_below_the_exact_value():
    model = LinearGaussian(scale_factor=1.8, shift=0.4)
    x = model.sample_data(200, seed=2)
    exact = model.exact_log_likelihood(x).mean()
    means, errors = [], []
    for k in (1, 10, 100, 2000):
        values = evaluation.log_likelihood(model, x, num_samples=k, seed=k, batch_size=100)
        means.append(values.mean())
        errors.append(values.std(ddof=1) / np.sqrt(len(values)))
    gaps = exact - np.array(means)
    # Never above log p(x) beyond Monte Carlo error (4 standard errors).
    assert np.all(gaps > -4 * np.array(errors)), (gaps, errors)
    assert np.all(np.diff(means) > 0), means  # tighter with every tenfold K
    assert gaps[0] > 0.5 and gaps[-1] < 0.05 * gaps[0], gaps  # q is poor, K=2000 nearly exact


def _closed_form_elbo(model, x):
    """E_q[log p(x|z)] - KL(q || p) for the linear-Gaussian model and its diagonal q."""
    q = model.encode(x)
    mu, s = q.mean().numpy().astype("float64"), q.stddev().numpy().astype("float64")
    W, b, sigma = model.W.astype("float64"), model.b.astype("float64"), model.sigma
    residual = x - mu @ W.T - b
    expected_log_likelihood = (-0.5 * len(b) * np.log(2 * np.pi * sigma**2)
                               - 0.5 * (residual**2).sum(1) / sigma**2
                               - 0.5 * ((s**2) * (W**2).sum(0)).sum(1) / sigma**2)
    kl = 0.5 * np.sum(s**2 + mu**2 - 1 - np.log(s**2), axis=1)
    return expected_log_likelihood - kl


def test_k_equals_one_is_the_elbo_in_expectation():
    model = LinearGaussian(scale_factor=1.5, shift=0.3)
    x = np.repeat(model.sample_data(1, seed=3), 20_000, axis=0)
    values = evaluation.log_likelihood(model, x, num_samples=1, batch_size=20_000)
    tolerance = 5 * values.std(ddof=1) / np.sqrt(len(values))
    assert abs(values.mean() - _closed_form_elbo(model, x[:1])[0]) < tolerance
    assert values.mean() < model.exact_log_likelihood(x[:1])[0]


def test_estimate_does_not_depend_on_the_chunk_size_and_bounds_memory():
    x = LinearGaussian().sample_data(10, seed=4)
    results = {}
    for chunk in (1, 7, 64):
        model = LinearGaussian(scale_factor=1.5, max_decoder_rows=chunk * 10)
        results[chunk] = evaluation.log_likelihood(model, x, num_samples=64, seed=9,
                                                   batch_size=10, chunk_size=chunk)
    np.testing.assert_allclose(results[1], results[7], rtol=1e-6)
    np.testing.assert_allclose(results[1], results[64], rtol=1e-6)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer; received 0"):
        evaluation.log_likelihood(LinearGaussian(), x, num_samples=4, chunk_size=0)
    # The decoder check above is live: a chunk larger than the limit fails.
    with pytest.raises(tf.errors.InvalidArgumentError, match="more rows than one chunk"):
        evaluation.log_likelihood(LinearGaussian(max_decoder_rows=70), x, num_samples=64,
                                  batch_size=10, chunk_size=8)


def test_same_seed_same_figures_other_seed_other_figures():
    model = LinearGaussian(scale_factor=1.5)
    x = model.sample_data(20, seed=5)
    first = evaluation.log_likelihood(model, x, num_samples=30, seed=1, batch_size=10)
    again = evaluation.log_likelihood(model, x, num_samples=30, seed=1, batch_size=10)
    other = evaluation.log_likelihood(model, x, num_samples=30, seed=2, batch_size=10)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_log_sum_exp_is_stable_far_from_the_data():
    # x 300 sigma away from the model: log p(x) ~ -1e5, exp(log w) underflows to 0 in a naive
    # mean. The exact posterior keeps every weight equal, so the estimate must be exact.
    model = LinearGaussian()
    x = model.sample_data(4, seed=6) + 150.0
    estimate = evaluation.log_likelihood(model, x, num_samples=100, batch_size=4)
    exact = model.exact_log_likelihood(x)
    assert np.all(exact < -1e4)
    np.testing.assert_allclose(estimate, exact, rtol=1e-5)


def _tiny_vae(**kwargs):
    return kv.VAE(input_shape=(8, 8, 1), latent_dim=4, hidden_units=(16,), **kwargs)


def _set_encoder(model, active_dims):
    """Hand-set encoder outputs: only ``active_dims`` of loc depend on x."""
    kernel, bias = model.encoder.head.get_weights()
    rng = np.random.default_rng(0)
    kernel = np.zeros_like(kernel)
    kernel[:, active_dims] = rng.normal(scale=1.0, size=(kernel.shape[0], len(active_dims)))
    bias[:4] = 0.3  # loc of the inactive dimensions: a constant
    model.encoder.head.set_weights([kernel, bias])


def test_active_units_and_kl_per_dimension_follow_their_definitions(structured_data):
    model = _tiny_vae()
    _set_encoder(model, active_dims=[0, 2])
    x = structured_data[1][:200]
    statistics = evaluation.posterior_statistics(model, x, batch_size=64)
    q = model.encode(x)
    mu, s = q.mean().numpy().astype("float64"), q.stddev().numpy().astype("float64")
    np.testing.assert_allclose(statistics["posterior_mean_variance"], mu.var(0), rtol=1e-4,
                               atol=1e-9)
    assert evaluation.active_units(statistics["posterior_mean_variance"]) == 2
    assert np.all(mu.var(0)[[0, 2]] > 0.01) and np.all(mu.var(0)[[1, 3]] < 1e-10)
    closed_form = (0.5 * (s**2 + mu**2 - 1 - np.log(s**2))).mean(0)
    np.testing.assert_allclose(statistics["kl_per_dimension"], closed_form, rtol=1e-4)
    np.testing.assert_allclose(statistics["kl_per_dimension"].sum(), statistics["kl"].mean(),
                               rtol=1e-4)


def test_evaluate_reports_every_figure_reproducibly(structured_data):
    model = _tiny_vae()
    x = structured_data[1][:60]
    seed_before = model._noise_seed.numpy()
    metrics, per_example = evaluation.evaluate(model, x, iw_samples=20, seed=3, batch_size=32)
    again, _ = evaluation.evaluate(model, x, iw_samples=20, seed=3, batch_size=32)
    assert metrics == again  # same seed, same figures (and the model's own stream untouched)
    np.testing.assert_array_equal(model._noise_seed.numpy(), seed_before)
    np.testing.assert_allclose(metrics["elbo"], per_example["elbo"].mean())
    np.testing.assert_allclose(metrics["elbo"],
                               -(metrics["reconstruction"] + metrics["kl"]), rtol=1e-6)
    np.testing.assert_allclose(metrics["nll_bits_per_dim"],
                               -metrics["log_likelihood"] / (64 * np.log(2)))
    # Averaged over examples, the K=20 bound sits above the ELBO (it is tighter).
    assert metrics["log_likelihood"] > metrics["elbo"]
    assert metrics["num_examples"] == 60 and len(metrics["kl_per_dimension"]) == 4
    assert metrics["iw_samples"] == 20 and 0 <= metrics["active_units"] <= 4


def test_an_interrupted_estimate_continues_to_the_same_result(structured_data, tmp_path):
    model = _tiny_vae()
    x = structured_data[1][:50]
    progress = tmp_path / "progress.npz"

    def estimate(data, **options):
        return evaluation.log_likelihood(model, data, **{
            "num_samples": 12, "seed": 2, "batch_size": 10, "progress_file": progress,
            **options})

    whole = evaluation.log_likelihood(model, x, num_samples=12, seed=2, batch_size=10)
    first_three_batches = estimate(x[:30])  # then "interrupted"
    np.testing.assert_array_equal(first_three_batches, whole[:30])
    np.testing.assert_array_equal(estimate(x), whole)  # continues with batches 3 and 4
    # The saved batches are reused, not recomputed: a marked file shows through.
    with np.load(progress) as saved:
        arrays = dict(saved)
    arrays["values"] = arrays["values"] + 1000.0
    np.savez(progress, **arrays)
    resumed = estimate(x)
    np.testing.assert_array_equal(resumed[:50], whole + 1000.0)
    # A file written for anything else is refused, never mixed in.
    with pytest.raises(ValueError, match="another model, K or seed; delete it"):
        estimate(x, seed=3)
    with pytest.raises(ValueError, match="another model, K or seed; delete it"):
        estimate(x, num_samples=13)
    with pytest.raises(ValueError, match="other batches .* use the same --batch-size"):
        estimate(x, batch_size=7)
    kernel, bias = model.encoder.head.get_weights()
    model.encoder.head.set_weights([kernel + 0.01, bias])
    with pytest.raises(ValueError, match="another model, K or seed; delete it"):
        estimate(x)


# ---------------------------------------------------------------- the protocol, nothing else


def test_a_model_of_the_protocol_alone_is_evaluated_to_its_exact_log_likelihood():
    # A plain object (not a Keras model, no VAE internals), deliberately inexact q.
    model = LinearGaussian(scale_factor=1.5, shift=0.3)
    assert isinstance(model, protocol.LatentVariableModel)
    assert not isinstance(model, kv.VAE) and not hasattr(model, "weights")
    x = model.sample_data(100, seed=8)
    exact = model.exact_log_likelihood(x)
    metrics, per_example = evaluation.evaluate(model, x, iw_samples=3000, seed=4,
                                               batch_size=50)
    # K=3000 with this q leaves a gap far below 0.02 nats on the mean (K=2000 already closes
    # 95% of the K=1 gap, test above), and below 0.1 nats on every single example.
    assert abs(metrics["log_likelihood"] - exact.mean()) < 0.02
    assert np.max(np.abs(per_example["log_likelihood"] - exact)) < 0.1
    # The ELBO from the protocol's elbo_terms: one draw per example, so within Monte Carlo
    # error (5 standard errors of the per-example difference) of the closed form.
    difference = per_example["elbo"] - _closed_form_elbo(model, x)
    assert abs(difference.mean()) < 5 * difference.std(ddof=1) / np.sqrt(len(x))
    q = model.encode(x)
    mu, s = q.mean().numpy().astype("float64"), q.stddev().numpy().astype("float64")
    np.testing.assert_allclose(metrics["kl_per_dimension"],
                               (0.5 * (s**2 + mu**2 - 1 - np.log(s**2))).mean(0), rtol=1e-5)
    assert metrics["active_units"] == 3 and "layers" not in metrics
    np.testing.assert_allclose(metrics["nll_bits_per_dim"],
                               -metrics["log_likelihood"] / (6 * np.log(2)))


def test_an_object_without_the_protocol_is_refused_by_name():
    class EncoderDecoderOnly:
        def encode(self, x):
            return None

    with pytest.raises(TypeError, match=r"needs a model with log_importance_weights\(x, "
                                        r"num_samples, seed\) \(keras_vae.protocol\); "
                                        r"received a EncoderDecoderOnly"):
        evaluation.log_likelihood(EncoderDecoderOnly(), np.zeros((2, 6), "float32"))


class TwoLayerDiagnostics(LinearGaussian):
    """The linear-Gaussian model reporting its 3 latents as two layers, z1 (2) and z2 (1), as a
    hierarchy would: evaluate must give the figures of each layer and of all together."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.latent_sizes = {"z1": 2, "z2": 1}

    def latent_diagnostics(self, x, seed):
        (whole,) = super().latent_diagnostics(x, seed).values()
        return {"z1": protocol.LayerDiagnostics(whole.posterior_mean[:, :2],
                                                whole.kl_per_dimension[:, :2]),
                "z2": protocol.LayerDiagnostics(whole.posterior_mean[:, 2:],
                                                whole.kl_per_dimension[:, 2:])}


def test_evaluate_reports_each_latent_layer_of_a_hierarchy():
    x = LinearGaussian().sample_data(80, seed=9)
    whole, _ = evaluation.evaluate(LinearGaussian(shift=0.2), x, seed=1, batch_size=40)
    layered, _ = evaluation.evaluate(TwoLayerDiagnostics(shift=0.2), x, seed=1, batch_size=40)
    assert layered["kl_per_dimension"] == whole["kl_per_dimension"]  # all layers, in order
    assert layered["active_units"] == whole["active_units"] == 3
    assert layered["layers"]["z1"]["kl_per_dimension"] == whole["kl_per_dimension"][:2]
    assert layered["layers"]["z2"]["active_units"] == 1
    np.testing.assert_allclose(layered["layers"]["z1"]["kl"] + layered["layers"]["z2"]["kl"],
                               layered["kl"], rtol=1e-5)  # the rate splits over the layers
