"""Priors p(z) over the latent space, held by the model as Keras layers.

One module per prior: ``standard`` (the Normal(0, I) of Kingma & Welling 2014), and the learned
ones (``mixture``: a mixture of Gaussians; ``vamp``: the VampPrior of Tomczak & Welling 2018;
``flow``). The names ``kvae fit --prior`` takes are ``config.PRIORS`` (no TensorFlow there);
``build_prior(name, latent_dim, num_components, input_shape, data_range)`` builds the layer of
a name (``PRIOR_CLASSES``: name -> "module:ClassName", imported when built).

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
- ``factorized``: whether p(z) is a product over the latents (then the KL per dimension, and
  free bits per group, are defined); False for the mixtures.

How each path uses the prior: training takes the analytic KL(q(z|x) || p(z)) when TFP
registers one for the pair, and the Monte Carlo estimate log q(z|x) - log p(z) at the
posterior draws otherwise (``objectives.kl_divergence``); the importance weights, and so the
IWAE bound and the K=5000 evaluation, always use ``log_prob`` of the prior itself
(``objectives.log_importance_weights``); ``model.sample`` draws from it with a stateless seed.
"""

import importlib
import importlib.util
import inspect
from typing import NamedTuple

import numpy as np

from keras_vae.config import PRIORS, check_prior
from keras_vae.errors import ConfigError

__all__ = ["FlowPrior", "MixtureOfGaussiansPrior", "NoiseInput", "StandardNormalPrior",
           "VampPrior", "build_prior", "data_range_of", "draw_noise"]

# name (``config.PRIORS``) -> the prior layer class, "module:ClassName", imported when built.
PRIOR_CLASSES = {
    "standard": "keras_vae.priors.standard:StandardNormalPrior",
    "mog": "keras_vae.priors.mixture:MixtureOfGaussiansPrior",
    "vamp": "keras_vae.priors.vamp:VampPrior",
    "flow": "keras_vae.priors.flow:FlowPrior",
}


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


def prior_class(name):
    """The prior layer class of ``name`` (one of ``config.PRIORS``), imported on first use;
    ConfigError listing the valid names, or saying that this installation lacks it."""
    module, class_name = PRIOR_CLASSES[check_prior(name, None)[0]].split(":")
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"The prior {name!r} is not available in this version of keras-vae "
                          f"({module} is missing); use one of 'standard', 'mog', 'vamp'.")
    return getattr(importlib.import_module(module), class_name)


_CLASS_DEFAULT = object()


def build_prior(name, latent_dim, num_components=None, input_shape=None,
                data_range=_CLASS_DEFAULT, **options):
    """The prior layer called ``name`` ("standard", "mog", "vamp", "flow") over ``latent_dim``
    variables, named "prior".

    Args:
        num_components: K for a mixture ("mog", default 10) or the VampPrior's pseudo-inputs
            ("vamp", default 500); ConfigError when given to a prior without components.
        input_shape, data_range: the data's shape and range ((low, high), or None for
            real-valued data: ``data_range_of``), which the VampPrior's pseudo-inputs take;
            by default the class's own (the VampPrior's: (0, 1)).
        options: further arguments of the prior's constructor.
    """
    name, num_components = check_prior(name, num_components)
    cls = prior_class(name)
    given = dict(options, num_components=num_components, input_shape=input_shape,
                 data_range=data_range)
    accepted = inspect.signature(cls.__init__).parameters
    arguments = {key: value for key, value in given.items()
                 if key in accepted and value is not _CLASS_DEFAULT
                 and (value is not None or key == "data_range")}
    return cls(latent_dim, name="prior", **arguments)


# Importing the built-in priors registers them with Keras: load_model of a model saved with
# one works after ``import keras_vae`` (``keras_vae._register_keras_classes``). A prior module
# that is not there (yet) is skipped; build_prior names the problem if it is asked for.
from keras_vae.priors.standard import StandardNormalPrior  # noqa: E402
from keras_vae.priors.mixture import MixtureOfGaussiansPrior  # noqa: E402
from keras_vae.priors.vamp import VampPrior, data_range_of  # noqa: E402
from keras_vae.priors.flow import FlowPrior  # noqa: E402
