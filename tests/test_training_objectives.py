"""The VAE's training objectives end to end: free bits and IWAE inside elbo_terms and
train_step, checked against hand computations from the model's own encoder outputs and noise."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from tests.helpers import max_abs_difference


def _tiny_vae(**kwargs):
    return kv.VAE(input_shape=(8, 8, 1), latent_dim=4, hidden_units=(16,), **kwargs)


def _hand_set_encoder(model):
    """Encoder outputs that do not depend on x: loc = (1.5, -1.2, 0.1, 0), scale from a raw
    bias, so the KL of each dimension is known in closed form."""
    kernel, bias = model.encoder.head.get_weights()
    bias[:4] = [1.5, -1.2, 0.1, 0.0]
    model.encoder.head.set_weights([np.zeros_like(kernel), bias])


def _noise(model, draws, batch):
    seed = tf.cast(model._noise_seed, tf.int32)
    return tf.random.stateless_normal([draws, batch, model.latent_dim], seed=seed).numpy()


def test_free_bits_in_the_model_follow_the_formula(structured_data):
    model = _tiny_vae(kl_weight=2.0, free_bits=0.5)
    _hand_set_encoder(model)
    x = structured_data[1][:32]
    q = model.encode(x)
    mu, s = q.mean().numpy().astype("float64"), q.stddev().numpy().astype("float64")
    kl_dims = (0.5 * (s**2 + mu**2 - 1 - np.log(s**2))).mean(0)
    assert np.any(kl_dims > 0.5) and np.any(kl_dims < 0.5)
    terms = model.elbo_terms(x)
    expected = terms.reconstruction.numpy().mean() + 2.0 * np.maximum(0.5, kl_dims).sum()
    np.testing.assert_allclose(terms.loss.numpy().mean(), expected, rtol=1e-5)
    np.testing.assert_allclose(terms.elbo, -(terms.reconstruction + terms.kl), rtol=1e-6)


def test_iwae_loss_in_the_model_is_the_bound_of_its_own_draws(structured_data):
    model = _tiny_vae(objective="iwae", iw_samples=5)
    x = structured_data[1][:8]
    noise = _noise(model, 5, 8)
    terms = model.elbo_terms(x)
    q = model.encode(x)
    z = q.mean().numpy() + q.stddev().numpy() * noise  # [5, 8, 4]
    log_weights = np.stack([
        model.decode(z[k]).log_prob(x).numpy() + model.prior.distribution().log_prob(z[k])
        .numpy() - q.log_prob(z[k]).numpy() for k in range(5)]).astype("float64")
    top = log_weights.max(0)
    bound = top + np.log(np.exp(log_weights - top).mean(0))
    np.testing.assert_allclose(terms.loss, -bound, rtol=1e-5)
    reconstruction = -np.mean([model.decode(z[k]).log_prob(x).numpy() for k in range(5)], 0)
    np.testing.assert_allclose(terms.reconstruction, reconstruction, rtol=1e-5)
    assert np.all(-terms.loss.numpy() >= log_weights.mean(0) - 1e-4)  # L_5 >= 5-draw ELBO


def _trained_weights(structured_data, **options):
    keras.utils.set_random_seed(11)
    model = _tiny_vae(**options)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(structured_data[0][:96], batch_size=32, epochs=2, verbose=0, shuffle=False)
    return model.get_weights()


def test_iwae_with_one_sample_trains_identically_to_the_elbo(structured_data):
    elbo = _trained_weights(structured_data)
    iwae = _trained_weights(structured_data, objective="iwae", iw_samples=1)
    assert max_abs_difference(elbo, iwae) == 0.0
    iwae5 = _trained_weights(structured_data, objective="iwae", iw_samples=5)
    assert max_abs_difference(elbo, iwae5) > 1e-4  # K matters: the comparison can fail


def test_objective_options_are_checked_and_saved(tmp_path):
    with pytest.raises(ValueError, match="free_bits applies to the ELBO"):
        _tiny_vae(objective="iwae", iw_samples=5, free_bits=0.5)
    with pytest.raises(ValueError, match="iw_samples must be a positive integer"):
        _tiny_vae(iw_samples=0)
    with pytest.raises(ValueError, match="objective must be one of|objective"):
        _tiny_vae(objective="vimco")
    model = _tiny_vae(objective="iwae", iw_samples=3)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert (loaded.objective, loaded.iw_samples) == ("iwae", 3)
    grouped = _tiny_vae(free_bits=0.25, free_bits_groups=2)
    grouped.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    assert (loaded.free_bits, loaded.free_bits_groups) == (0.25, 2)
