"""The VAE model: its losses against closed forms, gradients through z, learning on structured
data, kl_weight, save/load round trips, MirroredStrategy parity, argument and data errors."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import distribute, protocol
from tests.helpers import closed_form_kl, max_abs_difference


def _tiny_vae(**kwargs):
    options = dict(input_shape=(8, 8, 1), latent_dim=4, hidden_units=(32,))
    options.update(kwargs)
    return kv.VAE(**options)


_closed_form_kl = closed_form_kl


def _per_pixel_baseline_nll(train, test):
    """Test NLL (nats per example) of independent Bernoulli pixels fitted on ``train``."""
    p = np.clip(train.mean(axis=0), 1e-3, 1 - 1e-3)
    log_p = test * np.log(p) + (1 - test) * np.log(1 - p)
    return -log_p.reshape(len(test), -1).sum(axis=1).mean()


def _fit(model, x, epochs, batch_size=100, learning_rate=1e-2):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model.fit(x, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=False).history


# ---------------------------------------------------------------- the loss


def test_kl_of_the_model_equals_closed_form(structured_data):
    model = _tiny_vae()
    x = structured_data[0][:32]
    terms = model.elbo_terms(x)
    np.testing.assert_allclose(terms.kl, _closed_form_kl(model.encode(x)), rtol=1e-5, atol=1e-6)


def test_loss_terms_follow_the_elbo(structured_data):
    model = _tiny_vae(kl_weight=0.25)
    x = structured_data[0][:32]
    terms = model.elbo_terms(x)
    np.testing.assert_allclose(terms.loss, terms.reconstruction + 0.25 * terms.kl, rtol=1e-6)
    np.testing.assert_allclose(terms.elbo, -(terms.reconstruction + terms.kl), rtol=1e-6)
    assert np.all(terms.reconstruction.numpy() > 0)  # -log of a probability mass


def test_reconstruction_term_is_the_likelihood_at_a_reparameterised_draw(structured_data):
    model = _tiny_vae()
    x = structured_data[0][:16]
    seed = model._noise_seed.numpy()
    terms = model.elbo_terms(x)
    noise = tf.random.stateless_normal([16, 4], seed=tf.cast(seed, tf.int32))
    q = model.encode(x)
    z = q.mean() + q.stddev() * noise
    np.testing.assert_allclose(terms.reconstruction, -model.decode(z).log_prob(x).numpy(),
                               rtol=1e-5)
    np.testing.assert_array_equal(model._noise_seed.numpy(), seed + [0, 1])


class _MixturePrior(keras.layers.Layer):
    """A standard Normal written as a one-component mixture: TFP has no analytic KL for it."""

    def __init__(self, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim

    def distribution(self):
        tfd = kv.objectives.tfd
        component = tfd.Independent(tfd.Normal(tf.zeros([1, self.latent_dim]),
                                               tf.ones([1, self.latent_dim])), 1)
        return tfd.MixtureSameFamily(tfd.Categorical(logits=[0.0]), component)


def test_prior_without_analytic_kl_gets_the_monte_carlo_kl_at_the_same_z(structured_data):
    model = _tiny_vae(prior=_MixturePrior(4))
    x = structured_data[0][:16]
    seed = model._noise_seed.numpy()
    terms = model.elbo_terms(x)
    q = model.encode(x)
    z = q.mean() + q.stddev() * tf.random.stateless_normal([16, 4], tf.cast(seed, tf.int32))
    expected = q.log_prob(z) - model.prior.distribution().log_prob(z)
    np.testing.assert_allclose(terms.kl, expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(terms.kl, _closed_form_kl(q), atol=1e-3)  # not the analytic KL


def test_gradients_reach_the_encoder_loc_and_scale_through_z(structured_data):
    # With kl_weight=0 the encoder gets gradients only through the sampled z.
    model = _tiny_vae(kl_weight=0.0)
    x = structured_data[0][:64]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model.elbo_terms(x, training=True).loss)
    gradient = tape.gradient(loss, model.encoder.head.kernel).numpy()
    loc_part, scale_part = gradient[:, :4], gradient[:, 4:]
    assert np.all(np.abs(loc_part).sum(axis=0) > 1e-6)
    assert np.all(np.abs(scale_part).sum(axis=0) > 1e-6)


# ---------------------------------------------------------------- learning


@pytest.fixture(scope="module")
def trained(structured_data):
    """(model, history): a tiny VAE trained only through fit on (images, labels) pairs."""
    keras.utils.set_random_seed(4321)
    train = structured_data[0]
    labels = np.arange(len(train)) % 4  # ignored by the model; fit must accept them
    model = _tiny_vae()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(train, labels, batch_size=100, epochs=25, verbose=0).history
    return model, history


def test_labels_are_ignored_and_the_four_metrics_are_logged(trained):
    assert set(trained[1]) == {"loss", "elbo", "reconstruction", "kl"}


def test_training_beats_the_per_pixel_independent_baseline(trained, structured_data):
    train, test = structured_data
    model, history = trained
    result = model.evaluate(test, batch_size=250, return_dict=True, verbose=0)
    baseline = _per_pixel_baseline_nll(train, test)
    # The data are one of 4 patterns with 5% of pixels flipped: the best possible model needs
    # 64 * H(0.05) + log 4 = 14.1 nats; independent pixels cannot model the pattern identity.
    assert -result["elbo"] < 0.6 * baseline, (result, baseline)
    assert history["loss"][-1] < history["loss"][0]
    np.testing.assert_allclose(result["loss"], -result["elbo"], rtol=1e-5)


def test_zero_kl_weight_leaves_the_kl_unpenalised(trained, structured_data):
    free = _fit(_tiny_vae(kl_weight=0.0), structured_data[0], epochs=10)
    np.testing.assert_array_equal(free["loss"], free["reconstruction"])
    # Unpenalised, the posterior spreads its codes far from the prior.
    assert free["kl"][-1] > 2 * trained[1]["kl"][-1], (free["kl"], trained[1]["kl"])


def test_kl_weight_is_a_variable_that_can_change_between_steps(structured_data):
    model = _tiny_vae(kl_weight=0.0)
    model.kl_weight = 3.0
    terms = model.elbo_terms(structured_data[0][:8])
    np.testing.assert_allclose(terms.loss, terms.reconstruction + 3.0 * terms.kl, rtol=1e-6)
    assert model.kl_weight == 3.0
    with pytest.raises(ValueError, match="kl_weight must be a non-negative finite number"):
        model.kl_weight = -1.0


# ---------------------------------------------------------------- public API


def test_encode_decode_sample_reconstruct_and_call_shapes(structured_data):
    model = _tiny_vae()
    x = structured_data[0][:5]
    assert model.encode(x).event_shape == [4]
    assert model.decode(np.zeros((3, 4), "float32")).event_shape == [8, 8, 1]
    assert model.reconstruct(x).shape == (5, 8, 8, 1)
    np.testing.assert_allclose(model(x), model.reconstruct(x))
    np.testing.assert_allclose(model.predict(x, verbose=0), model.reconstruct(x), rtol=1e-6)
    images = model.sample(6, seed=0).numpy()
    assert images.shape == (6, 8, 8, 1) and images.min() >= 0 and images.max() <= 1


def test_sample_is_reproducible_for_a_seed():
    model = _tiny_vae()
    np.testing.assert_array_equal(model.sample(4, seed=7), model.sample(4, seed=7))
    assert not np.allclose(model.sample(4, seed=7), model.sample(4, seed=8))


@pytest.mark.parametrize("options", [
    dict(architecture="conv", hidden_units=(4, 8), input_shape=(8, 8, 1)),
    dict(likelihood="normal"),
    dict(likelihood="normal", decoder=kv.NormalDecoder((8, 8, 1), scale=0.5)),
])
def test_other_architectures_and_likelihoods_train(options, structured_data):
    model = _tiny_vae(**options)
    history = _fit(model, structured_data[0][:200], epochs=1, batch_size=50)
    assert np.all(np.isfinite(history["loss"]))


# ---------------------------------------------------------------- save and load


def _assert_same_model(original, reloaded, x):
    assert max_abs_difference(original.get_weights(), reloaded.get_weights()) == 0
    q, q2 = original.encode(x), reloaded.encode(x)
    np.testing.assert_array_equal(q.mean(), q2.mean())
    np.testing.assert_array_equal(q.stddev(), q2.stddev())
    np.testing.assert_array_equal(original.decode(q.mean()).mean(),
                                  reloaded.decode(q.mean()).mean())
    # JSON-normalised: Keras' nested build configs hold tuples that reload as lists.
    assert json.dumps(reloaded.get_config(), sort_keys=True) == \
        json.dumps(original.get_config(), sort_keys=True)


def test_save_and_load_round_trip_of_a_model_trained_only_through_fit(tmp_path, trained,
                                                                      structured_data):
    x = structured_data[1][:300]
    model = trained[0]
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    _assert_same_model(model, reloaded, x[:10])
    # The noise stream is part of the state: evaluation continues identically.
    expected = model.evaluate(x, batch_size=100, return_dict=True, verbose=0)
    reloaded.compile(optimizer="adam")
    assert reloaded.evaluate(x, batch_size=100, return_dict=True, verbose=0) == expected


def test_save_and_load_with_user_supplied_networks(tmp_path, structured_data):
    inputs = keras.Input((8, 8, 1))
    features = keras.layers.Dense(6, activation="tanh")(keras.layers.Flatten()(inputs))
    encoder_body = keras.Model(inputs, features)  # a functional body
    decoder_body = keras.Sequential([keras.layers.Dense(16, activation="tanh"),
                                     keras.layers.Dense(8 * 8 * 3), keras.layers.Reshape((8, 8, 3))])
    model = kv.VAE(input_shape=(8, 8, 1), latent_dim=2, encoder=encoder_body,
                   decoder=decoder_body, kl_weight=0.5)
    assert model.decoder.head.kernel.shape == (3, 1)  # per-pixel head on the user's map
    x = structured_data[0][:100]
    path = tmp_path / "custom.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    _assert_same_model(model, reloaded, x[:10])
    assert reloaded.kl_weight == 0.5


def test_save_and_load_conv_normal_model(tmp_path):
    decoder = kv.NormalDecoder((8, 8, 2), scale="per_example", architecture="conv",
                               hidden_units=(4,))
    model = kv.VAE(input_shape=(8, 8, 2), latent_dim=3, architecture="conv", hidden_units=(4,),
                   decoder=decoder)
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 2)).astype("float32")
    path = tmp_path / "conv.keras"
    model.save(path)
    _assert_same_model(model, keras.models.load_model(path), x)


# ---------------------------------------------------------------- MirroredStrategy


def _train_under(strategy, x, epochs, optimizer, **options):
    with strategy.scope():
        keras.utils.set_random_seed(99)
        model = _tiny_vae(**options)
        model.compile(optimizer=optimizer())
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(16)
    history = model.fit(dataset, epochs=epochs, verbose=0).history
    return model, history


def _two_cpu_strategy():
    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.skip("needs the 2 logical CPUs that conftest configures before TF starts")
    # The process's one MirroredStrategy over them: a second one would reuse its collective
    # keys (distribute._mirrored_strategy).
    return distribute.make_strategy("mirrored")


@pytest.mark.parametrize("options", [
    # The ELBO's parity is shown through train.fit in test_distribute.py.
    {"objective": "iwae", "iw_samples": 3},
], ids=["iwae"])
def test_mirrored_strategy_trains_like_one_device(structured_data, options):
    x = structured_data[0][:64]
    adam = lambda: keras.optimizers.Adam(1e-2)  # noqa: E731
    single, single_history = _train_under(tf.distribute.get_strategy(), x, 3, adam, **options)
    mirrored, mirrored_history = _train_under(_two_cpu_strategy(), x, 3, adam, **options)
    # 12 Adam steps; a replica that took steps twice as large, or reused another's noise,
    # would differ by about the learning rate (1e-2).
    assert max_abs_difference(single.get_weights(), mirrored.get_weights()) < 1e-5
    for name in single_history:
        np.testing.assert_allclose(mirrored_history[name], single_history[name], rtol=1e-5)
    np.testing.assert_array_equal(mirrored._noise_seed.numpy()[1], 12)


def test_mirrored_strategy_logs_epoch_means_over_all_examples(structured_data):
    # 56 examples in batches of 16: the last batch has 8, so an unweighted mean of batch means,
    # the last batch's value, or a sum over replicas would all differ from the true mean.
    x = structured_data[0][:56]
    frozen = lambda: keras.optimizers.SGD(0.0)  # noqa: E731  (weights stay fixed)
    strategy = _two_cpu_strategy()
    with strategy.scope():
        keras.utils.set_random_seed(5)
        model = _tiny_vae()
        model.compile(optimizer=frozen())
    start = model._noise_seed.numpy()
    history = model.fit(tf.data.Dataset.from_tensor_slices(x).batch(16), epochs=1,
                        verbose=0).history

    model._noise_seed.assign(start)  # replay the same noise, batch by batch, on one device
    terms = [model.elbo_terms(x[i:i + 16]) for i in range(0, 56, 16)]
    for name in ("loss", "elbo", "reconstruction", "kl"):
        expected = np.concatenate([getattr(t, name).numpy() for t in terms]).mean()
        np.testing.assert_allclose(history[name][0], expected, rtol=1e-5)
    np.testing.assert_allclose(history["kl"][0], _closed_form_kl(model.encode(x)).mean(),
                               rtol=1e-5)


def test_mirrored_strategy_handles_a_first_batch_smaller_than_the_replicas(structured_data):
    # 3 examples over 2 replicas: Keras' own first-batch all-reduce failed here ("Inputs to
    # operation AddN must have the same size"); the VAE skips it (model._maybe_symbolic_build).
    x = structured_data[1][:3]
    with _two_cpu_strategy().scope():
        model = _tiny_vae()
        model.compile(optimizer=keras.optimizers.SGD(0.0))
    # evaluate() is also what fit() runs for validation_data.
    metrics = model.evaluate(tf.data.Dataset.from_tensor_slices(x).batch(4), return_dict=True,
                             verbose=0)
    # The KL is analytic, so it does not depend on how the noise rows were shared out.
    np.testing.assert_allclose(metrics["kl"], _closed_form_kl(model.encode(x)).mean(),
                               rtol=1e-5)
    assert np.isfinite(metrics["elbo"])


# ---------------------------------------------------------------- bad arguments and data


@pytest.mark.parametrize("options, message", [
    (dict(latent_dim=0), "latent_dim must be a positive integer; received 0"),
    (dict(latent_dim=-2), "latent_dim must be a positive integer; received -2"),
    (dict(likelihood="gaussian"),
     "Unknown likelihood 'gaussian': expected one of 'bernoulli', 'normal'"),
    (dict(architecture="rnn"), "Unknown architecture 'rnn': expected one of 'mlp', 'conv'"),
    (dict(architecture="conv", input_shape=(64,)),
     r"architecture='conv' takes images of shape \(height, width, channels\); "
     r"received input_shape=\(64,\)"),
    (dict(architecture="conv", hidden_units=(4, 4, 4), input_shape=(12, 12, 1)),
     "needs height and width divisible by 8; received input_shape=\\(12, 12, 1\\)"),
    (dict(input_shape=(0, 8)), "input_shape must be a non-empty tuple of positive integers"),
    (dict(hidden_units=(32, 0)), "hidden_units must be a non-empty sequence of positive"),
    (dict(kl_weight=-0.1), "kl_weight must be a non-negative finite number; received -0.1"),
    (dict(likelihood="bernoulli", decoder=kv.NormalDecoder((8, 8, 1))),
     "likelihood='bernoulli' conflicts with the decoder, a NormalDecoder"),
    (dict(latent_dim=3, encoder=kv.GaussianEncoder(latent_dim=5)),
     "Inconsistent latent dimensions"),
])
def test_bad_arguments_fail_at_construction_naming_the_value(options, message):
    with pytest.raises(ValueError, match=message):
        _tiny_vae(**options)


@pytest.mark.parametrize("scale, message", [
    (255.0, r"needs data in \[0, 1\]; scale images to \[0, 1\]"),
    (-1.0, r"needs data in \[0, 1\]"),
])
def test_bernoulli_data_outside_unit_interval_fails_clearly(scale, message, structured_data):
    model = _tiny_vae()
    model.compile(optimizer="adam")
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        model.fit(structured_data[0][:32] * scale, epochs=1, verbose=0)


@pytest.mark.parametrize("likelihood", ["bernoulli", "normal"])
def test_non_finite_inputs_fail_clearly_instead_of_a_nan_loss(likelihood, structured_data):
    x = structured_data[0][:32].copy()
    x[3, 2, 2, 0] = np.nan
    model = _tiny_vae(likelihood=likelihood)
    model.compile(optimizer="adam")
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or inf in its input data"):
        model.fit(x, epochs=1, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or inf in its input data"):
        model.evaluate(x, verbose=0)


def test_normal_likelihood_accepts_unbounded_data():
    model = _tiny_vae(likelihood="normal")
    x = 10 * np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype("float32")
    assert np.all(np.isfinite(model.elbo_terms(x).loss))


def test_data_of_the_wrong_shape_fails_with_the_expected_shape(structured_data):
    model = _tiny_vae()
    with pytest.raises(ValueError, match=r"expects examples of shape \(8, 8, 1\); received a "
                                         r"batch of shape \(4, 64\)"):
        model.elbo_terms(structured_data[0][:4].reshape(4, 64))


# ---------------------------------------------------------------- the model protocol


def test_the_vae_implements_the_protocol():
    model = _tiny_vae()
    assert isinstance(model, protocol.LatentVariableModel)
    assert model.latent_sizes == {"z": 4} and model.image_shape == (8, 8, 1)


def test_log_importance_weights_are_log_p_x_z_minus_log_q_at_seeded_draws(structured_data):
    model = _tiny_vae()
    x = structured_data[1][:6]
    weights = model.log_importance_weights(x, 5, seed=[3, 10]).numpy()
    q, prior = model.encode(x), model.prior_distribution()
    for k in range(5):  # draw k from the stateless seed [3, 10 + k] alone
        z = q.mean() + q.stddev() * tf.random.stateless_normal([6, 4], seed=[3, 10 + k])
        expected = model.decode(z).log_prob(x) + prior.log_prob(z) - q.log_prob(z)
        np.testing.assert_allclose(weights[k], expected, rtol=1e-5)
    # Chunks of draws give the same weights: 2 draws at [3, 10], then 3 at [3, 12].
    chunks = np.concatenate([model.log_importance_weights(x, 2, seed=[3, 10]),
                             model.log_importance_weights(x, 3, seed=[3, 12])])
    np.testing.assert_allclose(chunks, weights, rtol=1e-6)
    np.testing.assert_array_equal(model.log_importance_weights(x, 2, seed=3),
                                  model.log_importance_weights(x, 2, seed=[3, 0]))


def test_the_mean_log_weight_is_the_elbo_in_expectation(structured_data):
    # The ELBO derives from the weights: E_q[log w] = E_q[log p(x|z)] - KL(q || p), which
    # training computes with the analytic KL (elbo_terms).
    model = _tiny_vae()
    x = structured_data[1][:4]
    log_weights = model.log_importance_weights(x, 4000, seed=1).numpy()
    q = model.encode(x)
    z = q.sample(4000, seed=[5, 6])
    log_likelihood = model.log_likelihood_at(x, z).numpy()  # [4000, 4], other draws
    analytic = log_likelihood.mean(0) - _closed_form_kl(q)
    # 5 standard errors of the difference of two independent 4000-draw means.
    spread = np.sqrt((log_weights.var(0) + log_likelihood.var(0)) / 4000)
    estimate = kv.objectives.monte_carlo_elbo(log_weights).numpy()
    assert np.all(np.abs(estimate - analytic) < 5 * spread), (estimate, analytic, spread)
    assert np.all(kv.objectives.iwae_bound(log_weights).numpy() > estimate)  # L_K is tighter


def test_elbo_terms_with_a_seed_repeat_the_stream_and_leave_it_alone(structured_data):
    model = _tiny_vae(objective="iwae", iw_samples=3)
    x = structured_data[1][:8]
    state = model._noise_seed.numpy()
    seeded = model.elbo_terms(x, seed=[11, 4])
    np.testing.assert_array_equal(model._noise_seed.numpy(), state)  # untouched
    model._noise_seed.assign([11, 4])
    from_stream = model.elbo_terms(x)
    for name in kv.objectives.ELBOTerms._fields:
        np.testing.assert_array_equal(getattr(seeded, name), getattr(from_stream, name))


def test_latent_diagnostics_give_the_posterior_mean_and_kl_per_dimension(structured_data):
    model = _tiny_vae()
    x = structured_data[1][:10]
    (name, layer), = model.latent_diagnostics(x, seed=[0, 1]).items()
    q = model.encode(x)
    mu, s = q.mean().numpy().astype("float64"), q.stddev().numpy().astype("float64")
    assert name == "z"
    np.testing.assert_allclose(layer.posterior_mean, mu, rtol=1e-6)
    np.testing.assert_allclose(layer.kl_per_dimension, 0.5 * (s**2 + mu**2 - 1 - np.log(s**2)),
                               rtol=1e-4, atol=1e-6)
    # A prior without a per-dimension KL (a mixture) reports NaN, not a wrong figure.
    mixture = _tiny_vae(prior=_MixturePrior(4)).latent_diagnostics(x, seed=[0, 1])["z"]
    assert np.all(np.isnan(mixture.kl_per_dimension))
