"""``fit(config, run_dir)``: the one training entry point behind ``kvae fit``.

A run is written to ``<run_dir>.partial/`` while it trains and renamed to ``run_dir`` only
when complete, so ``run_dir`` always holds either nothing or a finished run, and an existing
run is replaced (with ``overwrite``) only once its successor is complete. A crash or Ctrl-C
leaves the ``.partial`` folder with a checkpoint of the last completed epoch (weights,
optimizer state and the model's noise stream, see ``EpochCheckpoint``); ``resume`` continues
from it.

Layout of a run (DESIGN.md): config.json, model.keras, history.csv, backup/ (while
training), logs/ (TensorBoard).
"""

import csv
import json
import math
import pathlib
import platform
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_vae import data as data_module
from keras_vae.files import (replace_atomically, replace_directory, staged_directory,
                             write_json_atomically)
from keras_vae import distribute, schedules, warmup
from keras_vae.config import TrainConfig  # noqa: F401 - train.TrainConfig stays importable
from keras_vae.config import check_architecture_accepts, resolve_hidden_units
from keras_vae.errors import RunError, TrainingDiverged, WorkerLost
from keras_vae.model import VAE

PARTIAL_SUFFIX = ".partial"
# Options a resumed run may change: where it runs, not what it computes.
RESUMABLE_CHANGES = ("strategy",)


def worker_lost(error, run_dir):
    """The WorkerLost to raise for ``error``, a tf.errors.OpError from a collective that
    TensorFlow's health check aborted because another worker stopped. Its message is a wall of
    text about the collective that was waiting; the one-line cause names the lost task when the
    message does, else it is the message's first informative line."""
    text = re.sub(r"\{\{.*?\}\}\s*", "", str(error))
    lost = re.search(r"unhealthy[^\n]*\n\s*(/job:\S+)", text)
    if lost:
        cause = f"{lost.group(1)} stopped sending heartbeats"
    else:  # the first informative line ("Graph execution error:" heads some of them)
        cause = next((line.strip() for line in text.splitlines()
                      if line.strip() and not line.strip().endswith(":")), type(error).__name__)
    return WorkerLost(f"A worker of this multi-worker job stopped ({cause}). The last completed "
                      f"epoch is saved in {partial_dir(run_dir)}: start every worker again "
                      f"with the same command plus --resume.")


def versions():
    """Versions of the libraries a run depends on, for config.json."""
    import tensorflow_probability as tfp

    import keras_vae

    return {"keras_vae": keras_vae.__version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "tensorflow_probability": tfp.__version__,
            "python": platform.python_version()}


class HistoryWriter(keras.callbacks.Callback):
    """history.csv with one row per completed epoch, exactly once even across resumes.

    A fit resumed at ``initial_epoch`` (the epochs its checkpoint holds) first drops the rows
    from that epoch on: written before a crash but not checkpointed. It does so when training
    begins, so even a resume with no epoch left to train leaves no such row. The file is
    rewritten atomically, so a kill leaves the previous version intact.
    """

    def __init__(self, path, initial_epoch=0):
        super().__init__()
        self.path = pathlib.Path(path)
        self.initial_epoch = initial_epoch
        self.rows = None

    def on_train_begin(self, logs=None):
        rows = self.read()
        self.rows = [row for row in rows if int(row["epoch"]) < self.initial_epoch]
        if len(self.rows) != len(rows):
            self._write()

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}})
        self._write()

    def _write(self):
        names = list(dict.fromkeys(key for row in self.rows for key in row))

        def write(f):
            writer = csv.DictWriter(f, fieldnames=names)
            writer.writeheader()
            writer.writerows(self.rows)

        replace_atomically(self.path, write)

    def read(self):
        """The rows of the history file (dicts of strings); [] before the first epoch."""
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))


class EpochCheckpoint(keras.callbacks.Callback):
    """Weights, optimizer state and the noise stream after every epoch, crash-safe.

    Each checkpoint is a folder ``epoch-NNNNNN/`` holding ``checkpoint.weights.h5`` (or, for
    the checkpoint a longer run starts from, the complete run's ``model.keras``: ``adopt``)
    and, written last and atomically, ``state.json``; only folders with a ``state.json``
    count, and older ones are deleted once a newer one is complete. A kill at any instant
    (even while the weights file is half written) therefore leaves the previous complete
    checkpoint. Keras' BackupAndRestore cannot promise that: a checkpoint interrupted
    mid-write fails to load on resume (seen here with SIGINT; its fallback only catches
    OSError).
    """

    # Either file restores weights, Adam's moments and step count, and the noise seed:
    # model.load_weights reads the weights part of a .keras archive, optimizer included.
    WEIGHT_FILES = ("checkpoint.weights.h5", "model.keras")

    def __init__(self, directory, restore_from=None):
        """Writes to ``directory``; restores from ``restore_from`` (default ``directory``):
        the workers of a multi-worker run all restore the chief's checkpoint."""
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.restore_from = pathlib.Path(restore_from or directory)

    def latest(self):
        """The newest complete checkpoint folder to restore, or None."""
        complete = sorted(p for p in self.restore_from.glob("epoch-*")
                          if (p / "state.json").exists() and self._weights(p) is not None)
        return complete[-1] if complete else None

    def _weights(self, folder):
        """The weights file of a checkpoint folder, or None."""
        return next((folder / name for name in self.WEIGHT_FILES if (folder / name).exists()),
                    None)

    def epochs_done(self):
        """The number of epochs the newest complete checkpoint holds (0 without one)."""
        latest = self.latest()
        return json.loads((latest / "state.json").read_text())["epochs_done"] if latest else 0

    def restore(self, model):
        """Loads the newest complete checkpoint into ``model``; returns the epochs it holds."""
        latest = self.latest()
        if latest is None:
            return 0
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self._weights(latest))
        return self.epochs_done()

    def adopt(self, model_file, epochs_done):
        """Makes a copy of a complete run's ``model_file`` the checkpoint of ``epochs_done``
        epochs, from which a longer run continues."""
        target = self.directory / f"epoch-{epochs_done:06d}"
        target.mkdir(parents=True)
        shutil.copy2(model_file, target / "model.keras")
        write_json_atomically(target / "state.json", {"epochs_done": epochs_done})

    def on_epoch_end(self, epoch, logs=None):
        target = self.directory / f"epoch-{epoch + 1:06d}"
        if target.exists():
            shutil.rmtree(target)  # left incomplete by an earlier kill
        target.mkdir(parents=True)
        self.model.save_weights(target / "checkpoint.weights.h5")
        write_json_atomically(target / "state.json", {"epochs_done": epoch + 1})
        for older in self.directory.glob("epoch-*"):
            if older != target:
                shutil.rmtree(older, ignore_errors=True)


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops at the first NaN/inf loss and puts back the weights of the last completed epoch."""

    def __init__(self):
        super().__init__()
        self.failed_epoch = None
        self._good_weights = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._good_weights = self.model.get_weights()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            self.failed_epoch = self._epoch + 1  # 1-based for people
            self.model.set_weights(self._good_weights)
            self.model.stop_training = True


def learning_rate(config, steps_per_epoch):
    """Adam's learning rate: the constant ``config.learning_rate``, or with "cosine" a
    schedule that starts there and decays to 0 along half a cosine over all training steps,
    lr(t) = lr * (1 + cos(pi * t / T)) / 2, T = epochs * steps_per_epoch, or with "burda"
    the stages of ``schedules.BurdaStages``. A schedule reads
    the optimizer's step count, which checkpoints restore, so a resumed run continues it."""
    if config.learning_rate_schedule == "constant":
        return config.learning_rate
    if config.learning_rate_schedule == "burda":
        return schedules.BurdaStages(config.learning_rate, steps_per_epoch)
    return keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * steps_per_epoch)


def warmup_callbacks(config):
    """[KLWarmUp] when the config asks for a KL warm-up, else []."""
    if config.kl_warmup == "none":
        return []
    return [warmup.KLWarmUp(config.kl_warmup, config.kl_warmup_length,
                            config.kl_warmup_unit, target=config.kl_weight,
                            ratio=config.kl_warmup_ratio)]


def build_model(config, image_shape, steps_per_epoch=1):
    """The VAE a config describes, compiled with Adam (see ``learning_rate``)."""
    model = VAE(input_shape=image_shape, latent_dim=config.latent_dim,
                likelihood=config.likelihood, architecture=config.architecture,
                hidden_units=config.hidden_units, activation=config.activation,
                kl_weight=config.kl_weight, objective=config.objective,
                iw_samples=config.iw_samples, free_bits=config.free_bits,
                free_bits_groups=config.free_bits_groups)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate(config, steps_per_epoch),
                                                  epsilon=config.adam_epsilon),
                  jit_compile=config.jit_compile,
                  steps_per_execution=config.steps_per_execution)
    return model


def load_splits(config):
    """The train / validation / test pipelines of a config."""
    return data_module.make_splits(
        config.dataset, config.data_dir, batch_size=config.batch_size,
        binarized=config.likelihood == "bernoulli",
        validation_fraction=config.validation_fraction, seed=config.seed)


def partial_dir(run_dir):
    """Where ``run_dir`` lives while it trains: ``<run_dir>.partial`` beside it."""
    run_dir = pathlib.Path(run_dir)
    return run_dir.with_name(run_dir.name + PARTIAL_SUFFIX)


def prepare_run_dir(config, run_dir, resume=False, overwrite=False):
    """Chooses where this run trains and checks that nothing is lost; returns that folder.

    - new run, ``run_dir`` absent: a fresh ``.partial`` folder;
    - ``resume``: the existing ``.partial`` folder, whose config must match (except the
      strategy, and the epoch count when nothing depends on it: ``_check_new_epochs``);
    - ``resume`` of a complete run with more ``epochs``: a ``.partial`` folder that continues
      it (``_continue_complete_run``); ``run_dir`` stays as it is until the longer run
      completes and replaces it;
    - ``run_dir`` exists: an error unless ``overwrite`` (the old run is replaced at the end).
    """
    run_dir = pathlib.Path(run_dir)
    working = partial_dir(run_dir)
    if resume:
        if _resume_point(config, run_dir) == "complete":
            return _continue_complete_run(run_dir, working)
        return working
    if run_dir.exists() and not overwrite:
        further = ("" if config.learning_rate_schedule == "cosine" else
                   "pass --resume with a larger --epochs to train it further, or ")
        raise RunError(f"{run_dir} already exists; {further}pass --overwrite to replace it, "
                       f"or choose another --output.")
    if working.exists():
        if not overwrite:
            raise RunError(f"An interrupted run exists at {working}; pass --resume to continue "
                           f"it or --overwrite to start again.")
        shutil.rmtree(working)
    working.mkdir(parents=True)
    return working


def _resume_point(config, run_dir):
    """What ``config`` resumes in ``run_dir``: "interrupted" (its ``.partial`` folder) or
    "complete" (the finished run, to train further); RunError when neither may be resumed
    with these options."""
    working = partial_dir(run_dir)
    if (working / "config.json").exists():
        _check_resumable(config, working, EpochCheckpoint(working / "backup").epochs_done())
        return "interrupted"
    if working.exists():  # made by a run killed before it wrote anything
        raise RunError(f"{working} holds no run (it has no config.json); delete it and run "
                       f"the command again.")
    if (run_dir / "model.keras").exists():
        _check_resumable(config, run_dir, epochs_trained(run_dir), complete=True)
        return "complete"
    raise RunError(f"No interrupted run to resume at {working}; start one without --resume.")


def epochs_trained(run_dir):
    """The epochs a complete run trained: the rows of its history.csv."""
    path = pathlib.Path(run_dir) / "history.csv"
    if not path.exists():
        raise RunError(f"{path} is missing, so the epochs {run_dir} trained are unknown; it "
                       f"cannot be continued (use --overwrite to train it again).")
    return len(HistoryWriter(path).read())


def _epochs(count):
    return f"{count} epoch{'' if count == 1 else 's'}"


def _check_resumable(config, folder, done, complete=False):
    """RunError unless ``config`` may continue the run in ``folder``, ``done`` epochs in:
    the same options except those in RESUMABLE_CHANGES and the epoch count (which must
    allow more training for a complete run, and obey ``_check_new_epochs``)."""
    # Through TrainConfig: options added since the run started take their defaults.
    saved = TrainConfig.from_json(
        json.loads((folder / "config.json").read_text())["train"]).to_json()
    changed = sorted(key for key, value in config.to_json().items()
                     if saved[key] != value and key not in RESUMABLE_CHANGES)
    if changed and changed != ["epochs"]:
        raise RunError(f"--resume needs the same options as the "
                       f"{'complete' if complete else 'interrupted'} run; these differ: "
                       f"{', '.join(changed)}.")
    if complete and config.learning_rate_schedule == "cosine":
        raise RunError(f"{folder} is a complete run with the cosine learning-rate schedule, "
                       f"which cannot be trained further (its learning rate has decayed to 0 "
                       f"over its {_epochs(saved['epochs'])}); start a new run with more "
                       f"--epochs.")
    if complete and config.epochs <= done:
        raise RunError(f"{folder} is already a complete run of {_epochs(done)}; nothing to "
                       f"resume. Pass --epochs above {done} with --resume to train it "
                       f"further, or --overwrite to train it again.")
    if changed:
        _check_new_epochs(config, saved["epochs"], done)


def _check_new_epochs(config, saved_epochs, done):
    """A resume may lengthen or shorten a run, when no option depends on the epoch count: the
    cosine schedule's length T is epochs * steps_per_epoch, so its learning rate at a given
    step would change under the weights already trained. Burda's stages and the KL warm-ups
    depend on the epoch (or step) reached, not on the total."""
    if config.learning_rate_schedule == "cosine":
        raise RunError(f"--epochs cannot change on --resume with the cosine learning-rate "
                       f"schedule (its length is the epoch count); resume with --epochs "
                       f"{saved_epochs}.")
    if config.epochs < done:
        raise RunError(f"The interrupted run has already trained {_epochs(done)}; resume "
                       f"with --epochs {done} or more.")


# What a continued run keeps of the complete run it continues: its record and its data.
# metrics.json, per_example.csv and exports describe the old weights, so they are left out.
CARRIED_OVER = ("config.json", "history.csv", "logs", "test_examples.npz")


def _continue_complete_run(run_dir, working):
    """The ``.partial`` folder in which complete run ``run_dir`` trains further: copies of
    its CARRIED_OVER files, and its model.keras (weights, Adam state, noise seed) as the
    checkpoint of the epochs it trained. Built beside and moved into place whole."""
    with staged_directory(working) as staging:
        for name in CARRIED_OVER:
            source = run_dir / name
            if source.is_dir():
                shutil.copytree(source, staging / name)
            elif source.exists():
                shutil.copy2(source, staging / name)
        EpochCheckpoint(staging / "backup").adopt(run_dir / "model.keras",
                                                  epochs_trained(run_dir))
    return working


def fit(config, run_dir, resume=False, overwrite=False, verbose=1, callbacks=()):
    """Trains the VAE of ``config`` into ``run_dir``; returns the test metrics (nats).

    Runs under ``config.strategy`` (distribute.py) and ``config.precision``. Under a
    multi-worker strategy every worker calls this with the same arguments; only the chief
    writes ``run_dir``, and with ``resume`` every worker restores the chief's last checkpoint,
    so ``run_dir`` must be on storage that every worker can read.

    Raises RunError, data.DataError, distribute.DistributeError or ValueError for unusable
    input before training starts, TrainingDiverged (after saving the last good weights in
    the .partial folder) when the loss becomes non-finite, and WorkerLost when another worker
    of a multi-worker job stops (the run is resumable from its last completed epoch).
    """
    strategy = distribute.make_strategy(config.strategy)  # first: before any op (trap 5)
    previous_policy = distribute.set_precision(config.precision)
    try:
        return _fit_under(strategy, config, pathlib.Path(run_dir), resume, overwrite, verbose,
                          callbacks)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _fit_under(strategy, config, run_dir, resume, overwrite, verbose, callbacks):
    # Before the pipelines: their op seeds combine with the global seed, so a fit must not
    # depend on whether an earlier fit in this process had set it.
    keras.utils.set_random_seed(config.seed)
    splits = load_splits(config)
    check_architecture_accepts(config.architecture, splits.image_shape, resolve_hidden_units(
        config.architecture, config.hidden_units))  # before any folder is made
    chief = distribute.is_chief(strategy)
    if chief:
        working = prepare_run_dir(config, run_dir, resume=resume, overwrite=overwrite)
    else:
        # Every worker makes the same saves (they may involve collectives), into its own
        # temporary folder, deleted at the end: only the chief writes run_dir.
        working = pathlib.Path(tempfile.mkdtemp(prefix="kvae-worker-"))
    try:
        restore_from = _worker_restore_point(config, run_dir, working) \
            if resume and not chief else None  # None: the chief's own backup/
        return _train(strategy, config, splits, working, run_dir, restore_from, verbose,
                      callbacks)
    finally:
        if not chief:
            shutil.rmtree(working, ignore_errors=True)


def _worker_restore_point(config, run_dir, working):
    """Where a worker other than the chief finds the checkpoint to resume from, after the
    chief's checks: the chief's ``.partial/backup``, or, when the chief is only now making
    that folder to continue a complete run, the same checkpoint taken from the complete run
    itself (``working/continued``)."""
    if not (partial_dir(run_dir) / "config.json").exists() \
            and not (run_dir / "model.keras").exists():
        raise RunError(f"This worker cannot see the interrupted run {partial_dir(run_dir)}; "
                       f"a multi-worker --resume needs --output on storage every worker can "
                       f"read (NFS, a shared disk).")
    if _resume_point(config, run_dir) == "interrupted":
        return partial_dir(run_dir) / "backup"
    EpochCheckpoint(working / "continued").adopt(run_dir / "model.keras",
                                                 epochs_trained(run_dir))
    return working / "continued"


def _fit_model(model, config, splits, working, initial_epoch, verbose, checkpoint, others):
    """model.fit on the splits with the run's callbacks, then ``others``."""
    model.fit(
        splits.train, validation_data=splits.validation if splits.num_validation else None,
        epochs=config.epochs, initial_epoch=initial_epoch, verbose=verbose,
        shuffle=False,  # the pipeline shuffles
        callbacks=[
            *warmup_callbacks(config),  # first: the others see the epoch's kl_weight
            # History before the checkpoint: a kill between the two then repeats the epoch
            # (its row is replaced on resume) instead of checkpointing an unrecorded epoch.
            HistoryWriter(working / "history.csv", initial_epoch),
            checkpoint,
            keras.callbacks.TensorBoard(str(working / "logs"), write_graph=False,
                                        profile_batch=0),
            *others,
        ])


def _train(strategy, config, splits, working, run_dir, restore_from, verbose, callbacks):
    write_json_atomically(working / "config.json", {
        "train": config.to_json(), "versions": versions(),
        "data": {"image_shape": list(splits.image_shape), "num_train": splits.num_train,
                 "num_validation": splits.num_validation, "num_test": splits.num_test,
                 "num_replicas": strategy.num_replicas_in_sync}})
    keras.utils.set_random_seed(config.seed)  # again: the initial weights must not depend on
    # what loading the data drew from the random streams
    checkpoint = EpochCheckpoint(working / "backup", restore_from=restore_from)
    with strategy.scope():
        model = build_model(config, splits.image_shape,
                            steps_per_epoch=math.ceil(splits.num_train / config.batch_size))
        initial_epoch = checkpoint.restore(model)
    guard = StopOnNonFiniteLoss()
    try:
        _fit_model(model, config, splits, working, initial_epoch, verbose, checkpoint,
                   [guard, *callbacks])
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as error:
        if not distribute.is_multi_worker(strategy):
            raise
        raise worker_lost(error, run_dir) from None
    if guard.failed_epoch is not None:
        model.save(working / "last_good.keras")
        raise TrainingDiverged(
            f"The loss became NaN or infinite in epoch {guard.failed_epoch}; the weights of "
            f"the last good epoch are in {partial_dir(run_dir) / 'last_good.keras'}. Lower "
            f"the learning rate and start again.")
    model.save(working / "model.keras")
    metrics = model.evaluate(splits.test, return_dict=True, verbose=0)
    if distribute.is_chief(strategy):
        replace_directory(working, run_dir)
        working = run_dir
    # Only now: until the run is in place, a kill must leave a checkpoint to resume from.
    shutil.rmtree(working / "backup", ignore_errors=True)
    return metrics
