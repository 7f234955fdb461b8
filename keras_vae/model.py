"""The variational autoencoder: one layer of Gaussian latents, trained by ``ELBOModel``.

``VAE`` implements the model protocol (``protocol.LatentVariableModel``: encode, decode,
prior_distribution, sample, reconstruct, log_importance_weights, elbo_terms,
latent_diagnostics, image_shape, latent_sizes), through which evaluation, pictures and the CLI use it.
Per example the model minimises (``objectives.negative_elbo``)

    loss(x) = -log p(x|z) + kl_weight * KL(q(z|x) || p(z)),   z = loc + scale * eps,

in nats (with ``objective="iwae"``, minus the importance-weighted bound of
``objectives.iwae_bound``; free bits and K draws per example are options), and tracks the
epoch means of ``loss``, ``elbo``, ``reconstruction`` and ``kl``.
``model.fit``, ``model.evaluate``, callbacks and ``tf.distribute`` strategies work as with any
Keras model; ``VAE.call`` returns tensors (reconstruction means) so ``predict`` works too.
"""

from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

from keras_vae import networks, objectives
from keras_vae.checks import check_choice
from keras_vae import priors
from keras_vae.config import (DEFAULT_LATENT_DIM, OBJECTIVES, check_free_bits_prior,  # noqa: F401
                              check_latent_dim, check_objective)
from keras_vae.elbo_model import ELBOModel
from keras_vae.errors import ConfigError
from keras_vae.layers import GaussianEncoder, positive_scale, stable_softplus
from keras_vae.protocol import LayerDiagnostics

from keras_vae import likelihoods  # noqa: E402
from keras_vae.layers import ImageDecoder  # noqa: E402

# name -> decoder head class of every registered likelihood (likelihoods.py), imported when a
# model asks for it, so that heads a user registers work here as the built-in ones do.
LIKELIHOODS = likelihoods.HEADS


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(ELBOModel):
    """Variational autoencoder: encoder q(z|x), decoder p(x|z), prior p(z).

    Args:
        input_shape: shape of one example, e.g. (28, 28, 1).
        latent_dim: number of latent variables (default 50, or the encoder's).
        likelihood: ``"bernoulli"`` (data in [0, 1]) or ``"normal"``; default ``"bernoulli"``,
            or the kind of a decoder layer passed as ``decoder``.
        architecture: ``"mlp"`` or ``"conv"`` bodies (``networks.py``) where no network is given.
        hidden_units: body sizes: units per Dense layer (mlp) or filters per stride-2
            convolution (conv); default (200, 200) for mlp, (32, 64) for conv.
        activation: activation of the default bodies.
        kl_weight: weight of the KL term in the loss (beta); 1 trains on the true ELBO. It is a
            model variable, so a callback can change it between steps without retracing.
        encoder: a ``GaussianEncoder``, or any Keras network mapping x to features, which is
            then wrapped in a ``GaussianEncoder`` head.
        decoder: a ``BernoulliDecoder``/``NormalDecoder``, or any Keras network mapping z to
            features ([batch, units] or [batch, *input_shape[:-1], filters]), wrapped in the
            head of ``likelihood``.
        prior: a prior layer (``keras_vae.priors``: ``StandardNormalPrior``,
            ``MixtureOfGaussiansPrior``, ``VampPrior``, ...) or the name of one in
            ``config.PRIORS`` ("standard", "mog", "vamp"), built with its default number of
            components (``priors.build_prior``); default "standard", N(0, I).
        objective: ``"elbo"`` (default) or ``"iwae"``, the importance-weighted bound of
            Burda et al. 2016 with ``iw_samples`` draws (``objectives.negative_iwae``).
        iw_samples: K, posterior draws per example in training and ``evaluate``: the ELBO
            averages its reconstruction term over them; IWAE uses them in its bound. K=1 is
            the single-sample ELBO under both objectives.
        free_bits: lambda, nats: floor on the batch-mean KL of each group of latents
            (Kingma et al. 2016); 0 (default) turns it off. Not with ``objective="iwae"``.
        free_bits_groups: number of equal groups of latent dimensions the floor applies to;
            default one group per dimension. Under a tf.distribute strategy the floor applies
            to each replica's share of the batch (an all-reduce of the group means inside
            the step clashed with Keras' gradient all-reduce on TF 2.21).

    Every reported figure is in nats per example (sum over pixels, mean over the batch).
    Reference: Kingma & Welling, Auto-Encoding Variational Bayes, 2014.
    """

    def __init__(self, input_shape, latent_dim=None, likelihood=None, architecture="mlp",
                 hidden_units=None, activation="relu", kl_weight=1.0, encoder=None,
                 decoder=None, prior=None, objective="elbo", iw_samples=1, free_bits=0.0,
                 free_bits_groups=None, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = networks.check_image_shape(input_shape)
        self.architecture = check_choice(
            "architecture", architecture, networks.ARCHITECTURES)
        self.hidden_units = networks.resolve_hidden_units(architecture, hidden_units)
        self.activation = activation
        self.likelihood = _resolve_likelihood(likelihood, decoder)
        self.latent_dim = _resolve_latent_dim(
            latent_dim, encoder, None if isinstance(prior, str) else prior)
        body = dict(architecture=self.architecture, hidden_units=self.hidden_units,
                    activation=activation)
        if isinstance(decoder, tuple(LIKELIHOODS.values())):
            head = decoder
        else:
            head = LIKELIHOODS[self.likelihood](
                self.image_shape, network=decoder, name="decoder", **body)
        if isinstance(encoder, GaussianEncoder):
            self.encoder = encoder
        else:
            if encoder is None:
                networks.check_architecture_accepts(
                    self.architecture, self.image_shape, self.hidden_units)
            # The head says how its data are scaled for a network (1/255 for 8-bit levels).
            self.encoder = GaussianEncoder(self.latent_dim, network=encoder, name="encoder",
                                           input_scale=head.encoder_input_scale, **body)
        self.decoder = head
        if tuple(self.decoder.image_shape) != self.image_shape:
            raise ValueError(
                f"The decoder produces images of shape {self.decoder.image_shape} but "
                f"input_shape is {self.image_shape}; they must agree."
            )
        self.prior = self._resolve_prior(prior)
        (self.objective, self.iw_samples, self.free_bits,
         self.free_bits_groups) = check_objective(objective, iw_samples, free_bits,
                                                  free_bits_groups, self.latent_dim)
        check_free_bits_prior(self.free_bits, self.free_bits_groups,
                              getattr(self.prior, "factorized", True))
        self._add_training_state(kl_weight)
        # A model trained only through train_step is otherwise never built, and its .keras
        # file would reload with random weights (DESIGN.md, trap 6).
        self.build((None,) + self.image_shape)

    def build(self, input_shape=None):
        if self.built:
            return
        posterior = self.encoder(tf.zeros((1,) + self.image_shape, self.compute_dtype))
        self.decoder(posterior.mean())
        self.built = True

    @classmethod
    def from_preset(cls, name):
        """The trained model shipped under ``name`` (``presets.SHIPPED_MODELS``), e.g.
        ``kv.VAE.from_preset("mnist-bernoulli-mlp")``, as KerasHub's ``from_preset``."""
        from keras_vae import presets

        return presets.load_shipped_model(name)

    # ----------------------------------------------------------------- the public API

    def encode(self, x, training=None):
        """q(z|x): a ``tfd.Distribution`` with batch shape [batch], event shape [latent_dim]."""
        return self.encoder(self._as_input(x), training=training)

    def decode(self, z, training=None):
        """p(x|z): a ``tfd.Distribution`` with batch shape [batch], event shape input_shape."""
        return self.decoder(tf.cast(z, self.compute_dtype), training=training)

    def decode_layer(self, z, layer="z"):
        """p(x|z) for the one layer "z" (``protocol``: the pictures' decode of a layer)."""
        if layer != "z":
            raise ValueError(f"The model has one latent layer, 'z'; received {layer!r}.")
        return self.decode(z)

    def reconstruct(self, x, training=None):
        """Mean of p(x|z) at the posterior mean z = E_q[z]: a tensor shaped like x."""
        return self.decode(self.encode(x, training).mean(), training).mean()

    def prior_distribution(self):
        """p(z): the prior layer's float32 ``tfd.Distribution``, event shape [latent_dim].

        ``model.prior`` is the layer (it holds a learned prior's weights); the model passes
        its encoder to a prior built on it (``needs_encoder``: the VampPrior).
        """
        return self.prior.distribution(**self._prior_arguments())

    def sampler_noise_spec(self):
        """{name: ``priors.NoiseInput``}: the noise one draw of z takes (``latent_from_noise``)."""
        return self.prior.noise_spec()

    def latent_from_noise(self, noise):
        """z [n, latent_dim] ~ p(z) computed from ``noise`` ({name: [n, *shape]}, drawn as
        ``sampler_noise_spec`` says) with no random ops: what an exported sampler decodes."""
        return self.prior.sample_from_noise(noise, **self._prior_arguments())

    decoder_layer = "z"  # the export members of the model protocol (protocol.py)

    def decoder_input(self, z):
        """z [batch, latent_dim] itself, or the "z" of a {layer name: tensor} draw."""
        return z[self.decoder_layer] if isinstance(z, Mapping) else z

    def layer_posterior_parameters(self, x):
        """{"z": (loc, scale)} of q(z|x), float32 [batch, latent_dim]; the scale's softplus is
        the formula TFLite lowers without overflow (``layers.stable_softplus``, trap 8)."""
        loc, raw_scale = self.encoder.posterior_parameters(self._as_input(x))
        return {"z": (loc, positive_scale(raw_scale, softplus=stable_softplus))}

    def _resolve_prior(self, prior):
        """The prior layer: ``prior`` itself, or the one its name (or None: "standard")
        builds for this model's data shape and range; a prior that reads the data (the
        VampPrior) must have the model's input shape."""
        if prior is None or isinstance(prior, str):
            return priors.build_prior(prior or "standard", self.latent_dim,
                                      input_shape=self.image_shape,
                                      data_range=priors.data_range_of(self.decoder))
        shape = getattr(prior, "image_shape", None)
        if getattr(prior, "needs_encoder", False) and shape is not None \
                and tuple(shape) != self.image_shape:
            raise ConfigError(
                f"The prior's pseudo-inputs have shape {tuple(shape)} but the model's data "
                f"have shape {self.image_shape}; build the {type(prior).__name__} with "
                f"input_shape={self.image_shape}.")
        return prior

    def _prior_arguments(self):
        # A user's prior written before learned priors existed takes no arguments.
        return {"encoder": self.encoder} if getattr(self.prior, "needs_encoder", False) else {}

    @property
    def latent_sizes(self):
        """{"z": latent_dim}: the one latent layer and its number of variables."""
        return {"z": self.latent_dim}

    def call(self, x, training=None):
        return self.reconstruct(x, training=training)

    def log_importance_weights(self, x, num_samples, seed):
        """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x), z_k ~ q(z|x): nats
        [num_samples, batch], draw k from the stateless seed [seed[0], seed[1] + k]
        (``protocol``; ``objectives.single_layer_log_weights``). The K draws are decoded in
        one call: the caller chunks K to bound memory (``evaluation.log_likelihood``)."""
        x = self._checked_data(x)
        return objectives.single_layer_log_weights(
            x, self.encoder(x), self.decoder, self.prior_distribution(), int(num_samples), seed)

    def elbo_terms(self, x, training=None, seed=None):
        """Per-example ``objectives.ELBOTerms`` (loss, elbo, reconstruction, kl) in nats.

        ``iw_samples`` reparameterised draws per example, from the model's noise stream, or
        with ``seed`` (a [2] stateless seed) from that seed, which gives the noise the stream
        gives at state ``seed`` and leaves the stream alone. The loss is the negative ELBO
        with the analytic KL where TFP registers it (Monte Carlo at the same draws otherwise)
        or, with ``objective="iwae"`` and K > 1, minus the IWAE bound of the log importance
        weights at these draws (``objectives.negative_iwae``).
        """
        x = self._checked_data(x)
        posterior = self.encoder(x, training=training)
        num_draws = self.iw_samples
        noise = self._noise(tf.shape(x)[0], num_draws, seed)
        z = objectives.reparameterized_sample(posterior, noise)  # [K, batch, latent_dim]
        log_likelihood = self.log_likelihood_at(x, z, training=training)
        prior = self.prior_distribution()
        if self.objective == "iwae" and num_draws > 1:
            return objectives.negative_iwae(log_likelihood, posterior, prior, z,
                                            self._kl_weight)
        # IWAE with K=1 is the ELBO (Burda et al. 2016, sec. 3): it takes the same path, with
        # the analytic KL, and so trains identically.
        return objectives.negative_elbo(
            log_likelihood, posterior, prior, z, self._kl_weight, free_bits=self.free_bits,
            free_bits_groups=self.free_bits_groups)

    def latent_diagnostics(self, x, seed):
        """{"z": ``protocol.LayerDiagnostics``}: E_q[z] and KL(q(z_i|x) || p(z_i)) per dimension
        [batch, latent_dim] (analytic where TFP registers it, else log q - log p at one draw
        from ``seed``; NaN when the prior does not factorise over dimensions)."""
        posterior = self.encoder(self._as_input(x))
        prior = self.prior_distribution()
        try:
            kl = objectives.kl_per_dimension(
                posterior, prior, posterior.sample(seed=tf.cast(objectives.stateless_seed(seed), tf.int32)))
        except ValueError:  # a prior that does not factorise: no KL per dimension
            kl = tf.fill(tf.shape(posterior.mean()), np.nan)
        return {"z": LayerDiagnostics(posterior.mean(), kl)}

    def log_likelihood_at(self, x, z, training=None):
        """log p(x|z_k) [K, batch] for draws z [K, batch, latent_dim], decoded in one call."""
        return objectives.decoded_log_likelihood(
            lambda draws: self.decoder(tf.cast(draws, self.compute_dtype), training=training),
            x, z)

    # ----------------------------------------------------------------- input checks

    def _as_input(self, x):
        return tf.cast(tf.convert_to_tensor(x), self.compute_dtype)

    def _checked_data(self, x):
        """x as float32, with its shape checked now and its values checked when run.

        The values get the checks the likelihood head asks for (``data_checks``: finite for
        every head, in [0, 1] for Bernoulli): otherwise log_prob returns garbage or NaN
        instead of failing.
        """
        x = tf.convert_to_tensor(x)
        if not x.shape[1:].is_compatible_with(self.image_shape):
            raise ValueError(
                f"The VAE expects examples of shape {self.image_shape}; received a batch of "
                f"shape {tuple(x.shape)}. Reshape the data or build the model with "
                f"input_shape={tuple(x.shape[1:])}."
            )
        x = tf.cast(x, tf.float32)
        with tf.control_dependencies(self.decoder.data_checks(x)):
            return tf.identity(x)

    # ----------------------------------------------------------------- serialisation

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_shape": list(self.image_shape),
            "latent_dim": self.latent_dim,
            "likelihood": self.likelihood,
            "architecture": self.architecture,
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "kl_weight": self.kl_weight,
            "objective": self.objective,
            "iw_samples": self.iw_samples,
            "free_bits": self.free_bits,
            "free_bits_groups": self.free_bits_groups,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "prior": keras.saving.serialize_keras_object(self.prior),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for part in ("encoder", "decoder", "prior"):
            if config.get(part) is not None:
                config[part] = keras.saving.deserialize_keras_object(config[part])
        return cls(**config)


def _resolve_likelihood(likelihood, decoder):
    """The registered name of the likelihood: the decoder head's own when one is given (it
    must agree with ``likelihood``), else ``likelihood``, else ``likelihoods.DEFAULT``."""
    name = likelihoods.name_of(decoder) if isinstance(decoder, ImageDecoder) else None
    if name is not None:
        if likelihood not in (None, name):
            raise ValueError(
                f"likelihood={likelihood!r} conflicts with the decoder, a "
                f"{type(decoder).__name__}; drop likelihood or pass a matching decoder."
            )
        return name
    if isinstance(decoder, ImageDecoder):
        raise ValueError(
            f"The decoder, a {type(decoder).__name__}, is a likelihood head that is not "
            f"registered; register it first: keras_vae.likelihoods.register(NAME, "
            f"{type(decoder).__name__}).")
    if likelihood is None:
        return likelihoods.DEFAULT
    return likelihoods.get(likelihood).name


def _resolve_latent_dim(latent_dim, encoder, prior):
    given = {"latent_dim": latent_dim}
    if isinstance(encoder, GaussianEncoder):
        given["encoder.latent_dim"] = encoder.latent_dim
    if prior is not None:
        given["prior.latent_dim"] = prior.latent_dim
    values = {name: check_latent_dim(value) for name, value in given.items()
              if value is not None}
    if len(set(values.values())) > 1:
        raise ValueError(f"Inconsistent latent dimensions: {values}; they must agree.")
    return next(iter(values.values()), DEFAULT_LATENT_DIM)
