"""TFLite export for phones, and the LiteRT runtime that checks it.

One folder per quantisation with ``decoder.tflite`` (signature ``decode``: z -> mean; a
hierarchy's decoder takes z1, the layer next to the data), ``encoder.tflite`` (``encode``:
x -> loc, scale; a hierarchy's z1_loc, z1_scale, ... as the SavedModel's encode),
``sampler.tflite`` (``sample_from_noise``: the noise of every layer -> mean) and
``metadata.json`` (``metadata.py``).
The files take z, or the noise a draw of the latents needs (``model.sampler_noise_spec()``),
as inputs and return means, so they hold no random ops and no Flex ops (DESIGN.md trap 8): an
app draws the noise itself (standard Normal or uniform numbers, as metadata.json says) and
the sampler turns it into z ~ p(z) for any prior and any number of layers
(``model.latent_from_noise``) and decodes it.
Inputs and outputs stay float32 under every quantisation. LiteRT's ``ai_edge_litert``
interpreter runs them (``tf.lite.Interpreter`` is deprecated, trap 9).
"""

import hashlib
import pathlib
import tempfile
import warnings

import tensorflow as tf

from keras_vae.config import QUANTIZATIONS
from keras_vae.errors import ExportError
from keras_vae.export import metadata as metadata_module
from keras_vae.export.folders import METADATA_FILE, check_replaceable, tflite_file
from keras_vae.export.outputs import (decoder_outputs, encoder_outputs, input_specs,
                                      noise_specs, sampler_outputs)
from keras_vae.export.parity import (PARITY_TOLERANCE, check_inputs, check_ops, check_size,
                                     exported_parameters, keras_reference, parity,
                                     signature_feed)
from keras_vae.export.saved_model import write_saved_model
from keras_vae.files import staged_directory, write_json_atomically

NUM_REPRESENTATIVE_EXAMPLES = 200  # calibration inputs of full int8

# ------------------------------------------------------------------ LiteRT


def tflite_runner(model, signature, num_threads=None):
    """A LiteRT ``SignatureRunner`` for ``model`` (path or bytes): call it with numpy arrays
    by input name, get a dict of outputs. Any batch size works (inputs resize on the fly).
    XNNPACK is LiteRT's default CPU delegate."""
    from ai_edge_litert.interpreter import Interpreter

    source = {"model_content": model} if isinstance(model, bytes) else {
        "model_path": str(model)}
    return Interpreter(num_threads=num_threads, **source).get_signature_runner(signature)


def runner_ops(content):
    """The operators of a .tflite model (bytes), one dict per node."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # Delegation off: with XNNPACK the delegated nodes show as one "DELEGATE" op.
    interpreter = Interpreter(
        model_content=content,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    return interpreter._get_ops_details()  # pylint: disable=protected-access


# ------------------------------------------------------------------ conversion


def tflite_endpoints(model):
    """The functions the .tflite files hold: {file stem: (signature, function, input specs)}."""
    def decode(z):
        return {"mean": decoder_outputs(model, z[model.decoder_layer])["mean"]}

    def encode(x):
        return encoder_outputs(model, x)

    def sample_from_noise(noise):
        # The mean only, as decode: its parity bound is one grey level of the picture.
        return {"mean": sampler_outputs(model, noise)["mean"]}

    spec = input_specs(model)
    return {"decoder": ("decode", decode, [spec["z"]]),
            "encoder": ("encode", encode, [spec["x"]]),
            "sampler": ("sample_from_noise", sample_from_noise, [noise_specs(model)])}


def convert(saved_model, signature, quantize, representative=None):
    """Converts one signature of a SavedModel folder to .tflite bytes.

    ``quantize``: "none" (float32); "float16" (weights stored as float16, half the size);
    "dynamic-int8" (int8 weights, activations quantised on the fly); "int8" (weights and
    activations int8, calibrated on ``representative``, a list of input dicts; float32
    inputs and outputs are kept so apps use every variant the same way).
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model), signature_keys=[signature])
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.representative_dataset = lambda: iter(representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings():
        # The calibrator uses the deprecated tf.lite.Interpreter internally (not our call).
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        try:
            return converter.convert()
        except Exception as error:  # the converter raises ConverterError, a bare Exception
            raise ExportError(f"TFLite conversion of {signature} ({quantize}) failed: "
                              f"{_first_line(error)}") from None


def check_tflite(content, model, part, quantize, inputs):
    """Checks converted ``content`` of ``part`` before it is written; returns its report.

    Raises ExportError when the file is too small to hold the part's weights, uses Flex or
    random ops, outputs non-finite values, or misses the parity tolerance (``parity.py``).
    """
    what = f"The {quantize} TFLite {part}"
    num_parameters = exported_parameters(model, part)
    check_size(len(content), num_parameters, quantize, what)
    signature, _, _ = tflite_endpoints(model)[part]
    try:
        runner = tflite_runner(content, signature)
        ops = sorted({op["op_name"] for op in runner_ops(content)})
    except (RuntimeError, ValueError) as error:  # e.g. a Flex op the runtime lacks
        raise ExportError(f"{what} does not load in LiteRT ({_first_line(error)}); it was "
                          f"not written.") from None
    check_ops(ops, what)
    feed = signature_feed(signature, inputs)
    report = parity(lambda rows: runner(**rows), keras_reference(model, signature, feed), feed,
                    PARITY_TOLERANCE.get(quantize), what)
    return {"bytes": len(content), "num_parameters": num_parameters, "ops": ops,
            "max_abs_difference": report}


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# ------------------------------------------------------------------ entry point


def export_tflite(model, directory, quantize="none", overwrite=False,
                  replace_protected=False):
    """Writes decoder.tflite, encoder.tflite, sampler.tflite and metadata.json to
    ``directory`` (atomically) after checking them; returns the metadata. An export inside a
    protected (shipped) run is replaced only with ``replace_protected`` (``runs.PROTECTED``)."""
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"quantize must be one of {', '.join(QUANTIZATIONS)}; received "
                          f"{quantize!r}.")
    check_replaceable(directory)
    inputs = check_inputs(model)
    calibration = (check_inputs(model, NUM_REPRESENTATIVE_EXAMPLES, seed=1)
                   if quantize == "int8" else None)
    standard_latent = metadata_module.latent_is_the_noise(model, inputs["noise"])
    files = {}
    with staged_directory(directory, overwrite, replace_protected) as staging, \
            tempfile.TemporaryDirectory() as scratch:
        saved_model = pathlib.Path(scratch) / "saved_model"
        endpoints = tflite_endpoints(model)
        write_saved_model(model, saved_model,
                          {signature: (function, specs)
                           for signature, function, specs in endpoints.values()})
        for part, (signature, _, _) in endpoints.items():
            representative = calibration and _rows(signature_feed(signature, calibration))
            content = convert(saved_model, signature, quantize, representative)
            report = check_tflite(content, model, part, quantize, inputs)
            (staging / tflite_file(part)).write_bytes(content)
            files[part] = {"file": tflite_file(part), "signature": signature,
                           "sha256": hashlib.sha256(content).hexdigest(), **report,
                           **metadata_module.tensor_tables(
                               model, part, tflite_runner(content, signature),
                               standard_latent)}
        files["sampler"]["how_to_sample"] = metadata_module.how_to_sample(model)
        metadata = metadata_module.tflite_metadata(model, quantize, files, standard_latent)
        write_json_atomically(staging / METADATA_FILE, metadata)
    return metadata


def _rows(feed):
    """[{input name: one row [1, ...]}, ...]: int8 calibration examples from a feed."""
    count = len(next(iter(feed.values())))
    return [{name: value[index:index + 1] for name, value in feed.items()}
            for index in range(count)]
