"""kvae fit interrupted by Ctrl-C and then by SIGKILL, resumed with --resume: every epoch
once, a model that loads. (Its own file, so that pytest-xdist can run it beside the rest.)"""

import csv
import os
import signal
import subprocess
import sys
import time

import keras
import pytest

from tests.helpers import write_idx_folder


def _history_epochs(path):
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def _start(arguments, cwd):
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "keras_vae.cli", *map(str, arguments)],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=environment)


def _interrupt_after_epochs(process, history, num_epochs, send, timeout=300):
    """Waits until ``history`` holds ``num_epochs`` rows, then sends ``send`` to the process."""
    deadline = time.monotonic() + timeout
    try:
        while len(_history_epochs(history)) < num_epochs:
            if process.poll() is not None:
                pytest.fail(f"kvae ended before it could be interrupted: "
                            f"{process.communicate()[1][-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("kvae did not complete an epoch in time")
            time.sleep(0.1)
        process.send_signal(send)
        return process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.integration
def test_ctrl_c_then_sigkill_then_resume_completes_every_epoch_once(idx_folder, tmp_path):
    run = tmp_path / "run"
    partial = tmp_path / "run.partial"
    # 400 examples in batches of 2: a few seconds an epoch, long enough to interrupt.
    write_idx_folder(idx_folder, num_train=400, num_test=20, size=8)
    arguments = ["fit", "--dataset", "custom", "--data-dir", idx_folder, "--hidden-units",
                 "16", "--latent-dim", "2", "--batch-size", "2", "--epochs", "4",
                 "--output", run]

    _, err = _interrupt_after_epochs(_start(arguments, tmp_path), partial / "history.csv", 1,
                                     signal.SIGINT)
    assert "Error: Interrupted." in err and "--resume" in err and "Traceback" not in err
    # Resumable: the partial run keeps its config (and a checkpoint, unless the signal came
    # between the history row and the checkpoint of epoch 0; then that epoch is repeated).
    assert not run.exists() and (partial / "config.json").exists()

    done = len(_history_epochs(partial / "history.csv"))
    _interrupt_after_epochs(_start([*arguments, "--resume"], tmp_path),
                            partial / "history.csv", done + 1, signal.SIGKILL)
    assert not run.exists()

    finished = subprocess.run([sys.executable, "-m", "keras_vae.cli", *map(str, arguments),
                               "--resume"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert _history_epochs(run / "history.csv") == [0, 1, 2, 3]
    assert not partial.exists() and not (run / "backup").exists()
    keras.models.load_model(run / "model.keras")



@pytest.mark.integration
def test_a_second_fit_on_a_run_in_training_refuses_at_once_and_changes_nothing(idx_folder,
                                                                              tmp_path):
    run, partial = tmp_path / "run", tmp_path / "run.partial"
    write_idx_folder(idx_folder, num_train=400, num_test=20, size=8)
    arguments = ["fit", "--dataset", "custom", "--data-dir", idx_folder, "--hidden-units",
                 "16", "--latent-dim", "2", "--batch-size", "2", "--epochs", "100",
                 "--output", run]
    first = subprocess.Popen([sys.executable, "-m", "keras_vae.cli", *map(str, arguments)],
                             cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 300
        while not _history_epochs(partial / "history.csv"):
            assert first.poll() is None, first.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "kvae did not complete an epoch in time"
            time.sleep(0.1)
        for flag in ("--overwrite", "--resume"):
            second = subprocess.run([sys.executable, "-m", "keras_vae.cli",
                                     *map(str, arguments), flag], cwd=tmp_path,
                                    capture_output=True, text=True, timeout=300)
            assert second.returncode == 1, second.stderr[-2000:]
            errors = [line for line in second.stderr.splitlines() if line.startswith("Error:")]
            assert len(errors) == 1 and "Traceback" not in second.stderr
            assert f"is being written by another kvae fit (process {first.pid})" in errors[0]
        assert first.poll() is None  # the first run trains on, untouched
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
        assert "Error: Interrupted." in err, (first.returncode, err[-2000:])
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    epochs = _history_epochs(partial / "history.csv")
    assert epochs == list(range(len(epochs))) and not run.exists()
    assert not (tmp_path / ".run.kvae-lock").exists()
