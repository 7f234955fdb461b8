"""Training objectives on distributions: pure functions, every figure in nats per example.

The evidence lower bound (Kingma & Welling 2014) of one example x is

    ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))  <=  log p(x)

estimated with one reparameterised draw z = loc + scale * eps, eps ~ N(0, I). The model
minimises the negative ELBO, with the KL term weighted by ``kl_weight`` (beta in the
beta-VAE of Higgins et al. 2017; 1 gives the true bound):

    loss(x) = -log p(x|z) + kl_weight * KL(q(z|x) || p(z))
"""

import collections

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

ELBOTerms = collections.namedtuple("ELBOTerms", ["loss", "elbo", "reconstruction", "kl"])
ELBOTerms.__doc__ = """Per-example terms of the objective, each a float32 tensor [batch], nats.

loss: reconstruction + kl_weight * kl, what training minimises.
elbo: -(reconstruction + kl), the lower bound on log p(x) (always with weight 1).
reconstruction: -log p(x|z), the distortion.
kl: KL(q(z|x) || p(z)), the rate (analytic, or a Monte Carlo estimate at z).
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
    otherwise the single-sample Monte Carlo estimate log q(z|x) - log p(z) at the posterior
    draw ``z`` [batch, latent_dim], which is unbiased and reuses the reconstruction's sample.
    """
    try:
        return tfd.kl_divergence(posterior, prior)
    except NotImplementedError:
        return posterior.log_prob(z) - prior.log_prob(z)


def reparameterized_sample(posterior, noise):
    """z = loc + scale * noise for a (possibly Independent-wrapped) Normal posterior.

    Taking the standard Normal ``noise`` from outside, rather than calling
    ``posterior.sample()``, lets the model give every example of a global batch its own
    noise however the batch is split across replicas (see ``VAE._posterior_noise``).
    Gradients flow to loc and scale (the reparameterisation trick).
    """
    normal = posterior.distribution if isinstance(posterior, tfd.Independent) else posterior
    if not isinstance(normal, tfd.Normal):
        raise TypeError(
            f"The reparameterised sample needs a Normal posterior; received "
            f"{type(normal).__name__}."
        )
    return normal.loc + normal.scale * noise


def negative_elbo(x, posterior, likelihood, prior, z, kl_weight=1.0):
    """Per-example loss terms of one single-sample ELBO estimate (see ``ELBOTerms``).

    Args:
        x: the data [batch, *event_shape].
        posterior: q(z|x), event shape [latent_dim].
        likelihood: p(x|z) at the posterior draw ``z``, event shape = x's event shape.
        prior: p(z), event shape [latent_dim].
        z: the posterior draw [batch, latent_dim].
        kl_weight: weight of the KL term in the loss (scalar).
    """
    reconstruction = -likelihood.log_prob(x)
    kl = kl_divergence(posterior, prior, z)
    kl_weight = tf.cast(kl_weight, kl.dtype)
    return ELBOTerms(
        loss=reconstruction + kl_weight * kl,
        elbo=-(reconstruction + kl),
        reconstruction=reconstruction,
        kl=kl,
    )
