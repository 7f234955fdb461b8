"""Every likelihood head's log_prob and mean against its closed form on hand-set parameters:
the continuous Bernoulli constant (quadrature and the paper's formula, at and near 1/2),
Laplace, the discretised logistic's bin masses (60-digit CDF differences, summing to 1 over
the 256 levels, extreme parameters included), the mixture (logsumexp of weighted component
masses) and the categorical (softmax cross-entropy)."""

import keras
import mpmath
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import integrate, special

from keras_vae.layers import (CategoricalDecoder, ContinuousBernoulliDecoder, LaplaceDecoder,
                              LogisticDecoder, LogisticMixtureDecoder)
from keras_vae.layers.continuous_bernoulli import continuous_bernoulli_mean, log_normalizer
from keras_vae.layers.logistic import DiscretizedLogistic, intensity_mean, log_level_masses
from keras_vae.layers.logistic_mixture import DiscretizedLogisticMixture

LEVELS = np.arange(256, dtype="float32")


def _hand_set(decoder, input_dim, seed=0):
    """Builds ``decoder`` on an identity body and sets its head to random weights: the
    parameters are then z @ kernel + bias, known exactly. Returns (kernel, bias)."""
    decoder.build((None, input_dim))
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=decoder.head.kernel.shape).astype("float32")
    bias = rng.normal(size=decoder.head.bias.shape).astype("float32")
    decoder.head.set_weights([kernel, bias])
    return kernel, bias


# ---------------------------------------------------------------- continuous Bernoulli

LOGITS = [-60.0, -8.0, -1.0, -0.5001, -0.5, -0.4999, -0.1, -1e-3, 0.0, 1e-6, 1e-3, 0.3, 0.5,
          0.7, 3.0, 20.0, 60.0]


def _unnormalised(x, logit):
    return np.exp(x * logit - np.logaddexp(0.0, logit))  # lambda^x (1 - lambda)^(1 - x)


@pytest.mark.parametrize("logit", LOGITS)
def test_continuous_bernoulli_constant_normalises_the_density(logit):
    # log C = -log of the integral of lambda^x (1 - lambda)^(1 - x) over [0, 1] (quadrature in
    # float64, relative error ~1e-12); float32 gives log C to a few 1e-7.
    area, _ = integrate.quad(_unnormalised, 0.0, 1.0, args=(logit,), epsabs=0,
                             epsrel=1e-12, limit=200)
    np.testing.assert_allclose(log_normalizer(tf.constant(logit)), -np.log(area), atol=1e-6,
                               rtol=1e-6)
    mean, _ = integrate.quad(lambda x: x * _unnormalised(x, logit) / area, 0.0, 1.0,
                             epsabs=0, epsrel=1e-12, limit=200)
    np.testing.assert_allclose(continuous_bernoulli_mean(tf.constant(logit)), mean, atol=1e-6)


def test_continuous_bernoulli_constant_equals_the_papers_formula_at_and_near_one_half():
    mpmath.mp.dps = 40
    for logit in LOGITS:
        probability = 1 / (1 + mpmath.exp(-mpmath.mpf(logit)))
        if logit == 0.0:
            constant, mean = mpmath.mpf(2), mpmath.mpf(0.5)  # the limits at lambda = 1/2
        else:
            constant = 2 * mpmath.atanh(1 - 2 * probability) / (1 - 2 * probability)
            mean = (probability / (2 * probability - 1)
                    + 1 / (2 * mpmath.atanh(1 - 2 * probability)))
        np.testing.assert_allclose(log_normalizer(tf.constant(logit)),
                                   float(mpmath.log(constant)), atol=3e-7, rtol=3e-7)
        np.testing.assert_allclose(continuous_bernoulli_mean(tf.constant(logit)), float(mean),
                                   atol=3e-7)
    assert float(log_normalizer(tf.constant(0.0))) == pytest.approx(np.log(2), abs=1e-7)


def test_continuous_bernoulli_gradients_are_finite_and_smooth_at_one_half():
    logits = tf.constant([-0.5001, -0.4999, -1e-4, 0.0, 1e-4, 0.4999, 0.5001])
    with tf.GradientTape() as tape:
        tape.watch(logits)
        values = log_normalizer(logits)
    gradient = tape.gradient(values, logits).numpy()
    # d log C / dl = 1/l - 1/sinh(l) ~ l/6 near 0: the two sides of the cut-off agree.
    values = logits.numpy().astype("float64")
    safe = np.where(values == 0, 1.0, values)
    exact = np.where(values == 0, 0.0, 1 / safe - 1 / np.sinh(safe))
    np.testing.assert_allclose(gradient, exact, atol=2e-6)


def test_continuous_bernoulli_head_log_prob_is_bce_plus_the_constant():
    decoder = ContinuousBernoulliDecoder((2, 3), network=keras.layers.Identity())
    kernel, bias = _hand_set(decoder, 4)
    rng = np.random.default_rng(1)
    z = rng.normal(size=(5, 4)).astype("float32")
    x = rng.random((5, 2, 3)).astype("float32")
    logits = (z.astype("float64") @ kernel + bias).reshape(5, 2, 3)
    probability = special.expit(logits)
    log_constant = np.log(2 * np.arctanh(1 - 2 * probability) / (1 - 2 * probability))
    expected = np.sum(x * logits - np.logaddexp(0, logits) + log_constant, axis=(1, 2))
    distribution = decoder(z)
    np.testing.assert_allclose(distribution.log_prob(x), expected, rtol=1e-5)
    # TFP's own continuous Bernoulli gives the same density (its mean too).
    reference = tfp.distributions.ContinuousBernoulli(logits=tf.constant(logits, tf.float32))
    np.testing.assert_allclose(distribution.distribution.log_prob(x), reference.log_prob(x),
                               atol=1e-5)
    np.testing.assert_allclose(distribution.mean(), reference.mean(), atol=1e-5)
    assert decoder.data_kind == "unit_interval" and not decoder.binarize


# ---------------------------------------------------------------- Laplace


@pytest.mark.parametrize("scale", ["per_pixel", "per_example", 0.7])
def test_laplace_log_prob_matches_the_closed_form(scale):
    decoder = LaplaceDecoder((2, 3), scale=scale, network=keras.layers.Identity())
    kernel, bias = _hand_set(decoder, 4)
    rng = np.random.default_rng(2)
    parameters = decoder.num_parameters
    if scale == "per_pixel":
        raw = rng.normal(size=(2, 3)).astype("float32")
        decoder.raw_scale.assign(raw)
    z = rng.normal(size=(5, 4)).astype("float32")
    x = rng.normal(size=(5, 2, 3)).astype("float32")
    outputs = (z.astype("float64") @ kernel + bias).reshape(5, 2, 3, parameters)
    mu = outputs[..., 0]
    b = {"per_pixel": lambda: np.logaddexp(0.0, raw) + 1e-3,  # softplus + min_scale
         "per_example": lambda: np.logaddexp(0.0, outputs[..., 1]) + 1e-3,
         0.7: lambda: 0.7}[scale]()
    expected = np.sum(-np.abs(x - mu) / b - np.log(2 * b), axis=(1, 2))
    np.testing.assert_allclose(decoder(z).log_prob(x), expected, rtol=1e-5)
    assert decoder.data_kind == "real"


# ---------------------------------------------------------------- discretised logistic


def _reference_log_masses(loc, scale, num_levels=256):
    """log P(k), k = 0 .. L - 1, from CDF differences in 60-digit arithmetic: left of loc
    as CDF(upper) - CDF(lower), right of it as SF(lower) - SF(upper), so that no difference
    of two numbers near 1 loses the tail masses."""
    mpmath.mp.dps = 60
    top = num_levels - 1
    loc, scale = mpmath.mpf(float(loc)), mpmath.mpf(float(scale))

    def cdf(u):
        return 1 / (1 + mpmath.exp(-(u - loc) / scale))

    def sf(u):
        return 1 / (1 + mpmath.exp((u - loc) / scale))

    masses = []
    for k in range(num_levels):
        lower, upper = (k - mpmath.mpf(0.5)) / top, (k + mpmath.mpf(0.5)) / top
        if k / mpmath.mpf(top) > loc:
            mass = (1 if k == 0 else sf(lower)) - (0 if k == top else sf(upper))
        else:
            mass = (1 if k == top else cdf(upper)) - (0 if k == 0 else cdf(lower))
        masses.append(float(mpmath.log(mass)))
    return np.array(masses)


# loc and scale on the intensity scale: ordinary, a spike on one level, far outside [0, 1]
# on either side, very wide, and the scale floor.
EXTREMES = [(0.3, 0.05), (0.5, 1e-4), (128 / 255, 1e-4), (-5.0, 0.01), (6.0, 0.01),
            (0.2, 100.0), (1.0, 1e-4), (0.0, 3e-3)]


@pytest.mark.parametrize("loc, scale", EXTREMES)
def test_discretised_logistic_masses_are_exact_and_sum_to_one(loc, scale):
    log_masses = log_level_masses(LEVELS, tf.constant(loc), tf.constant(scale), 256).numpy()
    assert np.all(np.isfinite(log_masses))  # no bin underflows to log 0, even at s = 1e-4
    reference = _reference_log_masses(loc, scale)
    # Every bin agrees, the far tails (log P = -1e4, kept by the exact form) relatively.
    # Tolerance: the float32 edge (L - 1) loc - x -+ 1/2 is off by up to an ulp of 255 loc
    # (1.5e-5 levels), which moves a = edge / ((L - 1) s) by 1.5e-5 / (255 s): 6e-4 at the
    # scale floor s = 1e-4, and d log P / da is at most 1.
    finite = np.isfinite(reference)
    np.testing.assert_allclose(log_masses[finite], reference[finite], rtol=1e-5,
                               atol=1e-5 + 1.5e-5 / (255 * scale))
    np.testing.assert_allclose(special.logsumexp(log_masses.astype("float64")), 0.0,
                               atol=1e-5)
    masses = np.exp(reference)
    # The mean is E[x] as an intensity, E[x] / 255.
    np.testing.assert_allclose(
        intensity_mean(tf.constant([loc]), tf.constant([scale]), 256)[0],
        np.sum(LEVELS * masses) / 255, rtol=1e-5, atol=1e-6)


def test_discretised_logistic_head_log_prob_sums_the_pixel_masses():
    decoder = LogisticDecoder((2, 3), network=keras.layers.Identity())
    kernel, bias = _hand_set(decoder, 4)
    rng = np.random.default_rng(3)
    z = rng.normal(size=(2, 4)).astype("float32")
    x = rng.integers(0, 256, size=(2, 2, 3)).astype("float32")
    outputs = (z.astype("float64") @ kernel + bias).reshape(2, 2, 3, 2)
    loc, scale = outputs[..., 0], np.logaddexp(0, outputs[..., 1]) + 1e-4
    expected = [sum(_reference_log_masses(loc[i][p], scale[i][p])[int(x[i][p])]
                    for p in np.ndindex(2, 3)) for i in range(2)]
    np.testing.assert_allclose(decoder(z).log_prob(x), expected, rtol=1e-5)
    assert decoder.data_kind == "levels" and decoder.num_levels == 256


def test_discretised_logistic_has_no_nan_gradients_at_extremes():
    loc = tf.constant([[-5.0, 0.5, 6.0, 0.5]])
    scale = tf.constant([[0.01, 1e-4, 0.01, 100.0]])
    x = tf.constant([[0.0, 128.0, 255.0, 17.0]])
    with tf.GradientTape() as tape:
        tape.watch([loc, scale])
        total = tf.reduce_sum(DiscretizedLogistic(loc, scale).log_prob(x))
    for gradient in tape.gradient(total, [loc, scale]):
        assert np.all(np.isfinite(gradient))


# ---------------------------------------------------------------- mixture


def test_logistic_mixture_is_the_logsumexp_of_weighted_component_masses():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(3, 4)).astype("float32")
    loc = rng.uniform(-0.2, 1.2, size=(3, 4)).astype("float32")
    scale = np.exp(rng.uniform(-8, 0, size=(3, 4))).astype("float32")
    x = np.array([0.0, 77.0, 255.0], "float32")
    mixture = DiscretizedLogisticMixture(logits, loc, scale)
    log_weights = logits - special.logsumexp(logits, axis=-1, keepdims=True)
    expected = [special.logsumexp([log_weights[i, k] + _reference_log_masses(
        loc[i, k], scale[i, k])[int(x[i])] for k in range(4)]) for i in range(3)]
    np.testing.assert_allclose(mixture.log_prob(x), expected, rtol=1e-5)
    # Over the 256 levels the mixture's masses sum to 1, and its mean is sum_k pi_k E_k[x].
    all_levels = mixture.log_prob(LEVELS[:, None]).numpy()  # [256, 3]
    np.testing.assert_allclose(special.logsumexp(all_levels.astype("float64"), axis=0), 0.0,
                               atol=1e-5)
    np.testing.assert_allclose(mixture.mean(),
                               (np.exp(all_levels) * LEVELS[:, None]).sum(0) / 255, rtol=1e-4)
    # One component is the discretised logistic itself.
    single = DiscretizedLogisticMixture(logits[:, :1], loc[:, :1], scale[:, :1])
    np.testing.assert_allclose(single.log_prob(x), DiscretizedLogistic(
        loc[:, 0], scale[:, 0]).log_prob(x), rtol=1e-6)


def test_logistic_mixture_head_splits_logits_locations_and_scales():
    decoder = LogisticMixtureDecoder((2,), num_components=3, network=keras.layers.Identity())
    kernel, bias = _hand_set(decoder, 4)
    assert decoder.num_parameters == 9 and decoder.head.kernel.shape == (4, 18)
    z = np.random.default_rng(5).normal(size=(1, 4)).astype("float32")
    outputs = (z.astype("float64") @ kernel + bias).reshape(1, 2, 9)
    x = np.array([[3.0, 250.0]], "float32")
    expected = 0.0
    for pixel in range(2):
        logits, loc, raw = np.split(outputs[0, pixel], 3)
        scale = np.logaddexp(0, raw) + 1e-4
        log_weights = logits - special.logsumexp(logits)
        expected += special.logsumexp([log_weights[k] + _reference_log_masses(
            loc[k], scale[k])[int(x[0, pixel])] for k in range(3)])
    np.testing.assert_allclose(decoder(z).log_prob(x), [expected], rtol=1e-5)


# ---------------------------------------------------------------- categorical


def test_categorical_log_prob_is_minus_softmax_cross_entropy():
    decoder = CategoricalDecoder((2, 3), num_levels=5, network=keras.layers.Identity())
    kernel, bias = _hand_set(decoder, 4)
    rng = np.random.default_rng(6)
    z = rng.normal(size=(4, 4)).astype("float32")
    x = rng.integers(0, 5, size=(4, 2, 3)).astype("float32")
    logits = (z.astype("float64") @ kernel + bias).reshape(4, 2, 3, 5)
    log_softmax = logits - special.logsumexp(logits, axis=-1, keepdims=True)
    chosen = np.take_along_axis(log_softmax, x[..., None].astype(int), axis=-1)[..., 0]
    distribution = decoder(z)
    np.testing.assert_allclose(distribution.log_prob(x), chosen.sum(axis=(1, 2)), rtol=1e-5)
    expected_mean = (np.exp(log_softmax) * np.arange(5)).sum(-1) / 4  # E[x] / (L - 1)
    np.testing.assert_allclose(distribution.mean(), expected_mean, rtol=1e-5)
    assert decoder.num_parameters == 5 and decoder.data_kind == "levels"
