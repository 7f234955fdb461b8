"""metadata.json of a TFLite export: everything an app needs to draw samples with no Python.

With any prior an app draws the sampler's noise inputs (standard Normal or uniform [0, 1)
numbers, as ``files.sampler.inputs`` say: name, shape, ``distribution``), runs sampler.tflite
and shows ``mean`` as an image of ``image_shape`` (``files.sampler.how_to_sample``). With the
standard prior z is the noise itself, so decoder.tflite alone also works: draw z ~ N(0, I)
with ``latent_dim`` numbers (``prior``, unchanged from the exports before learned priors).
The file describes the prior, every input and output of each .tflite file (name, tensor name,
shape with -1 for any batch size, dtype, value range, meaning), the encoder's preprocessing,
the quantisation, the measured differences from the Keras model, and the versions. What the
decoder's outputs mean, what the encoder takes (intensities in [0, 1], or the integer levels
of a discrete likelihood) and how its training data were prepared, the likelihood head says
(``output_meanings``, ``encoder_input_meaning``, ``data_preparation``); what noise a draw of
z takes, the model says (``sampler_noise_spec``).
"""

import math

import keras
import numpy as np

from keras_vae.export.parity import PARITY_TOLERANCE

QUANTIZATION_MEANINGS = {
    "none": "float32 weights and activations",
    "float16": "float16 weights, float32 compute",
    "dynamic-int8": "int8 weights, activations quantised at run time",
    "int8": "int8 weights and activations, calibrated on decoded samples of the prior; "
            "float32 inputs and outputs",
}


# NoiseInput.distribution -> (its name in metadata.json, value range, how to write a draw)
NOISE_DISTRIBUTIONS = {"normal": ("standard normal", None, "N(0, 1)"),
                       "uniform": ("uniform [0, 1)", [0.0, 1.0], "U[0, 1)")}


def latent_is_the_noise(model, noise):
    """True when z is the sampler's one N(0, I) noise input itself (the standard prior): then
    decoder.tflite on N(0, I) numbers samples the model, as before learned priors."""
    spec = model.sampler_noise_spec()
    if [(item.shape, item.distribution) for item in spec.values()] != [
            ((model.latent_dim,), "normal")]:
        return False
    z = np.asarray(model.latent_from_noise(noise))
    return bool(np.array_equal(z, next(iter(noise.values()))))


def noise_meanings(model):
    """{noise input name: {"range", "distribution", "meaning"}} of the sampler's inputs."""
    rows = {}
    for name, item in model.sampler_noise_spec().items():
        label, value_range, symbol = NOISE_DISTRIBUTIONS[item.distribution]
        count = math.prod(item.shape)
        rows[name] = {"range": value_range, "distribution": label,
                      "meaning": f"noise: {count} independent {symbol} number"
                                 f"{'s' if count != 1 else ''} per row, drawn by the app"}
    return rows


def how_to_sample(model):
    """One sentence: what an app draws and runs to sample the model with sampler.tflite."""
    draws = ", ".join(
        f"{name} ~ {NOISE_DISTRIBUTIONS[item.distribution][2].replace('N(0, 1)', 'N(0, I)')} "
        f"(shape [n{''.join(f', {size}' for size in item.shape)}])"
        for name, item in model.sampler_noise_spec().items())
    return (f"draw {draws}; run sampler.tflite (signature sample_from_noise) on them; show "
            f"mean as n images of image_shape")


def meanings(model, part, standard_latent=True):
    """{tensor name: {"range", "meaning"[, "distribution"]}} of the inputs and outputs of
    ``part``; ``standard_latent``: z of the prior is N(0, I) noise (``latent_is_the_noise``)."""
    if part == "decoder":
        meaning = (f"latent vector, {model.latent_dim} independent standard Normal numbers per "
                   f"row for a sample from the prior" if standard_latent else
                   f"latent vector of {model.latent_dim} numbers (the prior is learned: "
                   f"N(0, I) numbers are not samples of it; sampler.tflite samples the model)")
        return {"z": {"range": None, "meaning": meaning}, **model.decoder.output_meanings()}
    if part == "sampler":
        return {**noise_meanings(model), **model.decoder.output_meanings()}
    x = model.decoder.encoder_input_meaning()
    return {"x": {"range": x["range"], "meaning": x["meaning"]},
            "loc": {"range": None, "meaning": "posterior mean of z"},
            "scale": {"range": [0.0, None], "meaning": "posterior standard deviation of z"}}


def tensor_tables(model, part, runner, standard_latent=True):
    """Inputs and outputs of one file, read from its LiteRT ``runner``: signature name,
    interpreter tensor name, shape (-1 is the batch, any size), dtype, range, meaning (and
    the distribution of a sampler's noise input)."""
    meaning = meanings(model, part, standard_latent)

    def table(details):
        return [{"name": key, "tensor": value["name"],
                 "shape": [int(d) for d in value["shape_signature"]],
                 "dtype": np.dtype(value["dtype"]).name, **meaning[key]}
                for key, value in sorted(details.items())]

    return {"inputs": table(runner.get_input_details()),
            "outputs": table(runner.get_output_details())}


def prior_metadata(model, standard_latent):
    """The prior: N(0, I) with its parameters when z is the noise (decoder.tflite alone
    samples the model), else the prior layer's registered name and the sampler's recipe."""
    if standard_latent:
        return {"distribution": "Normal", "loc": 0.0, "scale": 1.0,
                "event_shape": [model.latent_dim],
                "how_to_sample": "draw latent_dim independent N(0, 1) numbers per image"}
    return {"distribution": keras.saving.get_registered_name(type(model.prior)),
            "event_shape": [model.latent_dim], "how_to_sample": how_to_sample(model)}


def tflite_metadata(model, quantize, files, standard_latent):
    """Everything an app needs, in JSON: an app draws the noise ``files.sampler.inputs``
    describe, runs sampler.tflite, and shows ``mean`` as an image of ``image_shape``.
    ``files``: {part: its entry}; ``standard_latent``: ``latent_is_the_noise``."""
    from keras_vae.versions import library_versions

    preparation = model.decoder.data_preparation
    encoder_input = model.decoder.encoder_input_meaning()
    return {
        "format": "tflite",
        "quantization": quantize,
        "quantization_meaning": QUANTIZATION_MEANINGS[quantize],
        "latent_dim": model.latent_dim,
        "image_shape": list(model.image_shape),
        "likelihood": model.likelihood,
        "prior": prior_metadata(model, standard_latent),
        "preprocessing": {
            "encoder_input": f"float32 [batch, *image_shape], "
                             f"{encoder_input['preprocessing']}"
                             + (f"; {preparation}" if preparation else ""),
        },
        "parity_tolerance": PARITY_TOLERANCE.get(quantize),
        "num_parameters": (model.encoder.count_params() + model.decoder.count_params()
                           + model.prior.count_params()),
        "files": files,
        "versions": library_versions(),
    }
