"""``HierarchicalVAE``: several layers of Gaussian latents, trained by ``ELBOModel``.

The two-stochastic-layer VAE of Burda et al. 2016 (``inference="bottom_up"``), the Ladder VAE
of Sønderby et al. 2016 (``inference="top_down"``, ``merge="precision"``) and its NVAE-style
residual form (Vahdat & Kautz 2020, ``merge="residual"``), with any number of layers, MLP or
convolutional bodies next to the data, any registered likelihood and any prior at the top
(``passes`` has the formulas). Per example it minimises, in nats,

    loss(x) = -log p(x | z_1) + kl_weight * sum_i KL_i,
    KL_i = E_q[log q(z_i | .) - log p(z_i | z_{i+1})]   (p(z_L) for the top layer),

with free bits applied within each layer (Kingma et al. 2016), or with ``objective="iwae"``
minus the importance-weighted bound of the log weights

    log w_k = log p(x | z_1k) + sum_i [log p(z_ik | z_(i+1)k) - log q(z_ik | .)],

the same weights ``log_importance_weights`` gives the K=5000 evaluation. It implements the
model protocol (``protocol.LatentVariableModel``); ``encode`` and ``prior_distribution`` are
joint distributions over the layers, whose draws (named tuples z1, z2, ...) ``decode`` takes.
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import networks, priors
from keras_vae.checks import check_choice
from keras_vae.config import MERGES, check_objective
from keras_vae.elbo_model import ELBOModel
from keras_vae.errors import ConfigError
from keras_vae.hierarchy import objective, passes
from keras_vae.hierarchy.steps import GaussianStep
from keras_vae.layers import GaussianEncoder
from keras_vae.likelihoods import HEADS as LIKELIHOODS
from keras_vae import likelihoods

tfd = tfp.distributions

INFERENCES = ("bottom_up", "top_down")


@keras.saving.register_keras_serializable(package="keras_vae")
class HierarchicalVAE(ELBOModel):
    """A VAE with ``len(latent_dims)`` layers of Gaussian latents z1 (next to the data) .. zL.

    Args:
        input_shape: shape of one example, e.g. (28, 28, 1).
        latent_dims: sizes of z1 .. zL, from the data up, e.g. (100, 50) (Burda et al. 2016).
        likelihood: a registered likelihood of p(x | z1) (``likelihoods``; default Bernoulli).
        architecture, hidden_units, activation: the bodies next to the data, as for ``VAE``:
            x -> features (encoder) and z1 -> p(x | z1) (decoder).
        latent_hidden_units: Dense units of each MLP between two latent layers, both ways
            (Burda et al.: (100, 100)); () connects the layers through the heads alone.
        inference: "top_down" (ladder, default) or "bottom_up" (Burda et al. 2016).
        merge: how a top-down pass combines bottom-up evidence and prior: "precision"
            (Ladder VAE, default) or "residual" (NVAE).
        prior: p(zL), a prior layer or a name of ``config.PRIORS`` (default "standard"); a
            prior built on the encoder (the VampPrior) needs top-down inference, where
            q(zL | x) is a Gaussian of x.
        kl_weight, objective, iw_samples, free_bits, free_bits_groups: as for ``VAE``; free
            bits floor the batch-mean KL of each group within each layer
            (``free_bits_groups`` groups per layer; default one per dimension).

    Every reported figure is in nats per example.
    """

    def __init__(self, input_shape, latent_dims=(100, 50), likelihood=None,
                 architecture="mlp", hidden_units=None, activation="tanh",
                 latent_hidden_units=(100, 100), inference="top_down", merge="precision",
                 prior=None, kl_weight=1.0, objective="elbo", iw_samples=1, free_bits=0.0,
                 free_bits_groups=None, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = networks.check_image_shape(input_shape)
        self.latent_dims = _check_latent_dims(latent_dims)
        self.architecture = check_choice("architecture", architecture, networks.ARCHITECTURES)
        self.hidden_units = networks.resolve_hidden_units(architecture, hidden_units)
        self.latent_hidden_units = tuple(int(units) for units in latent_hidden_units)
        self.activation = activation
        self.inference = check_choice("inference", inference, INFERENCES)
        self.merge = check_choice("merge", merge, MERGES)
        self.likelihood = likelihoods.get(likelihood or likelihoods.DEFAULT).name
        networks.check_architecture_accepts(self.architecture, self.image_shape,
                                            self.hidden_units)
        body = dict(architecture=self.architecture, hidden_units=self.hidden_units,
                    activation=activation)
        self.decoder = LIKELIHOODS[self.likelihood](self.image_shape, name="decoder", **body)
        self.encoder = GaussianEncoder(self.latent_dims[0], name="encoder",
                                       input_scale=self.decoder.encoder_input_scale, **body)
        step = dict(hidden_units=self.latent_hidden_units, activation=activation)
        self.up_steps = [GaussianStep(size, name=f"up_{index + 2}", **step)
                         for index, size in enumerate(self.latent_dims[1:])]
        self.down_steps = [GaussianStep(size, name=f"down_{index + 1}", **step)
                           for index, size in enumerate(self.latent_dims[:-1])]
        self.merge_heads = ([keras.layers.Dense(2 * size, use_bias=False,
                                                name=f"merge_{index + 1}")
                             for index, size in enumerate(self.latent_dims[:-1])]
                            if self.inference == "top_down" and self.merge == "residual"
                            else [])
        self.prior = self._resolve_prior(prior)
        self.objective, self.iw_samples, self.free_bits, self.free_bits_groups = \
            check_objective(objective, iw_samples, free_bits, free_bits_groups,
                            min(self.latent_dims))
        self._add_training_state(kl_weight)
        self.build((None,) + self.image_shape)

    def build(self, input_shape=None):
        if self.built:
            return
        x = tf.zeros((1,) + self.image_shape, self.compute_dtype)
        self.encoder(x)
        features = self.encoder.features(x).shape[-1]
        widths = [features]
        for step, size in zip(self.up_steps, self.latent_dims):
            inputs = widths[-1] if self.inference == "top_down" else size
            step.build((None, inputs))
            widths.append(step.feature_size(inputs))
        for step, size in zip(self.down_steps, self.latent_dims[1:]):
            step.build((None, size))
        for head, step, size in zip(self.merge_heads, self.down_steps, self.latent_dims[1:]):
            head.build((None, step.feature_size(size)))
        self.decoder(tf.zeros((1, self.latent_dims[0]), self.compute_dtype))
        self.built = True

    def _resolve_prior(self, prior):
        top = self.latent_dims[-1]
        if prior is None or isinstance(prior, str):
            prior = priors.build_prior(prior or "standard", top, input_shape=self.image_shape,
                                       data_range=priors.data_range_of(self.decoder))
        if prior.latent_dim != top:
            raise ConfigError(f"The prior has latent_dim={prior.latent_dim} but the top layer "
                              f"has {top} latents; they must agree.")
        if getattr(prior, "needs_encoder", False) and self.inference == "bottom_up" \
                and len(self.latent_dims) > 1:
            raise ConfigError(f"The {type(prior).__name__} encodes pseudo-inputs with q(zL|x), "
                              f"which bottom-up inference does not have in closed form; use "
                              f"top-down inference (kvae fit --model ladder).")
        return prior

    # ----------------------------------------------------------------- the public API

    @property
    def latent_sizes(self):
        """{"z1": size, "z2": size, ...} from the data up."""
        return {f"z{index + 1}": size for index, size in enumerate(self.latent_dims)}

    @property
    def latent_dim(self):
        """Size of z1, the layer p(x | z1) reads (what an exported decoder takes)."""
        return self.latent_dims[0]

    def prior_distribution(self):
        """p(z) = p(zL) p(z_{L-1} | zL) ... p(z1 | z2): a joint distribution whose draws are
        named tuples (zL, ..., z1)."""
        top = self.top_prior_distribution()
        names = list(self.latent_sizes)

        def model():
            z = yield tfd.JointDistributionCoroutine.Root(_named(top, names[-1]))
            for index in reversed(range(len(names) - 1)):
                z = yield _named(self.down_steps[index](z), names[index])

        return tfd.JointDistributionCoroutine(model)

    def encode(self, x, training=None):
        """q(z | x) over every layer, a joint distribution in the order of inference (draws
        are named tuples); ``latent_diagnostics`` gives each layer's posterior mean."""
        x = tf.cast(tf.convert_to_tensor(x), self.compute_dtype)
        names = list(self.latent_sizes)
        if self.inference == "bottom_up":
            def model():
                z = yield tfd.JointDistributionCoroutine.Root(
                    _named(self.encoder(x, training=training), names[0]))
                for step, name in zip(self.up_steps, names[1:]):
                    z = yield _named(step(z), name)
            return tfd.JointDistributionCoroutine(model)

        _, estimates = passes.bottom_up_features(self, x, training)

        def top_down():
            z = yield tfd.JointDistributionCoroutine.Root(
                _named(passes.top_posterior_from(estimates), names[-1]))
            for index in reversed(range(len(names) - 1)):
                posterior, _ = passes.conditional_posterior(self, estimates, index, z)
                z = yield _named(posterior, names[index])
        return tfd.JointDistributionCoroutine(top_down)

    def decode(self, z, training=None):
        """p(x | z1): a ``tfd.Distribution`` with event shape input_shape; z is a draw of
        ``encode``/``prior_distribution`` (named tuple or dict) or z1 itself [batch, size]."""
        return self.decoder(tf.cast(self.decoder_input(z), self.compute_dtype),
                            training=training)

    @property
    def decoder_layer(self):
        """"z1": the layer p(x | z1) reads (an export member of the model protocol)."""
        return next(iter(self.latent_sizes))

    def decoder_input(self, z):
        """z1 [batch, size] of a draw (named tuple or dict of layers), or z1 itself."""
        if hasattr(z, "_asdict"):
            z = z._asdict()
        return z[self.decoder_layer] if isinstance(z, dict) else z

    def layer_posterior_parameters(self, x):
        """{name: (loc, scale)} float32 [batch, size] of each layer's q given the posterior
        means of the layers it is conditioned on (the pass ``reconstruct`` decodes)."""
        return {layer.name: tuple(tf.broadcast_to(value, tf.shape(layer.z))[0] for value in
                                  (layer.posterior.mean(), layer.posterior.stddev()))
                for layer in self._posterior_means(x)}

    def decode_layer(self, z, layer):
        """p(x | z_layer) for a value z [batch, size] of ``layer``: going down, each layer
        below at the mean of p(z_(i-1) | z_i) (no noise), then p(x | z1); the layers above do
        not enter it. What a traversal or interpolation of a higher layer decodes."""
        names = list(self.latent_sizes)
        if layer not in names:
            raise ValueError(f"The model has no latent layer {layer!r}; its layers: "
                             f"{', '.join(names)}.")
        z = tf.cast(z, self.compute_dtype)
        for index in reversed(range(names.index(layer))):
            z = self.down_steps[index](z).mean()
        return self.decode(z)

    def reconstruct(self, x, training=None):
        """Mean of p(x | z1), z1 from the pass at the posterior mean of every layer given the
        means above (zero noise)."""
        return self.decode(self._posterior_means(x, training)[0].z[0], training).mean()

    def call(self, x, training=None):
        return self.reconstruct(x, training=training)

    def top_prior_distribution(self):
        """p(zL): the prior layer's distribution over the top layer."""
        return self.prior.distribution(**self._prior_arguments())

    def sampler_noise_spec(self):
        """{name: ``priors.NoiseInput``}: "z1_noise", ... for the conditionals below the top,
        then the top prior's own inputs, named after the top layer ("z2_noise", ...)."""
        names = list(self.latent_sizes)
        spec = {f"{name}_noise": priors.NoiseInput((size,), "normal")
                for name, size in list(self.latent_sizes.items())[:-1]}
        return {**spec, **{_top_input(names[-1], key): item
                           for key, item in self.prior.noise_spec().items()}}

    def latent_from_noise(self, noise):
        """{name: z} for every layer from ``noise`` (``sampler_noise_spec``), no random ops."""
        names = list(self.latent_sizes)
        top = self.prior.sample_from_noise(
            {key: noise[_top_input(names[-1], key)] for key in self.prior.noise_spec()},
            **self._prior_arguments())
        return passes.generative_pass(
            self, top, {name: noise.get(f"{name}_noise") for name in names[:-1]})

    def _prior_arguments(self):
        if not getattr(self.prior, "needs_encoder", False):
            return {}
        return {"encoder": _TopEncoder(self)}

    # ----------------------------------------------------------------- objectives

    def log_importance_weights(self, x, num_samples, seed):
        """log w_k over every layer (module docstring), nats [num_samples, batch]
        (``objective.log_importance_weights``)."""
        return objective.log_importance_weights(self, self._checked_data(x), num_samples, seed)

    def elbo_terms(self, x, training=None, seed=None):
        """Per-example ``objectives.ELBOTerms`` with ``layer_kl`` {name: KL_i}, nats [batch]
        (``objective.elbo_terms``)."""
        return objective.elbo_terms(self, self._checked_data(x), training, seed)

    def latent_diagnostics(self, x, seed):
        """{name: ``LayerDiagnostics``} (``objective.latent_diagnostics``)."""
        return objective.latent_diagnostics(self, self._checked_data(x), seed)

    def _posterior_means(self, x, training=None):
        return objective.posterior_means(self, tf.cast(x, self.compute_dtype), training)

    def _checked_data(self, x):
        """x as float32 with its shape checked now and its values (``data_checks``) when run."""
        x = tf.convert_to_tensor(x)
        if not x.shape[1:].is_compatible_with(self.image_shape):
            raise ValueError(
                f"The model expects examples of shape {self.image_shape}; received a batch of "
                f"shape {tuple(x.shape)}. Reshape the data or build the model with "
                f"input_shape={tuple(x.shape[1:])}.")
        x = tf.cast(x, tf.float32)
        with tf.control_dependencies(self.decoder.data_checks(x)):
            return tf.identity(x)

    # ----------------------------------------------------------------- serialisation

    def get_config(self):
        return {
            "name": self.name, "trainable": self.trainable,
            "input_shape": list(self.image_shape), "latent_dims": list(self.latent_dims),
            "likelihood": self.likelihood, "architecture": self.architecture,
            "hidden_units": list(self.hidden_units), "activation": self.activation,
            "latent_hidden_units": list(self.latent_hidden_units),
            "inference": self.inference, "merge": self.merge,
            "prior": keras.saving.serialize_keras_object(self.prior),
            "kl_weight": self.kl_weight, "objective": self.objective,
            "iw_samples": self.iw_samples, "free_bits": self.free_bits,
            "free_bits_groups": self.free_bits_groups,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("prior"), dict):
            config["prior"] = keras.saving.deserialize_keras_object(config["prior"])
        return cls(**config)


class _TopEncoder:
    """x -> q(zL | x) of a top-down model, shaped like an encoder for a prior built on one
    (the VampPrior); not a layer, so its weights stay the model's own."""

    def __init__(self, model):
        self.model = model
        self.compute_dtype = model.compute_dtype

    def __call__(self, x):
        return passes.top_posterior(self.model, x)


def _named(distribution, name):
    """``distribution`` under ``name``, which names its part of a joint draw."""
    return tfd.Independent(distribution, reinterpreted_batch_ndims=0, name=name)


def _top_input(top, key):
    """Sampler input name of the top prior's noise ``key``: "z_noise" -> "z2_noise", other
    keys prefixed ("component_noise" -> "z2_component_noise")."""
    return f"{top}_{key[2:]}" if key.startswith("z_") else f"{top}_{key}"


def _check_latent_dims(latent_dims):
    if isinstance(latent_dims, int):
        latent_dims = (latent_dims,)
    dims = tuple(latent_dims)
    if not dims or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1
                       for d in dims):
        raise ConfigError(f"latent_dims must be positive integers, one per layer from the "
                          f"data up (e.g. 100,50); received {latent_dims!r}.")
    return tuple(int(d) for d in dims)
