"""What the exported functions compute, shared by every format: q(z|x), p(x|z) and the
sampler (noise -> z ~ p(z) -> p(x|z)) as plain tensors, with ops that converters lower safely
(DESIGN.md trap 8), and their input specs.

The decoder's outputs are the likelihood head's own (``ImageDecoder.export_outputs``:
Bernoulli ``mean`` + ``logits``, Normal ``mean`` + ``scale``); the sampler's noise inputs and
its z are the model's (``sampler_noise_spec``, ``latent_from_noise`` of the model protocol):
nothing here names a likelihood or a prior.
"""

import tensorflow as tf

from keras_vae.layers import positive_scale, stable_softplus


def encoder_outputs(model, x):
    """{"loc", "scale"} of q(z|x), float32 [batch, latent_dim], with converter-safe ops."""
    loc, raw_scale = model.encoder.posterior_parameters(tf.cast(x, model.compute_dtype))
    return {"loc": loc, "scale": positive_scale(raw_scale, softplus=stable_softplus)}


def decoder_outputs(model, z):
    """The likelihood head's export outputs for z: {"mean", ...} float32
    [batch, *image_shape], with converter-safe ops."""
    return model.decoder.export_outputs(tf.cast(z, model.compute_dtype))


def sampler_outputs(model, noise):
    """The decoder's export outputs at z = ``model.latent_from_noise(noise)`` ("mean" first),
    and that z: a draw from the prior p(z) computed from the noise with no random ops."""
    z = model.latent_from_noise(noise)
    return {**decoder_outputs(model, z), "z": tf.cast(z, tf.float32)}


def noise_specs(model):
    """{name: float32 TensorSpec [batch, *shape]}: the sampler's noise inputs, in the order
    of ``model.sampler_noise_spec()``."""
    return {name: tf.TensorSpec([None, *item.shape], tf.float32, name=name)
            for name, item in model.sampler_noise_spec().items()}


def input_specs(model):
    """The inputs an export takes: x [batch, *image_shape] and z [batch, latent_dim] float32;
    num and seed int32 scalars (the ``sample`` signature)."""
    return {"x": tf.TensorSpec([None, *model.image_shape], tf.float32, name="x"),
            "z": tf.TensorSpec([None, model.latent_dim], tf.float32, name="z"),
            "num": tf.TensorSpec([], tf.int32, name="num"),
            "seed": tf.TensorSpec([], tf.int32, name="seed")}
