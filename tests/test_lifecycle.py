"""The life of a run folder (lifecycle.py): the resume rules, training a complete run
further, the lock, and what may be replaced (never a file, a user's folder or a protected
model)."""

import json
import os

import keras
import numpy as np
import pytest

from keras_vae import lifecycle, runs, train
from keras_vae.errors import RunError
from keras_vae.callbacks import EpochCheckpoint
from keras_vae.files import write_json_atomically
from tests.helpers import csv_rows as _rows, interrupt_after_epoch, tiny_train_config


_config = tiny_train_config


def test_resume_needs_an_interrupted_run_with_the_same_options(idx_folder, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(RunError, match="No interrupted run to resume"):
        lifecycle.prepare_run_dir(_config(idx_folder), run, resume=True)
    working = lifecycle.prepare_run_dir(_config(idx_folder), run)
    write_json_atomically(working / "config.json",
                                {"train": _config(idx_folder).to_json()})
    with pytest.raises(RunError, match="these differ: latent_dim"):
        lifecycle.prepare_run_dir(_config(idx_folder, latent_dim=3), run, resume=True)
    assert lifecycle.prepare_run_dir(_config(idx_folder), run, resume=True) == working
    with pytest.raises(RunError, match="An interrupted run exists"):
        lifecycle.prepare_run_dir(_config(idx_folder), run)


def test_a_complete_run_is_resumed_only_to_train_it_further(idx_folder, tmp_path):
    run = tmp_path / "run"
    burda = dict(learning_rate_schedule="burda")
    train.fit(_config(idx_folder, epochs=1, **burda), run, verbose=0)
    with pytest.raises(RunError, match="already a complete run of 1 epoch; nothing to "
                                             "resume. Pass --epochs above 1"):
        train.fit(_config(idx_folder, epochs=1, **burda), run, resume=True, verbose=0)
    with pytest.raises(RunError, match="same options as the complete run; these "
                                             "differ: epochs, latent_dim"):
        train.fit(_config(idx_folder, epochs=3, latent_dim=3, **burda), run, resume=True,
                  verbose=0)
    with pytest.raises(RunError, match="already exists; pass --resume with a larger "
                                             "--epochs to train it further"):
        train.fit(_config(idx_folder, epochs=3, **burda), run, verbose=0)
    assert not runs.partial_dir(run).exists()  # a refusal leaves nothing behind
    # A folder left by a run killed before it wrote anything is named, not trusted.
    runs.partial_dir(run).mkdir()
    with pytest.raises(RunError, match="run.partial holds no run .*delete it"):
        train.fit(_config(idx_folder, epochs=3, **burda), run, resume=True, verbose=0)

    cosine = tmp_path / "cosine"
    train.fit(_config(idx_folder, epochs=1), cosine, verbose=0)
    for epochs in (1, 3):  # the cosine refusal comes first: more epochs would not help
        with pytest.raises(RunError, match="cosine learning-rate schedule, which cannot "
                                                 "be trained further .*over its 1 epoch\\)"):
            train.fit(_config(idx_folder, epochs=epochs), cosine, resume=True, verbose=0)
    with pytest.raises(RunError, match="already exists; pass --overwrite"):
        train.fit(_config(idx_folder, epochs=3), cosine, verbose=0)


class _RecordStartingWeights(keras.callbacks.Callback):
    """The weights and optimizer step count at the start of training."""

    def on_train_begin(self, logs=None):
        self.weights = [w.copy() for w in self.model.get_weights()]
        self.optimizer = [np.array(v) for v in self.model.optimizer.variables]


def test_a_complete_run_trains_further_from_its_weights_and_optimizer_state(idx_folder,
                                                                            tmp_path):
    run = tmp_path / "run"
    train.fit(_config(idx_folder, epochs=2, learning_rate_schedule="burda"), run, verbose=0)
    (run / "metrics.json").write_text("{}")  # describes the 2-epoch weights: not carried over
    (run / "test_examples.npz").write_bytes(b"the run's data")  # carried over
    before = keras.models.load_model(run / "model.keras")
    model_bytes = (run / "model.keras").read_bytes()
    rows_before = _rows(run / "history.csv")

    # Interrupted after its first new epoch: the complete run stays as it was, and the
    # longer run is resumable.
    longer = _config(idx_folder, epochs=4, learning_rate_schedule="burda")
    start = _RecordStartingWeights()
    with pytest.raises(KeyboardInterrupt):
        train.fit(longer, run, resume=True, verbose=0,
                  callbacks=[start, interrupt_after_epoch(2)])
    # It started from the complete run's weights (the noise seed among them) and Adam state.
    for restored, saved in zip(start.weights, before.get_weights()):
        np.testing.assert_array_equal(restored, saved)
    assert len(start.optimizer) == len(before.optimizer.variables)
    for restored, saved in zip(start.optimizer, before.optimizer.variables):
        np.testing.assert_array_equal(restored, np.array(saved))  # moments, step count
    assert int(before.optimizer.iterations.numpy()) == 2 * 6  # 55 training images, batch 10
    assert (run / "model.keras").read_bytes() == model_bytes
    assert len(_rows(run / "history.csv")) == 2 and (run / "metrics.json").exists()
    assert [int(r["epoch"]) for r in _rows(runs.partial_dir(run) / "history.csv")] == [0, 1, 2]

    train.fit(longer, run, resume=True, verbose=0)
    rows = _rows(run / "history.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3] and rows[:2] == rows_before
    assert train.TrainConfig.from_json(
        json.loads((run / "config.json").read_text())["train"]) == longer
    assert int(keras.models.load_model(run / "model.keras").optimizer.iterations.numpy()) \
        == 4 * 6
    assert not (run / "metrics.json").exists()
    assert (run / "test_examples.npz").read_bytes() == b"the run's data"
    assert not runs.partial_dir(run).exists()



def _interrupted_after_two_epochs(config, run):
    with pytest.raises(KeyboardInterrupt):
        train.fit(config, run, verbose=0, callbacks=[interrupt_after_epoch(1)])
    assert [int(r["epoch"]) for r in _rows(runs.partial_dir(run) / "history.csv")] == [0, 1]


@pytest.mark.parametrize("schedule", ["burda", "constant"])
def test_a_resume_can_train_an_interrupted_run_longer(schedule, idx_folder, tmp_path):
    run = tmp_path / "run"
    _interrupted_after_two_epochs(_config(idx_folder, epochs=3, learning_rate_schedule=schedule),
                                  run)
    longer = _config(idx_folder, epochs=5, learning_rate_schedule=schedule)
    train.fit(longer, run, resume=True, verbose=0)
    assert [int(r["epoch"]) for r in _rows(run / "history.csv")] == [0, 1, 2, 3, 4]
    record = json.loads((run / "config.json").read_text())["train"]
    assert train.TrainConfig.from_json(record) == longer
    model = keras.models.load_model(run / "model.keras")
    assert int(model.optimizer.iterations.numpy()) == 5 * 6  # 55 training images, batch 10


def test_a_resume_cannot_change_the_epochs_below_those_done_or_under_cosine(idx_folder,
                                                                          tmp_path):
    run = tmp_path / "run"
    _interrupted_after_two_epochs(_config(idx_folder, epochs=4, learning_rate_schedule="burda"),
                                  run)
    with pytest.raises(RunError, match="already trained 2 epochs; resume with --epochs 2"):
        train.fit(_config(idx_folder, epochs=1, learning_rate_schedule="burda"), run,
                  resume=True, verbose=0)
    with pytest.raises(RunError, match="these differ: epochs, latent_dim"):
        train.fit(_config(idx_folder, epochs=6, latent_dim=3, learning_rate_schedule="burda"),
                  run, resume=True, verbose=0)
    cosine_run = tmp_path / "cosine"
    _interrupted_after_two_epochs(_config(idx_folder, epochs=4,
                                          learning_rate_schedule="cosine"), cosine_run)
    with pytest.raises(RunError, match="cannot change on --resume with the cosine "
                                             "learning-rate schedule.*--epochs 4"):
        train.fit(_config(idx_folder, epochs=6, learning_rate_schedule="cosine"), cosine_run,
                  resume=True, verbose=0)


def test_other_workers_restore_what_the_chief_resumes(idx_folder, tmp_path):
    run, scratch = tmp_path / "run", tmp_path / "worker"
    longer = _config(idx_folder, epochs=3, learning_rate_schedule="burda")
    with pytest.raises(RunError, match="cannot see the interrupted run"):
        lifecycle.worker_restore_point(longer, run, scratch)
    train.fit(_config(idx_folder, epochs=2, learning_rate_schedule="burda"), run, verbose=0)
    # Before the chief has made run.partial: the complete run's own model, as epoch 2.
    point = lifecycle.worker_restore_point(longer, run, scratch)
    checkpoint = EpochCheckpoint(point)
    assert checkpoint.epochs_done() == 2
    assert (checkpoint.latest() / "model.keras").read_bytes() == \
        (run / "model.keras").read_bytes()
    # The worker makes the chief's checks: options that the chief refuses stop it too.
    with pytest.raises(RunError, match="these differ: epochs, latent_dim"):
        lifecycle.worker_restore_point(_config(idx_folder, epochs=3, latent_dim=3,
                                            learning_rate_schedule="burda"), run, scratch)
    # After: the chief's run.partial/backup.
    lifecycle.prepare_run_dir(longer, run, resume=True)
    assert lifecycle.worker_restore_point(longer, run, scratch) == \
        runs.partial_dir(run) / "backup"


# ---------------------------------------------------------------- what may be replaced


def _listing(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_overwrite_refuses_a_folder_that_is_not_a_run_and_deletes_nothing(idx_folder,
                                                                         tmp_path):
    mine = tmp_path / "thesis"
    (mine / "chapter").mkdir(parents=True)
    (mine / "chapter" / "draft.tex").write_text("months of work")
    before = _listing(tmp_path)
    for options in (dict(overwrite=True), dict(resume=True), {}):
        with pytest.raises(RunError, match="thesis exists and is not a run .*replaces only "
                                           "runs"):
            train.fit(_config(idx_folder), mine, verbose=0, **options)
    assert _listing(tmp_path) == before
    assert (mine / "chapter" / "draft.tex").read_text() == "months of work"


def test_overwrite_refuses_a_file_before_renaming_or_training_anything(idx_folder, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    before = _listing(tmp_path)
    with pytest.raises(RunError, match="notes.txt is a file, not a run folder"):
        train.fit(_config(idx_folder), target, overwrite=True, verbose=0)
    assert _listing(tmp_path) == before and target.read_text() == "keep me"


def test_overwrite_deletes_a_partial_folder_only_when_it_is_an_interrupted_run(idx_folder,
                                                                              tmp_path):
    run = tmp_path / "run"
    partial = runs.partial_dir(run)
    partial.mkdir()
    (partial / "photo.jpg").write_bytes(b"a user's file under our naming")
    with pytest.raises(RunError, match="run.partial is not an interrupted run .*does not "
                                       "delete it"):
        train.fit(_config(idx_folder), run, overwrite=True, verbose=0)
    assert (partial / "photo.jpg").read_bytes() == b"a user's file under our naming"
    (partial / "photo.jpg").unlink()  # an empty one, left by a run killed at its start, goes
    train.fit(_config(idx_folder, epochs=1), run, overwrite=True, verbose=0)
    assert runs.is_run(run) and not partial.exists()


def test_a_protected_run_is_replaced_or_resumed_only_when_asked(idx_folder, tmp_path):
    run = tmp_path / "shipped"
    burda = dict(learning_rate_schedule="burda")
    train.fit(_config(idx_folder, epochs=1, **burda), run, verbose=0)
    runs.publish(run)
    model_bytes = (run / runs.MODEL).read_bytes()
    for options in (dict(overwrite=True), dict(resume=True)):
        with pytest.raises(RunError, match="shipped is a protected model folder .*pass "
                                           "--replace-protected"):
            train.fit(_config(idx_folder, epochs=2, **burda), run, verbose=0, **options)
    assert (run / runs.MODEL).read_bytes() == model_bytes
    assert not runs.partial_dir(run).exists()
    # Asked explicitly: the new run replaces it, and is an ordinary run (no marker).
    train.fit(_config(idx_folder, epochs=2, **burda), run, resume=True, verbose=0,
              replace_protected=True)
    assert lifecycle.epochs_trained(run) == 2 and runs.protected_folder(run) is None


# ---------------------------------------------------------------- one writer at a time


def test_a_second_fit_on_a_run_in_use_refuses_at_once_and_changes_nothing(idx_folder,
                                                                         tmp_path):
    run = tmp_path / "run"
    train.fit(_config(idx_folder, epochs=1), run, verbose=0)
    model_bytes = (run / runs.MODEL).read_bytes()
    with lifecycle.locked(run):  # another kvae fit is writing it
        for options in (dict(overwrite=True), dict(resume=True, epochs=2)):
            epochs = options.pop("epochs", 1)
            with pytest.raises(RunError, match=f"run is being written by another kvae fit "
                                               f"\\(process {os.getpid()}\\); wait"):
                train.fit(_config(idx_folder, epochs=epochs, learning_rate_schedule="burda"),
                          run, verbose=0, **options)
        assert not runs.partial_dir(run).exists()
        assert (run / runs.MODEL).read_bytes() == model_bytes
    assert not runs.lock_path(run).exists()  # released and removed
    train.fit(_config(idx_folder, epochs=1), run, overwrite=True, verbose=0)


def test_the_lock_makes_no_folder_it_leaves_behind(tmp_path):
    run = tmp_path / "new" / "deeper" / "run"
    with lifecycle.locked(run):
        assert runs.lock_path(run).exists()
    assert not (tmp_path / "new").exists()


def test_the_interrupt_message_says_what_was_saved(idx_folder, tmp_path):
    """Ctrl-C before training started offers no --resume (there is nothing to resume); during
    the first epoch it says no epoch is saved yet; later it names the last saved epoch."""
    import keras_vae as kv

    run = tmp_path / "run"
    assert lifecycle.interrupted_message(run) == \
        "Interrupted before training started; nothing was written."
    working = runs.partial_dir(run)
    working.mkdir()
    (working / runs.CONFIG).write_text("{}")
    assert lifecycle.interrupted_message(run).startswith(
        f"Interrupted. No epoch is saved yet in {working}; continue with")
    assert f"--resume --output {run}" in lifecycle.interrupted_message(run)
    model_file = tmp_path / "tiny.keras"
    kv.VAE(input_shape=(6, 6, 1), latent_dim=2, hidden_units=(8,)).save(model_file)
    EpochCheckpoint(working / runs.BACKUP).adopt(model_file, 3)
    assert lifecycle.interrupted_message(run).startswith(
        f"Interrupted. The last completed epoch (3) is saved in {working}; continue with the "
        f"same command plus --resume --output {run}.")
