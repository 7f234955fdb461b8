"""Priors p(z) over the latent space, held by the model as Keras layers.

One module per prior: ``standard`` (the Normal(0, I) of Kingma & Welling 2014), and the learned
ones (a mixture of Gaussians, the VampPrior of Tomczak & Welling 2018, a flow). The names
``kvae fit --prior`` takes are ``config.PRIORS`` (no TensorFlow there).

What every prior layer provides (the contract the model, the objectives and export rely on):

- ``latent_dim``: the number of latent variables.
- ``distribution()``: p(z), a float32 ``tfd.Distribution`` with event shape [latent_dim] and no
  batch dimensions, computed when called, never cached, so it follows the weights. A prior
  whose density depends on the model's encoder (the VampPrior: the mixture of q(z|u_j) at K
  learned pseudo-inputs u_j) sets ``needs_encoder = True`` and takes ``encoder=`` here and in
  ``sample_from_noise``; the model passes it (``VAE._prior_arguments``).
- ``noise_spec()``: {name: ``NoiseInput``} the independent noise one draw of z needs, so that an
  exported sampler takes its randomness as inputs and holds no random ops (TFLite).
- ``sample_from_noise(noise)``: z [n, latent_dim] from ``noise`` ({name: float32
  [n, *shape]} drawn as ``noise_spec`` says): a deterministic function made of ops the TFLite
  converter lowers to builtins (no sampling, no gather on float indices), whose output is
  distributed as p(z). ``draw_noise`` draws such noise with numpy (tests, apps in Python).
- ``get_config()`` for ``.keras`` files; weights are the layer's own.

How each path uses the prior: training takes the analytic KL(q(z|x) || p(z)) when TFP
registers one for the pair, and the Monte Carlo estimate log q(z|x) - log p(z) at the
posterior draws otherwise (``objectives.kl_divergence``); the importance weights, and so the
IWAE bound and the K=5000 evaluation, always use ``log_prob`` of the prior itself
(``objectives.log_importance_weights``); ``model.sample`` draws from it with a stateless seed.
"""

from typing import NamedTuple

import numpy as np

from keras_vae.priors.standard import StandardNormalPrior

__all__ = ["NoiseInput", "StandardNormalPrior", "draw_noise"]


class NoiseInput(NamedTuple):
    """One noise input of a sampler: per-draw ``shape`` (a tuple, () for a scalar per draw)
    and ``distribution``: "normal" (standard Normal) or "uniform" (on [0, 1))."""

    shape: tuple
    distribution: str


def draw_noise(spec, num, seed=0):
    """{name: float32 array [num, *shape]} drawn as ``spec`` ({name: NoiseInput}) says, with
    numpy's generator seeded by ``seed``: the inputs an exported sampler takes."""
    rng = np.random.default_rng(seed)
    draws = {}
    for name, item in spec.items():
        shape = (int(num),) + tuple(item.shape)
        if item.distribution == "normal":
            draws[name] = rng.standard_normal(shape).astype(np.float32)
        elif item.distribution == "uniform":
            draws[name] = rng.random(shape).astype(np.float32)
        else:
            raise ValueError(f"Unknown noise distribution {item.distribution!r} for {name!r}.")
    return draws
