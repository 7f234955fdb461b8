"""The two passes through a hierarchy of L Gaussian latent layers z_1 (next to the data) ..
z_L (top), as functions of a ``HierarchicalVAE``'s layers.

Generative model (Burda et al. 2016 sec. 5; Sønderby et al. 2016):

    p(x, z) = p(x | z_1) p(z_1 | z_2) ... p(z_{L-1} | z_L) p(z_L),

p(z_L) the model's prior layer, each p(z_i | z_{i+1}) a diagonal Normal from ``down_steps[i]``.

Inference, ``posterior_pass`` (z = loc + scale * eps with the noise given, so the pass is
reparameterised and the caller controls every draw):

- "bottom_up" (Burda et al. 2016): q(z | x) = q(z_1 | x) q(z_2 | z_1) ... q(z_L | z_{L-1}),
  the encoder for z_1 and ``up_steps`` above it.
- "top_down" (Ladder VAE, Sønderby et al. 2016; NVAE, Vahdat & Kautz 2020): a deterministic
  bottom-up pass d_1 = body(x), d_{i+1} = up_i(d_i) gives each layer an estimate
  N(mu_hat_i, sigma_hat_i); q(z_L | x) is the top estimate, and going down, q(z_i | z_{i+1}, x)
  merges the estimate (or, "residual", the features d_i) with the prior p(z_i | z_{i+1}) at the
  draw above (``steps.precision_merge`` / ``steps.residual_merge``):
  q(z | x) = q(z_L | x) q(z_{L-1} | z_L, x) ... q(z_1 | z_2, x).

The KL of layer i, E_q[log q(z_i | .) - log p(z_i | z_{i+1})], is computed in closed form given
the draws of the layers it is conditioned on whenever those are drawn before z_i (every layer
of a top-down pass, the top layer of a bottom-up one) and TFP registers the pair; otherwise
(p(z_i | z_{i+1}) of a bottom-up pass depends on a draw made after z_i) as log q - log p at
the draws, which is unbiased.
"""

import collections

import tensorflow as tf

from keras_vae import objectives
from keras_vae.hierarchy.steps import (diagonal_normal, layer_scale, precision_merge,
                                       residual_merge)

LayerDraw = collections.namedtuple("LayerDraw", ["name", "posterior", "prior", "z",
                                                 "closed_form_kl"])
LayerDraw.__doc__ = """One latent layer after a posterior pass: its posterior q and prior p
(conditionals given the draws they depend on), the draws z [K, batch, size], and whether the
KL of q and p in closed form is the layer's term of the ELBO."""


def bottom_up_features(model, x, training=None):
    """[d_1, ..., d_L]: the deterministic bottom-up features of a top-down pass, and the
    estimates [(loc_hat_i, raw_scale_hat_i)] each layer's head reads from them (the scale is
    ``steps.layer_scale`` of the raw one)."""
    features = [model.encoder.features(x, training=training)]
    estimates = [model.encoder.parameters_from_features(features[0])]
    for step in model.up_steps:
        features.append(step.features(features[-1]))
        estimates.append(step.parameters_from_features(features[-1]))
    return features, estimates


def top_posterior(model, x, training=None):
    """q(z_L | x), a diagonal Normal with batch shape [batch]: the top estimate of the
    bottom-up pass (what the VampPrior encodes its pseudo-inputs with)."""
    if model.inference == "bottom_up" and model.up_steps:
        raise ValueError("q(z_L | x) of a bottom-up hierarchy is not Gaussian in x.")
    return top_posterior_from(bottom_up_features(model, x, training)[1])


def posterior_pass(model, x, noise, training=None):
    """[LayerDraw] from z_1 to z_L for the batch x and ``noise`` {name: eps [K, batch, size]}."""
    names = list(model.latent_sizes)
    prior = model.top_prior_distribution()
    if model.inference == "bottom_up":
        posteriors = [model.encoder(x, training=training)]
        draws = [objectives.reparameterized_sample(posteriors[0], noise[names[0]])]
        for step, name in zip(model.up_steps, names[1:]):
            posteriors.append(step(draws[-1]))
            draws.append(objectives.reparameterized_sample(posteriors[-1], noise[name]))
        priors = [step(z) for step, z in zip(model.down_steps, draws[1:])] + [prior]
        closed_form = [False] * (len(names) - 1) + [True]
        return [LayerDraw(*layer) for layer in
                zip(names, posteriors, priors, draws, closed_form)]

    _, estimates = bottom_up_features(model, x, training)
    top = top_posterior_from(estimates)
    layers = [LayerDraw(names[-1], top, prior,
                        objectives.reparameterized_sample(top, noise[names[-1]]), True)]
    for index in reversed(range(len(names) - 1)):
        posterior, conditional_prior = conditional_posterior(
            model, estimates, index, layers[-1].z)
        layers.append(LayerDraw(names[index], posterior, conditional_prior,
                                objectives.reparameterized_sample(posterior, noise[names[index]]),
                                True))
    return layers[::-1]


def top_posterior_from(estimates):
    """q(z_L | x) from the bottom-up ``estimates``: the top one."""
    loc, raw_scale = estimates[-1]
    return diagonal_normal(loc, layer_scale(raw_scale))


def conditional_posterior(model, estimates, index, above):
    """(q(z_i | z_(i+1) = above, x), p(z_i | z_(i+1) = above)) of a top-down pass, i = index,
    from the bottom-up ``estimates`` of x (``bottom_up_features``)."""
    step = model.down_steps[index]
    top_down = step.features(above)
    loc_prior, raw_prior = step.parameters_from_features(top_down)
    scale_prior = layer_scale(raw_prior)
    loc_hat, raw_scale_hat = estimates[index]
    if model.merge == "precision":
        loc, scale = precision_merge(loc_hat, layer_scale(raw_scale_hat), loc_prior,
                                     scale_prior)
    else:
        # The correction is linear in (d_i, t_i), as one Dense layer on their concatenation:
        # the bottom-up head's output plus a bias-free Dense of the top-down features.
        top_down_loc, top_down_raw = tf.split(
            tf.cast(model.merge_heads[index](top_down), tf.float32), 2, axis=-1)
        loc, scale = residual_merge(loc_prior, scale_prior, loc_hat + top_down_loc,
                                    raw_scale_hat + top_down_raw)
    return diagonal_normal(loc, scale), diagonal_normal(loc_prior, scale_prior)


def generative_pass(model, z_top, noise):
    """{name: z} from z_1 to z_L: z_L = ``z_top`` [n, size], then going down
    z_i = loc_p(z_{i+1}) + scale_p(z_{i+1}) * noise[name] (p(z_i | z_{i+1}) reparameterised),
    with no random ops: the sampler an exported model runs."""
    names = list(model.latent_sizes)
    draws = {names[-1]: z_top}
    for index in reversed(range(len(names) - 1)):
        conditional = model.down_steps[index](draws[names[index + 1]])
        draws[names[index]] = objectives.reparameterized_sample(conditional, noise[names[index]])
    return {name: draws[name] for name in names}


def layer_kl(layer):
    """KL term of one layer, nats [batch]: closed form where valid (module docstring), else
    log q - log p at the draws, averaged over the K draws."""
    if layer.closed_form_kl:
        kl = objectives.kl_divergence(layer.posterior, layer.prior, layer.z)
    else:
        kl = layer.posterior.log_prob(layer.z) - layer.prior.log_prob(layer.z)
    return tf.reduce_mean(kl, axis=0) if kl.shape.rank > 1 else kl


def layer_kl_per_dimension(layer):
    """KL of each latent dimension of one layer, nats [batch, size] (mean over the K draws);
    ValueError when the prior does not factorise (a mixture at the top)."""
    if layer.closed_form_kl:
        kl = objectives.kl_per_dimension(layer.posterior, layer.prior, layer.z)
    else:
        kl = (layer.posterior.distribution.log_prob(layer.z)
              - layer.prior.distribution.log_prob(layer.z))
    return tf.reduce_mean(kl, axis=0) if kl.shape.rank > 2 else kl


def log_prior_ratio(layer):
    """log p(z_i | .) - log q(z_i | .) at the draws, nats [K, batch]: the layer's share of the
    log importance weight."""
    return layer.prior.log_prob(layer.z) - layer.posterior.log_prob(layer.z)
