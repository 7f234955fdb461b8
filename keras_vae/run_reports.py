"""What a finished run reports: the test images it is evaluated and pictured on, its test
figures (``kvae evaluate``: metrics.json and per_example.csv, ``evaluation.evaluate``), the
metrics.json it holds, and what ``kvae info`` shows of it (``describe``; for a hierarchy its
latent layers). The files' names and the loading of a run belong to ``runs``, which also
exports these functions under their old names (``runs.test_metrics``, ...).
"""

import pathlib
import warnings

import numpy as np

from keras_vae.config import EVALUATION_BATCH_SIZE
from keras_vae.errors import RunError
from keras_vae.files import write_json_atomically


def read_metrics(directory):
    """metrics.json of a run folder (None when absent), its figures checked to be numbers
    (for a hierarchy also those of each layer, ``layers``)."""
    from keras_vae import runs

    path = pathlib.Path(directory) / runs.METRICS
    if not path.exists():
        return None
    fix = f"delete it and run kvae evaluate {directory} again."
    metrics = runs.read_json_object(path, fix)
    _check_figures(metrics, path, fix)
    layers = metrics.get("layers", {})
    if not isinstance(layers, dict) or not all(isinstance(layer, dict)
                                               for layer in layers.values()):
        raise RunError(f"{path}: layers is {layers!r}, not an object of layers; {fix}")
    for name, layer in layers.items():
        _check_figures(layer, path, fix, f"layers.{name}.")
    return metrics


def _check_figures(metrics, path, fix, prefix=""):
    """RunError naming ``path`` when a figure of ``metrics`` is not of its kind."""
    for name, value in metrics.items():
        if name in ("elbo", "reconstruction", "kl", "loss", "log_likelihood") \
                or name.endswith("_stderr") or name.endswith("bits_per_dim"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RunError(f"{path}: {prefix}{name} is {value!r}, not a number; {fix}")
        if name in ("active_units", "iw_samples") and (isinstance(value, bool)
                                                       or not isinstance(value, int)):
            raise RunError(f"{path}: {prefix}{name} is {value!r}, not a whole number; {fix}")
        if name == "kl_per_dimension" and not isinstance(value, list):
            raise RunError(f"{path}: {prefix}{name} is {value!r}, not a list; {fix}")


def describe(run):
    """What ``kvae info`` shows of a loaded run: the model's options (``latent_sizes``: its
    latent layers from the data up; for a hierarchy also how it infers them, the merge and
    the units between two layers), its trainable parameters (count_params() would also count
    the KL weight and the noise seed), the training options and library versions from
    config.json, and metrics.json (None before ``kvae evaluate``)."""
    model = run.model
    described = {"likelihood": model.likelihood, "architecture": model.architecture,
                 "hidden_units": list(model.hidden_units), "latent_dim": model.latent_dim,
                 "latent_sizes": dict(model.latent_sizes),
                 "input_shape": list(model.image_shape)}
    if len(model.latent_sizes) > 1:
        described.update(inference=getattr(model, "inference", None),
                         merge=getattr(model, "merge", None),
                         latent_hidden_units=list(getattr(model, "latent_hidden_units", ())))
    return {
        "model": described,
        "trainable_parameters": sum(int(np.prod(variable.shape))
                                    for variable in model.trainable_weights),
        "train": run.record["train"] if run.record is not None else None,
        "versions": run.record.get("versions", {}) if run.record is not None else None,
        "metrics": read_metrics(run.directory) if run.directory is not None else None,
    }


def test_images(run, dataset=None, data_dir=None):
    """(images float32 [N, ...], labels or None, source): the test split that a loaded run is
    evaluated and pictured on. A run that ships test_examples.npz (``bundled_examples``: the
    split binarised exactly as evaluation sees it) uses those unless ``dataset`` or
    ``data_dir`` is given, so a shipped run needs no dataset; ``source`` names that file, or
    is None when the images come from the run's data."""
    from keras_vae import bundled_examples, data, runs

    if dataset is None and data_dir is None and run.directory is not None:
        shipped = bundled_examples.load_test_examples(run.directory)
        if shipped is not None:
            return (*shipped, run.directory / runs.TEST_EXAMPLES)
    splits = runs.load_splits(run.data_config(dataset, data_dir))
    data.check_examples_shape(splits.image_shape, run.model.image_shape, splits.source)
    images = np.concatenate([np.asarray(batch) for batch in splits.test])
    return images, splits.test_labels, None


def test_metrics(model, images, iw_samples=0, seed=0, batch_size=EVALUATION_BATCH_SIZE,
                 progress_file=None):
    """``evaluation.evaluate`` of ``model`` on test ``images`` (an array, or a dataset of
    batches) in batches of ``batch_size`` (nats): the one evaluation behind ``kvae evaluate``
    and ``kvae fit``'s summary, so the same images and seed give the same figures.
    Returns (metrics, per_example)."""
    from keras_vae import evaluation

    if not isinstance(images, np.ndarray):
        images = images.unbatch().batch(batch_size)
    metrics, per_example = evaluation.evaluate(model, images, iw_samples=iw_samples, seed=seed,
                                               batch_size=batch_size,
                                               progress_file=progress_file)
    metrics["seed"] = seed
    return metrics, per_example


def evaluate_run(run, iw_samples=0, seed=0, batch_size=EVALUATION_BATCH_SIZE, dataset=None,
                 data_dir=None, replace_protected=False):
    """``test_metrics`` of a loaded run on its test split (``test_images``): ``kvae evaluate``.

    ``metrics["test_data"]`` says where the images came from. A run directory gets
    metrics.json and per_example.csv; a protected one keeps its own (a warning says so)
    unless ``replace_protected``. The K-sample log-likelihood saves its
    progress in RUN/evaluation.partial.npz, so an interrupted evaluation continues where it
    stopped when run again with the same K and seed. Returns (metrics, number of examples).
    """
    from keras_vae import evaluation, runs

    images, _, shipped = test_images(run, dataset, data_dir)
    progress = (run.directory / runs.EVALUATION_PROGRESS if run.directory and iw_samples
                else None)
    metrics, per_example = test_metrics(run.model, images, iw_samples=iw_samples, seed=seed,
                                        batch_size=batch_size, progress_file=progress)
    metrics["test_data"] = str(shipped) if shipped is not None else "the run's test split"
    if run.directory is not None:
        if runs.protected_folder(run.directory) is None or replace_protected:
            write_json_atomically(run.directory / runs.METRICS, metrics)
            evaluation.write_per_example_csv(run.directory / runs.PER_EXAMPLE, per_example)
        else:
            warnings.warn(f"{run.directory} is protected: its {runs.METRICS} and "
                          f"{runs.PER_EXAMPLE} are kept (pass --replace-protected to replace "
                          f"them).", stacklevel=2)
    if progress is not None:
        progress.unlink(missing_ok=True)
    return metrics, len(images)
