"""Training objectives on distributions: pure functions, every figure in nats per example.

The evidence lower bound (Kingma & Welling 2014) of one example x is

    ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))  <=  log p(x)

estimated with one reparameterised draw z = loc + scale * eps, eps ~ N(0, I). The model
minimises the negative ELBO, with the KL term weighted by ``kl_weight`` (beta in the
beta-VAE of Higgins et al. 2017; 1 gives the true bound):

    loss(x) = -log p(x|z) + kl_weight * KL(q(z|x) || p(z))

With K draws z_k the reconstruction term is averaged over them (the K-sample ELBO). Free
bits (Kingma et al. 2016) floor the batch-mean KL of each group of latents at lambda nats
(``free_bits_kl``). The IWAE objective (Burda et al. 2016) replaces the ELBO by the tighter

    L_K(x) = log (1/K) sum_k p(x, z_k) / q(z_k|x)   <=  log p(x)

(``iwae_bound``), which is also the estimator of log p(x) used for evaluation. Both bounds are
functions of the log importance weights log w_k = log p(x, z_k) - log q(z_k|x) that every model
returns (``protocol``; ``single_layer_log_weights`` computes them for one Gaussian layer):
the K-sample ELBO estimate is their mean over k (``monte_carlo_elbo``), L_K their log-mean-exp.
"""

import collections

import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae.config import check_groups

tfd = tfp.distributions

ELBOTerms = collections.namedtuple("ELBOTerms", ["loss", "elbo", "reconstruction", "kl",
                                                 "layer_kl"], defaults=(None,))
ELBOTerms.__doc__ = """Per-example terms of the objective, each a float32 tensor [batch], nats.

loss: reconstruction + kl_weight * kl, what training minimises.
elbo: -(reconstruction + kl), the lower bound on log p(x) (always with weight 1).
reconstruction: -log p(x|z), the distortion.
kl: KL(q(z|x) || p(z)), the rate (analytic, or a Monte Carlo estimate at z).
layer_kl: for a model with several latent layers, {layer name: its share of kl}; else None.
"""


def has_analytic_kl(posterior, prior):
    """True when TFP registers a closed-form KL between the two distribution types."""
    try:
        tfd.kl_divergence(posterior, prior)
    except NotImplementedError:
        return False
    return True


def kl_divergence(posterior, prior, z):
    """KL(q || p) per example [batch], nats.

    Analytic through ``tfd.kl_divergence`` when TFP registers it (for a diagonal Normal
    posterior and a standard Normal prior: 0.5 sum(sigma^2 + mu^2 - 1 - log sigma^2));
    otherwise the Monte Carlo estimate log q(z|x) - log p(z) at the posterior draws ``z``
    [..., batch, latent_dim] (shape [..., batch]), which is unbiased and reuses the
    reconstruction's samples.
    """
    try:
        return tfd.kl_divergence(posterior, prior)
    except NotImplementedError:
        return posterior.log_prob(z) - prior.log_prob(z)


def reparameterized_sample(posterior, noise):
    """z = loc + scale * noise for a (possibly Independent-wrapped) Normal posterior.

    Taking the standard Normal ``noise`` from outside, rather than calling
    ``posterior.sample()``, lets the model give every example of a global batch its own
    noise however the batch is split across replicas (see ``ELBOModel._layer_noise``).
    Gradients flow to loc and scale (the reparameterisation trick).
    """
    normal = posterior.distribution if isinstance(posterior, tfd.Independent) else posterior
    if not isinstance(normal, tfd.Normal):
        raise TypeError(
            f"The reparameterised sample needs a Normal posterior; received "
            f"{type(normal).__name__}."
        )
    return normal.loc + normal.scale * noise


def stateless_seed(seed):
    """A seed as a shape-[2] int64 stateless seed: an integer s means [s, 0]."""
    seed = tf.convert_to_tensor(seed)
    if seed.shape.rank == 0:
        seed = tf.stack([seed, tf.zeros_like(seed)])
    return tf.cast(seed, tf.int64)


def layer_seed(seed, layer):
    """The stateless seed of latent layer ``layer`` (0 next to the data) of a draw at ``seed``.

    Layer 0 takes ``seed`` itself, so the first layer of a hierarchy draws exactly the noise
    of a one-layer model at the same seed; layer l > 0 replaces the first component a of
    [a, b] by a hash of (a, l) and keeps b, so that draw k of every layer still comes from
    [., b + k] alone and K draws taken in chunks equal K draws at once (``protocol``).
    """
    seed = stateless_seed(seed)
    if layer == 0:
        return seed
    # Within the int32 range, so that code casting seeds to int32 draws the same noise.
    first = tf.random.stateless_uniform(
        [], seed=tf.stack([seed[0], tf.constant(layer, tf.int64)]), minval=-2**31,
        maxval=2**31 - 1, dtype=tf.int64)
    return tf.stack([first, seed[1]])


def standard_normal_draws(seed, num_draws, shape):
    """eps_k ~ N(0, I) of ``shape`` for k < num_draws: [num_draws, *shape] float32.

    Draw k comes from the stateless seed [a, b + k] of ``seed`` = [a, b] alone (``protocol``),
    so K draws taken in chunks equal K draws taken at once.
    """
    seed = stateless_seed(seed)

    def draw(k):
        return tf.random.stateless_normal(shape, seed=seed + tf.stack([tf.zeros_like(k), k]))

    return tf.map_fn(draw, tf.range(num_draws, dtype=tf.int64), fn_output_signature=tf.float32)


def single_layer_log_weights(x, posterior, decode, prior, num_samples, seed):
    """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x), nats [K, batch], for a model with
    one diagonal-Normal latent layer: z_k = loc + scale * eps_k (``standard_normal_draws``).

    Args:
        x: the data [batch, ...]; posterior: q(z|x), event shape [latent_dim];
        decode: z [n, latent_dim] -> p(x|z); prior: p(z);
        num_samples: K; seed: an integer or a [2] stateless seed (draw k from [a, b + k]).
    """
    noise = standard_normal_draws(seed, num_samples, tf.shape(posterior.mean()))
    z = reparameterized_sample(posterior, noise)
    return log_importance_weights(decoded_log_likelihood(decode, x, z), posterior, prior, z)


def kl_per_dimension(posterior, prior, z):
    """KL(q(z_i|x) || p(z_i)) for each latent dimension i, nats.

    Needs factorised distributions (a diagonal Normal wrapped in ``tfd.Independent`` or not).
    Analytic when TFP registers the pair: [batch, latent_dim]; otherwise the Monte Carlo
    estimate log q(z_i|x) - log p(z_i) at the draws ``z`` [..., batch, latent_dim], of the
    same shape as ``z``. The sum over i is ``kl_divergence``.
    """
    factors = [d.distribution if isinstance(d, tfd.Independent) else d
               for d in (posterior, prior)]
    if any(f.event_shape.rank != 0 for f in factors):
        raise ValueError(
            "The KL per latent dimension (free bits) needs a factorised posterior and prior "
            f"(independent scalar dimensions); received {type(posterior).__name__} and "
            f"{type(prior).__name__}. Use free_bits=0, or free_bits_groups=1 (a floor on the "
            f"whole KL), with this prior.")
    try:
        return tfd.kl_divergence(*factors)
    except NotImplementedError:
        return factors[0].log_prob(z) - factors[1].log_prob(z)


def kl_groups(kl_dimensions, num_groups):
    """[..., num_groups]: the KL per dimension summed over contiguous, equal groups of latents
    (group g holds dimensions g*L/G .. (g+1)*L/G - 1); num_groups = latent_dim gives the KL
    per dimension itself."""
    latent_dim = kl_dimensions.shape[-1]
    check_groups(latent_dim, num_groups)
    shape = tf.concat([tf.shape(kl_dimensions)[:-1], [num_groups, latent_dim // num_groups]], 0)
    return tf.reduce_sum(tf.reshape(kl_dimensions, shape), axis=-1)


def free_bits_kl(group_kl, free_bits, group_means):
    """Per-example KL term with free bits (Kingma et al. 2016, eq. 15), nats [batch].

    The objective floors the batch-mean KL of every group g at lambda = ``free_bits``:

        KL_free = sum_g max(lambda, E_x[KL_g(x)])

    Returned per example as sum_g (KL_g(x) if E_x[KL_g] > lambda else lambda), whose mean over
    the batch is exactly KL_free and whose gradient is that of KL_free: a group under the floor
    gets no gradient from the KL, so the encoder may use those nats for free.
    ``group_means`` [groups] is E_x[KL_g] over the batch; it is not differentiated.

    Args:
        group_kl: [batch, groups] KL of each group per example (``kl_groups``).
        free_bits: lambda, nats per group (>= 0).
        group_means: [groups] batch means of ``group_kl``.
    """
    above = tf.stop_gradient(group_means) > free_bits
    floor = tf.cast(free_bits, group_kl.dtype)
    return tf.reduce_sum(tf.where(above, group_kl, floor * tf.ones_like(group_kl)), axis=-1)


def decoded_log_likelihood(decode, x, z):
    """log p(x|z_k) [K, batch] for draws z [K, batch, latent_dim]: one ``decode`` call on the
    K * batch draws, each scored against its own example of x [batch, ...]."""
    draws, batch = tf.shape(z)[0], tf.shape(z)[1]
    likelihood = decode(tf.reshape(z, [draws * batch, z.shape[-1]]))
    repeated = tf.reshape(tf.repeat(tf.cast(x, tf.float32)[tf.newaxis], draws, axis=0),
                          tf.concat([[draws * batch], tf.shape(x)[1:]], 0))
    return tf.reshape(likelihood.log_prob(repeated), [draws, batch])


def log_importance_weights(log_likelihood, posterior, prior, z, kl_weight=1.0):
    """log w_k = log p(x|z_k) - kl_weight * (log q(z_k|x) - log p(z_k)), nats [K, batch].

    With kl_weight = 1, w_k = p(x, z_k) / q(z_k|x), z_k ~ q(z|x): E[w_k] = p(x).

    Args:
        log_likelihood: log p(x|z_k) [K, batch].
        posterior: q(z|x), batch shape [batch], event shape [latent_dim].
        prior: p(z), event shape [latent_dim].
        z: the draws [K, batch, latent_dim].
    """
    log_ratio = posterior.log_prob(z) - prior.log_prob(z)
    return log_likelihood - tf.cast(kl_weight, log_ratio.dtype) * log_ratio


def monte_carlo_elbo(log_weights):
    """The K-sample Monte Carlo estimate of the ELBO per example, nats [batch]:
    (1/K) sum_k log w_k, whose expectation is E_q[log p(x|z)] - KL(q(z|x) || p(z))
    (Kingma & Welling 2014). ``negative_elbo`` uses the analytic KL instead where TFP has it."""
    return tf.reduce_mean(log_weights, axis=0)


def iwae_bound(log_weights):
    """The importance-weighted bound (Burda et al. 2016) per example, nats [batch]:

        L_K(x) = log (1/K) sum_k w_k  <=  log p(x),   log_weights = log w_k [K, batch],

    by log-sum-exp, so it is exact for weights far below exp(-700). L_1 is the single-sample
    ELBO estimate; E[L_K] rises with K towards log p(x).
    """
    count = tf.cast(tf.shape(log_weights)[0], log_weights.dtype)
    return tf.reduce_logsumexp(log_weights, axis=0) - tf.math.log(count)


def negative_elbo(log_likelihood, posterior, prior, z, kl_weight=1.0, free_bits=0.0,
                  free_bits_groups=None):
    """Per-example terms of the K-sample ELBO estimate (see ``ELBOTerms``), nats [batch].

    reconstruction = -(1/K) sum_k log p(x|z_k), kl = KL(q(z|x) || p(z)) (analytic, or the
    Monte Carlo estimate averaged over the K draws), loss = reconstruction + kl_weight * kl,
    or with free bits reconstruction + kl_weight * KL_free (``free_bits_kl``).

    Args:
        log_likelihood: log p(x|z_k) [K, batch] at the draws ``z`` [K, batch, latent_dim].
        posterior, prior: q(z|x) and p(z), event shape [latent_dim].
        kl_weight: beta, the weight of the KL in the loss.
        free_bits: lambda in nats per group; 0 turns free bits off.
        free_bits_groups: number of groups (default: one per latent dimension). The floor
            applies to the means over this batch (under a strategy, this replica's share).
    """
    reconstruction = -tf.reduce_mean(log_likelihood, axis=0)
    kl = _mean_over_draws(kl_divergence(posterior, prior, z), rank=1)
    kl_weight = tf.cast(kl_weight, kl.dtype)
    kl_term = kl
    if free_bits:
        groups = _free_bits_groups(posterior, prior, z, kl, free_bits_groups)
        kl_term = free_bits_kl(groups, free_bits, tf.reduce_mean(groups, axis=0))
    return ELBOTerms(
        loss=reconstruction + kl_weight * kl_term,
        elbo=-(reconstruction + kl),
        reconstruction=reconstruction,
        kl=kl,
    )


def _free_bits_groups(posterior, prior, z, kl, num_groups):
    """[batch, groups] KL per group for free bits. One group is the whole KL ``kl`` [batch],
    which is all a prior that does not factorise over the latents (a mixture, the VampPrior:
    ``kl_per_dimension`` raises) defines; a factorised prior sums its KL per dimension."""
    try:
        dimensions = kl_per_dimension(posterior, prior, z)
    except ValueError:
        if num_groups != 1:
            raise
        return kl[:, tf.newaxis]
    return kl_groups(_mean_over_draws(dimensions, rank=2), num_groups or z.shape[-1])


def negative_iwae(log_likelihood, posterior, prior, z, kl_weight=1.0):
    """Terms of the IWAE objective with K = z.shape[0] draws, nats [batch]: loss = -L_K(x)
    (``iwae_bound`` of ``log_importance_weights``); reconstruction, kl and elbo are the K-sample
    ELBO estimate of ``negative_elbo``, reported beside it (L_K >= that ELBO in expectation)."""
    terms = negative_elbo(log_likelihood, posterior, prior, z)
    bound = iwae_bound(log_importance_weights(log_likelihood, posterior, prior, z, kl_weight))
    return terms._replace(loss=-bound)


def _mean_over_draws(values, rank):
    """Mean over the leading K axis of draws, which a Monte Carlo KL has and an analytic one
    (of ``rank`` dimensions) has not."""
    return tf.reduce_mean(values, axis=0) if values.shape.rank > rank else values
