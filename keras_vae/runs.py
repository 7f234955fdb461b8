"""Reading a finished run: a run directory written by ``train.fit``, or a bare ``.keras`` file.

Every command after ``kvae fit`` starts here; a path that is not a run fails with a
``RunError`` that says what was expected.
"""

import dataclasses
import json
import pathlib
import zipfile

import keras

from keras_vae.files import write_json_atomically
from keras_vae.train import RunError, TrainConfig, partial_dir

EVALUATION_PROGRESS = "evaluation.partial.npz"  # an interrupted K-sample estimate


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
    from keras_vae import evaluation, train

    splits = train.load_splits(run.data_config(dataset, data_dir))
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
