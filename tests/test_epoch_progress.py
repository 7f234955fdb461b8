"""Progress off a terminal is one line per epoch (EpochProgress), and an interrupt message
starts on a line of its own, in a log and on a terminal."""

import io
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time

import keras
import numpy as np
import pytest

from keras_vae.callbacks.epoch_progress import (EpochProgress, end_progress_line,
                                                progress_for)
from tests.helpers import write_idx_folder
from tests.test_cli import _fit_arguments, run_kvae

EPOCH_LINE = re.compile(r"^Epoch (\d+)/(\d+): \d+\.\d s, (\w+ [-\d.e+]+)(, \w+ [-\d.e+]+)*"
                        r"(, active units \d+/\d+)?$")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_epoch_progress_writes_one_line_per_epoch():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    stream = io.StringIO()
    x = np.ones((40, 3), np.float32)
    model.fit(x, x[:, :1], batch_size=4, epochs=3, verbose=0, callbacks=[EpochProgress(stream)])
    lines = stream.getvalue().splitlines(keepends=True)
    assert len(lines) == 3 and all(line.endswith("\n") for line in lines)
    for number, line in enumerate(lines, start=1):
        match = EPOCH_LINE.match(line.rstrip("\n"))
        assert match and match.group(1, 2) == (str(number), "3"), line
        assert ", loss " in line


def test_progress_is_keras_bar_on_a_terminal_and_lines_elsewhere():
    assert progress_for(_Terminal()) == (1, [])
    verbose, callbacks = progress_for(io.StringIO())
    assert verbose == 0 and [type(c) for c in callbacks] == [EpochProgress]
    terminal, log = _Terminal(), io.StringIO()
    terminal.write("\r 5/200 ━━━ 1s - loss: 3.2")
    end_progress_line(terminal)
    end_progress_line(log)
    assert terminal.getvalue().endswith("\n") and log.getvalue() == ""


def test_kvae_fit_into_a_log_writes_one_line_per_epoch(monkeypatch, capsys, tmp_path):
    """Before: Keras' bar wrote every redraw (carriage returns, backspaces, colour codes) into
    the log, about 150 KB per MNIST epoch; now one line of about 160 bytes."""
    write_idx_folder(tmp_path, num_train=200, num_test=20, size=8)
    status, out, err = run_kvae(monkeypatch, capsys, *_fit_arguments(
        tmp_path, tmp_path / "run", "--epochs", "4"))
    assert status == 0, err
    epochs = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert [EPOCH_LINE.match(line).group(1) for line in epochs] == ["1", "2", "3", "4"]
    assert not re.search("[\r\b\x1b]", out)  # no redraws, no colour codes
    assert out.splitlines()[len(epochs)].startswith("Trained ")  # nothing else before
    assert len("".join(epochs)) < 4 * 400


def _fit_command(folder):
    write_idx_folder(folder, num_train=400, num_test=20, size=8)
    # 400 examples in batches of 2: a few seconds an epoch, long enough to interrupt.
    return [sys.executable, "-m", "keras_vae.cli", "fit", "--dataset", "custom",
            "--data-dir", str(folder), "--hidden-units", "16", "--latent-dim", "2",
            "--batch-size", "2", "--epochs", "4", "--output", str(folder / "run")]


def _interrupt_when(command, seen, use_terminal):
    """Runs ``command`` with stdout and stderr on one pipe (a log) or one pseudo-terminal,
    presses Ctrl-C once ``seen(output so far)`` holds; returns (exit status, output)."""
    if use_terminal:
        reading, writing = pty.openpty()
    else:
        reading, writing = os.pipe()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=writing,
                               stderr=writing, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    os.close(writing)
    chunks = []

    def read():
        while True:
            try:
                chunk = os.read(reading, 65536)
            except OSError:  # EIO: the process closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    def output():
        return b"".join(chunks).decode("utf-8", "replace")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 300
        while not seen(output()):
            assert process.poll() is None, f"kvae ended before the interrupt: {output()}"
            assert time.monotonic() < deadline, "kvae did not get that far in time"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
        reader.join(timeout=30)
        os.close(reading)
    return process.returncode, output()


def _message_line(output):
    """The line (after the last carriage return) on which 'Error: Interrupted.' starts."""
    before = output[:output.index("Error: Interrupted.")]
    return before.rsplit("\n", 1)[-1].rsplit("\r", 1)[-1]


@pytest.mark.integration
def test_interrupt_message_starts_a_line_in_a_log(tmp_path):
    status, output = _interrupt_when(_fit_command(tmp_path), lambda text: "Epoch 1/4:" in text,
                                     use_terminal=False)
    assert status == 130, output
    assert _message_line(output) == "", output[-2000:]
    assert EPOCH_LINE.match(output.splitlines()[0]), output[:500]


@pytest.mark.integration
def test_interrupt_message_starts_a_line_on_a_terminal(tmp_path):
    """On a terminal Keras' bar is mid-line when Ctrl-C comes (once the bar of epoch 2 is
    drawn); the message must not be appended to it."""
    status, output = _interrupt_when(
        _fit_command(tmp_path), lambda text: "step" in text.partition("Epoch 2/4")[2],
        use_terminal=True)
    assert status == 130, output[-2000:]
    assert _message_line(output) == "", repr(output[-600:])
