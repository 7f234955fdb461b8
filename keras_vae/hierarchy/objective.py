"""The objectives of a ``HierarchicalVAE``, in nats per example, from its posterior pass.

    loss(x) = -log p(x | z_1) + kl_weight * sum_i KL_i                      (ELBO)
    KL_i = E_q[log q(z_i | .) - log p(z_i | z_{i+1})]   (p(z_L) for the top layer)
    log w_k = log p(x | z_1k) + sum_i [log p(z_ik | z_(i+1)k) - log q(z_ik | .)]

with free bits within each layer (Kingma et al. 2016, eq. 11 of their appendix C), or with
``objective="iwae"`` minus L_K = log (1/K) sum_k w_k (Burda et al. 2016, eq. 8) of the same
weights the K=5000 evaluation takes. Layer l draws its noise from ``objectives.layer_seed``
(layer 0 = the one-layer VAE's draw), so a hierarchy that collapses to one layer gives the
VAE's numbers exactly. ``x`` is the checked float32 data of the model.
"""

import numpy as np
import tensorflow as tf

from keras_vae import objectives
from keras_vae.hierarchy import passes
from keras_vae.protocol import LayerDiagnostics


def log_importance_weights(model, x, num_samples, seed):
    """log w_k [num_samples, batch]; layer l's draw k from ``objectives.layer_seed(seed, l)``
    + [0, k] (the chunked evaluation's contract, ``protocol``)."""
    noise = {name: objectives.standard_normal_draws(
                 objectives.layer_seed(seed, index), int(num_samples),
                 tf.stack([tf.shape(x)[0], size]))
             for index, (name, size) in enumerate(model.latent_sizes.items())}
    layers = passes.posterior_pass(model, x, noise)
    return log_likelihood_at(model, x, layers[0].z) + tf.add_n(
        [passes.log_prior_ratio(layer) for layer in layers])


def elbo_terms(model, x, training=None, seed=None):
    """``objectives.ELBOTerms`` [batch] with ``layer_kl`` {name: KL_i}; ``model.iw_samples``
    draws per example from the model's noise stream, or from the stateless ``seed``."""
    noise = model._layer_noise(tf.shape(x)[0], model.iw_samples, seed)
    layers = passes.posterior_pass(model, x, noise, training=training)
    log_likelihood = log_likelihood_at(model, x, layers[0].z, training)
    reconstruction = -tf.reduce_mean(log_likelihood, axis=0)
    layer_kl = {layer.name: passes.layer_kl(layer) for layer in layers}
    kl = tf.add_n(list(layer_kl.values()))
    weight = tf.cast(model._kl_weight, tf.float32)
    if model.objective == "iwae" and model.iw_samples > 1:
        log_weights = log_likelihood + weight * tf.add_n(
            [passes.log_prior_ratio(layer) for layer in layers])
        loss = -objectives.iwae_bound(log_weights)
    else:
        loss = reconstruction + weight * (free_bits_kl(model, layers) if model.free_bits
                                          else kl)
    return objectives.ELBOTerms(loss=loss, elbo=-(reconstruction + kl),
                                reconstruction=reconstruction, kl=kl, layer_kl=layer_kl)


def free_bits_kl(model, layers):
    """Sum over layers of ``objectives.free_bits_kl`` on that layer's groups of dimensions
    (``model.free_bits_groups`` per layer, default one per dimension) [batch]."""
    terms = []
    for layer in layers:
        try:
            dimensions = passes.layer_kl_per_dimension(layer)
            groups = objectives.kl_groups(dimensions,
                                          model.free_bits_groups or dimensions.shape[-1])
        except ValueError:  # a mixture prior at the top: one group, the layer's KL
            groups = passes.layer_kl(layer)[:, tf.newaxis]
        terms.append(objectives.free_bits_kl(groups, model.free_bits,
                                             tf.reduce_mean(groups, axis=0)))
    return tf.add_n(terms)


def latent_diagnostics(model, x, seed):
    """{name: ``LayerDiagnostics``}: each layer's posterior mean given the means of the layers
    it is conditioned on, and its KL per dimension at one draw from ``seed`` (NaN where the
    top prior does not factorise over dimensions)."""
    means = posterior_means(model, x)
    noise = model._layer_noise(tf.shape(x)[0], 1, objectives.stateless_seed(seed))
    result = {}
    for mean, layer in zip(means, passes.posterior_pass(model, x, noise)):
        try:
            kl = passes.layer_kl_per_dimension(layer)
        except ValueError:
            kl = tf.fill(tf.shape(mean.z[0]), np.nan)
        result[layer.name] = LayerDiagnostics(mean.z[0], kl)
    return result


def posterior_means(model, x, training=None):
    """The posterior pass with zero noise: each z the mean of its layer given the others."""
    zeros = {name: tf.zeros(tf.stack([1, tf.shape(x)[0], size]))
             for name, size in model.latent_sizes.items()}
    return passes.posterior_pass(model, x, zeros, training)


def log_likelihood_at(model, x, z1, training=None):
    """log p(x | z1) [K, batch] at draws z1 [K, batch, size]."""
    return objectives.decoded_log_likelihood(
        lambda draws: model.decoder(tf.cast(draws, model.compute_dtype), training=training),
        x, z1)
