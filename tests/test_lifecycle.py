"""The life of a run folder (lifecycle.py): the resume rules, training a complete run
further, the lock, and what may be replaced (never a file, a user's folder or a protected
model)."""

import json

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
