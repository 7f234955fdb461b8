"""Two MultiWorkerMirroredStrategy processes on localhost run `kvae fit --strategy
multi-worker`: identical weights on both, the same weights as one device, and only the chief
writes the run directory; trained further with --resume, both start from the complete run.
A worker whose peer never starts stops on Ctrl-C and SIGTERM, and gives up after
KVAE_PEER_TIMEOUT. (Its own file, so that pytest-xdist can run it beside the rest.)"""

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_vae import train
from tests.helpers import (csv_rows, max_abs_difference, model_weights, tiny_train_config,
                           write_idx_folder)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _run_two_workers(arguments, tmp_path, tag):
    """Runs ``kvae ARGUMENTS`` as workers 0 and 1 of a localhost cluster; returns the two
    Popen objects (finished, both succeeded) and the weights each had at the end of training.
    Each worker's TMPDIR (its temporary folders) is tmp_path / f"{tag}-tmp{index}"."""
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    workers = []
    for index in range(2):
        scratch = tmp_path / f"{tag}-tmp{index}"
        scratch.mkdir()
        environment = {**os.environ, "TMPDIR": str(scratch), "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "tests.record_weights_fit",
             tmp_path / f"{tag}-weights{index}.npz", *map(str, arguments)],
            cwd=os.getcwd(), env=environment, text=True, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE))
    try:
        outputs = [worker.communicate(timeout=600) for worker in workers]
    finally:
        for worker in workers:  # a hung collective must not outlive the test
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
        assert "Trained" in out
    weights = [np.load(tmp_path / f"{tag}-weights{index}.npz") for index in range(2)]
    assert len(weights[0].files) > 0
    for name in weights[0].files:
        np.testing.assert_array_equal(weights[0][name], weights[1][name])
    return workers, [weights[0][name] for name in weights[0].files]


@pytest.mark.integration
def test_two_workers_train_identical_weights_and_only_the_chief_writes(idx_folder, tmp_path):
    # 72 images: 66 to train in global batches of 22 (11 per worker), 6 to validate, 20 to
    # test; every batch splits evenly, so two workers must train like one device.
    write_idx_folder(idx_folder, num_train=72, num_test=20, size=8)
    run = tmp_path / "run"
    # The burda schedule, so that the complete run can be trained further below.
    arguments = ["fit", "--dataset", "custom", "--data-dir", idx_folder, "--hidden-units",
                 "16", "--latent-dim", "2", "--batch-size", "22", "--learning-rate-schedule",
                 "burda", "--strategy", "multi-worker", "--output", run]
    workers, worker_weights = _run_two_workers([*arguments, "--epochs", "2"], tmp_path, "fit")
    # The same command on one device, for comparison: each worker must have trained on its
    # own half of every global batch, with the loss averaged over the global batch.
    one_device = tiny_train_config(idx_folder, batch_size=22, learning_rate_schedule="burda",
                                   strategy="default")
    train.fit(one_device, tmp_path / "one_device", verbose=0)

    # The chief's run is complete and matches the weights it trained.
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "history.csv",
                                                      "latent_history.csv", "logs", "model.keras"]
    assert [int(r["epoch"]) for r in csv_rows(run / "history.csv")] == [0, 1]
    record = json.loads((run / "config.json").read_text())
    assert record["data"]["num_replicas"] == 2 and record["train"]["strategy"] == "multi-worker"
    assert max_abs_difference(keras.models.load_model(run / "model.keras").get_weights(),
                              worker_weights) == 0
    # 6 Adam steps: unsharded data (each worker on the whole batch) or a loss summed over the
    # workers would be about the learning rate (1e-3) away.
    assert max_abs_difference(model_weights(tmp_path / "one_device"), worker_weights) < 1e-5
    # Worker 1 wrote nothing there: every TensorBoard file names the chief's process id, and
    # its own temporary folder is gone.
    events = [p.name for p in (run / "logs").rglob("events.out.tfevents.*")]
    assert events and all(f".{workers[0].pid}." in name for name in events), events
    assert not any((tmp_path / "fit-tmp1").iterdir())
    assert not train.partial_dir(run).exists()

    # Trained further by both workers (--resume, more epochs): each starts from the complete
    # run's weights and Adam state, like the one-device run trained further.
    _, continued_weights = _run_two_workers([*arguments, "--epochs", "3", "--resume"],
                                            tmp_path, "continue")
    train.fit(dataclasses.replace(one_device, epochs=3), tmp_path / "one_device", resume=True,
              verbose=0)
    assert [int(r["epoch"]) for r in csv_rows(run / "history.csv")] == [0, 1, 2]
    assert max_abs_difference(keras.models.load_model(run / "model.keras").get_weights(),
                              continued_weights) == 0
    assert max_abs_difference(model_weights(tmp_path / "one_device"), continued_weights) < 1e-5
    assert max_abs_difference(worker_weights, continued_weights) > 1e-4  # it did train
    assert not any((tmp_path / "continue-tmp1").iterdir())
    assert not train.partial_dir(run).exists()


def _start_lone_worker(idx_folder, tmp_path, **environment):
    """``kvae fit --strategy multi-worker`` as worker 0 of two on 127.0.0.1, whose worker 1
    never starts; returns (process, run folder, worker 0's port)."""
    ports = _free_ports(2)
    config = {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
              "task": {"type": "worker", "index": 0}}
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_vae.cli", "fit", "--dataset", "custom", "--data-dir",
         idx_folder, "--hidden-units", "16", "--latent-dim", "2", "--epochs", "1",
         "--strategy", "multi-worker", "--output", run],
        env={**os.environ, "TF_CONFIG": json.dumps(config), **environment}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return process, run, ports[0]


def _wait_until_listening(process, port):
    """Returns once ``process`` listens on ``port``: it is waiting for its peer."""
    while process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the worker ended before it waited: {process.stderr.read()[-3000:]}")


def _finish(process):
    try:
        return process.communicate(timeout=120)  # a worker that ignores the signal fails here
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.integration
def test_a_worker_waiting_for_a_peer_stops_on_ctrl_c_saying_nothing_was_written(idx_folder,
                                                                                 tmp_path):
    process, run, port = _start_lone_worker(idx_folder, tmp_path)
    _wait_until_listening(process, port)
    process.send_signal(signal.SIGINT)
    _, err = _finish(process)
    assert process.returncode == 130, err[-3000:]
    # Training never started, so there is nothing to --resume (the message must not offer it).
    assert "Error: Interrupted before training started; nothing was written." in err, err
    assert "--resume" not in err and "Traceback" not in err


@pytest.mark.integration
def test_a_worker_waiting_for_a_peer_stops_on_sigterm(idx_folder, tmp_path):
    process, run, port = _start_lone_worker(idx_folder, tmp_path)
    _wait_until_listening(process, port)
    process.send_signal(signal.SIGTERM)
    _finish(process)
    assert process.returncode == -signal.SIGTERM


@pytest.mark.integration
def test_a_worker_gives_up_on_a_peer_after_kvae_peer_timeout(idx_folder, tmp_path):
    process, run, port = _start_lone_worker(idx_folder, tmp_path, KVAE_PEER_TIMEOUT="1")
    _, err = _finish(process)
    assert process.returncode == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("Error: worker 1 (127.0.0.1:") and "did not start within 1 s" in last
    assert "Traceback" not in err
    assert not run.exists() and not train.partial_dir(run).exists()  # nothing was written
