"""Export a trained VAE (one layer or a hierarchy) for TensorFlow serving (SavedModel) and for
phones (TFLite / LiteRT).

One module per job:

    outputs.py       what is exported: q(z|x), the likelihood head's outputs of p(x|z) and
                     the sampler (the prior's noise -> z ~ p(z) -> p(x|z)), with
                     converter-safe ops, and the input specs
    saved_model.py   ``export_saved_model``: encode / decode / reconstruct / sample /
                     sample_from_noise signatures
    tflite.py        ``export_tflite``: decoder, encoder and sampler files per quantisation,
                     the LiteRT runner
    parity.py        the checks every file passes: size, operators, finite outputs, parity
    metadata.py      metadata.json of a TFLite export
    folders.py       where exports go, which folders --overwrite may replace

Every file asks the model only (the model protocol, ``keras_vae/protocol.py``, and its export
members ``decoder_layer``, ``decoder_input``, ``layer_posterior_parameters``), so the one-layer
VAE and a hierarchy (z1 .. zL) export through the same code: the decoder reads the model's
``decoder_layer`` (z1 of a hierarchy), the encoder gives every layer's posterior parameters,
and the sampler takes the noise a draw of every layer needs as inputs (``sampler_noise_spec``,
``latent_from_noise``), so it works for every prior and holds no random ops.

Every export is written to a temporary folder, checked, and moved into place (atomically)
only if the checks pass: the file size against the parameter count (a converter that loses
the weights writes a ~3 KB file that outputs NaN, DESIGN.md trap 7), no random or Flex ops,
finite outputs, and the largest absolute difference from the Keras model on the same inputs
at batch 1 and batch 64, which must stay within ``PARITY_TOLERANCE`` and is recorded in
metadata.json.
"""

import pathlib

from keras_vae.config import EXPORT_FORMATS, QUANTIZATIONS  # noqa: F401
from keras_vae.errors import ExportError
from keras_vae.export.folders import check_replaceable, default_directory  # noqa: F401
from keras_vae.export.outputs import (decoder_outputs, encoder_outputs,  # noqa: F401
                                      noise_specs, sampler_outputs)
from keras_vae.export.parity import (PARITY_TOLERANCE, check_inputs,  # noqa: F401
                                     keras_reference, max_abs_difference, parity)
from keras_vae.export.saved_model import export_saved_model  # noqa: F401
from keras_vae.export.tflite import (check_tflite, convert, export_tflite,  # noqa: F401
                                     runner_ops, tflite_runner)
from keras_vae.layers import stable_softplus  # noqa: F401


def export_run(path, format, quantize="none", output=None, overwrite=False,
               replace_protected=False):
    """``kvae export``: loads RUN, exports it, returns (directory, report)."""
    from keras_vae.runs import load_run

    if format not in EXPORT_FORMATS:
        raise ExportError(f"format must be saved_model or tflite; received {format!r}.")
    if format == "saved_model" and quantize != "none":
        raise ExportError("--quantize applies to --format tflite only.")
    run = load_run(path)
    directory = pathlib.Path(output) if output else default_directory(run, format, quantize)
    if format == "saved_model":
        return directory, export_saved_model(run.model, directory, overwrite,
                                             replace_protected)
    return directory, export_tflite(run.model, directory, quantize, overwrite,
                                    replace_protected)
