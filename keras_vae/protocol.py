"""The model protocol: the small public interface through which everything outside a model
(objectives, evaluation, export, plots, the CLI) talks to it.

A latent-variable model of data x with latents z, generative model p(x, z) = p(x|z) p(z) and
inference model q(z|x), implements

    encode(x)             -> q(z|x), a ``tfd.Distribution`` over z with batch shape [batch]
    decode(z)             -> p(x|z), a ``tfd.Distribution`` over x, event shape image_shape
    prior_distribution()  -> p(z), a ``tfd.Distribution`` over z (no batch dimensions)
    sample(num, seed)     -> E[x|z] for num draws z ~ p(z): a tensor [num, *image_shape]
    reconstruct(x)        -> E[x|z] at the posterior mean of z (for a hierarchy, at the mean
                             of each layer given the means above): a tensor shaped like x
    log_importance_weights(x, num_samples, seed)
                          -> log w_k = log p(x, z_k) - log q(z_k|x),  z_k ~ q(z|x),
                             a float32 tensor [K, batch] in nats, k = 0 .. K-1
    elbo_terms(x, seed=None)
                          -> the model's own training objective per example (``ELBOTerms``
                             of ``objectives``: loss, elbo, reconstruction, kl, nats [batch])
    latent_diagnostics(x, seed)
                          -> {layer name: LayerDiagnostics(posterior_mean, kl_per_dimension)},
                             each a tensor [batch, size of that layer]
    sampler_noise_spec()  -> {name: priors.NoiseInput}: the noise one draw of the latent(s)
                             decoded by an exported sampler takes (shape per draw, normal or
                             uniform)
    latent_from_noise(noise)
                          -> the latent draw decode takes, computed from that noise with no
                             random ops (the sampler an app runs without Python)
    image_shape           -> the shape of one example, e.g. (28, 28, 1)
    latent_sizes          -> {layer name: number of latent variables}, ordered from the layer
                             next to the data to the top, e.g. {"z": 50} or {"z1": 100, "z2": 50}

Optional (``isinstance`` does not require it; the pictures fall back to ``decode`` for a model
with one layer):

    decode_layer(z, layer)
                          -> p(x | z_layer) for a value z [batch, size] of one latent layer:
                             the layers below it set to the means of their conditionals,
                             z_(i-1) = E[p(z_(i-1) | z_i)] going down (no noise), then decoded.
                             The layers above do not enter p(x | z_1). ``decode(z)`` for the
                             layer next to the data. What the traversals and interpolations
                             of a chosen layer decode (``figures_latent``).

For one latent layer z is a tensor [batch, size]. A hierarchical model (several latent layers,
top-down inference, Burda et al. 2016 sec. 5, Sønderby et al. 2016) returns joint
distributions (``tfd.JointDistribution*``) from ``encode`` and ``prior_distribution`` whose
draws are the structure ``decode`` takes; a model whose prior depends on its encoder (the
VampPrior of Tomczak & Welling 2018) computes ``prior_distribution()`` when called, which is
why it is a method and not an attribute.

Importance weights: the one estimator of log p(x). With z_k drawn from q(z|x),
E_q[w_k] = p(x), so (Kingma & Welling 2014; Burda et al. 2016)

    ELBO(x) ~= (1/K) sum_k log w_k                      (``objectives.monte_carlo_elbo``)
    L_K(x)   = log (1/K) sum_k w_k   <=  log p(x)       (``objectives.iwae_bound``)

and L_K rises to log p(x) as K grows: ``evaluation.log_likelihood`` reports L_5000 the way the
MNIST tables do. For a hierarchy log w_k takes every layer: log p(x|z1) + log p(z1|z2) +
log p(z2) - log q(z1|x) - log q(z2|z1). Units: nats per example throughout.

Seeds: ``seed`` is an integer s (meaning [s, 0]) or a shape-[2] integer tensor [a, b], a
stateless seed: draw k comes from the stateless seed [a, b + k] alone. So K draws at [a, b]
equal k1 draws at [a, b] followed by K - k1 draws at [a, b + k1]: the evaluation takes K = 5000
draws in chunks of any size with memory independent of K and the same result, and the same
seed always gives the same figures. ``elbo_terms(x)`` without a seed draws from the model's
own noise stream (training); ``elbo_terms(x, seed)`` draws all its noise from that one
stateless seed, reproducibly, and leaves the stream untouched (evaluation).

Which path uses what:
- Training (``ELBOModel.train_step``) minimises ``elbo_terms(x).loss``: for the ELBO objective the
  reconstruction -log p(x|z) at reparameterised draws plus kl_weight * KL(q(z|x) || p(z)),
  with the KL analytic wherever TFP registers it for (q, p) (a lower-variance estimate of the
  same expectation) and log q(z|x) - log p(z) at the same draws otherwise; for the IWAE
  objective minus L_K of the same log weights as ``log_importance_weights`` (with kl_weight
  on log q - log p), on draws from the model's noise stream, drawn for the whole global batch
  so that N replicas train like one device.
- ``evaluation.log_likelihood`` uses only ``log_importance_weights``; ``evaluation.evaluate``
  adds ``elbo_terms(x, seed)`` (the reported ELBO, rate and distortion, analytic KL as in
  training) and ``latent_diagnostics`` (KL per dimension and active units, per layer).
- Pictures and the CLI use ``encode``, ``sample``, ``reconstruct``, ``latent_diagnostics`` (the
  posterior means of a layer) and ``decode_layer`` (else ``decode``).
- Export (``keras_vae.export``) asks ``sampler_noise_spec``, ``latent_from_noise``,
  ``prior_distribution``, ``latent_sizes`` and three export members, which a model that is
  evaluated but never exported may leave out (they are not checked by ``isinstance``):

    decoder_layer         -> the name of the latent layer p(x|z) reads, a key of latent_sizes
                             ("z"; "z1" for a hierarchy): an exported decoder's input
    decoder_input(z)      -> that layer's tensor [batch, size] from a latent draw (a tensor
                             for one layer, or {layer name: tensor} / a named tuple, as
                             ``encode``, ``prior_distribution`` and ``latent_from_noise`` give)
    layer_posterior_parameters(x)
                          -> {layer name: (loc, scale)} float32 [batch, size]: each layer's
                             Gaussian q with the layers it is conditioned on at their own
                             posterior means (the zero-noise pass ``reconstruct`` decodes):
                             q(z|x) itself for one layer; q(zL|x), q(z(L-1)|zL = mean, x), ...
                             top-down; q(z1|x), q(z2|z1 = mean), ... bottom-up. Only the
                             first layer inferred is a marginal of q(z|x); the others are
                             conditionals at the means.

  With several layers each sampler noise input is named after the layer it draws ("z1_noise",
  "z2_noise", "z2_component_noise"); the likelihood head (``model.decoder``: export_outputs,
  output_meanings, ...) and ``model.prior`` (the top layer's prior) are read as layers.

This module has no TensorFlow import: checking a model against the protocol
(``isinstance(model, LatentVariableModel)``, which checks the names only) costs nothing.
"""

from typing import Any, Mapping, NamedTuple, Protocol, runtime_checkable


class LayerDiagnostics(NamedTuple):
    """What one latent layer reports for evaluation, per example.

    posterior_mean: E_q[z_i], [batch, size]; Var_x of it over the data is the activity of
        unit i (active when above 0.01, Burda et al. 2016 sec. 5.2).
    kl_per_dimension: KL(q(z_i|...) || p(z_i|...)) of each dimension i, nats [batch, size]
        (analytic where TFP registers it, else log q - log p at one draw; NaN where the
        prior does not factorise over dimensions). Its sum over i and over the layers is the
        rate of ``elbo_terms``.
    """

    posterior_mean: Any
    kl_per_dimension: Any


@runtime_checkable
class LatentVariableModel(Protocol):
    """A generative model p(x, z) = p(x|z) p(z) with inference model q(z|x); see the module
    docstring for the formulas, seeds and which code uses which member. ``kv.VAE`` is one."""

    image_shape: tuple
    latent_sizes: Mapping[str, int]

    def encode(self, x):
        """q(z|x) for a batch x [batch, *image_shape]: a ``tfd.Distribution``."""

    def decode(self, z):
        """p(x|z): a ``tfd.Distribution`` with event shape image_shape."""

    def prior_distribution(self):
        """p(z): a ``tfd.Distribution`` over z with no batch dimensions."""

    def sample(self, num_samples, seed=None):
        """Means of p(x|z) for ``num_samples`` draws z ~ p(z) [num, *image_shape]; the same
        integer seed gives the same images."""

    def reconstruct(self, x):
        """Means of p(x|z) at the posterior mean of z: a tensor shaped like x."""

    def log_importance_weights(self, x, num_samples, seed):
        """log p(x, z_k) - log q(z_k|x) for z_k ~ q(z|x), k < num_samples: float32
        [num_samples, batch], nats; draw k from the stateless seed [seed[0], seed[1] + k]."""

    def elbo_terms(self, x, seed=None):
        """The training objective's per-example terms (``objectives.ELBOTerms``), nats
        [batch]; with ``seed`` from that stateless seed, else from the model's noise stream."""

    def latent_diagnostics(self, x, seed):
        """{layer name: ``LayerDiagnostics``} for the batch x, in ``latent_sizes`` order."""

    def sampler_noise_spec(self):
        """{name: ``priors.NoiseInput``}: the noise one draw of the latents takes."""

    def latent_from_noise(self, noise):
        """The latent draw ``decode`` takes, from ``noise`` ({name: [n, *shape]}), with no
        random ops."""
