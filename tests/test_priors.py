"""The standard Normal prior: closed-form density, shapes, config."""

import numpy as np
import pytest

import keras_vae as kv


def test_standard_normal_prior_log_prob_matches_closed_form():
    prior = kv.StandardNormalPrior(latent_dim=4).distribution()
    z = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    expected = -0.5 * np.sum(z**2, axis=1) - 2.0 * np.log(2 * np.pi)
    np.testing.assert_allclose(prior.log_prob(z), expected, rtol=1e-6)
    assert prior.event_shape == [4] and prior.batch_shape == []


def test_prior_has_no_weights_and_round_trips_its_config():
    prior = kv.StandardNormalPrior(latent_dim=3, name="p")
    assert prior.weights == []
    assert kv.StandardNormalPrior.from_config(prior.get_config()).latent_dim == 3


def test_the_model_hands_out_its_prior_layer_distribution():
    prior = kv.StandardNormalPrior(latent_dim=2, name="prior")
    model = kv.VAE(input_shape=(4,), latent_dim=2, hidden_units=(3,), prior=prior)
    assert model.prior is prior
    z = np.array([[0.5, -2.0]], "float32")
    np.testing.assert_array_equal(model.prior_distribution().log_prob(z),
                                  prior.distribution().log_prob(z))


def test_the_standard_prior_draws_z_from_its_noise_input_and_the_model_decodes_it():
    model = kv.VAE(input_shape=(4, 4, 1), latent_dim=3, hidden_units=(8,))
    spec = model.sampler_noise_spec()
    assert spec == {"z_noise": kv.priors.NoiseInput((3,), "normal")}
    noise = kv.priors.draw_noise(spec, 5, seed=1)
    z = model.latent_from_noise(noise)
    np.testing.assert_array_equal(z.numpy(), noise["z_noise"])
    again = kv.priors.draw_noise(spec, 5, seed=1)
    np.testing.assert_array_equal(again["z_noise"], noise["z_noise"])
    assert np.std(kv.priors.draw_noise(spec, 20000, seed=2)["z_noise"]) == pytest.approx(1, abs=0.02)
