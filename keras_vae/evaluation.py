"""Evaluation of a trained model on held-out data, in nats per example.

Everything here talks to the model through the model protocol (``protocol``): the
log-likelihood needs only ``log_importance_weights``; ``evaluate`` also uses ``elbo_terms``,
``latent_diagnostics`` and ``image_shape``. Any object with these members can be evaluated.

The figure papers report as test NLL is the importance-weighted estimate (Burda et al. 2016)

    log p(x) >= L_K(x) = log (1/K) sum_k p(x, z_k) / q(z_k|x),   z_k ~ q(z|x),

which rises towards log p(x) as K grows (K = 5000 in the MNIST tables). ``log_likelihood``
computes it in chunks of draws, combined by log-sum-exp, so memory is bounded by the chunk
whatever K. Beside it (``evaluate``):

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)) = L_1(x) in expectation
    distortion = -log p(x|z) (``reconstruction``),   rate = KL(q(z|x) || p(z)) (``kl``)
    KL per latent dimension,  active units: #{i : Cov_x(E_q[z_i]) > 0.01} (Burda et al.)

The ELBO reported is the model's own training objective at one draw per example
(``elbo_terms(x, seed)``), with the analytic KL where TFP registers it: the figure training
logs, with less variance than the mean of the log weights (``objectives.monte_carlo_elbo``),
whose expectation is the same. With several latent layers the KL per dimension and the active
units cover every layer in ``latent_sizes`` order, and ``evaluate`` adds them per layer.

Bits per dimension = -log p(x) / (D ln 2) for D pixel values (an upper bound for the ELBO).
They are the published 8-bit tables' figure only when log p(x) is a mass over 256 levels
(the discrete likelihoods on 8-bit data); ``bits_per_dim_meaning`` says what they are for
the model's likelihood (``likelihoods.bits_per_dim_meaning``).
Every random draw comes from a stateless seed, so the same seed gives the same figures.
"""

import math

import numpy as np
import tensorflow as tf

from keras_vae import likelihoods, objectives
from keras_vae.files import replace_atomically

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2016, sec. 5.2
DECODER_ROWS_PER_CHUNK = 20_000  # decoder inputs per chunk of draws: ~100 MB for MNIST MLPs


def log_likelihood(model, data, num_samples=5000, seed=0, batch_size=100, chunk_size=None,
                   progress_file=None, jit_compile=False):
    """Importance-weighted estimate of log p(x) per example [n], nats (float64).

    Args:
        model: a ``VAE``, or any object with the protocol's
            ``log_importance_weights(x, num_samples, seed)`` -> log w [K, batch] (nats).
        data: an array [n, ...] or a ``tf.data.Dataset`` of batches (x or (x, y)).
        num_samples: K, the importance samples per example.
        seed: integer; draw k of the example batch b uses the stateless seed
            (seed, b * K + k), so results do not depend on ``chunk_size``: a chunk of draws
            k0 .. k0 + c - 1 is one call ``log_importance_weights(x, c, [seed, b * K + k0])``.
        batch_size: examples per batch when ``data`` is an array.
        chunk_size: draws decoded at once (default: ``DECODER_ROWS_PER_CHUNK // batch``, over
            the decoder's outputs per value); memory grows with chunk_size * batch, not
            with K.
        progress_file: optional .npz path. The estimates are saved there after every batch,
            and a later call with the same model, K and seed continues after the batches it
            holds (K = 5000 on 10,000 images takes most of an hour on two cores). The result
            is the same as that of an uninterrupted call; the caller deletes the file.
        jit_compile: compile the estimate with XLA.
    """
    num_samples = _positive_int("num_samples", num_samples)
    if not callable(getattr(model, "log_importance_weights", None)):
        raise TypeError(f"The log-likelihood needs a model with log_importance_weights(x, "
                        f"num_samples, seed) (keras_vae.protocol); received a "
                        f"{type(model).__name__}.")
    progress = _Progress(progress_file, model, num_samples, seed)
    estimates = {}
    values = []
    for index, x in enumerate(_batches(data, batch_size)):
        if index < len(progress.done):
            values.append(progress.skip(index, int(x.shape[0])))
            continue
        chunk = _positive_int("chunk_size", chunk_size if chunk_size is not None else max(
            1, DECODER_ROWS_PER_CHUNK // (int(x.shape[0]) * _outputs_per_value(model))))
        chunk = min(chunk, num_samples)
        if chunk not in estimates:
            estimates[chunk] = _importance_weighted_batch(model, chunk, jit_compile)
        values.append(estimates[chunk](
            x, tf.constant(num_samples, tf.int64),
            tf.constant([seed, index * num_samples], tf.int64)).numpy())
        progress.save(values)
    if len(values) < len(progress.done):
        raise ValueError(f"{progress_file} holds more batches than the data has: it belongs "
                         f"to other data; delete it.")
    return np.concatenate(values)


class _Progress:
    """The per-batch estimates of an interrupted ``log_likelihood`` call, in an .npz file.

    The file records K, the seed and a digest of the model's weights; a file written for
    anything else is refused with the advice to delete it, never silently mixed in.
    """

    def __init__(self, path, model, num_samples, seed):
        self.path, self.done = path, []
        if path is None:
            return
        self.key = np.array([num_samples, seed], np.int64)
        self.digest = _weights_digest(getattr(model, "weights", []))
        try:
            with np.load(path) as saved:
                key, digest = saved["key"], str(saved["digest"])
                lengths, values = saved["lengths"], saved["values"]
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"{path} is not a log-likelihood progress file ({error}); "
                             f"delete it.") from None
        if not np.array_equal(key, self.key) or digest != self.digest:
            raise ValueError(f"{path} was written for another model, K or seed; delete it to "
                             f"start the estimate afresh.")
        self.done = np.split(values, np.cumsum(lengths)[:-1]) if len(lengths) else []

    def skip(self, index, batch_length):
        if len(self.done[index]) != batch_length:
            raise ValueError(f"{self.path} was written with other batches (batch {index} had "
                             f"{len(self.done[index])} examples, now {batch_length}); delete "
                             f"it or use the same --batch-size.")
        return self.done[index]

    def save(self, values):
        if self.path is None:
            return
        arrays = dict(key=self.key, digest=np.array(self.digest),
                      lengths=np.array([len(v) for v in values], np.int64),
                      values=np.concatenate(values))
        replace_atomically(self.path, lambda file: np.savez(file, **arrays), mode="wb")


def _outputs_per_value(model):
    """Decoder outputs per data value (1 for Bernoulli, 3K for a mixture of K discretised
    logistics, L for a categorical over L levels): the default chunk of draws shrinks by it,
    so that its memory stays that of a Bernoulli chunk (256 levels would need 16 GB)."""
    return max(1, int(getattr(getattr(model, "decoder", None), "num_parameters", 1)))


def _weights_digest(weights):
    """SHA-1 of every weight's bytes: tells one trained model from another."""
    import hashlib

    digest = hashlib.sha1()
    for weight in weights:
        digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return digest.hexdigest()


def _importance_weighted_batch(model, chunk, jit_compile=False):
    """A tf.function (x, K, seed) -> L_K(x) [batch] that loops over chunks of ``chunk`` draws;
    draws past K in the last chunk get weight 0 (log weight -inf)."""

    @tf.function(reduce_retracing=True, jit_compile=jit_compile)
    def estimate(x, num_samples, seed):
        batch = tf.shape(x)[0]

        def add_chunk(first, total):
            log_weights = model.log_importance_weights(
                x, chunk, seed + tf.stack([tf.zeros_like(first), first]))
            draws = first + tf.range(chunk, dtype=tf.int64)
            log_weights = tf.where((draws < num_samples)[:, tf.newaxis], log_weights, -np.inf)
            chunk_total = tf.cast(tf.reduce_logsumexp(log_weights, axis=0), tf.float64)
            # log(sum so far + sum of this chunk), stable for any magnitudes
            return first + chunk, tf.reduce_logsumexp(tf.stack([total, chunk_total]), axis=0)

        start = tf.fill([batch], tf.constant(-np.inf, tf.float64))
        _, total = tf.while_loop(lambda first, _: first < num_samples, add_chunk,
                                 (tf.constant(0, tf.int64), start))
        return total - tf.math.log(tf.cast(num_samples, tf.float64))

    return estimate


def posterior_statistics(model, data, seed=0, batch_size=100):
    """Per-example ELBO terms and the posterior's use of its latent dimensions.

    Returns a dict of numpy arrays: ``elbo``, ``reconstruction``, ``kl``, ``loss`` [n] (nats,
    the model's ``elbo_terms`` with batch b drawn from the stateless seed [seed, b]),
    ``kl_per_dimension`` (mean over examples, nats) and ``posterior_mean_variance``,
    Var_x(E_q[z_i]) (the activity of unit i), over every latent dimension of every layer in
    ``latent_sizes`` order; and ``layers``: {layer name: {"kl_per_dimension": ...,
    "posterior_mean_variance": ...}} with the same figures per layer (and, for a model with
    several layers, "kl": the layer's share of the rate, the mean of ``ELBOTerms.layer_kl``).
    """
    diagnostics_seed = tf.constant([seed, 1], tf.int64)

    @tf.function(reduce_retracing=True)
    def batch_figures(x, terms_seed):
        return (model.elbo_terms(x, seed=terms_seed),
                model.latent_diagnostics(x, seed=diagnostics_seed))

    fields = [name for name in objectives.ELBOTerms._fields if name != "layer_kl"]
    terms_parts = {name: [] for name in fields}
    layer_parts, layer_kl_parts = {}, {}
    for index, x in enumerate(_batches(data, batch_size)):
        terms, layers = batch_figures(x, tf.constant([seed, index], tf.int64))
        for name in fields:
            terms_parts[name].append(getattr(terms, name).numpy())
        for name, value in (terms.layer_kl or {}).items():
            layer_kl_parts.setdefault(name, []).append(value.numpy())
        for name, layer in layers.items():
            layer_parts.setdefault(name, []).append(
                [layer.posterior_mean.numpy(), layer.kl_per_dimension.numpy()])
    result = {name: np.concatenate(parts).astype(np.float64)
              for name, parts in terms_parts.items()}
    result["layers"] = {}
    for name, parts in layer_parts.items():
        means, kl_dims = (np.concatenate(column).astype(np.float64) for column in zip(*parts))
        result["layers"][name] = {"kl_per_dimension": kl_dims.mean(0),
                                  "posterior_mean_variance": means.var(0)}
        if name in layer_kl_parts:  # a hierarchy's share of the rate, nats per example
            result["layers"][name]["kl"] = float(np.concatenate(layer_kl_parts[name]).mean())
    for figure in ("kl_per_dimension", "posterior_mean_variance"):
        result[figure] = np.concatenate([layer[figure] for layer in result["layers"].values()])
    return result


def active_units(posterior_mean_variance, threshold=ACTIVE_UNIT_THRESHOLD):
    """Number of latent dimensions whose posterior mean varies across the data:
    Cov_x(E_q[z_i]) > threshold (Burda et al. 2016)."""
    return int(np.sum(np.asarray(posterior_mean_variance) > threshold))


def evaluate(model, data, iw_samples=0, seed=0, batch_size=100, chunk_size=None,
             progress_file=None):
    """Every test figure of a model, as (metrics dict, per-example dict of arrays).

    metrics: elbo, reconstruction, kl, loss (means, nats), their standard errors, bits_per_dim
    of the ELBO (and bits_per_dim_meaning, for a model with a registered ``likelihood``),
    kl_per_dimension (list), active_units, num_examples; with several latent
    layers also layers = {name: {kl, kl_per_dimension, active_units}}, kl the layer's share
    of the rate (the mean of ``ELBOTerms.layer_kl`` at the draws of the reported ELBO, so the
    layers' kl sum to kl; kl_per_dimension is at ``latent_diagnostics``' own draw); with
    ``iw_samples`` = K > 0 also log_likelihood (mean L_K, nats), its standard error,
    nll_bits_per_dim and iw_samples. per-example: elbo, reconstruction, kl (and log_likelihood) [n].
    ``progress_file``: see ``log_likelihood``.
    """
    statistics = posterior_statistics(model, data, seed=seed, batch_size=batch_size)
    dimensions = int(np.prod(model.image_shape))
    per_example = {name: statistics[name] for name in ("elbo", "reconstruction", "kl")}
    metrics = {"num_examples": int(len(statistics["elbo"]))}
    for name in ("elbo", "reconstruction", "kl", "loss"):
        metrics[name] = float(statistics[name].mean())
        metrics[f"{name}_stderr"] = _standard_error(statistics[name])
    metrics["bits_per_dim"] = bits_per_dimension(-metrics["elbo"], dimensions)
    if getattr(model, "likelihood", None) in likelihoods.names():  # a mass, or a density?
        metrics["bits_per_dim_meaning"] = likelihoods.bits_per_dim_meaning(model.likelihood)
    metrics["kl_per_dimension"] = [float(v) for v in statistics["kl_per_dimension"]]
    metrics["active_units"] = active_units(statistics["posterior_mean_variance"])
    if len(statistics["layers"]) > 1:
        metrics["layers"] = {name: {
            # the layer's share of the rate (``ELBOTerms.layer_kl``; the shares sum to kl),
            # else, for a model that does not split its KL, the sum over its dimensions
            "kl": layer.get("kl", float(layer["kl_per_dimension"].sum())),
            "kl_per_dimension": [float(v) for v in layer["kl_per_dimension"]],
            "active_units": active_units(layer["posterior_mean_variance"]),
        } for name, layer in statistics["layers"].items()}
    if iw_samples:
        values = log_likelihood(model, data, num_samples=iw_samples, seed=seed,
                                batch_size=batch_size, chunk_size=chunk_size,
                                progress_file=progress_file)
        per_example["log_likelihood"] = values
        metrics.update(log_likelihood=float(values.mean()),
                       log_likelihood_stderr=_standard_error(values),
                       nll_bits_per_dim=bits_per_dimension(-values.mean(), dimensions),
                       iw_samples=int(iw_samples))
    return metrics, per_example


def write_per_example_csv(path, per_example):
    """A CSV with one row per example: index and every per-example figure (nats)."""
    names = list(per_example)
    rows = np.column_stack([np.arange(len(per_example[names[0]]))] +
                           [per_example[name] for name in names])
    replace_atomically(path, lambda file: np.savetxt(
        file, rows, delimiter=",", header=",".join(["index"] + names), comments="",
        fmt=["%d"] + ["%.6f"] * len(names)))


def bits_per_dimension(nats_per_example, dimensions):
    """nats per example / (D ln 2): bits per pixel value."""
    return float(nats_per_example / (dimensions * math.log(2)))


def bernoulli_negative_log_likelihood(probabilities, x, epsilon=1e-7):
    """-sum_pixels [x log p + (1 - x) log(1 - p)] per example, in nats, from probabilities p.

    For outputs that carry only probabilities (an exported decoder). p is clipped to
    [epsilon, 1 - epsilon] because a float32 sigmoid or an int8 file can return exactly 0
    or 1; use the decoder's own ``log_prob`` (exact, from logits) wherever it is available.
    """
    p = np.clip(np.asarray(probabilities, np.float64), epsilon, 1 - epsilon)
    x = np.asarray(x, np.float64)
    terms = x * np.log(p) + (1 - x) * np.log1p(-p)
    return -terms.reshape(len(terms), -1).sum(axis=1)


def _standard_error(values):
    return float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; received {value!r}.")
    return int(value)


def _batches(data, batch_size):
    """float32 tensors of examples from an array or a dataset of batches (labels dropped)."""
    if isinstance(data, tf.data.Dataset):
        for batch in data:
            yield tf.cast(batch[0] if isinstance(batch, (tuple, list)) else batch, tf.float32)
        return
    data = np.asarray(data, np.float32)
    for start in range(0, len(data), _positive_int("batch_size", batch_size)):
        yield tf.constant(data[start:start + batch_size])
