"""The life of a run folder while it trains: the lock, where training writes, the resume rules,
and what may be replaced.

A run is written to ``<run_dir>.partial/`` while it trains and renamed to ``run_dir`` only
when complete, so ``run_dir`` always holds either nothing or a finished run, and an existing
run is replaced (with ``overwrite``) only once its successor is complete. A crash or Ctrl-C
leaves the ``.partial`` folder with a checkpoint of the last completed epoch (weights,
optimizer state and the model's noise stream, see ``EpochCheckpoint``); ``resume`` continues
from it. One ``kvae fit`` at a time writes a run (``locked``), and only what is a run may be
replaced: never a file, a user's folder, or a protected model (``runs.check_not_protected``).
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import pathlib
import shutil

from keras_vae import runs
from keras_vae.callbacks import EpochCheckpoint, HistoryWriter
from keras_vae.config import TrainConfig
from keras_vae.errors import RunError
from keras_vae.files import staged_directory

# Options a resumed run may change: where it runs, where its data are and whether it writes
# TensorBoard logs, not what it computes (the dataset's name is compared).
RESUMABLE_CHANGES = ("strategy", "data_dir", "tensorboard")
# What a continued run keeps of the complete run it continues: its record and its data.
# metrics.json, per_example.csv and exports describe the old weights, so they are left out.
CARRIED_OVER = (runs.CONFIG, runs.HISTORY, runs.LATENT_HISTORY, runs.LOGS, runs.TEST_EXAMPLES)


def with_absolute_data_dir(config):
    """``config`` with its ``data_dir`` made absolute (from the working directory), so that
    the run's config.json finds the data from any folder."""
    if config.data_dir is None:
        return config
    return dataclasses.replace(config, data_dir=str(pathlib.Path(config.data_dir).resolve()))


@contextlib.contextmanager
def locked(run_dir):
    """Holds the lock of ``run_dir`` (``runs.lock_path``) for the block; RunError at once if
    another process holds it. An flock on an open file: the system releases it when the
    process dies, however it dies, so a killed run never leaves a stale lock."""
    path = runs.lock_path(run_dir)
    made = [folder for folder in path.parents if not folder.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 200).decode(errors="replace").strip()
            os.close(descriptor)
            raise RunError(f"{run_dir} is being written by another kvae fit ({holder}); wait "
                           f"for it to end, or choose another --output.") from None
        try:  # the file we locked must still be the one at ``path`` (see the finally below)
            if os.stat(path).st_ino == os.fstat(descriptor).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(descriptor)
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"process {os.getpid()}".encode())
        yield
    finally:
        # Unlinked while still held: a process that opened it meanwhile sees another inode
        # once it gets the lock, and tries again with a fresh file.
        path.unlink(missing_ok=True)
        os.close(descriptor)
        for folder in made:  # innermost first; only those this call made, and only if empty
            with contextlib.suppress(OSError):
                folder.rmdir()


def check_target(run_dir, resume=False, overwrite=False, replace_protected=False):
    """RunError unless ``run_dir`` is absent or a run that may be replaced: never a file or a
    folder that is not a run, and a protected run only with ``replace_protected``."""
    run_dir = pathlib.Path(run_dir)
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise RunError(f"{run_dir} is a file, not a run folder; choose another --output.")
    if not runs.is_run(run_dir):
        raise RunError(f"{run_dir} exists and is not a run (it lacks {runs.CONFIG} or "
                       f"{runs.MODEL}); kvae fit replaces only runs. Choose another --output.")
    if resume or overwrite:
        runs.check_not_protected(run_dir, "replace", replace_protected)


def prepare_run_dir(config, run_dir, resume=False, overwrite=False, replace_protected=False):
    """Chooses where this run trains and checks that nothing is lost; returns that folder.

    - new run, ``run_dir`` absent: a fresh ``.partial`` folder;
    - ``resume``: the existing ``.partial`` folder, whose config must match (except the
      RESUMABLE_CHANGES, and the epoch count when nothing depends on it:
      ``_check_new_epochs``);
    - ``resume`` of a complete run with more ``epochs``: a ``.partial`` folder that continues
      it (``_continue_complete_run``); ``run_dir`` stays as it is until the longer run
      completes and replaces it;
    - ``run_dir`` exists: an error unless ``overwrite`` (the old run is replaced at the end),
      and always when it is not a run or is protected (``check_target``).
    """
    run_dir = pathlib.Path(run_dir)
    check_target(run_dir, resume, overwrite, replace_protected)
    working = runs.partial_dir(run_dir)
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
        if not working.is_dir() or not ((working / runs.CONFIG).exists()
                                        or not any(working.iterdir())):
            raise RunError(f"{working} is not an interrupted run (it has no {runs.CONFIG}); "
                           f"kvae fit does not delete it. Move it away, or choose another "
                           f"--output.")
        shutil.rmtree(working)
    working.mkdir(parents=True)
    return working


def _resume_point(config, run_dir):
    """What ``config`` resumes in ``run_dir``: "interrupted" (its ``.partial`` folder) or
    "complete" (the finished run, to train further); RunError when neither may be resumed
    with these options."""
    working = runs.partial_dir(run_dir)
    if (working / runs.CONFIG).exists():
        _check_resumable(config, working,
                         EpochCheckpoint(working / runs.BACKUP).epochs_done())
        return "interrupted"
    if working.exists():  # made by a run killed before it wrote anything
        raise RunError(f"{working} holds no run (it has no {runs.CONFIG}); delete it and run "
                       f"the command again.")
    if (run_dir / runs.MODEL).exists():
        _check_resumable(config, run_dir, epochs_trained(run_dir), complete=True)
        return "complete"
    raise RunError(f"No interrupted run to resume at {working}; start one without --resume.")


def epochs_trained(run_dir):
    """The epochs a complete run trained: the rows of its history.csv."""
    path = pathlib.Path(run_dir) / runs.HISTORY
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
        json.loads((folder / runs.CONFIG).read_text())["train"]).to_json()
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
        EpochCheckpoint(staging / runs.BACKUP).adopt(run_dir / runs.MODEL,
                                                     epochs_trained(run_dir))
    return working


def worker_restore_point(config, run_dir, working):
    """Where a worker other than the chief finds the checkpoint to resume from, after the
    chief's checks: the chief's ``.partial/backup``, or, when the chief is only now making
    that folder to continue a complete run, the same checkpoint taken from the complete run
    itself (``working/continued``)."""
    partial = runs.partial_dir(run_dir)
    if not (partial / runs.CONFIG).exists() and not (run_dir / runs.MODEL).exists():
        raise RunError(f"This worker cannot see the interrupted run {partial}; a multi-worker "
                       f"--resume needs --output on storage every worker can read (NFS, a "
                       f"shared disk).")
    if _resume_point(config, run_dir) == "interrupted":
        return partial / runs.BACKUP
    EpochCheckpoint(working / "continued").adopt(run_dir / runs.MODEL,
                                                 epochs_trained(run_dir))
    return working / "continued"


def interrupted_message(run_dir):
    """What to tell a user whose ``kvae fit`` was interrupted (Ctrl-C): what was saved, if
    anything, and how to go on. Before training started (loading data, waiting for the other
    workers) nothing of this run exists yet, and --resume would fail."""
    working = runs.partial_dir(run_dir)
    resume = f"continue with the same command plus --resume --output {run_dir}."
    if not (working / runs.CONFIG).exists():
        return "Interrupted before training started; nothing was written."
    done = EpochCheckpoint(working / runs.BACKUP).epochs_done()
    if done == 0:
        return f"Interrupted. No epoch is saved yet in {working}; {resume}"
    return (f"Interrupted. The last completed epoch ({done}) is saved in {working}; "
            f"{resume}")
