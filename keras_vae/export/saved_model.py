"""SavedModel export: one folder that plain ``tf.saved_model.load`` reads in a process that
has never imported keras_vae, for TensorFlow Serving.

Signatures (x float32 [batch, *image_shape]: the data as the likelihood head takes them,
intensities in [0, 1] or, for a discrete head, the integer levels 0..255 as they are
(``encoder_input_meaning``); z float32 [batch, size], the layer the decoder reads, named
``model.decoder_layer``: "z" for the one-layer VAE, "z1" for a hierarchy z1 .. zL; num and
seed int32 scalars; the noise inputs float32 [batch, *shape] as ``model.sampler_noise_spec()``
says, e.g. z_noise [batch, latent_dim] ~ N(0, I), or z1_noise, ..., zL_noise and the top
prior's other inputs for a hierarchy):

    encode(x) -> loc, scale          one layer: parameters of q(z|x) = N(loc, diag(scale^2));
              -> z1_loc, z1_scale, .., zL_loc, zL_scale
                                     a hierarchy: each layer's Gaussian q with the layers it
                                     is conditioned on at their posterior means (protocol's
                                     ``layer_posterior_parameters``): top-down q(zL|x), then
                                     q(z_i|z_(i+1) = its loc, x) going down; bottom-up q(z1|x),
                                     then q(z_(i+1)|z_i = its loc). Only the first layer
                                     inferred is a marginal of q(z|x).
    decode(z) -> mean, ...           the likelihood head's export outputs: Bernoulli
                                     mean + logits, Normal mean + scale
    reconstruct(x) -> mean           decoded mean at every layer's loc above (as
                                     model.reconstruct)
    sample(num, seed) -> x           decoded means of ``num`` draws of
                                     model.prior_distribution() from the stateless seed
                                     [seed, 0]: the same images as VAE.sample(num, seed); a
                                     hierarchy's joint prior splits its seed its own way
    sample_from_noise(noise...) -> mean, ..., z (or z1, .., zL)
                                     the decoder's outputs at the draw
                                     model.latent_from_noise(noise), and every layer of that
                                     draw: what sampler.tflite computes
    serving_default                  = decode
"""

import keras
import tensorflow as tf

from keras_vae.errors import ExportError
from keras_vae.export.folders import check_replaceable
from keras_vae.export.outputs import (decoder_outputs, encoder_outputs, input_specs,
                                      noise_specs, prior_sample_outputs, reconstruct_outputs,
                                      sampler_outputs)
from keras_vae.export.parity import (PARITY_TOLERANCE, SAMPLE_CHECK, check_inputs,
                                     keras_reference, max_abs_difference, parity,
                                     signature_feed)
from keras_vae.files import staged_directory


def saved_model_endpoints(model):
    """{signature name: (function, input specs)}; the first one also serves as default."""
    def decode(z):
        return decoder_outputs(model, z[model.decoder_layer])

    def encode(x):
        return encoder_outputs(model, x)

    def reconstruct(x):
        return reconstruct_outputs(model, x)

    def sample(num, seed):
        return prior_sample_outputs(model, num, seed)

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
        sampled = loaded.signatures["sample"](
            **{name: tf.constant(value) for name, value in SAMPLE_CHECK.items()})["x"]
        report["sample"] = {"batch_8": max_abs_difference(
            {"x": sampled.numpy()}, keras_reference(model, "sample", SAMPLE_CHECK))}
        if not report["sample"]["batch_8"] <= tolerance:
            raise ExportError(f"The SavedModel signature sample differs from the model's "
                              f"decoded prior draws by {report['sample']['batch_8']:.3g}; it "
                              f"was not written.")
        del loaded
    return {"directory": str(directory), "signatures": list(report),
            "max_abs_difference": report}
