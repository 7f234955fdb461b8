"""The standard Normal prior p(z) = N(0, I) (Kingma & Welling 2014); the contract every prior
follows is in ``priors/__init__.py``.

Priors p(z) over the latent space, held by the model as Keras layers.

A prior is a Keras layer with a ``latent_dim`` attribute and a ``distribution()`` method that
returns a ``tfd.Distribution`` with event shape [latent_dim]. Being a layer lets a learnable
prior (a mixture, a VampPrior) carry weights that train and save with the model. Everything
outside the model asks the model, not the layer: ``model.prior_distribution()`` (the model
protocol, ``protocol``) returns this distribution, so a prior whose density depends on the
encoder (the VampPrior of Tomczak & Welling 2018, the mixture of q(z|u_j) at K learned
pseudo-inputs u_j) is computed by the model when asked and never cached.

How each path uses the prior: training takes the analytic KL(q(z|x) || p(z)) when TFP
registers one for the pair, and the Monte Carlo estimate log q(z|x) - log p(z) at the
posterior draws otherwise (``objectives.kl_divergence``); the importance weights, and so the
IWAE bound and the K=5000 evaluation, always use ``log_prob`` of the prior itself
(``objectives.log_importance_weights``); ``model.sample`` draws from it with a stateless seed.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae.config import check_latent_dim

tfd = tfp.distributions


@keras.saving.register_keras_serializable(package="keras_vae")
class StandardNormalPrior(keras.layers.Layer):
    """p(z) = Independent(Normal(0, 1), 1) over ``latent_dim`` variables; no weights.

    log p(z) = -0.5 sum z^2 - latent_dim/2 log(2 pi) nats. With a diagonal Normal posterior the
    KL is analytic: 0.5 sum(sigma^2 + mu^2 - 1 - log sigma^2).
    """

    def __init__(self, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = check_latent_dim(latent_dim)
        self.built = True

    def distribution(self):
        """The prior as a float32 ``tfd.Distribution`` with event shape [latent_dim]."""
        zeros = tf.zeros([self.latent_dim], tf.float32)
        return tfd.Independent(tfd.Normal(loc=zeros, scale=tf.ones_like(zeros)), 1)

    def noise_spec(self):
        """One standard Normal vector per draw: z is the noise itself."""
        from keras_vae.priors import NoiseInput

        return {"z_noise": NoiseInput((self.latent_dim,), "normal")}

    def sample_from_noise(self, noise):
        """z = ``noise["z_noise"]`` [n, latent_dim], as float32."""
        return tf.cast(noise["z_noise"], tf.float32)

    def call(self, inputs=None):
        return self.distribution()

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim}
