"""metadata.json of a TFLite export: everything an app needs to draw samples with no Python.

An app draws z ~ N(0, I) with ``latent_dim`` numbers, runs decoder.tflite and shows ``mean``
as an image of ``image_shape``. The file describes the prior, every input and output of each
.tflite file (name, tensor name, shape with -1 for any batch size, dtype, value range,
meaning), the encoder's preprocessing, the quantisation, the measured differences from the
Keras model, and the versions. What the decoder's outputs mean, and how its training data
were prepared, the likelihood head says (``output_meanings``, ``data_preparation``).
"""

import numpy as np

from keras_vae.export.parity import PARITY_TOLERANCE

QUANTIZATION_MEANINGS = {
    "none": "float32 weights and activations",
    "float16": "float16 weights, float32 compute",
    "dynamic-int8": "int8 weights, activations quantised at run time",
    "int8": "int8 weights and activations, calibrated on decoded samples of the prior; "
            "float32 inputs and outputs",
}


def meanings(model, part):
    """{tensor name: {"range", "meaning"}} of the inputs and outputs of ``part``."""
    if part == "decoder":
        return {"z": {"range": None, "meaning": f"latent vector, {model.latent_dim} "
                      f"independent standard Normal numbers per row for a sample from the "
                      f"prior"},
                **model.decoder.output_meanings()}
    return {"x": {"range": [0.0, 1.0], "meaning": "image, uint8 pixels / 255"},
            "loc": {"range": None, "meaning": "posterior mean of z"},
            "scale": {"range": [0.0, None], "meaning": "posterior standard deviation of z"}}


def tensor_tables(model, part, runner):
    """Inputs and outputs of one file, read from its LiteRT ``runner``: signature name,
    interpreter tensor name, shape (-1 is the batch, any size), dtype, range, meaning."""
    meaning = meanings(model, part)

    def table(details):
        return [{"name": key, "tensor": value["name"],
                 "shape": [int(d) for d in value["shape_signature"]],
                 "dtype": np.dtype(value["dtype"]).name, **meaning[key]}
                for key, value in sorted(details.items())]

    return {"inputs": table(runner.get_input_details()),
            "outputs": table(runner.get_output_details())}


def tflite_metadata(model, quantize, files):
    """Everything an app needs, in JSON: an app draws z ~ N(0, I) with ``latent_dim`` numbers,
    runs decoder.tflite, and shows ``mean`` as an image of ``image_shape``."""
    from keras_vae.versions import library_versions

    preparation = model.decoder.data_preparation
    return {
        "format": "tflite",
        "quantization": quantize,
        "quantization_meaning": QUANTIZATION_MEANINGS[quantize],
        "latent_dim": model.latent_dim,
        "image_shape": list(model.image_shape),
        "likelihood": model.likelihood,
        "prior": {"distribution": "Normal", "loc": 0.0, "scale": 1.0,
                  "event_shape": [model.latent_dim],
                  "how_to_sample": "draw latent_dim independent N(0, 1) numbers per image"},
        "preprocessing": {
            "encoder_input": "float32 [batch, *image_shape], pixel intensities in [0, 1] "
                             "(uint8 / 255)" + (f"; {preparation}" if preparation else ""),
        },
        "parity_tolerance": PARITY_TOLERANCE.get(quantize),
        "num_parameters": model.encoder.count_params() + model.decoder.count_params(),
        "files": files,
        "versions": library_versions(),
    }
