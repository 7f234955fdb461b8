"""Reading a finished run: a run directory written by ``train.fit``, or a bare ``.keras`` file.

Every command after ``kvae fit`` starts here; a path that is not a run fails with a
``RunError`` that says what was expected.
"""

import dataclasses
import json
import pathlib
import zipfile

import keras
import numpy as np

from keras_vae.files import write_json_atomically
from keras_vae.train import RunError, TrainConfig, partial_dir

EVALUATION_PROGRESS = "evaluation.partial.npz"  # an interrupted K-sample estimate
TEST_EXAMPLES = "test_examples.npz"  # test images shipped inside a run (save_test_examples)


@dataclasses.dataclass
class Run:
    """A loaded run: the model, and (for a run directory) its folder and training config."""

    model: object
    model_path: pathlib.Path
    directory: pathlib.Path | None = None
    config: TrainConfig | None = None
    record: dict | None = None  # config.json as written

    def data_config(self, dataset=None, data_dir=None):
        """The TrainConfig to load evaluation data with; options override the run's own."""
        if self.config is None and dataset is None:
            raise RunError(f"{self.model_path} is a bare model file: pass --dataset (and "
                           f"--data-dir) to say which data to use.")
        values = self.config.to_json() if self.config else {
            "likelihood": self.model.likelihood,
            "latent_dim": self.model.latent_dim}
        if dataset is not None:
            values["dataset"] = dataset
            values["data_dir"] = data_dir
        elif data_dir is not None:
            values["data_dir"] = data_dir
        return TrainConfig.from_json(values)


def load_run(path):
    """Loads RUN (a run directory or a .keras file); RunError if it is neither."""
    import keras_vae.model  # noqa: F401 - registers the classes that .keras files name

    path = pathlib.Path(path)
    if path.is_dir():
        model_path, config_path = path / "model.keras", path / "config.json"
        if not model_path.exists():
            hint = ""
            if partial_dir(path).exists() or path.name.endswith(".partial"):
                hint = " It looks like an interrupted run: finish it with kvae fit ... --resume."
            raise RunError(f"{path} is not a run directory (it has no model.keras).{hint}")
    elif path.is_file() and path.suffix == ".keras":
        model_path, config_path = path, None
    elif path.exists():
        raise RunError(f"{path} is not a run: give a run directory or a .keras file.")
    else:
        raise RunError(f"{path} does not exist: give a run directory or a .keras file.")
    try:
        model = keras.models.load_model(model_path)
    except (ValueError, OSError, zipfile.BadZipFile, KeyError, TypeError) as error:
        raise RunError(f"Cannot load {model_path}: {str(error).splitlines()[0]}") from None
    record = config = None
    if config_path is not None and config_path.exists():
        try:
            record = json.loads(config_path.read_text())
            config = TrainConfig.from_json(record["train"])
        except (ValueError, KeyError, TypeError) as error:
            raise RunError(f"{config_path} is corrupt ({error}); the run cannot be read.") \
                from None
    return Run(model=model, model_path=model_path, directory=model_path.parent
               if config_path is not None else None, config=config, record=record)


def evaluate_run(run, iw_samples=0, seed=0, batch_size=100, dataset=None, data_dir=None):
    """``evaluation.evaluate`` of a loaded run on its test split: ``kvae evaluate``.

    A run directory gets metrics.json and per_example.csv. The K-sample log-likelihood saves
    its progress in RUN/evaluation.partial.npz, so an interrupted evaluation continues where
    it stopped when run again with the same K and seed. Returns (metrics, examples).
    """
    from keras_vae import data, evaluation, train

    splits = train.load_splits(run.data_config(dataset, data_dir))
    data.check_examples_shape(splits.image_shape, run.model.image_shape, splits.source)
    images = splits.test.unbatch().batch(batch_size)
    progress = run.directory / EVALUATION_PROGRESS if run.directory and iw_samples else None
    metrics, per_example = evaluation.evaluate(run.model, images, iw_samples=iw_samples,
                                               seed=seed, batch_size=batch_size,
                                               progress_file=progress)
    metrics["seed"] = seed
    if run.directory is not None:
        write_json_atomically(run.directory / "metrics.json", metrics)
        evaluation.write_per_example_csv(run.directory / "per_example.csv", per_example)
    if progress is not None:
        progress.unlink(missing_ok=True)
    return metrics, splits.num_test


def save_test_examples(directory, images, labels=None):
    """Writes DIRECTORY/test_examples.npz, a copy of test images [n, ...] in [0, 1] (and
    their labels) that travels with the run, so that ``kvae reconstruct``, ``interpolate`` and
    ``latent-plot`` work on a machine without the dataset.

    Binary images are packed 8 pixels per byte (10,000 MNIST images: 0.98 MB); others are
    stored as 8-bit grey levels, which must represent them exactly (images read from 8-bit
    files do).
    """
    from keras_vae.files import replace_atomically

    images = np.asarray(images, np.float32)
    arrays = {"shape": np.array(images.shape, np.int64)}
    if np.all((images == 0) | (images == 1)):
        arrays["packed_bits"] = np.packbits(images.astype(np.uint8).ravel())
    else:
        grey = np.round(images * 255)
        if np.abs(grey / 255 - images).max() > 1e-6 or grey.min() < 0 or grey.max() > 255:
            raise ValueError("Only binary or 8-bit grey images (k / 255) can be stored "
                             "exactly in test_examples.npz.")
        arrays["grey_levels"] = grey.astype(np.uint8)
    if labels is not None:
        arrays["labels"] = np.asarray(labels)
    replace_atomically(pathlib.Path(directory) / TEST_EXAMPLES,
                       lambda file: np.savez_compressed(file, **arrays), mode="wb")


def load_test_examples(directory):
    """(images float32 [n, ...], labels or None) from DIRECTORY/test_examples.npz, or None
    when the run has none."""
    path = pathlib.Path(directory) / TEST_EXAMPLES
    if not path.exists():
        return None
    try:
        with np.load(path) as saved:
            shape = tuple(saved["shape"])
            if "packed_bits" in saved:
                flat = np.unpackbits(saved["packed_bits"], count=int(np.prod(shape)))
                images = flat.reshape(shape).astype(np.float32)
            else:
                images = saved["grey_levels"].astype(np.float32).reshape(shape) / 255
            labels = saved["labels"] if "labels" in saved else None
    except (OSError, ValueError, KeyError) as error:
        raise RunError(f"{path} is corrupt ({error}); delete it or pass --data-dir.") \
            from None
    return images, labels


def bundle_test_examples(directory, count=None, dataset=None, data_dir=None):
    """Copies the first ``count`` (default: all) images of a run's test split, exactly as
    ``kvae evaluate`` sees them (binarised once, with the run's seed), into the run."""
    from keras_vae import train

    run = load_run(directory)
    splits = train.load_splits(run.data_config(dataset, data_dir))
    images = np.concatenate([np.asarray(batch) for batch in splits.test])[:count]
    labels = None if splits.test_labels is None else np.asarray(splits.test_labels)[:count]
    save_test_examples(directory, images, labels)
    return len(images)
