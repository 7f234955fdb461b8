"""What the exported functions compute, shared by every format: q(z|x), p(x|z) and the
sampler (noise -> z ~ p(z) -> p(x|z)) as plain tensors, with ops that converters lower safely
(DESIGN.md trap 8), and their input specs.

Everything is asked of the model (``protocol.py``), so one code path exports the one-layer
VAE and a hierarchy: the decoder reads the layer ``model.decoder_layer`` ("z", or "z1" of
z1 .. zL) and its outputs are the likelihood head's own (``ImageDecoder.export_outputs``:
Bernoulli ``mean`` + ``logits``, Normal ``mean`` + ``scale``); the encoder's outputs are each
layer's posterior parameters (``model.layer_posterior_parameters``); the sampler's noise
inputs and its latent draw are the model's (``sampler_noise_spec``, ``latent_from_noise``).
Nothing here names a likelihood, a prior or a model class.
"""

from collections.abc import Mapping

import tensorflow as tf

EXPORT_MEMBERS = ("decoder_layer", "decoder_input", "layer_posterior_parameters",
                  "sampler_noise_spec", "latent_from_noise")


def missing_export_members(model):
    """The export members of the model protocol that ``model`` lacks (protocol.py)."""
    return [name for name in EXPORT_MEMBERS if not hasattr(model, name)]


def decoder_size(model):
    """Number of latent variables the decoder reads (the size of ``model.decoder_layer``)."""
    return model.latent_sizes[model.decoder_layer]


def posterior_output_names(model):
    """{layer name: (loc output, scale output)}: "loc", "scale" for a one-layer model (as
    before hierarchies), "<layer>_loc", "<layer>_scale" for each layer of a hierarchy."""
    if len(model.latent_sizes) == 1:
        return {name: ("loc", "scale") for name in model.latent_sizes}
    return {name: (f"{name}_loc", f"{name}_scale") for name in model.latent_sizes}


def encoder_outputs(model, x):
    """Each layer's posterior loc and scale (``model.layer_posterior_parameters``), float32
    [batch, size], under the names of ``posterior_output_names``."""
    parameters = model.layer_posterior_parameters(tf.cast(x, tf.float32))
    outputs = {}
    for name, (loc_name, scale_name) in posterior_output_names(model).items():
        loc, scale = parameters[name]
        outputs[loc_name], outputs[scale_name] = loc, scale
    return outputs


def reconstruct_outputs(model, x):
    """{"mean"}: the decoder's exported mean at every layer's posterior loc (the zero-noise
    pass ``model.reconstruct`` decodes)."""
    locs = {name: loc for name, (loc, _) in
            model.layer_posterior_parameters(tf.cast(x, tf.float32)).items()}
    return {"mean": decoder_outputs(model, model.decoder_input(locs))["mean"]}


def decoder_outputs(model, z):
    """The likelihood head's export outputs for z [batch, size of the decoder's layer]:
    {"mean", ...} float32 [batch, *image_shape], with converter-safe ops."""
    return model.decoder.export_outputs(tf.cast(z, model.compute_dtype))


def latent_outputs(model, latent):
    """{layer name: float32 tensor} of a latent draw: every layer of a hierarchy's
    {name: z}, or {decoder_layer: z} for one layer's tensor."""
    if hasattr(latent, "_asdict"):
        latent = latent._asdict()
    if not isinstance(latent, Mapping):
        latent = {model.decoder_layer: latent}
    return {name: tf.cast(value, tf.float32) for name, value in latent.items()}


def sampler_outputs(model, noise):
    """The decoder's export outputs at the draw ``model.latent_from_noise(noise)`` ("mean"
    first), and that draw's layers by name ("z"; "z1", "z2", ...): a draw from the prior p(z)
    computed from the noise with no random ops."""
    latent = model.latent_from_noise(noise)
    return {**decoder_outputs(model, model.decoder_input(latent)),
            **latent_outputs(model, latent)}


def prior_sample_outputs(model, num, seed):
    """{"x"}: decoded means of ``num`` draws of ``model.prior_distribution()`` from the
    stateless seed [seed, 0] (the one-layer ``VAE.sample``'s draw)."""
    latent = model.prior_distribution().sample(num, seed=tf.stack([seed, 0]))
    return {"x": decoder_outputs(model, model.decoder_input(latent))["mean"]}


def noise_specs(model):
    """{name: float32 TensorSpec [batch, *shape]}: the sampler's noise inputs, in the order
    of ``model.sampler_noise_spec()``."""
    return {name: tf.TensorSpec([None, *item.shape], tf.float32, name=name)
            for name, item in model.sampler_noise_spec().items()}


def input_specs(model):
    """The inputs an export takes: x [batch, *image_shape], and the decoder's layer
    {decoder_layer: [batch, size]} float32; num and seed int32 scalars (``sample``)."""
    name = model.decoder_layer
    return {"x": tf.TensorSpec([None, *model.image_shape], tf.float32, name="x"),
            "z": {name: tf.TensorSpec([None, decoder_size(model)], tf.float32, name=name)},
            "num": tf.TensorSpec([], tf.int32, name="num"),
            "seed": tf.TensorSpec([], tf.int32, name="seed")}
