"""The RealNVP flow prior (priors/flow.py): its density against the change-of-variables
formula with an independently computed Jacobian and against a Gaussian's closed form, its
draws, the Monte Carlo KL, training (gradients, MirroredStrategy), .keras round trips and its
argument errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras_vae as kv
from keras_vae import distribute, objectives
from keras_vae.errors import ConfigError
from keras_vae.priors import draw_noise
from keras_vae.priors.flow import FlowPrior
from tests.helpers import max_abs_difference, prototype_images

tfd = tfp.distributions


def _randomised(prior, seed=0, scale=0.5):
    """``prior`` with every weight redrawn (the last layers start at zero, i.e. the
    identity), so that the flow is a non-trivial non-linear map."""
    rng = np.random.default_rng(seed)
    for weight in prior.weights:
        weight.assign(rng.normal(0.0, scale, weight.shape).astype("float32"))
    return prior


def _log_standard_normal(u):
    return -0.5 * np.sum(u**2, axis=-1) - 0.5 * u.shape[-1] * np.log(2 * np.pi)


def _tiny_vae(prior):
    return kv.VAE((8, 8, 1), latent_dim=prior.latent_dim, hidden_units=(16,), prior=prior)


# ---------------------------------------------------------------- the density


@pytest.mark.parametrize("latent_dim", [2, 3, 5])
def test_log_prob_is_the_change_of_variables_with_an_independent_jacobian(latent_dim):
    """log p(z) = log N(u; 0, I) - log |det dz/du| at z = f(u): the Jacobian of the forward
    map (the sampler's) by automatic differentiation, its determinant by numpy; the flow's
    log_prob inverts z and sums the coupling layers' log-scales instead."""
    prior = _randomised(FlowPrior(latent_dim, num_layers=3, hidden_units=(8,)))
    u = tf.constant(np.random.default_rng(1).normal(size=(16, latent_dim)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(u)
        z = prior.sample_from_noise({"z_noise": u})
    jacobian = tape.batch_jacobian(z, u).numpy().astype("float64")  # [16, d, d]
    _, log_det = np.linalg.slogdet(jacobian)
    expected = _log_standard_normal(u.numpy().astype("float64")) - log_det
    distribution = prior.distribution()
    np.testing.assert_allclose(distribution.log_prob(z), expected, rtol=0, atol=2e-4)
    # The flow really is non-linear and not volume-preserving here.
    assert np.ptp(log_det) > 0.1 and np.max(np.abs(z.numpy() - u.numpy())) > 0.1
    np.testing.assert_allclose(distribution.bijector.inverse(z), u, atol=1e-4)


def test_a_new_flow_is_the_identity_and_its_prior_the_standard_normal():
    prior = FlowPrior(6)
    u = np.random.default_rng(2).normal(size=(10, 6)).astype("float32")
    np.testing.assert_array_equal(prior.sample_from_noise({"z_noise": u}).numpy(), u)
    np.testing.assert_allclose(prior.distribution().log_prob(u), _log_standard_normal(u),
                               rtol=1e-6)
    assert prior.noise_spec() == {"z_noise": kv.priors.NoiseInput((6,), "normal")}


def _affine_flow(latent_dim, seed):
    """A flow whose hidden kernels are zero: every shift and log-scale is a constant, so f is
    z = m + a * P u for a fixed permutation P, and p(z) = N(m, diag(a^2))."""
    prior = _randomised(FlowPrior(latent_dim, num_layers=4, hidden_units=(8,)), seed, 0.6)
    for network in prior.coupling_networks:
        network.layers[0].kernel.assign(tf.zeros_like(network.layers[0].kernel))
    forward = lambda u: prior.sample_from_noise({"z_noise": u}).numpy()  # noqa: E731
    loc = forward(np.zeros((1, latent_dim), "float32"))[0]
    scale = forward(np.ones((1, latent_dim), "float32"))[0] - loc
    return prior, loc, np.abs(scale)


def test_an_affine_flow_has_the_closed_form_gaussian_density_and_kl():
    prior, loc, scale = _affine_flow(4, seed=3)
    assert np.all(np.abs(np.log(scale)) > 1e-3)  # not the identity
    gaussian = tfd.Independent(tfd.Normal(loc, scale), 1)
    z = np.random.default_rng(4).normal(loc, 2 * scale, size=(50, 4)).astype("float32")
    np.testing.assert_allclose(prior.distribution().log_prob(z), gaussian.log_prob(z),
                               rtol=1e-5, atol=1e-5)

    # KL(q || p) for a diagonal Normal q: no analytic KL is registered for a flow, so the
    # objectives take log q(z) - log p(z) at draws z ~ q; its mean over 200,000 draws equals
    # the closed form between two diagonal Gaussians within 5 standard errors.
    q = tfd.Independent(tfd.Normal(np.float32([0.3, -1.0, 0.5, 2.0]),
                                   np.float32([0.5, 1.2, 0.8, 0.3])), 1)
    draws = q.sample(200_000, seed=[5, 6])
    estimates = objectives.kl_divergence(q, prior.distribution(), draws).numpy()
    exact = tfd.kl_divergence(q, gaussian).numpy()
    assert abs(estimates.mean() - exact) < 5 * estimates.std() / np.sqrt(len(estimates)), (
        estimates.mean(), exact)


def test_the_models_monte_carlo_kl_matches_a_large_sample_estimate():
    """elbo_terms' KL (one draw per example, the training estimate) averaged over 4,000 copies
    of one image equals E_q[log q(z) - log p(z)] estimated from 200,000 draws of q(z|x)."""
    model = _tiny_vae(_randomised(FlowPrior(3, hidden_units=(8,)), seed=7))
    x = np.repeat(prototype_images(1, seed=0)[0], 4000, axis=0)
    kl = model.elbo_terms(x, seed=tf.constant([1, 2])).kl.numpy()
    posterior = model.encode(x[:1])
    draws = posterior.sample(200_000, seed=[3, 4])  # [N, 1, d]
    reference = (posterior.log_prob(draws) - model.prior_distribution().log_prob(draws)).numpy()
    tolerance = 5 * np.sqrt(kl.var() / len(kl) + reference.var() / reference.size)
    assert abs(kl.mean() - reference.mean()) < tolerance, (kl.mean(), reference.mean())
    assert kl.std() > 0  # Monte Carlo, not analytic


def test_draws_have_finite_log_prob_even_from_extreme_noise():
    prior = _randomised(FlowPrior(5), seed=8, scale=2.0)
    distribution = prior.distribution()
    z = distribution.sample(2000, seed=[1, 1])
    assert np.all(np.isfinite(distribution.log_prob(z).numpy()))
    extreme = np.full((2, 5), 10.0, "float32") * np.float32([[1], [-1]])
    z = prior.sample_from_noise({"z_noise": extreme})
    assert np.all(np.isfinite(z.numpy()))
    assert np.all(np.isfinite(distribution.log_prob(z).numpy()))


def test_batch_shapes_of_the_importance_weights_pass_through():
    """log p(z) of draws [K, batch, d] equals that of the same draws as [K * batch, d] rows."""
    prior = _randomised(FlowPrior(4))
    z = np.random.default_rng(9).normal(size=(3, 5, 4)).astype("float32")
    rows = prior.distribution().log_prob(z.reshape(15, 4)).numpy().reshape(3, 5)
    np.testing.assert_allclose(prior.distribution().log_prob(z), rows, rtol=1e-6)
    model = _tiny_vae(_randomised(FlowPrior(4)))
    x = prototype_images(6, seed=1)[0]
    weights = model.log_importance_weights(x, 3, tf.constant([0, 0]))
    assert weights.shape == (3, 6) and np.all(np.isfinite(weights.numpy()))
    # p(z) does not factorise: no KL per dimension (NaN), the total is still reported.
    diagnostics = model.latent_diagnostics(x, tf.constant([0, 0]))["z"]
    assert np.all(np.isnan(diagnostics.kl_per_dimension.numpy()))
    assert FlowPrior.factorized is False and FlowPrior.needs_encoder is False


# ---------------------------------------------------------------- training and saving


def test_gradients_reach_every_flow_weight_and_fit_trains_them():
    prior = _randomised(FlowPrior(4, num_layers=2, hidden_units=(8, 8)), scale=0.3)
    model = _tiny_vae(prior)
    x = prototype_images(32, seed=2)[0]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model.elbo_terms(x, seed=tf.constant([0, 0])).loss)
    gradients = tape.gradient(loss, prior.trainable_weights)
    assert len(gradients) == 2 * 3 * 2  # 2 layers of 3 Dense, each a kernel and a bias
    assert all(g is not None and float(tf.norm(g)) > 0 for g in gradients)
    assert {id(w) for w in prior.trainable_weights} <= {id(w) for w in model.trainable_weights}

    fresh = FlowPrior(4, num_layers=2, hidden_units=(8, 8), name="prior")
    model = _tiny_vae(fresh)
    before = [w.numpy() for w in fresh.weights]
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, batch_size=16, epochs=2, verbose=0)
    changed = [np.any(w.numpy() != b) for w, b in zip(fresh.weights, before)]
    assert all(changed), changed  # from the identity, every weight moves after 4 steps


def test_keras_round_trip_is_exact(tmp_path):
    model = _tiny_vae(_randomised(FlowPrior(5, num_layers=3, hidden_units=(8,), name="prior")))
    path = tmp_path / "flow.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.prior, FlowPrior)
    assert loaded.prior.get_config() == model.prior.get_config()
    noise = draw_noise(model.sampler_noise_spec(), 20, seed=1)
    np.testing.assert_array_equal(loaded.latent_from_noise(noise),
                                  model.latent_from_noise(noise))
    z = model.prior_distribution().sample(20, seed=[2, 2])
    np.testing.assert_array_equal(loaded.prior_distribution().log_prob(z),
                                  model.prior_distribution().log_prob(z))
    np.testing.assert_array_equal(loaded.sample(4, seed=3), model.sample(4, seed=3))
    assert max_abs_difference(loaded.get_weights(), model.get_weights()) == 0


def test_mirrored_training_equals_one_device():
    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.skip("needs the 2 logical CPUs that conftest configures before TF starts")
    x = prototype_images(64, seed=3)[0]

    def train(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(11)
            model = _tiny_vae(_randomised(FlowPrior(4, hidden_units=(8,), name="prior"),
                                          scale=0.3))
            model.compile(optimizer=keras.optimizers.Adam(1e-2))
        model.fit(tf.data.Dataset.from_tensor_slices(x).batch(16), epochs=2, verbose=0,
                  shuffle=False)
        return model

    single = train(tf.distribute.get_strategy())
    mirrored = train(distribute.make_strategy("mirrored"))
    # 8 Adam steps at 1e-2: a replica taking steps twice as large would be ~1e-2 off.
    assert max_abs_difference(single.prior.get_weights(), mirrored.prior.get_weights()) < 1e-5
    assert max_abs_difference(single.get_weights(), mirrored.get_weights()) < 1e-5


def test_the_flow_prior_is_built_by_name():
    assert kv.priors.FlowPrior is FlowPrior
    model = kv.VAE((8, 8, 1), latent_dim=4, hidden_units=(16,), prior="flow")
    assert isinstance(model.prior, FlowPrior) and model.prior.latent_dim == 4
    assert kv.priors.build_prior("flow", 6).get_config()["num_layers"] == 4


@pytest.mark.parametrize("options, message", [
    (dict(latent_dim=1), "needs latent_dim >= 2 .* received latent_dim=1"),
    (dict(latent_dim=0), "latent_dim must be a positive integer; received 0"),
    (dict(latent_dim=4, num_layers=0), "num_layers must be a positive integer; received 0"),
    (dict(latent_dim=4, hidden_units=(8, -1)),
     "hidden_units must be a positive integer; received -1"),
])
def test_bad_arguments_name_the_problem(options, message):
    with pytest.raises(ConfigError, match=message):
        FlowPrior(**options)
