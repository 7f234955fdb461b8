"""Where exports are written, and which folders ``--overwrite`` may replace.

The names of an export's folders and files are written here once: a run's exports live in
``<run>/export/saved_model``, ``<run>/export/tflite`` and ``<run>/export/tflite-<quantize>``,
each TFLite folder with its ``metadata.json``.
"""

import pathlib

from keras_vae.errors import ExportError

from keras_vae.runs import EXPORT as EXPORT_FOLDER  # noqa: E402 - the run folder's owner
SAVED_MODEL_FOLDER = "saved_model"
TFLITE_FOLDER = "tflite"  # "tflite-<quantize>" for a quantised export
METADATA_FILE = "metadata.json"  # beside the .tflite files
SAVED_MODEL_FILE = "saved_model.pb"  # what marks a SavedModel folder (TensorFlow's name)


def tflite_file(part):
    """The file name of one TFLite part ("decoder", "encoder" or "sampler")."""
    return f"{part}.tflite"


def default_directory(run, format, quantize="none"):
    """Where ``kvae export`` writes: <run>/export/saved_model, <run>/export/tflite or
    <run>/export/tflite-<quantize>; beside a bare .keras file, <stem>-export/..."""
    base = (run.directory / EXPORT_FOLDER if run.directory is not None
            else run.model_path.with_name(f"{run.model_path.stem}-{EXPORT_FOLDER}"))
    if format == "saved_model":
        return base / SAVED_MODEL_FOLDER
    return base / (TFLITE_FOLDER if quantize == "none" else f"{TFLITE_FOLDER}-{quantize}")


def check_replaceable(directory):
    """With --overwrite, only an earlier export may be replaced: never a run or other data."""
    directory = pathlib.Path(directory)
    if directory.exists() and not ((directory / METADATA_FILE).exists()
                                   or (directory / SAVED_MODEL_FILE).exists()):
        raise ExportError(f"{directory} exists and is not an export (no {METADATA_FILE} or "
                          f"{SAVED_MODEL_FILE}); choose another --output.")
