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

A hierarchy (layers z1 .. zL, ``latent_sizes``) is described the same way: ``decoder_layer``
names the layer decoder.tflite reads (z1, ``latent_dim`` numbers), the prior entry gives the
factorisation p(zL) p(z(L-1) | zL) ... p(z1 | z2) and the top layer's prior, and each noise
input of sampler.tflite says which layer it draws and how to draw it (``how_to_sample``).
"""

import math

import keras
import numpy as np

from keras_vae.export.outputs import decoder_size, posterior_output_names
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
    """True when z is the sampler's one N(0, I) noise input itself (the standard prior of a
    one-layer model): then decoder.tflite on N(0, I) numbers samples the model, as before
    learned priors."""
    spec = model.sampler_noise_spec()
    if [(item.shape, item.distribution) for item in spec.values()] != [
            ((decoder_size(model),), "normal")]:
        return False
    z = np.asarray(model.decoder_input(model.latent_from_noise(noise)))
    return bool(np.array_equal(z, next(iter(noise.values()))))


def noise_layer(model, name):
    """The latent layer a sampler noise input draws: with several layers, the one its name
    starts with (protocol.py: "z1_noise" draws z1); None for a one-layer model."""
    if len(model.latent_sizes) == 1:
        return None
    return max((layer for layer in model.latent_sizes if name.startswith(f"{layer}_")),
               key=len, default=None)


def noise_meanings(model):
    """{noise input name: {"range", "distribution", "meaning", "how_to_sample"}} of the
    sampler's inputs; a hierarchy's name the layer each one draws."""
    rows = {}
    layers = list(model.latent_sizes)
    for name, item in model.sampler_noise_spec().items():
        label, value_range, symbol = NOISE_DISTRIBUTIONS[item.distribution]
        count = math.prod(item.shape)
        layer = noise_layer(model, name)
        role = ("" if layer is None else
                f" of the top layer {layer} (the prior p({layer}))" if layer == layers[-1]
                else f" of layer {layer} (p({layer} | {layers[layers.index(layer) + 1]}))")
        rows[name] = {"range": value_range, "distribution": label,
                      "meaning": f"noise{role}: {count} independent {symbol} number"
                                 f"{'s' if count != 1 else ''} per row, drawn by the app",
                      "how_to_sample": f"draw {count} independent {label} number"
                                       f"{'s' if count != 1 else ''} per image, shape "
                                       f"[n{''.join(f', {size}' for size in item.shape)}]"}
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
    """{tensor name: {"range", "meaning"[, "distribution", "how_to_sample"]}} of the inputs
    and outputs of ``part``; ``standard_latent``: z of the prior is N(0, I) noise
    (``latent_is_the_noise``)."""
    size = decoder_size(model)
    if part == "decoder":
        if standard_latent:
            meaning = (f"latent vector, {size} independent standard Normal numbers per row "
                       f"for a sample from the prior")
        elif len(model.latent_sizes) > 1:
            meaning = (f"latent layer {model.decoder_layer} of {size} numbers, the one next to "
                       f"the data of the layers {', '.join(model.latent_sizes)} (its prior "
                       f"depends on the layers above: N(0, I) numbers are not samples of it; "
                       f"sampler.tflite samples the model)")
        else:
            meaning = (f"latent vector of {size} numbers (the prior is learned: N(0, I) "
                       f"numbers are not samples of it; sampler.tflite samples the model)")
        return {model.decoder_layer: {"range": None, "meaning": meaning},
                **model.decoder.output_meanings()}
    if part == "sampler":
        return {**noise_meanings(model), **model.decoder.output_meanings()}
    x = model.decoder.encoder_input_meaning()
    rows = {"x": {"range": x["range"], "meaning": x["meaning"]}}
    given = ("" if len(model.latent_sizes) == 1 else
             ", given the posterior means of the layers it is conditioned on")
    for layer, (loc, scale) in posterior_output_names(model).items():
        rows[loc] = {"range": None, "meaning": f"posterior mean of {layer}{given}"}
        rows[scale] = {"range": [0.0, None],
                       "meaning": f"posterior standard deviation of {layer}{given}"}
    return rows


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
    samples the model); else the prior layer's registered name and the sampler's recipe; for
    a hierarchy its factorisation p(zL) p(z(L-1) | zL) ... p(z1 | z2) and the top layer's
    prior."""
    prior = keras.saving.get_registered_name(type(model.prior))
    if standard_latent:
        return {"distribution": "Normal", "loc": 0.0, "scale": 1.0,
                "event_shape": [decoder_size(model)],
                "how_to_sample": "draw latent_dim independent N(0, 1) numbers per image"}
    if len(model.latent_sizes) == 1:
        return {"distribution": prior, "event_shape": [decoder_size(model)],
                "how_to_sample": how_to_sample(model)}
    layers = list(model.latent_sizes)
    factors = [f"p({layers[-1]})"] + [f"p({layers[index]} | {layers[index + 1]})"
                                      for index in reversed(range(len(layers) - 1))]
    return {"distribution": "hierarchy", "factorization": " ".join(factors),
            "latent_sizes": dict(model.latent_sizes),
            "top": {"layer": layers[-1], "distribution": prior,
                    "event_shape": [model.latent_sizes[layers[-1]]]},
            "conditionals": "diagonal Normal, its mean and scale networks of the layer above "
                            "(inside sampler.tflite)",
            "how_to_sample": how_to_sample(model)}


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
        "latent_dim": decoder_size(model),
        "latent_sizes": dict(model.latent_sizes),
        "decoder_layer": model.decoder_layer,
        "image_shape": list(model.image_shape),
        "likelihood": model.likelihood,
        "prior": prior_metadata(model, standard_latent),
        "preprocessing": {
            "encoder_input": f"float32 [batch, *image_shape], "
                             f"{encoder_input['preprocessing']}"
                             + (f"; {preparation}" if preparation else ""),
        },
        "parity_tolerance": PARITY_TOLERANCE.get(quantize),
        # every layer's weights (count_params() would add the KL weight and noise seed)
        "num_parameters": sum(layer.count_params() for layer in model.layers),
        "files": files,
        "versions": library_versions(),
    }
