"""train.fit and its run directory: atomic completion, resume rules, history written once per
epoch, a NaN loss stopping with the last good weights."""

import json

import keras
import numpy as np
import pytest

from keras_vae import schedules as kv_schedules
from keras_vae import train
from tests.helpers import csv_rows as _rows, interrupt_after_epoch, tiny_train_config


_config = tiny_train_config


def test_fit_writes_a_complete_run_and_returns_test_metrics(idx_folder, tmp_path):
    run = tmp_path / "run"
    metrics = train.fit(_config(idx_folder), run, verbose=0)
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "history.csv", "logs",
                                                      "model.keras"]
    assert [int(r["epoch"]) for r in _rows(run / "history.csv")] == [0, 1]
    assert {"loss", "elbo", "reconstruction", "kl", "val_elbo"} <= set(
        _rows(run / "history.csv")[0])
    record = json.loads((run / "config.json").read_text())
    assert train.TrainConfig.from_json(record["train"]) == _config(idx_folder)
    assert record["data"]["num_train"] + record["data"]["num_validation"] == 60
    np.testing.assert_allclose(metrics["loss"], -metrics["elbo"], rtol=1e-6)
    assert not train.partial_dir(run).exists()


def test_objective_and_warmup_options_reach_the_model_config_and_history(idx_folder,
                                                                         tmp_path):
    config = _config(idx_folder, epochs=3, objective="iwae", iw_samples=3, kl_weight=2.0,
                     kl_warmup="linear", kl_warmup_length=2)
    train.fit(config, tmp_path / "run", verbose=0)
    record = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert {k: record[k] for k in ("objective", "iw_samples", "kl_warmup", "kl_warmup_length",
                                   "kl_warmup_unit", "free_bits")} == {
        "objective": "iwae", "iw_samples": 3, "kl_warmup": "linear", "kl_warmup_length": 2,
        "kl_warmup_unit": "epochs", "free_bits": 0.0}
    rows = _rows(tmp_path / "run" / "history.csv")
    np.testing.assert_allclose([float(r["kl_weight"]) for r in rows], [0.0, 1.0, 2.0])
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert (model.objective, model.iw_samples, model.kl_weight) == ("iwae", 3, 2.0)


def test_burda_stages_follow_their_formula():
    schedule = kv_schedules.BurdaStages(1e-3, steps_per_epoch=10)
    # stage i starts at epoch (3^i - 1) / 2 and runs at 1e-3 * 10^(-i/7)
    for epoch, stage in ((0, 0), (1, 1), (3, 1), (4, 2), (12, 2), (13, 3), (40, 4), (120, 4),
                         (121, 5), (1092, 6), (1093, 7), (3279, 7)):
        np.testing.assert_allclose(float(schedule(epoch * 10 + 9)), 1e-3 * 10 ** (-stage / 7),
                                   rtol=1e-6)
    assert sum(3**i for i in range(5)) == 121 and sum(3**i for i in range(8)) == 3280


def test_history_writer_keeps_each_epoch_once_across_a_resume(tmp_path):
    path = tmp_path / "history.csv"
    writer = train.HistoryWriter(path)
    writer.on_train_begin()
    for epoch in range(3):  # epochs 0-2 written; suppose only 0-1 were checkpointed
        writer.on_epoch_end(epoch, {"loss": float(epoch)})
    # Resumed with no epoch left to train (--epochs 2): the unrecorded row still goes.
    train.HistoryWriter(path, initial_epoch=2).on_train_begin()
    assert [int(r["epoch"]) for r in _rows(path)] == [0, 1]
    resumed = train.HistoryWriter(path, initial_epoch=2)
    resumed.on_train_begin()
    for epoch in (2, 3):
        resumed.on_epoch_end(epoch, {"loss": 10.0 + epoch})
    assert [(int(r["epoch"]), float(r["loss"])) for r in _rows(path)] == [
        (0, 0.0), (1, 1.0), (2, 12.0), (3, 13.0)]


def test_resume_needs_an_interrupted_run_with_the_same_options(idx_folder, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(train.RunError, match="No interrupted run to resume"):
        train.prepare_run_dir(_config(idx_folder), run, resume=True)
    working = train.prepare_run_dir(_config(idx_folder), run)
    train.write_json_atomically(working / "config.json",
                                {"train": _config(idx_folder).to_json()})
    with pytest.raises(train.RunError, match="these differ: latent_dim"):
        train.prepare_run_dir(_config(idx_folder, latent_dim=3), run, resume=True)
    assert train.prepare_run_dir(_config(idx_folder), run, resume=True) == working
    with pytest.raises(train.RunError, match="An interrupted run exists"):
        train.prepare_run_dir(_config(idx_folder), run)


def test_a_complete_run_is_resumed_only_to_train_it_further(idx_folder, tmp_path):
    run = tmp_path / "run"
    burda = dict(learning_rate_schedule="burda")
    train.fit(_config(idx_folder, epochs=1, **burda), run, verbose=0)
    with pytest.raises(train.RunError, match="already a complete run of 1 epoch; nothing to "
                                             "resume. Pass --epochs above 1"):
        train.fit(_config(idx_folder, epochs=1, **burda), run, resume=True, verbose=0)
    with pytest.raises(train.RunError, match="same options as the complete run; these "
                                             "differ: epochs, latent_dim"):
        train.fit(_config(idx_folder, epochs=3, latent_dim=3, **burda), run, resume=True,
                  verbose=0)
    with pytest.raises(train.RunError, match="already exists; pass --resume with a larger "
                                             "--epochs to train it further"):
        train.fit(_config(idx_folder, epochs=3, **burda), run, verbose=0)
    assert not train.partial_dir(run).exists()  # a refusal leaves nothing behind
    # A folder left by a run killed before it wrote anything is named, not trusted.
    train.partial_dir(run).mkdir()
    with pytest.raises(train.RunError, match="run.partial holds no run .*delete it"):
        train.fit(_config(idx_folder, epochs=3, **burda), run, resume=True, verbose=0)

    cosine = tmp_path / "cosine"
    train.fit(_config(idx_folder, epochs=1), cosine, verbose=0)
    for epochs in (1, 3):  # the cosine refusal comes first: more epochs would not help
        with pytest.raises(train.RunError, match="cosine learning-rate schedule, which cannot "
                                                 "be trained further .*over its 1 epoch\\)"):
            train.fit(_config(idx_folder, epochs=epochs), cosine, resume=True, verbose=0)
    with pytest.raises(train.RunError, match="already exists; pass --overwrite"):
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
    assert [int(r["epoch"]) for r in _rows(train.partial_dir(run) / "history.csv")] == [0, 1, 2]

    train.fit(longer, run, resume=True, verbose=0)
    rows = _rows(run / "history.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3] and rows[:2] == rows_before
    assert train.TrainConfig.from_json(
        json.loads((run / "config.json").read_text())["train"]) == longer
    assert int(keras.models.load_model(run / "model.keras").optimizer.iterations.numpy()) \
        == 4 * 6
    assert not (run / "metrics.json").exists()
    assert (run / "test_examples.npz").read_bytes() == b"the run's data"
    assert not train.partial_dir(run).exists()


class _PoisonWeights(keras.callbacks.Callback):
    """Sets the encoder's head bias to NaN at the start of the given (0-based) epoch."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch
        self.good = None

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.good = [w.copy() for w in self.model.get_weights()]
            bias = self.model.encoder.head.bias
            bias.assign(np.full(bias.shape, np.nan, np.float32))


def test_nan_loss_stops_naming_the_epoch_and_keeps_the_last_good_weights(idx_folder, tmp_path):
    run = tmp_path / "run"
    poison = _PoisonWeights(epoch=1)
    with pytest.raises(train.TrainingDiverged, match="NaN or infinite in epoch 2; the weights "
                                                     "of the last good epoch are in"):
        train.fit(_config(idx_folder, epochs=3), run, verbose=0, callbacks=[poison])
    assert not run.exists()
    kept = keras.models.load_model(train.partial_dir(run) / "last_good.keras")
    weights = kept.get_weights()
    assert all(np.all(np.isfinite(w)) for w in weights)
    for saved, good in zip(weights, poison.good):
        if saved.dtype.kind == "f":
            np.testing.assert_array_equal(saved, good)


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, "epochs must be a positive integer; received 0"),
    ("batch_size", -5, "batch_size must be a positive integer; received -5"),
    ("learning_rate", 0.0, "learning_rate must be a positive finite number"),
    ("adam_epsilon", float("inf"), "adam_epsilon must be a positive finite number; received inf"),
    ("adam_epsilon", float("nan"), "adam_epsilon must be a positive finite number; received nan"),
    ("likelihood", "laplace", "Unknown likelihood 'laplace'"),
    ("learning_rate_schedule", "step", "Unknown learning_rate_schedule 'step'"),
    ("iw_samples", 0, "iw_samples must be a positive integer"),
    ("kl_warmup", "tanh", "Unknown kl_warmup 'tanh': expected one of"),
    ("free_bits", -1.0, "free_bits must be a non-negative finite number"),
    ("steps_per_execution", 0, "steps_per_execution must be a positive integer"),
])
def test_config_rejects_bad_values(field, value, message, idx_folder):
    with pytest.raises(ValueError, match=message):
        _config(idx_folder, **{field: value})


def test_cosine_schedule_follows_its_formula(idx_folder):
    config = _config(idx_folder, learning_rate=2e-3, epochs=4,
                     learning_rate_schedule="cosine")
    schedule = train.learning_rate(config, steps_per_epoch=25)  # T = 100 steps
    for step in (0, 10, 50, 75, 100, 120):
        expected = 2e-3 * (1 + np.cos(np.pi * min(step, 100) / 100)) / 2
        np.testing.assert_allclose(float(schedule(step)), expected, rtol=1e-5, atol=1e-10)
    assert train.learning_rate(_config(idx_folder, learning_rate_schedule="constant"), 25) == 1e-3
    assert train.TrainConfig().learning_rate_schedule == "cosine"  # kvae fit's recipe


def test_checkpoint_survives_a_kill_in_the_middle_of_writing(idx_folder, tmp_path):
    config = _config(idx_folder, learning_rate_schedule="cosine")
    splits = train.load_splits(config)
    model = train.build_model(config, splits.image_shape, steps_per_epoch=6)
    checkpoint = train.EpochCheckpoint(tmp_path / "backup")
    model.fit(splits.train, epochs=2, verbose=0, callbacks=[checkpoint])
    saved_weights = [w.copy() for w in model.get_weights()]
    saved_optimizer = [np.array(v) for v in model.optimizer.variables]
    # A kill while epoch 3 was being written: its folder exists, its weights file is garbage,
    # its state.json was never written.
    broken = tmp_path / "backup" / "epoch-000003"
    broken.mkdir()
    (broken / "checkpoint.weights.h5").write_bytes(b"half a file")

    fresh = train.build_model(config, splits.image_shape, steps_per_epoch=6)
    assert checkpoint.restore(fresh) == 2
    for restored, saved in zip(fresh.get_weights(), saved_weights):
        np.testing.assert_array_equal(restored, saved)
    for restored, saved in zip(fresh.optimizer.variables, saved_optimizer):
        np.testing.assert_array_equal(np.array(restored), saved)  # Adam moments, iterations
    assert int(fresh.optimizer.iterations.numpy()) == 2 * 6  # 55 training images, batches of 10
    # The cosine schedule continues where it stopped: it reads the restored step count.
    np.testing.assert_allclose(float(fresh.optimizer.learning_rate),
                               float(model.optimizer.learning_rate), rtol=1e-6)
    assert float(fresh.optimizer.learning_rate) < config.learning_rate


def _interrupted_after_two_epochs(config, run):
    with pytest.raises(KeyboardInterrupt):
        train.fit(config, run, verbose=0, callbacks=[interrupt_after_epoch(1)])
    assert [int(r["epoch"]) for r in _rows(train.partial_dir(run) / "history.csv")] == [0, 1]


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
    with pytest.raises(train.RunError, match="already trained 2 epochs; resume with --epochs 2"):
        train.fit(_config(idx_folder, epochs=1, learning_rate_schedule="burda"), run,
                  resume=True, verbose=0)
    with pytest.raises(train.RunError, match="these differ: epochs, latent_dim"):
        train.fit(_config(idx_folder, epochs=6, latent_dim=3, learning_rate_schedule="burda"),
                  run, resume=True, verbose=0)
    cosine_run = tmp_path / "cosine"
    _interrupted_after_two_epochs(_config(idx_folder, epochs=4,
                                          learning_rate_schedule="cosine"), cosine_run)
    with pytest.raises(train.RunError, match="cannot change on --resume with the cosine "
                                             "learning-rate schedule.*--epochs 4"):
        train.fit(_config(idx_folder, epochs=6, learning_rate_schedule="cosine"), cosine_run,
                  resume=True, verbose=0)


def test_other_workers_restore_what_the_chief_resumes(idx_folder, tmp_path):
    run, scratch = tmp_path / "run", tmp_path / "worker"
    longer = _config(idx_folder, epochs=3, learning_rate_schedule="burda")
    with pytest.raises(train.RunError, match="cannot see the interrupted run"):
        train._worker_restore_point(longer, run, scratch)
    train.fit(_config(idx_folder, epochs=2, learning_rate_schedule="burda"), run, verbose=0)
    # Before the chief has made run.partial: the complete run's own model, as epoch 2.
    point = train._worker_restore_point(longer, run, scratch)
    checkpoint = train.EpochCheckpoint(point)
    assert checkpoint.epochs_done() == 2
    assert (checkpoint.latest() / "model.keras").read_bytes() == \
        (run / "model.keras").read_bytes()
    # The worker makes the chief's checks: options that the chief refuses stop it too.
    with pytest.raises(train.RunError, match="these differ: epochs, latent_dim"):
        train._worker_restore_point(_config(idx_folder, epochs=3, latent_dim=3,
                                            learning_rate_schedule="burda"), run, scratch)
    # After: the chief's run.partial/backup.
    train.prepare_run_dir(longer, run, resume=True)
    assert train._worker_restore_point(longer, run, scratch) == \
        train.partial_dir(run) / "backup"
