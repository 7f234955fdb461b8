"""The checks every export passes before it is moved into place.

- size: a file smaller than ``SIZE_MARGIN * BYTES_PER_WEIGHT * parameters`` cannot hold the
  weights (a converter that loses them writes a ~3 KB file that outputs NaN, DESIGN.md
  trap 7);
- operators: no random ops and no Flex ops, which phones cannot run without the TF runtime;
- finite outputs, and parity: the largest absolute difference from the Keras model on the
  same inputs at batch 1 and batch 64 must stay within ``PARITY_TOLERANCE`` (recorded in
  metadata.json; the int8 variants are only reported).

The Keras reference values of the decoder's outputs come from the likelihood head
(``reference_outputs``), its inputs from the head's own data preparation (``draw_data``); the
sampler's come from the model's own ``latent_from_noise`` and ``decode`` on noise drawn as
``sampler_noise_spec`` says (``priors.draw_noise``).
"""

import numpy as np
import tensorflow as tf

from keras_vae.errors import ExportError
from keras_vae.export.outputs import (decoder_outputs, latent_outputs,
                                      missing_export_members, posterior_output_names)
from keras_vae.priors import draw_noise

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


# The inputs of each exported signature: which entry of ``check_inputs`` feeds it.
SIGNATURE_INPUTS = {"decode": "z", "serving_default": "z", "encode": "x", "reconstruct": "x",
                    "sample_from_noise": "noise"}
SAMPLE_CHECK = {"num": 8, "seed": 3}  # the draw the ``sample`` signature is checked on


def check_inputs(model, num_examples=NUM_CHECK_EXAMPLES, seed=0):
    """Inputs for parity checks and int8 calibration: z ~ p(z) (the decoder's layer of a
    draw), x drawn from the decoder at those z, prepared as the likelihood's data are
    (binarised for a Bernoulli model), and the sampler's noise.

    Returns {"z": [num_examples, size], "z_name": the decoder's layer, "x": [num_examples,
    *image_shape], "noise": {name: [num_examples, *shape]}}: float32 numpy arrays, the same
    for the same seed. ExportError when the model lacks an export member (protocol.py).
    """
    missing = missing_export_members(model)
    if missing:
        raise ExportError(f"{type(model).__name__} cannot be exported: it lacks "
                          f"{', '.join(missing)} (the export members of the model protocol, "
                          f"keras_vae/protocol.py).")
    latent = model.prior_distribution().sample(num_examples,
                                               seed=tf.constant([seed, 1], tf.int32))
    z = model.decoder_input(latent)
    x = model.decoder.draw_data(decoder_outputs(model, z)["mean"], [seed, 2])
    noise = draw_noise(model.sampler_noise_spec(), num_examples, seed=seed)
    return {"z": np.asarray(z), "z_name": model.decoder_layer, "x": x.numpy(), "noise": noise}


def signature_feed(signature, inputs):
    """{input name: array}: what ``signature`` takes from ``inputs`` (``check_inputs``)."""
    key = SIGNATURE_INPUTS[signature]
    if key == "noise":
        return dict(inputs["noise"])
    return {inputs["z_name"]: inputs["z"]} if key == "z" else {"x": inputs["x"]}


def max_abs_difference(outputs, reference):
    """max |a - b| over every output tensor both dicts name; inf if any output is not finite."""
    worst = 0.0
    for name, value in outputs.items():
        value = np.asarray(value)
        if not np.all(np.isfinite(value)):
            return float("inf")
        worst = max(worst, float(np.max(np.abs(value - np.asarray(reference[name])))))
    return worst


def keras_reference(model, signature, feed):
    """What the Keras model's own methods give for ``signature`` ("decode", "encode",
    "reconstruct", "sample_from_noise" or "sample") on ``feed`` ({input name: array}), under
    the names the exports use: numpy arrays."""
    if signature in ("decode", "serving_default"):
        outputs = model.decoder.reference_outputs(model.decode(feed[model.decoder_layer]))
    elif signature == "encode":
        outputs = {}
        parameters = model.layer_posterior_parameters(feed["x"])
        for name, (loc_name, scale_name) in posterior_output_names(model).items():
            outputs[loc_name], outputs[scale_name] = parameters[name]
    elif signature == "reconstruct":
        # the head's exported mean at each layer's posterior loc (levels heads export
        # E[x] / (L - 1)); for one layer z = E_q[z]
        locs = {name: loc for name, (loc, _) in
                model.layer_posterior_parameters(feed["x"]).items()}
        decoded = model.decode(model.decoder_input(locs))
        outputs = {"mean": model.decoder.reference_outputs(decoded)["mean"]}
    elif signature == "sample":
        latent = model.prior_distribution().sample(
            feed["num"], seed=tf.constant([feed["seed"], 0], tf.int32))
        outputs = {"x": model.decoder.reference_outputs(
            model.decode(model.decoder_input(latent)))["mean"]}
    else:
        latent = model.latent_from_noise(feed)
        outputs = {**model.decoder.reference_outputs(model.decode(model.decoder_input(latent))),
                   **latent_outputs(model, latent)}
    return {name: np.asarray(value) for name, value in outputs.items()}


def parity(run, reference, feed, tolerance, what):
    """Runs ``run(rows)`` on the first row of ``feed`` ({input name: array}) and on all of
    them; ExportError when an output is not finite or differs from ``reference`` by more than
    ``tolerance`` (None: report only). Returns {"batch_1": diff, "batch_64": diff}."""
    report = {}
    for batch in (1, len(next(iter(feed.values())))):
        rows = {name: value[:batch] for name, value in reference.items()}
        difference = max_abs_difference(
            run({name: value[:batch] for name, value in feed.items()}), rows)
        if not np.isfinite(difference):
            raise ExportError(f"{what} outputs NaN or inf at batch {batch}; it was not written.")
        if tolerance is not None and difference > tolerance:
            raise ExportError(f"{what} differs from the Keras model by {difference:.3g} at "
                              f"batch {batch} (tolerance {tolerance:g}); it was not written.")
        report[f"batch_{batch}"] = difference
    return report


def exported_parameters(model, part):
    """Parameters the file of ``part`` must hold at least: "decoder" and "sampler" the
    head's ``count_mean_params`` (only the mean of the decoder is exported; the sampler also
    holds what the prior's draw needs, which a model does not count for us); "encoder" all
    of its parameters."""
    return (model.encoder.count_params() if part == "encoder"
            else model.decoder.count_mean_params())


def check_size(num_bytes, num_parameters, quantize, what):
    """ExportError when ``num_bytes`` cannot hold ``num_parameters`` weights at ``quantize``."""
    smallest = int(SIZE_MARGIN * BYTES_PER_WEIGHT[quantize] * num_parameters)
    if num_bytes < smallest:
        raise ExportError(
            f"{what} is {num_bytes:,} bytes, too small for its {num_parameters:,} "
            f"parameters (at least {smallest:,} expected): the conversion lost the weights "
            f"(DESIGN.md trap 7); it was not written.")


def check_ops(ops, what):
    """ExportError when ``ops`` (operator names) hold a Flex or a random op."""
    unwanted = [op for op in ops if op.startswith("Flex") or op in RANDOM_OPS]
    if unwanted:
        raise ExportError(f"{what} uses {', '.join(unwanted)}, which phones cannot run "
                          f"without the TF runtime; it was not written.")
