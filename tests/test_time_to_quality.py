"""benchmarks/time_to_quality.py: a snapshot of a run's checkpoint evaluates exactly as
``kvae evaluate`` evaluates the run those weights became, and its row carries the CPU time."""

import importlib
import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np

from keras_vae import run_reports, runs, train
from tests.helpers import tiny_train_config

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


class _KeepCheckpoints:
    """Copies each epoch's checkpoint out of RUN.partial/backup as it is written, as the
    snapshot watcher of the issue-24 run does."""

    def __init__(self, run, into):
        import keras

        class Copy(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                name = f"epoch-{epoch + 1:06d}"
                shutil.copytree(runs.partial_dir(run) / runs.BACKUP / name, into / name)
                shutil.copy(runs.partial_dir(run) / runs.CONFIG, into / name)
                (into / name / "times.json").write_text(
                    json.dumps({"tiny/train": [1.0, 3600.0 * (epoch + 1)]}))

        self.callback = Copy()


def test_a_snapshot_evaluates_as_kvae_evaluate_evaluates_the_run(idx_folder, tmp_path,
                                                                  monkeypatch):
    run, snapshots = tmp_path / "run", tmp_path / "snapshots"
    snapshots.mkdir()
    config = tiny_train_config(idx_folder, epochs=2, tensorboard=False)
    train.fit(config, run, verbose=0, callbacks=[_KeepCheckpoints(run, snapshots).callback])
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    time_to_quality = importlib.import_module("time_to_quality")

    last = time_to_quality.evaluate_snapshot(snapshots / "epoch-000002", iw_samples=7)
    expected, _ = run_reports.evaluate_run(runs.load_run(run), iw_samples=7)
    assert last["epochs"] == 2
    for name in ("elbo", "log_likelihood", "log_likelihood_stderr", "kl"):
        np.testing.assert_allclose(last[name], expected[name], rtol=1e-6, err_msg=name)
    first = time_to_quality.evaluate_snapshot(snapshots / "epoch-000001", iw_samples=7)
    assert first["epochs"] == 1 and first["log_likelihood"] != last["log_likelihood"]
    assert json.loads((snapshots / "epoch-000001" / "metrics.json").read_text())[
        "log_likelihood"] == first["log_likelihood"]
    assert time_to_quality.training_cpu_seconds(snapshots / "epoch-000002", "tiny/train") == 7200


def test_the_command_prints_one_row_per_snapshot_in_epoch_order(idx_folder, tmp_path):
    run, snapshots = tmp_path / "run", tmp_path / "snapshots"
    snapshots.mkdir()
    config = tiny_train_config(idx_folder, epochs=2, tensorboard=False)
    train.fit(config, run, verbose=0, callbacks=[_KeepCheckpoints(run, snapshots).callback])
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "time_to_quality.py"), "--key", "tiny/train",
         "--iw-samples", "3", str(snapshots / "epoch-000002"), str(snapshots / "epoch-000001")],
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows[1:]] == ["1", "2"]
    assert [row.split("|")[2].strip() for row in rows[1:]] == ["1.00", "2.00"]


def test_a_folder_that_is_not_a_snapshot_is_one_line_and_untouched(tmp_path):
    folder = tmp_path / "epoch-000003"
    folder.mkdir()
    (folder / "state.json").write_text('{"epochs_done": 3}')
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "time_to_quality.py"), "--key", "x", str(folder)],
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines()[-1].startswith(
        f"{folder} is not a snapshot: it needs config.json")
    assert sorted(p.name for p in folder.iterdir()) == ["state.json"]
