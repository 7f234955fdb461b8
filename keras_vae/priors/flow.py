"""A normalising-flow prior: p(z) is a standard Normal pushed through a learned invertible map
(the contract is in ``priors/__init__.py``).

    z = f(u),  u ~ N(0, I),   f = c_L o c_{L-1} o ... o c_1,
    log p(z) = log N(f^{-1}(z); 0, I) + log |det d f^{-1}(z) / dz|     (change of variables),

in nats. Each c_l is an affine coupling layer of RealNVP (Dinh, Sohl-Dickstein & Bengio 2017,
"Density estimation using Real NVP", eq. 4-6): with z split into a conditioning part a (the
first d // 2 numbers) and a transformed part b,

    c(a, b) = (a, b * exp(s(a)) + t(a)),   log |det dc/d(a, b)| = sum_i s_i(a),

whose inverse and log-determinant cost one network pass, so both log p(z) (training, the
importance weights) and a draw (the exported sampler) are exact and cheap. The layers take
turns: even ones condition on the first d // 2 numbers, odd ones on the last d // 2, so
every number is transformed by every other layer (Dinh et al.'s alternating masks).

How the pieces are built, and why:

- TFP's ``tfb.RealNVP`` does the bookkeeping (inverse, log-determinant, batch shapes, the
  alternating masks as a negative ``num_masked``), with ``shift_and_log_scale_fn`` a closure over Keras 3 networks that this
  layer owns: their weights are the layer's, so they train with the model, are mirrored by
  ``tf.distribute`` and are saved in .keras files. TFP's own ``tfb.AutoregressiveNetwork``
  (the usual MAF network) is a ``tf_keras`` layer: inside a Keras 3 layer its weights are not
  tracked (a Keras 3 layer holding one reports 0 weights), so they would neither train
  through ``model.trainable_weights`` nor be saved. A masked autoregressive flow (MAF,
  Papamakarios et al. 2017) would also draw with d sequential network passes (a while loop in
  an exported sampler), where RealNVP draws with one pass per layer.
- s(a) = B tanh(raw / B) with B = ``LOG_SCALE_BOUND``: one layer scales a number by at most
  e^B, so an early step cannot overflow exp() into a NaN loss; near 0 it is the identity.
- The last Dense layer of each network starts at zero: s = t = 0, so the flow starts as the
  identity and p(z) as N(0, I), the standard prior (Glow, Kingma & Dhariwal 2018, starts
  its couplings the same way).
- No analytic KL(q || p) exists: training takes the Monte Carlo estimate
  log q(z|x) - log p(z) at the posterior draws (``objectives.kl_divergence``); p(z) does not
  factorise, so the KL per dimension of the latent diagnostics is NaN.
- ``sample_from_noise`` is the forward map on N(0, I) noise: Dense, tanh, exp, mul, add,
  reshape, slice and concatenate, which the TFLite converter lowers to builtins.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae.checks import check_positive_int
from keras_vae.config import check_latent_dim
from keras_vae.errors import ConfigError

tfb = tfp.bijectors
tfd = tfp.distributions

LOG_SCALE_BOUND = 2.0  # |s| < B: one coupling layer scales a number by e^-2 .. e^2 at most
DEFAULT_NUM_LAYERS = 4  # coupling layers; every number is transformed by half of them
DEFAULT_HIDDEN_UNITS = (64, 64)


@keras.saving.register_keras_serializable(package="keras_vae")
class FlowPrior(keras.layers.Layer):
    """p(z) = a RealNVP flow of ``num_layers`` affine coupling layers on N(0, I).

    Args:
        latent_dim: number of latent variables d (at least 2: a coupling layer conditions
            half of z on the other half).
        num_layers: number of coupling layers (default 4); they condition on the first and
            on the last d // 2 numbers in turn.
        hidden_units: sizes of the hidden Dense layers of each layer's shift-and-log-scale
            network (default (64, 64)), which maps the d // 2 conditioning numbers to
            2 (d - d // 2) outputs.
        activation: activation of those hidden layers.

    The weights are float32 under every dtype policy (the prior's distribution is float32).
    Reference: Dinh, Sohl-Dickstein & Bengio, Density estimation using Real NVP, ICLR 2017.
    """

    needs_encoder = False
    factorized = False  # the flow mixes the latents: no KL per dimension (free bits: one group)

    def __init__(self, latent_dim, num_layers=DEFAULT_NUM_LAYERS,
                 hidden_units=DEFAULT_HIDDEN_UNITS, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = check_latent_dim(latent_dim)
        if self.latent_dim < 2:
            raise ConfigError(
                f"The flow prior needs latent_dim >= 2 (each coupling layer transforms half "
                f"of z given the other half); received latent_dim={self.latent_dim}. Use "
                f"more latents or another prior.")
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.hidden_units = tuple(check_positive_int("hidden_units", units)
                                  for units in hidden_units)
        self.activation = activation
        self.num_masked = self.latent_dim // 2
        self.coupling_networks = [self._coupling_network(index)
                                  for index in range(self.num_layers)]
        self.built = True

    def _coupling_network(self, index):
        """a [.., d // 2] -> [.., 2 (d - d // 2)]: the shifts t, then the raw log-scales."""
        transformed = self.latent_dim - self.num_masked
        layers = [keras.Input((self.num_masked,), dtype="float32")]
        layers += [keras.layers.Dense(units, activation=self.activation, dtype="float32",
                                      name=f"hidden_{depth}")
                   for depth, units in enumerate(self.hidden_units)]
        layers.append(keras.layers.Dense(2 * transformed, kernel_initializer="zeros",
                                         dtype="float32", name="shift_and_log_scale"))
        return keras.Sequential(layers, name=f"coupling_{index}")

    # ------------------------------------------------------------- the prior contract

    def bijector(self):
        """f: N(0, I) noise u -> z, a ``tfb.Chain`` of the coupling layers, built on the
        current weights when called (``forward`` draws, ``inverse`` and
        ``inverse_log_det_jacobian`` give log p(z))."""
        # num_masked = -k: the last k numbers condition (TFP's reversed mask).
        steps = [tfb.RealNVP(num_masked=self.num_masked * (-1) ** index,
                             shift_and_log_scale_fn=_shift_and_log_scale(network))
                 for index, network in enumerate(self.coupling_networks)]
        return tfb.Chain(list(reversed(steps)))  # Chain applies its last bijector first

    def distribution(self):
        """p(z): ``TransformedDistribution(N(0, I), f)``, float32, event shape [latent_dim];
        ``log_prob`` is exact (change of variables, module docstring)."""
        zeros = tf.zeros([self.latent_dim], tf.float32)
        base = tfd.Independent(tfd.Normal(loc=zeros, scale=tf.ones_like(zeros)), 1)
        return tfd.TransformedDistribution(base, self.bijector())

    def noise_spec(self):
        """One standard Normal vector u per draw: z = f(u)."""
        from keras_vae.priors import NoiseInput

        return {"z_noise": NoiseInput((self.latent_dim,), "normal")}

    def sample_from_noise(self, noise):
        """z = f(u) [n, latent_dim] for u = ``noise["z_noise"]`` [n, latent_dim] ~ N(0, I)."""
        return self.bijector().forward(tf.cast(noise["z_noise"], tf.float32))

    def call(self, inputs=None):
        return self.distribution()

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim,
                "num_layers": self.num_layers, "hidden_units": list(self.hidden_units),
                "activation": self.activation}


def _shift_and_log_scale(network):
    """The ``shift_and_log_scale_fn`` of ``tfb.RealNVP`` for one Keras ``network``:
    a -> (t(a), s(a)) with s = B tanh(raw / B), B = ``LOG_SCALE_BOUND``."""
    def shift_and_log_scale(conditioning, output_units):
        # The network takes [rows, d // 2]: draws shaped [K, batch, d] (the importance
        # weights) pass through it as K * batch rows.
        conditioning = tf.cast(conditioning, tf.float32)
        rows = tf.reshape(conditioning, [-1, conditioning.shape[-1]])
        outputs = tf.reshape(network(rows), tf.concat(
            [tf.shape(conditioning)[:-1], [2 * output_units]], axis=0))
        shift, raw = tf.split(outputs, 2, axis=-1)
        return shift, LOG_SCALE_BOUND * tf.tanh(raw / LOG_SCALE_BOUND)

    return shift_and_log_scale
