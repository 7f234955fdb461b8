"""train.fit: a complete run folder, options that reach the model, a NaN loss stopping with
the last good weights, closing figures equal to kvae evaluate's, data found from anywhere.
(The resume rules and the folder's safety: test_lifecycle.py; callbacks: test_callbacks.py.)"""

import json
import os

import keras
import numpy as np
import pytest

from keras_vae import runs, train
from keras_vae import schedules as kv_schedules
from keras_vae.errors import TrainingDiverged
from tests.helpers import csv_rows as _rows, tiny_train_config


_config = tiny_train_config


def test_fit_writes_a_complete_run_and_returns_test_metrics(idx_folder, tmp_path):
    run = tmp_path / "run"
    metrics = train.fit(_config(idx_folder), run, verbose=0)
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "history.csv",
                                                      "latent_history.csv", "logs", "model.keras"]
    assert [int(r["epoch"]) for r in _rows(run / "history.csv")] == [0, 1]
    assert {"loss", "elbo", "reconstruction", "kl", "val_elbo"} <= set(
        _rows(run / "history.csv")[0])
    record = json.loads((run / "config.json").read_text())
    assert train.TrainConfig.from_json(record["train"]) == _config(idx_folder)
    assert record["data"]["num_train"] + record["data"]["num_validation"] == 60
    np.testing.assert_allclose(metrics["loss"], -metrics["elbo"], rtol=1e-6)
    assert not runs.partial_dir(run).exists()


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
    with pytest.raises(TrainingDiverged, match="NaN or infinite in epoch 2; the weights "
                                                     "of the last good epoch are in"):
        train.fit(_config(idx_folder, epochs=3), run, verbose=0, callbacks=[poison])
    assert not run.exists()
    kept = keras.models.load_model(runs.partial_dir(run) / "last_good.keras")
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
    ("likelihood", "gamma", "Unknown likelihood 'gamma'"),
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


def test_fit_closing_figures_are_those_of_kvae_evaluate(idx_folder, tmp_path):
    """One model, one evaluation: fit's summary and ``kvae evaluate`` (seed 0, no importance
    sampling) give the same test ELBO, not two figures from two noise streams."""
    run = tmp_path / "run"
    summary = train.fit(_config(idx_folder), run, verbose=0)
    evaluated, num_examples = runs.evaluate_run(runs.load_run(run))
    assert num_examples == summary["num_examples"] == 20
    for name in ("elbo", "reconstruction", "kl", "loss", "elbo_stderr"):
        np.testing.assert_allclose(summary[name], evaluated[name], rtol=1e-6, err_msg=name)
    assert summary["seed"] == evaluated["seed"] == 0
    assert all(not isinstance(value, list) for value in summary.values())  # scalars to print


def test_config_json_locates_the_data_from_any_working_directory(idx_folder, tmp_path,
                                                                 monkeypatch):
    monkeypatch.chdir(idx_folder.parent)
    config = _config(os.path.relpath(idx_folder), epochs=1)  # as a user types it: "idx"
    assert config.data_dir == "idx"
    train.fit(config, "run", verbose=0)
    recorded = json.loads((tmp_path / "run" / runs.CONFIG).read_text())["train"]["data_dir"]
    assert recorded == str(idx_folder.resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    metrics, count = runs.evaluate_run(runs.load_run(tmp_path / "run"))
    assert count == 20 and np.isfinite(metrics["elbo"])

