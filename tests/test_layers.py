"""Distribution layers: shapes, closed-form log-likelihoods with hand-set weights, safe scales,
user-supplied bodies, configs and argument errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import keras_vae as kv
from keras_vae.layers import MIN_SCALE, positive_scale

tfd = tfp.distributions


def _softplus(x):
    return np.logaddexp(0.0, x)


def _linear_decoder(layer_class, latent_dim, output_shape, rng, **kwargs):
    """A decoder whose body is the identity, with random hand-set head weights: its
    parameters are exactly z @ kernel + bias, computed again in NumPy by the tests."""
    decoder = layer_class(output_shape, network=keras.layers.Identity(), **kwargs)
    decoder.build((None, latent_dim))
    kernel = rng.normal(size=decoder.head.kernel.shape).astype("float32")
    bias = rng.normal(size=decoder.head.bias.shape).astype("float32")
    decoder.head.set_weights([kernel, bias])
    return decoder, kernel, bias


# ---------------------------------------------------------------- GaussianEncoder


def test_encoder_returns_diagonal_normal_with_hand_set_parameters():
    rng = np.random.default_rng(0)
    encoder = kv.GaussianEncoder(latent_dim=3, network=keras.layers.Identity())
    encoder.build((None, 4))
    kernel = rng.normal(size=(4, 6)).astype("float32")
    bias = rng.normal(size=6).astype("float32")
    encoder.head.set_weights([kernel, bias])
    x = rng.normal(size=(5, 4)).astype("float32")

    q = encoder(x)

    assert isinstance(q, tfd.Independent)
    assert q.batch_shape == [5] and q.event_shape == [3]
    parameters = x @ kernel + bias
    np.testing.assert_allclose(q.mean(), parameters[:, :3], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q.stddev(), _softplus(parameters[:, 3:]) + MIN_SCALE,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("raw", [-1e30, -1e4, -200.0, 0.0, 200.0, 1e4, 1e30])
def test_scale_is_positive_and_finite_for_extreme_pre_activations(raw):
    scale = positive_scale(tf.constant([raw], tf.float32)).numpy()[0]
    assert np.isfinite(scale) and scale > 0
    q = tfd.Normal(0.0, scale)
    assert np.isfinite(q.log_prob(0.0).numpy())


def test_encoder_conv_and_mlp_bodies_give_the_same_event_shape():
    x = np.zeros((2, 28, 28, 1), "float32")
    for architecture in ("mlp", "conv"):
        q = kv.GaussianEncoder(latent_dim=7, architecture=architecture)(x)
        assert q.event_shape == [7] and q.batch_shape == [2]


def test_encoder_accepts_a_user_network_of_any_output_rank():
    body = keras.Sequential([keras.layers.Conv2D(4, 3, padding="same")])
    encoder = kv.GaussianEncoder(latent_dim=2, network=body)
    q = encoder(np.zeros((3, 6, 6, 1), "float32"))
    assert q.event_shape == [2] and q.batch_shape == [3]
    assert {id(w) for w in body.trainable_weights} <= {id(w) for w in encoder.trainable_weights}


# ---------------------------------------------------------------- BernoulliDecoder


def test_bernoulli_log_prob_is_minus_summed_binary_cross_entropy():
    rng = np.random.default_rng(1)
    decoder, kernel, bias = _linear_decoder(kv.BernoulliDecoder, 3, (2, 2, 1), rng)
    z = rng.normal(size=(6, 3)).astype("float32")
    x = (rng.random((6, 2, 2, 1)) > 0.5).astype("float32")

    p = decoder(z)

    logits = (z @ kernel + bias).reshape(6, 2, 2, 1).astype("float64")
    # -BCE = x log sigmoid(l) + (1 - x) log sigmoid(-l), with log sigmoid(l) = -softplus(-l).
    expected = np.sum(-x * _softplus(-logits) - (1 - x) * _softplus(logits), axis=(1, 2, 3))
    assert p.event_shape == [2, 2, 1] and p.batch_shape == [6]
    np.testing.assert_allclose(p.log_prob(x), expected, rtol=1e-5)
    np.testing.assert_allclose(p.mean(), 1 / (1 + np.exp(-logits)), rtol=1e-5, atol=1e-6)


def test_logit_bernoulli_equals_tfp_bernoulli_in_value_and_gradient():
    # One softplus instead of TFP's two: the same function of x in [0, 1] and the logits,
    # including large |l| where a naive log(sigmoid(l)) would underflow.
    rng = np.random.default_rng(2)
    logits = tf.constant(np.concatenate([rng.normal(scale=4, size=200), [-60.0, 60.0]]),
                         tf.float32)
    for x in (rng.random(202) > 0.5, rng.random(202), np.r_[rng.random(200), 1.0, 0.0]):
        x = tf.constant(x, tf.float32)
        values, gradients = [], []
        for distribution in (kv.layers.LogitBernoulli, tfd.Bernoulli):
            with tf.GradientTape() as tape:
                tape.watch(logits)
                log_prob = distribution(logits=logits, dtype=tf.float32).log_prob(x)
                total = tf.reduce_sum(log_prob)
            values.append(log_prob.numpy())
            gradients.append(tape.gradient(total, logits).numpy())
        np.testing.assert_allclose(values[0], values[1], rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-6, atol=1e-6)
        assert np.all(np.isfinite(values[0]))
    decoder = kv.BernoulliDecoder(output_shape=(2, 2, 1), hidden_units=(4,))
    assert isinstance(decoder(np.zeros((1, 3), "float32")).distribution, tfd.Bernoulli)


def test_bernoulli_decoder_conv_body_outputs_image_shape():
    decoder = kv.BernoulliDecoder((28, 28, 1), architecture="conv")
    p = decoder(np.zeros((2, 5), "float32"))
    assert p.event_shape == [28, 28, 1]
    assert decoder.head.kernel.shape[-1] == 1  # a per-pixel head on the upsampled map


def test_decoder_user_network_producing_a_feature_map_gets_a_per_pixel_head():
    body = keras.Sequential([keras.layers.Dense(4 * 4 * 8), keras.layers.Reshape((4, 4, 8))])
    decoder = kv.BernoulliDecoder((4, 4, 3), network=body)
    p = decoder(np.zeros((2, 5), "float32"))
    assert p.event_shape == [4, 4, 3]
    assert decoder.head.kernel.shape == (8, 3)


def test_decoder_user_network_with_unmappable_output_fails_clearly():
    body = keras.Sequential([keras.layers.Dense(5 * 5 * 8), keras.layers.Reshape((5, 5, 8))])
    with pytest.raises(ValueError, match=r"cannot be mapped to images of shape \(4, 4, 3\)"):
        kv.BernoulliDecoder((4, 4, 3), network=body)(np.zeros((2, 5), "float32"))


# ---------------------------------------------------------------- NormalDecoder


def _gaussian_log_density(x, loc, scale):
    """-0.5 sum(((x - mu) / sigma)^2) - sum(log sigma) - d/2 log(2 pi), per example."""
    axes = tuple(range(1, x.ndim))
    d = np.prod(x.shape[1:])
    return (-0.5 * np.sum(((x - loc) / scale) ** 2, axis=axes)
            - np.sum(np.log(np.broadcast_to(scale, x.shape)), axis=axes)
            - 0.5 * d * np.log(2 * np.pi))


def test_normal_decoder_fixed_scale_matches_closed_form():
    rng = np.random.default_rng(2)
    decoder, kernel, bias = _linear_decoder(kv.NormalDecoder, 3, (5,), rng, scale=0.3)
    z = rng.normal(size=(4, 3)).astype("float32")
    x = rng.normal(size=(4, 5)).astype("float32")
    loc = (z @ kernel + bias).astype("float64")
    np.testing.assert_allclose(decoder(z).log_prob(x), _gaussian_log_density(x, loc, 0.3),
                               rtol=1e-5)
    assert decoder.trainable_weights == [decoder.head.kernel, decoder.head.bias]


def test_normal_decoder_per_pixel_scale_is_a_learned_weight():
    rng = np.random.default_rng(3)
    decoder, kernel, bias = _linear_decoder(kv.NormalDecoder, 3, (2, 3), rng, scale="per_pixel")
    raw = rng.normal(size=(2, 3)).astype("float32")
    decoder.raw_scale.assign(raw)
    z = rng.normal(size=(4, 3)).astype("float32")
    x = rng.normal(size=(4, 2, 3)).astype("float32")
    loc = (z @ kernel + bias).reshape(4, 2, 3)
    scale = _softplus(raw) + decoder.min_scale
    np.testing.assert_allclose(decoder(z).log_prob(x), _gaussian_log_density(x, loc, scale),
                               rtol=1e-5)
    assert any(w is decoder.raw_scale for w in decoder.trainable_weights)


def test_normal_decoder_per_pixel_scale_starts_at_one():
    decoder = kv.NormalDecoder((3,), scale="per_pixel")
    p = decoder(np.zeros((2, 4), "float32"))
    np.testing.assert_allclose(p.stddev(), 1.0 + decoder.min_scale, rtol=1e-6)


def test_normal_decoder_per_example_scale_comes_from_the_network():
    rng = np.random.default_rng(4)
    decoder, kernel, bias = _linear_decoder(kv.NormalDecoder, 3, (5,), rng, scale="per_example")
    z = rng.normal(size=(4, 3)).astype("float32")
    x = rng.normal(size=(4, 5)).astype("float32")
    parameters = (z @ kernel + bias).reshape(4, 5, 2)
    loc, scale = parameters[..., 0], _softplus(parameters[..., 1]) + decoder.min_scale
    np.testing.assert_allclose(decoder(z).log_prob(x), _gaussian_log_density(x, loc, scale),
                               rtol=1e-5)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), "learned", None, True])
def test_normal_decoder_rejects_bad_scale(scale):
    with pytest.raises(ValueError, match="scale must be a positive float or one of"):
        kv.NormalDecoder((3,), scale=scale)


# ---------------------------------------------------------------- what each head says


def _normal_with_large_scales(scale):
    def make():
        decoder = kv.NormalDecoder((2, 3), scale=scale, network=keras.layers.Identity())
        decoder.build((None, 3))
        if scale == "per_example":  # raw scales of 200: TFLite's softplus would give inf
            kernel, bias = decoder.head.get_weights()
            decoder.head.set_weights([kernel, np.tile([0.0, 200.0], 6).astype("float32")])
        return decoder
    return make


@pytest.mark.parametrize("make, names", [
    (lambda: kv.BernoulliDecoder((2, 3), network=keras.layers.Identity()), ["mean", "logits"]),
    (_normal_with_large_scales("per_pixel"), ["mean", "scale"]),
    (_normal_with_large_scales("per_example"), ["mean", "scale"]),
    (_normal_with_large_scales(0.5), ["mean", "scale"]),
])
def test_export_outputs_equal_the_distribution_and_each_is_described(make, names):
    decoder = make()
    if not decoder.built:
        decoder.build((None, 3))
    z = np.random.default_rng(5).normal(size=(4, 3)).astype("float32")
    outputs = decoder.export_outputs(z)
    reference = decoder.reference_outputs(decoder(z))
    assert list(outputs) == names and sorted(reference) == sorted(names)
    assert sorted(decoder.output_meanings()) == sorted(names)
    for name in names:
        assert outputs[name].shape == (4, 2, 3)
        np.testing.assert_allclose(outputs[name], reference[name], rtol=1e-6, atol=1e-6)


def test_the_exported_mean_needs_every_parameter_but_a_per_pixel_scale():
    bernoulli = kv.BernoulliDecoder((2, 3), hidden_units=(4,))
    normal = kv.NormalDecoder((2, 3), hidden_units=(4,))
    for decoder in (bernoulli, normal):
        decoder.build((None, 3))
    assert bernoulli.count_mean_params() == bernoulli.count_params()
    assert normal.count_mean_params() == normal.count_params() - 6


@pytest.mark.parametrize("layer_class, values, message", [
    (kv.BernoulliDecoder, [0.0, 1.5], r"needs data in \[0, 1\]"),
    (kv.BernoulliDecoder, [-0.5, 1.0], r"needs data in \[0, 1\]"),
    (kv.BernoulliDecoder, [0.0, np.nan], "NaN or inf in its input data"),
    (kv.NormalDecoder, [0.0, np.inf], "NaN or inf in its input data"),
])
def test_each_head_checks_the_data_it_needs(layer_class, values, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        layer_class((2,)).data_checks(tf.constant(values, tf.float32))


def test_normal_data_need_only_be_finite():
    kv.NormalDecoder((2,)).data_checks(tf.constant([-10.0, 300.0]))  # no error


def test_bernoulli_data_are_drawn_binarised_and_normal_data_as_given():
    from keras_vae import data

    intensities = tf.fill((100, 100), 0.3)
    bernoulli, normal = kv.BernoulliDecoder((100,)), kv.NormalDecoder((100,))
    drawn = bernoulli.draw_data(intensities, [4, 2]).numpy()
    assert set(np.unique(drawn)) == {0.0, 1.0}
    # 10,000 Bernoulli(0.3) draws: standard error 0.0046, so 0.02 is over 4 of them.
    assert abs(drawn.mean() - 0.3) < 0.02
    np.testing.assert_array_equal(drawn, data.binarize(intensities, [4, 2]))
    assert normal.draw_data(intensities, [4, 2]) is intensities
    assert bernoulli.binarize and "binarised" in bernoulli.data_preparation
    assert not normal.binarize and normal.data_preparation is None


# ---------------------------------------------------------------- configs and errors


@pytest.mark.parametrize("layer", [
    kv.GaussianEncoder(latent_dim=4, architecture="conv", hidden_units=(8,)),
    kv.BernoulliDecoder((4, 4, 1), hidden_units=(16, 8), activation="tanh"),
    kv.NormalDecoder((4, 4, 1), scale=0.25, min_scale=1e-2),
    kv.NormalDecoder((4, 4, 1), scale="per_example",
                     network=keras.Sequential([keras.layers.Dense(6)])),
])
def test_layer_config_round_trip(layer):
    config = layer.get_config()
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config


@pytest.mark.parametrize("latent_dim", [0, -3, 2.5, "8", True])
def test_encoder_rejects_bad_latent_dim(latent_dim):
    with pytest.raises(ValueError, match=f"latent_dim must be a positive integer; "
                                         f"received {latent_dim!r}"):
        kv.GaussianEncoder(latent_dim=latent_dim)


def test_layers_reject_unknown_architecture_listing_valid_values():
    with pytest.raises(ValueError, match="Unknown architecture 'rnn': expected one of "
                                         "'mlp', 'conv'"):
        kv.BernoulliDecoder((4,), architecture="rnn")


def test_network_must_be_a_keras_layer():
    with pytest.raises(TypeError, match="network must be a Keras layer or model"):
        kv.GaussianEncoder(latent_dim=2, network=lambda x: x)
