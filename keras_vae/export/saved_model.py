"""SavedModel export: one folder that plain ``tf.saved_model.load`` reads in a process that
has never imported keras_vae, for TensorFlow Serving.

Signatures (x float32 [batch, *image_shape]: the data as the likelihood head takes them,
intensities in [0, 1] or, for a discrete head, the integer levels 0..255 as they are
(``encoder_input_meaning``); z float32 [batch, latent_dim]; num and seed int32 scalars; the
noise inputs float32 [batch, *shape] as ``model.sampler_noise_spec()`` says, e.g. z_noise
[batch, latent_dim] ~ N(0, I)):

    encode(x) -> loc, scale          parameters of q(z|x) = N(loc, diag(scale^2))
    decode(z) -> mean, ...           the likelihood head's export outputs: Bernoulli
                                     mean + logits, Normal mean + scale
    reconstruct(x) -> mean           decoded mean at z = loc
    sample(num, seed) -> x           decoded means of ``num`` draws z ~ p(z), as VAE.sample:
                                     drawn through the prior's own distribution with
                                     stateless random ops, so the same images
    sample_from_noise(noise...) -> mean, ..., z
                                     the decoder's outputs at z = model.latent_from_noise(
                                     noise), and z: what sampler.tflite computes
    serving_default                  = decode
"""

import keras
import tensorflow as tf

from keras_vae.errors import ExportError
from keras_vae.export.folders import check_replaceable
from keras_vae.export.outputs import (decoder_outputs, encoder_outputs, input_specs,
                                      noise_specs, sampler_outputs)
from keras_vae.export.parity import (PARITY_TOLERANCE, check_inputs, keras_reference,
                                     max_abs_difference, parity, signature_feed)
from keras_vae.files import staged_directory


def saved_model_endpoints(model):
    """{signature name: (function, input specs)}; the first one also serves as default."""
    def decode(z):
        return decoder_outputs(model, z)

    def encode(x):
        return encoder_outputs(model, x)

    def reconstruct(x):
        return {"mean": decoder_outputs(model, encoder_outputs(model, x)["loc"])["mean"]}

    def sample(num, seed):
        # The same draw as VAE.sample(num, seed): z ~ p(z) from the stateless seed [seed, 0].
        z = model.prior_distribution().sample(num, seed=tf.stack([seed, 0]))
        return {"x": decoder_outputs(model, z)["mean"]}

    def sample_from_noise(noise):
        return sampler_outputs(model, noise)

    spec = input_specs(model)
    return {"decode": (decode, [spec["z"]]), "encode": (encode, [spec["x"]]),
            "reconstruct": (reconstruct, [spec["x"]]),
            "sample": (sample, [spec["num"], spec["seed"]]),
            "sample_from_noise": (sample_from_noise, [noise_specs(model)])}


def write_saved_model(model, directory, endpoints):
    """Writes ``endpoints`` ({name: (function, input specs)}) as SavedModel signatures.

    ``keras.export.ExportArchive`` tracks the model's variables; a bare ``tf.Module`` around
    Keras 3 layers does not, and converts to a weightless file (trap 7).
    """
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (function, specs) in endpoints.items():
        archive.add_endpoint(name, function, input_signature=specs)
    archive.write_out(str(directory), verbose=False)


def export_saved_model(model, directory, overwrite=False, replace_protected=False):
    """Writes the SavedModel of ``model`` to ``directory`` (atomically) after checking that
    its signatures match the Keras model; returns the check's report. An export inside a
    protected (shipped) run is replaced only with ``replace_protected`` (``runs.PROTECTED``)."""
    inputs = check_inputs(model)
    check_replaceable(directory)
    tolerance = PARITY_TOLERANCE["saved_model"]
    with staged_directory(directory, overwrite, replace_protected) as staging:
        write_saved_model(model, staging, saved_model_endpoints(model))
        loaded = tf.saved_model.load(str(staging))
        report = {}
        for signature in ("decode", "encode", "reconstruct", "sample_from_noise",
                          "serving_default"):
            function = loaded.signatures[signature]
            feed = signature_feed(signature, inputs)
            report[signature] = parity(
                lambda rows: {key: value.numpy() for key, value in function(
                    **{name: tf.constant(value) for name, value in rows.items()}).items()},
                keras_reference(model, signature, feed), feed, tolerance,
                f"The SavedModel signature {signature}")
        sampled = loaded.signatures["sample"](num=tf.constant(8), seed=tf.constant(3))["x"]
        report["sample"] = {"batch_8": max_abs_difference(
            {"x": sampled.numpy()}, {"x": model.sample(8, seed=3).numpy()})}
        if not report["sample"]["batch_8"] <= tolerance:
            raise ExportError(f"The SavedModel signature sample differs from VAE.sample by "
                              f"{report['sample']['batch_8']:.3g}; it was not written.")
        del loaded
    return {"directory": str(directory), "signatures": list(report),
            "max_abs_difference": report}
