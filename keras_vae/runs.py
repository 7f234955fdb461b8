"""The run folder: its layout and file names (this module is their one owner), where new runs
go, which folders are protected, and reading a finished run (a run folder written by
``train.fit``, or a bare ``.keras`` file). Reading never imports the trainer.

Layout of a run folder RUN::

    RUN/config.json             every resolved option, library versions, data sizes (CONFIG)
    RUN/model.keras             the final model (MODEL)
    RUN/history.csv             one row per epoch (HISTORY)
    RUN/latent_history.csv      KL per latent dimension, active units per epoch (LATENT_HISTORY)
    RUN/backup/                 epoch checkpoints while training (BACKUP)
    RUN/logs/                   TensorBoard (LOGS)
    RUN/metrics.json            written by ``kvae evaluate`` (METRICS)
    RUN/per_example.csv         written by ``kvae evaluate`` (PER_EXAMPLE)
    RUN/evaluation.partial.npz  an interrupted K-sample estimate (EVALUATION_PROGRESS)
    RUN/test_examples.npz       test images that travel with the run (TEST_EXAMPLES)
    RUN/export/                 written by ``kvae export`` (EXPORT)
    RUN/PROTECTED               marks a shipped or published model (PROTECTED)
    RUN.partial/                the run while it trains (``partial_dir``)
    .RUN.kvae-lock              held by the ``kvae fit`` writing RUN (``lock_path``)

New runs go to ``runs/<dataset>-<likelihood>-<architecture>`` (``default_output``);
``saved_models/`` holds only the models the repository ships.

Protection. A folder holding a file named PROTECTED (a shipped or published model:
``publish``) and everything inside it are protected: no ``kvae`` command replaces or deletes
anything there unless told so with ``--replace-protected`` (``replace_protected=True``).
``kvae fit --overwrite`` or ``--resume`` into it is refused; ``kvae evaluate`` prints its
figures but keeps the folder's metrics.json and per_example.csv; ``kvae export --overwrite``
of an export inside it is refused (``files.staged_directory``). Adding what is not there yet
(a new export format) and reading (``info``, ``sample``, ...) are allowed. Deleting the
PROTECTED file makes the folder an ordinary run.

What a finished run reports (its test images, ``kvae evaluate``'s figures, ``kvae info``) is
in ``run_reports``, whose functions are importable from here too.
"""

import dataclasses
import itertools
import json
import pathlib

from keras_vae.config import TrainConfig
from keras_vae.errors import RunError
from keras_vae.files import replace_atomically, write_json_atomically

CONFIG = "config.json"
MODEL = "model.keras"
HISTORY = "history.csv"
LATENT_HISTORY = "latent_history.csv"
METRICS = "metrics.json"
PER_EXAMPLE = "per_example.csv"
BACKUP = "backup"
LOGS = "logs"
EXPORT = "export"
TEST_EXAMPLES = "test_examples.npz"  # test images that travel with a run (bundled_examples.py)
EVALUATION_PROGRESS = "evaluation.partial.npz"  # an interrupted K-sample estimate
LAST_GOOD = "last_good.keras"  # in RUN.partial after a NaN loss: the last good epoch
PROTECTED = "PROTECTED"
PARTIAL_SUFFIX = ".partial"
LOCK_SUFFIX = ".kvae-lock"
RUNS_HOME = "runs"  # the default home of new runs, relative to the working directory
PROTECTED_TEXT = (
    "This folder is a shipped or published keras-vae model. kvae commands do not replace or\n"
    "delete anything in it unless given --replace-protected (kvae fit --overwrite/--resume,\n"
    "kvae evaluate's metrics.json, kvae export --overwrite). Delete this file to make the\n"
    "folder an ordinary run.\n")


def partial_dir(run_dir):
    """Where ``run_dir`` lives while it trains: ``<run_dir>.partial`` beside it."""
    run_dir = pathlib.Path(run_dir)
    return run_dir.with_name(run_dir.name + PARTIAL_SUFFIX)


def lock_path(run_dir):
    """The lock file of the ``kvae fit`` that writes ``run_dir``: ``.<name>.kvae-lock``
    beside it (a name no user owns)."""
    run_dir = pathlib.Path(run_dir)
    return run_dir.with_name(f".{run_dir.name}{LOCK_SUFFIX}")


def is_run(path):
    """Whether ``path`` is a finished run folder (it has config.json and model.keras)."""
    path = pathlib.Path(path)
    return (path / CONFIG).is_file() and (path / MODEL).is_file()


def default_output(config, resume=False, overwrite=False, home=RUNS_HOME):
    """(run folder, notice) for ``kvae fit`` without ``--output``: ``runs/<dataset>-
    <likelihood>-<architecture>``, numbered -2, -3, ... past the names in use, so that a new
    run never stops on (or replaces) an earlier one; the notice says when it was numbered,
    else None. ``resume`` and ``overwrite`` act on a run the user names, never on one chosen
    here: RunError listing the runs of this name."""
    base = pathlib.Path(home) / f"{config.dataset}-{config.likelihood}-{config.architecture}"
    in_use = []
    for number in itertools.count(1):
        name = base if number == 1 else base.with_name(f"{base.name}-{number}")
        if not (name.exists() or partial_dir(name).exists()):
            break
        in_use.append(str(name))
    if resume or overwrite:
        flag, verb = ("--resume", "continues") if resume else ("--overwrite", "replaces")
        found = (f"runs of this name: {', '.join(in_use)}" if in_use
                 else f"there is no run named {base} yet")
        raise RunError(f"{flag} {verb} only a run you name: pass --output RUN ({found}).")
    notice = f"{base} holds a run already; this one goes to {name}." if in_use else None
    return name, notice


def protected_folder(path):
    """The protected folder that ``path`` is or lies inside (it holds PROTECTED), or None."""
    path = pathlib.Path(path).absolute()
    return next((folder for folder in (path, *path.parents)
                 if (folder / PROTECTED).is_file()), None)


def check_not_protected(path, action="replace", replace_protected=False):
    """RunError when ``path`` is protected (see the module docstring) and
    ``replace_protected`` is not given; ``action`` says what was about to happen."""
    folder = protected_folder(path)
    if folder is None or replace_protected:
        return
    where = (f"{path} is" if folder == pathlib.Path(path).absolute()
             else f"{path} is inside {folder},")
    raise RunError(f"{where} a protected model folder (it holds {PROTECTED}): kvae does not "
                   f"{action} it by default. Choose another --output, or pass "
                   f"--replace-protected to {action} it anyway.")


def publish(directory):
    """Makes a finished run a shipped or published model: its config.json loses the path of
    this machine's data (``train.data_dir`` becomes null; pass --data-dir to evaluate it
    elsewhere, or use its test_examples.npz) and the folder becomes protected."""
    directory = pathlib.Path(directory)
    if not is_run(directory):
        raise RunError(f"{directory} is not a finished run (it needs {CONFIG} and {MODEL}).")
    record = json.loads((directory / CONFIG).read_text())
    record["train"]["data_dir"] = None
    write_json_atomically(directory / CONFIG, record)
    replace_atomically(directory / PROTECTED, lambda f: f.write(PROTECTED_TEXT))


def load_splits(config):
    """The train / validation / test pipelines of a TrainConfig (``data.make_splits``): the
    values its likelihood's data kind needs, binarised as its ``binarize`` says (the test
    split once, with a fixed seed, under "dynamic" and "static")."""
    from keras_vae import data

    return data.make_splits(
        config.dataset, config.data_dir, batch_size=config.batch_size,
        likelihood=config.likelihood, binarize=config.binarize,
        label_column=config.label_column,
        validation_fraction=config.validation_fraction, seed=config.seed)


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
        if not str(values.get("data_dir") or "").lower().endswith(".csv"):
            values["label_column"] = None  # a CSV's column: other data have none
        return TrainConfig.from_json(values)


def load_run(path):
    """Loads RUN (a run directory or a .keras file); RunError if it is neither."""
    import zipfile

    import keras

    import keras_vae.model  # noqa: F401 - registers the classes that .keras files name

    path = pathlib.Path(path)
    if path.is_dir():
        model_path, config_path = path / MODEL, path / CONFIG
        if not model_path.exists():
            hint = ""
            if partial_dir(path).exists() or path.name.endswith(PARTIAL_SUFFIX):
                hint = " It looks like an interrupted run: finish it with kvae fit ... --resume."
            raise RunError(f"{path} is not a run directory (it has no {MODEL}).{hint}")
    elif path.is_file() and path.suffix == ".keras":
        model_path, config_path = path, None
    elif path.exists():
        raise RunError(f"{path} is not a run: give a run directory or a .keras file.")
    else:
        raise RunError(f"{path} does not exist: give a run directory or a .keras file.")
    if not zipfile.is_zipfile(model_path):
        raise RunError(f"{model_path} is not a .keras file (not a zip archive; "
                       f"{model_path.stat().st_size:,} bytes): it is damaged or was never "
                       f"written. Restore it, or train the run again.")
    try:
        model = keras.models.load_model(model_path)
    except (ValueError, OSError, zipfile.BadZipFile, KeyError, TypeError) as error:
        raise RunError(f"Cannot load {model_path}: {str(error).splitlines()[0]}") from None
    from keras_vae.protocol import LatentVariableModel

    if not isinstance(model, LatentVariableModel):
        raise RunError(f"{model_path} holds a Keras {type(model).__name__}, not a keras-vae "
                       f"model; give a run made by kvae fit or a saved kv.VAE.")
    record = config = None
    if config_path is not None and config_path.exists():
        record = _read_record(config_path)
        try:
            config = TrainConfig.from_json(record["train"])
        except (ValueError, KeyError, TypeError) as error:
            problem = f"no {error} entry" if isinstance(error, KeyError) else error
            raise RunError(f"{config_path} is not a keras-vae run record ({problem}); "
                           f"restore it, or use the model alone: {model_path}.") from None
    return Run(model=model, model_path=model_path, directory=model_path.parent
               if config_path is not None else None, config=config, record=record)


def read_json_object(path, fix):
    """The JSON object in ``path``; RunError naming the file, where it breaks and ``fix``."""
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise RunError(f"{path} is not valid JSON (line {error.lineno}, column "
                       f"{error.colno}: {error.msg}); {fix}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RunError(f"{path} cannot be read ({error}); {fix}") from None
    if not isinstance(values, dict):
        raise RunError(f"{path} holds a JSON {type(values).__name__}, not an object; {fix}")
    return values


def _read_record(config_path):
    return read_json_object(config_path, f"restore it, or use the model alone: "
                                   f"{config_path.parent / MODEL}.")


# What a finished run reports (run_reports.py), importable from here as before; at the end:
# run_reports reads this module's file names.
from keras_vae.run_reports import (describe, evaluate_run, read_metrics,  # noqa: E402,F401
                                   test_images, test_metrics)
