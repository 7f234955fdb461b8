"""``binned_density``: a density decoder on [0, 1] read as a mass over the 256 levels of
8-bit data (the grey-level benchmark's comparable column). Closed forms in 50-digit
arithmetic; the masses of the 256 levels sum to 1."""

import mpmath
import numpy as np
import pytest
import tensorflow as tf
from scipy import special

import keras_vae as kv
from keras_vae import objectives
from keras_vae.binned_density import (BinnedDensityModel, continuous_bernoulli_log_bin_mass,
                                      log_bin_mass, normal_log_bin_mass)

LEVELS = np.arange(256)
GRID = (LEVELS / 255).astype("float32")  # the data as fed: k / 255, not dequantised


def _edges(k, low, high):
    mpmath.mp.dps = 50
    a = low if k == 0 else (k - mpmath.mpf(0.5)) / 255
    b = high if k == 255 else (k + mpmath.mpf(0.5)) / 255
    return a, b


def _normal_reference(k, loc, scale):
    a, b = _edges(k, -mpmath.inf, mpmath.inf)  # of the float32 parameters:
    loc, scale = mpmath.mpf(float(np.float32(loc))), mpmath.mpf(float(np.float32(scale)))
    return float(mpmath.log(mpmath.ncdf((b - loc) / scale) - mpmath.ncdf((a - loc) / scale)))


def _continuous_bernoulli_reference(k, logit):
    """log of the paper's CDF difference over the bin, F(x) = (lambda^x (1 - lambda)^(1 - x)
    + lambda - 1) / (2 lambda - 1) = (e^(l x) - 1) / (e^l - 1) (divide by 1 - lambda; the
    second form keeps masses of e^-800 in 50 digits)."""
    a, b = _edges(k, 0, 1)
    logit = mpmath.mpf(float(np.float32(logit)))  # the float32 logit
    if logit == 0:
        return float(mpmath.log(b - a))
    return float(mpmath.log((mpmath.exp(logit * b) - mpmath.exp(logit * a))
                            / (mpmath.exp(logit) - 1)))


@pytest.mark.parametrize("loc, scale", [(0.3, 0.05), (0.0, 1e-3), (1.0, 1e-3), (-2.0, 0.01),
                                        (0.5, 30.0), (128 / 255, 1e-4)])
def test_normal_bin_masses_equal_the_cdf_differences_and_sum_to_one(loc, scale):
    logs = normal_log_bin_mass(GRID, tf.fill([256], loc), tf.fill([256], scale)).numpy()
    reference = np.array([_normal_reference(k, loc, scale) for k in LEVELS])
    finite = np.isfinite(reference)  # 50 digits underflow where float64's log_ndtr does not
    np.testing.assert_allclose(logs[finite], reference[finite], rtol=1e-9, atol=1e-9)
    assert np.all(np.isfinite(logs))
    np.testing.assert_allclose(special.logsumexp(logs), 0.0, atol=1e-9)


# Logits far beyond 709 * 255 (where expm1(l w) overflows) as a trained head gives them.
@pytest.mark.parametrize("logit", [-3e6, -800.0, -30.0, -2.0, 0.0, 1e-9, 0.7, 50.0, 2e5, 3e6])
def test_continuous_bernoulli_bin_masses_equal_the_cdf_differences_and_sum_to_one(logit):
    logs = continuous_bernoulli_log_bin_mass(GRID, tf.fill([256], logit)).numpy()
    reference = np.array([_continuous_bernoulli_reference(k, logit) for k in LEVELS])
    np.testing.assert_allclose(logs, reference, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(special.logsumexp(logs), 0.0, atol=1e-9)


def _tiny_vae(likelihood):
    model = kv.VAE(input_shape=(2, 3, 1), latent_dim=2, likelihood=likelihood,
                   hidden_units=(4,))
    model(tf.zeros((1, 2, 3, 1)))
    return model


@pytest.mark.parametrize("likelihood", ["normal", "continuous_bernoulli"])
def test_binned_weights_swap_the_density_for_the_bin_mass_at_the_models_own_draws(likelihood):
    """log w (binned) - log w (model) = log P(x|z_k) - log p(x|z_k) at the same z_k: the same
    draws as the model's log_importance_weights at that seed, only the likelihood differs."""
    model = _tiny_vae(likelihood)
    x = np.random.default_rng(0).integers(0, 256, (3, 2, 3, 1)).astype("float32") / 255
    seed = tf.constant([4, 10], tf.int64)
    binned = BinnedDensityModel(model).log_importance_weights(x, 5, seed).numpy()
    density = model.log_importance_weights(x, 5, seed).numpy()
    posterior = model.encode(x)
    z = objectives.reparameterized_sample(
        posterior, objectives.standard_normal_draws(seed, 5, tf.shape(posterior.mean())))
    flat = tf.reshape(z, [15, 2])
    repeated = np.repeat(x[None], 5, axis=0).reshape(15, 2, 3, 1)
    decoded = model.decode(flat)
    difference = (log_bin_mass(decoded, repeated) - decoded.log_prob(repeated)).numpy()
    np.testing.assert_allclose(binned - density, difference.reshape(5, 3), rtol=1e-5, atol=1e-4)
    assert binned.shape == (5, 3)


def test_a_discrete_head_is_refused():
    model = _tiny_vae("logistic")
    with pytest.raises(TypeError, match="Normal or a continuous Bernoulli"):
        log_bin_mass(model.decode(tf.zeros((1, 2))), tf.zeros((1, 2, 3, 1)))
