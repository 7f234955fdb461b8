"""Export a trained VAE for TensorFlow serving (SavedModel) and for phones (TFLite / LiteRT).

SavedModel (``export_saved_model``), one folder that plain ``tf.saved_model.load`` reads in a
process that has never imported keras_vae, with the signatures

    encode(x) -> loc, scale          parameters of q(z|x) = N(loc, diag(scale^2))
    decode(z) -> mean, logits        Bernoulli likelihood: pixel probabilities and log-odds
    decode(z) -> mean, scale         Normal likelihood: mean and standard deviation per pixel
    reconstruct(x) -> mean           decoded mean at z = loc
    sample(num, seed) -> x           decoded means of ``num`` draws z ~ p(z), as VAE.sample
    serving_default                  = decode

where x is float32 [batch, *image_shape] in [0, 1], z float32 [batch, latent_dim], num and
seed int32 scalars.

TFLite (``export_tflite``), one folder per quantisation with ``decoder.tflite`` (signature
``decode``: z -> mean), ``encoder.tflite`` (``encode``: x -> loc, scale) and
``metadata.json``, which tells an app everything it needs to draw samples: the prior, tensor
names and shapes, what the output means, the preprocessing, the quantisation, the versions.
The files take z as input and return means, so they hold no random ops and no Flex ops
(DESIGN.md trap 8); inputs and outputs stay float32 under every quantisation.

Every export is checked before it is moved into place (atomically): the file size against
the parameter count (a converter that loses the weights writes a ~3 KB file that outputs NaN,
trap 7), finite outputs, and the largest absolute difference from the Keras model on the same
inputs at batch 1 and batch 64, which must stay within ``PARITY_TOLERANCE`` and is recorded
in metadata.json.
"""

import hashlib
import pathlib
import tempfile
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_vae.files import staged_directory, write_json_atomically
from keras_vae.layers import BernoulliDecoder, positive_scale
from keras_vae.priors import StandardNormalPrior

from keras_vae.config import QUANTIZATIONS  # noqa: E402
# Largest allowed |TFLite - Keras| on the same inputs; the int8 variants are only reported
# (their error is a property of the model's value ranges, measured in nats by the tests and
# benchmarks/export.py). float16 weights round each weight by up to 2^-11 of itself, and the
# errors add up through the layers: the shipped MNIST model's float16 decoder is off by 1.5e-3
# (RESULTS.md), so its bound is one 8-bit grey level, 1/255, the smallest change a picture
# of the decoder's output can show.
PARITY_TOLERANCE = {"saved_model": 1e-5, "none": 1e-5, "float16": 1 / 255}
# Bytes each weight takes at least in the file: a smaller file cannot hold the model.
BYTES_PER_WEIGHT = {"none": 4, "float16": 2, "dynamic-int8": 1, "int8": 1}
SIZE_MARGIN = 0.9
RANDOM_OPS = ("RANDOM_STANDARD_NORMAL", "RANDOM_UNIFORM", "MULTINOMIAL")
NUM_CHECK_EXAMPLES = 64  # inputs of the parity check; batch 1 is its first row
NUM_REPRESENTATIVE_EXAMPLES = 200  # calibration inputs of full int8


from keras_vae.errors import ExportError  # noqa: E402,F401


def stable_softplus(x):
    """softplus(x) = max(x, 0) + log(1 + exp(-|x|)), finite for every finite float32 x.

    TFLite lowers ``tf.math.softplus`` to log(exp(x) + 1), which is inf above x ~ 88 (trap 8);
    here exp(-|x|) <= 1 cannot overflow. It differs from softplus by less than 1.2e-7 (the
    float32 rounding of 1 + exp(-|x|)), far inside the export's parity tolerance.
    """
    return tf.nn.relu(x) + tf.math.log(1.0 + tf.exp(-tf.abs(x)))


# ------------------------------------------------------------------ what is exported


def encoder_outputs(model, x):
    """{"loc", "scale"} of q(z|x), float32 [batch, latent_dim], with converter-safe ops."""
    loc, raw_scale = model.encoder.posterior_parameters(tf.cast(x, model.compute_dtype))
    return {"loc": loc, "scale": positive_scale(raw_scale, softplus=stable_softplus)}


def decoder_outputs(model, z):
    """{"mean", "logits"} (Bernoulli) or {"mean", "scale"} (Normal) of p(x|z), float32
    [batch, *image_shape], with converter-safe ops."""
    decoder = model.decoder
    parameters = decoder.likelihood_parameters(tf.cast(z, model.compute_dtype))
    if isinstance(decoder, BernoulliDecoder):
        logits = parameters[..., 0]
        return {"mean": tf.sigmoid(logits), "logits": logits}
    return {"mean": parameters[..., 0],
            "scale": decoder.scale_from(parameters, softplus=stable_softplus)}


def _specs(model):
    return {"x": tf.TensorSpec([None, *model.image_shape], tf.float32, name="x"),
            "z": tf.TensorSpec([None, model.latent_dim], tf.float32, name="z"),
            "num": tf.TensorSpec([], tf.int32, name="num"),
            "seed": tf.TensorSpec([], tf.int32, name="seed")}


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
        z = model.prior.distribution().sample(num, seed=tf.stack([seed, 0]))
        return {"x": decoder_outputs(model, z)["mean"]}

    spec = _specs(model)
    return {"decode": (decode, [spec["z"]]), "encode": (encode, [spec["x"]]),
            "reconstruct": (reconstruct, [spec["x"]]),
            "sample": (sample, [spec["num"], spec["seed"]])}


def tflite_endpoints(model):
    """The functions the .tflite files hold: {file stem: (signature, function, input specs)}."""
    def decode(z):
        return {"mean": decoder_outputs(model, z)["mean"]}

    def encode(x):
        return encoder_outputs(model, x)

    spec = _specs(model)
    return {"decoder": ("decode", decode, [spec["z"]]),
            "encoder": ("encode", encode, [spec["x"]])}


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


# ------------------------------------------------------------------ checks


def check_inputs(model, num_examples=NUM_CHECK_EXAMPLES, seed=0):
    """Inputs for parity checks and int8 calibration: z ~ p(z), and x drawn from the decoder
    at those z (binarised for a Bernoulli model, like the data it was trained on).

    Returns {"z": [num_examples, latent_dim], "x": [num_examples, *image_shape]} float32
    numpy arrays, the same for the same seed.
    """
    z = model.prior.distribution().sample(num_examples, seed=tf.constant([seed, 1], tf.int32))
    x = decoder_outputs(model, z)["mean"]
    if model.likelihood == "bernoulli":
        x = tf.cast(tf.random.stateless_uniform(tf.shape(x), [seed, 2]) < x, tf.float32)
    return {"z": z.numpy(), "x": x.numpy()}


def max_abs_difference(outputs, reference):
    """max |a - b| over every output tensor both dicts name; inf if any output is not finite."""
    worst = 0.0
    for name, value in outputs.items():
        value = np.asarray(value)
        if not np.all(np.isfinite(value)):
            return float("inf")
        worst = max(worst, float(np.max(np.abs(value - np.asarray(reference[name])))))
    return worst


def keras_reference(model, signature, inputs):
    """What the Keras model's own methods give for ``signature`` ("decode", "encode" or
    "reconstruct") on ``inputs``, under the names the exports use: numpy arrays."""
    if signature == "decode":
        likelihood = model.decode(inputs)
        outputs = {"mean": likelihood.mean()}
        if model.likelihood == "bernoulli":
            outputs["logits"] = likelihood.distribution.logits
        else:
            outputs["scale"] = likelihood.stddev()
    elif signature == "encode":
        posterior = model.encode(inputs)
        outputs = {"loc": posterior.mean(), "scale": posterior.stddev()}
    else:
        outputs = {"mean": model.reconstruct(inputs)}
    return {name: np.asarray(value) for name, value in outputs.items()}


def parity(run, reference, inputs, tolerance, what):
    """Runs ``run(batch)`` at batch 1 and at the full batch; ExportError when an output is
    not finite or differs from ``reference`` by more than ``tolerance`` (None: report only).
    Returns {"batch_1": diff, "batch_64": diff}."""
    report = {}
    for batch in (1, len(inputs)):
        rows = {name: value[:batch] for name, value in reference.items()}
        difference = max_abs_difference(run(inputs[:batch]), rows)
        if not np.isfinite(difference):
            raise ExportError(f"{what} outputs NaN or inf at batch {batch}; it was not written.")
        if tolerance is not None and difference > tolerance:
            raise ExportError(f"{what} differs from the Keras model by {difference:.3g} at "
                              f"batch {batch} (tolerance {tolerance:g}); it was not written.")
        report[f"batch_{batch}"] = difference
    return report


def check_tflite(content, model, part, quantize, inputs):
    """Checks converted ``content`` of ``part`` before it is written; returns its report.

    Raises ExportError when the file is too small to hold the part's weights, uses Flex or
    random ops, outputs non-finite values, or misses the parity tolerance.
    """
    what = f"The {quantize} TFLite {part}"
    num_parameters = _exported_parameters(model, part)
    smallest = int(SIZE_MARGIN * BYTES_PER_WEIGHT[quantize] * num_parameters)
    if len(content) < smallest:
        raise ExportError(
            f"{what} is {len(content):,} bytes, too small for its {num_parameters:,} "
            f"parameters (at least {smallest:,} expected): the conversion lost the weights "
            f"(DESIGN.md trap 7); it was not written.")
    signature, _, _ = tflite_endpoints(model)[part]
    try:
        runner = tflite_runner(content, signature)
        ops = sorted({op["op_name"] for op in runner_ops(content)})
    except (RuntimeError, ValueError) as error:  # e.g. a Flex op the runtime lacks
        raise ExportError(f"{what} does not load in LiteRT ({_first_line(error)}); it was "
                          f"not written.") from None
    unwanted = [op for op in ops if op.startswith("Flex") or op in RANDOM_OPS]
    if unwanted:
        raise ExportError(f"{what} uses {', '.join(unwanted)}, which phones cannot run "
                          f"without the TF runtime; it was not written.")
    name = "z" if part == "decoder" else "x"
    report = parity(lambda batch: runner(**{name: batch}), keras_reference(
        model, signature, inputs[name]), inputs[name], PARITY_TOLERANCE.get(quantize), what)
    return {"bytes": len(content), "num_parameters": num_parameters, "ops": ops,
            "max_abs_difference": report}


def _exported_parameters(model, part):
    """Parameters the .tflite file of ``part`` must hold: the layer's, less a NormalDecoder's
    per-pixel scale, which decode's only output (the mean) does not use."""
    layer = model.decoder if part == "decoder" else model.encoder
    unused = getattr(layer, "raw_scale", None) if part == "decoder" else None
    return layer.count_params() - (0 if unused is None else int(np.prod(unused.shape)))


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_replaceable(directory):
    """With --overwrite, only an earlier export may be replaced: never a run or other data."""
    directory = pathlib.Path(directory)
    if directory.exists() and not ((directory / "metadata.json").exists()
                                   or (directory / "saved_model.pb").exists()):
        raise ExportError(f"{directory} exists and is not an export (no metadata.json or "
                          f"saved_model.pb); choose another --output.")


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


# ------------------------------------------------------------------ entry points


def export_saved_model(model, directory, overwrite=False):
    """Writes the SavedModel of ``model`` to ``directory`` (atomically) after checking that
    its signatures match the Keras model; returns the check's report."""
    inputs = check_inputs(model)
    check_replaceable(directory)
    tolerance = PARITY_TOLERANCE["saved_model"]
    with staged_directory(directory, overwrite) as staging:
        write_saved_model(model, staging, saved_model_endpoints(model))
        loaded = tf.saved_model.load(str(staging))
        report = {}
        for signature, name in (("decode", "z"), ("encode", "x"), ("reconstruct", "x"),
                                ("serving_default", "z")):
            function = loaded.signatures[signature]
            report[signature] = parity(
                lambda batch: {key: value.numpy() for key, value in
                               function(**{name: tf.constant(batch)}).items()},
                keras_reference(model, "decode" if signature == "serving_default"
                                else signature, inputs[name]),
                inputs[name], tolerance, f"The SavedModel signature {signature}")
        sampled = loaded.signatures["sample"](num=tf.constant(8), seed=tf.constant(3))["x"]
        report["sample"] = {"batch_8": max_abs_difference(
            {"x": sampled.numpy()}, {"x": model.sample(8, seed=3).numpy()})}
        if not report["sample"]["batch_8"] <= tolerance:
            raise ExportError(f"The SavedModel signature sample differs from VAE.sample by "
                              f"{report['sample']['batch_8']:.3g}; it was not written.")
        del loaded
    return {"directory": str(directory), "signatures": list(report),
            "max_abs_difference": report}


def export_tflite(model, directory, quantize="none", overwrite=False):
    """Writes decoder.tflite, encoder.tflite and metadata.json to ``directory`` (atomically)
    after checking them; returns the metadata."""
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"quantize must be one of {', '.join(QUANTIZATIONS)}; received "
                          f"{quantize!r}.")
    if not isinstance(model.prior, StandardNormalPrior):
        raise ExportError(
            f"The TFLite metadata tells apps to draw z ~ N(0, I), but this model's prior is "
            f"{type(model.prior).__name__}; export --format saved_model instead.")
    check_replaceable(directory)
    inputs = check_inputs(model)
    calibration = (check_inputs(model, NUM_REPRESENTATIVE_EXAMPLES, seed=1)
                   if quantize == "int8" else None)
    files = {}
    with staged_directory(directory, overwrite) as staging, \
            tempfile.TemporaryDirectory() as scratch:
        saved_model = pathlib.Path(scratch) / "saved_model"
        endpoints = tflite_endpoints(model)
        write_saved_model(model, saved_model,
                          {signature: (function, specs)
                           for signature, function, specs in endpoints.values()})
        for part, (signature, _, _) in endpoints.items():
            name = "z" if part == "decoder" else "x"
            representative = calibration and [{name: row[None]} for row in calibration[name]]
            content = convert(saved_model, signature, quantize, representative)
            report = check_tflite(content, model, part, quantize, inputs)
            (staging / f"{part}.tflite").write_bytes(content)
            files[part] = {"file": f"{part}.tflite", "signature": signature,
                           "sha256": hashlib.sha256(content).hexdigest(), **report,
                           **_tensor_tables(model, part, content, signature)}
        metadata = tflite_metadata(model, quantize, files)
        write_json_atomically(staging / "metadata.json", metadata)
    return metadata


def _tensor_tables(model, part, content, signature):
    """Inputs and outputs of one file: signature name, interpreter tensor name, shape (-1 is
    the batch, any size), dtype, meaning."""
    runner = tflite_runner(content, signature)
    meaning = _meanings(model)

    def table(details):
        return [{"name": key, "tensor": value["name"],
                 "shape": [int(d) for d in value["shape_signature"]],
                 "dtype": np.dtype(value["dtype"]).name, **meaning[key]}
                for key, value in sorted(details.items())]

    return {"inputs": table(runner.get_input_details()),
            "outputs": table(runner.get_output_details())}


def _meanings(model):
    bernoulli = model.likelihood == "bernoulli"
    image = {"range": [0.0, 1.0] if bernoulli else None,
             "meaning": "Bernoulli pixel probabilities, the mean image (show as intensities)"
             if bernoulli else "mean pixel intensities of a Normal likelihood (not clipped)"}
    return {
        "z": {"range": None, "meaning": f"latent vector, {model.latent_dim} independent "
              f"standard Normal numbers per row for a sample from the prior"},
        "mean": image,
        "x": {"range": [0.0, 1.0], "meaning": "image, uint8 pixels / 255"},
        "loc": {"range": None, "meaning": "posterior mean of z"},
        "scale": {"range": [0.0, None], "meaning": "posterior standard deviation of z"},
    }


def tflite_metadata(model, quantize, files):
    """Everything an app needs, in JSON: an app draws z ~ N(0, I) with ``latent_dim`` numbers,
    runs decoder.tflite, and shows ``mean`` as an image of ``image_shape``."""
    from keras_vae.train import versions

    return {
        "format": "tflite",
        "quantization": quantize,
        "quantization_meaning": {
            "none": "float32 weights and activations",
            "float16": "float16 weights, float32 compute",
            "dynamic-int8": "int8 weights, activations quantised at run time",
            "int8": "int8 weights and activations, calibrated on decoded samples of the "
                    "prior; float32 inputs and outputs",
        }[quantize],
        "latent_dim": model.latent_dim,
        "image_shape": list(model.image_shape),
        "likelihood": model.likelihood,
        "prior": {"distribution": "Normal", "loc": 0.0, "scale": 1.0,
                  "event_shape": [model.latent_dim],
                  "how_to_sample": "draw latent_dim independent N(0, 1) numbers per image"},
        "preprocessing": {
            "encoder_input": "float32 [batch, *image_shape], pixel intensities in [0, 1] "
                             "(uint8 / 255)" + ("; trained on binarised images (a pixel is "
                                                "1 with probability intensity)"
                                                if model.likelihood == "bernoulli" else ""),
        },
        "parity_tolerance": PARITY_TOLERANCE.get(quantize),
        "num_parameters": model.encoder.count_params() + model.decoder.count_params(),
        "files": files,
        "versions": versions(),
    }


def default_directory(run, format, quantize="none"):
    """Where ``kvae export`` writes: <run>/export/saved_model, <run>/export/tflite or
    <run>/export/tflite-<quantize>; beside a bare .keras file, <stem>-export/..."""
    base = (run.directory / "export" if run.directory is not None
            else run.model_path.with_name(run.model_path.stem + "-export"))
    if format == "saved_model":
        return base / "saved_model"
    return base / ("tflite" if quantize == "none" else f"tflite-{quantize}")


def export_run(path, format, quantize="none", output=None, overwrite=False):
    """``kvae export``: loads RUN, exports it, returns (directory, report)."""
    from keras_vae.runs import load_run

    if format not in ("saved_model", "tflite"):
        raise ExportError(f"format must be saved_model or tflite; received {format!r}.")
    if format == "saved_model" and quantize != "none":
        raise ExportError("--quantize applies to --format tflite only.")
    run = load_run(path)
    directory = pathlib.Path(output) if output else default_directory(run, format, quantize)
    if format == "saved_model":
        return directory, export_saved_model(run.model, directory, overwrite)
    return directory, export_tflite(run.model, directory, quantize, overwrite)
