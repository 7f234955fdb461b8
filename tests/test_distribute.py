"""distribute.py and training under strategies: choosing a strategy from --strategy and
TF_CONFIG, the chief, MirroredStrategy against one device through train.fit, resuming under
another strategy, mixed precision. Two worker processes: test_distribute_multi_worker.py."""

import _thread
import json
import socket
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae import distribute, train
from tests.helpers import (closed_form_kl, csv_rows, interrupt_after_epoch, max_abs_difference,
                           model_weights, tiny_train_config)

TWO_WORKERS = {"cluster": {"worker": ["localhost:1", "localhost:2"]},
               "task": {"type": "worker", "index": 1}}


# ---------------------------------------------------------------- waiting for the other workers


def _free_loopback_ports(count):
    sockets = [socket.create_server(("127.0.0.1", 0)) for _ in range(count)]
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _cluster(ports):
    return {"worker": [f"127.0.0.1:{port}" for port in ports]}


def _port_is_free(port):
    try:
        socket.create_server(("", port)).close()
        return True
    except OSError:
        return False


def test_two_tasks_waiting_for_each_other_both_go_on_and_free_their_ports():
    # Each listens on its own port while it waits, so neither waits for the other forever;
    # once a task goes on, its port must be free for TensorFlow's server, which then answers
    # in its place (played here by a plain listener).
    ports = _free_loopback_ports(2)
    errors, both_done = [], threading.Barrier(2)

    def task(index):
        try:
            distribute.wait_for_peers(_cluster(ports), {"type": "worker", "index": index},
                                      timeout=60, interval=0.05)
            with socket.create_server(("", ports[index])):  # fails if the port is still held
                both_done.wait(timeout=60)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
            both_done.abort()

    threads = [threading.Thread(target=task, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_peer_that_never_starts_gives_up_after_the_timeout_naming_it():
    ports = _free_loopback_ports(3)
    with pytest.raises(distribute.DistributeError,
                       match=rf"worker 0 \(127.0.0.1:{ports[0]}\), worker 2 \(127.0.0.1:"
                             rf"{ports[2]}\) of TF_CONFIG did not start within 0.2 s; start "
                             r"every task .* KVAE_PEER_TIMEOUT=SECONDS"):
        distribute.wait_for_peers(_cluster(ports), {"type": "worker", "index": 1}, timeout=0.2,
                                  interval=0.05)
    assert _port_is_free(ports[1])


def test_ctrl_c_stops_the_wait_for_peers():
    ports = _free_loopback_ports(2)
    timer = threading.Timer(0.3, _thread.interrupt_main)  # what Ctrl-C does to the main thread
    timer.start()
    try:
        # Without the interrupt this would give up with a DistributeError after 120 s.
        with pytest.raises(KeyboardInterrupt):
            distribute.wait_for_peers(_cluster(ports), {"type": "worker", "index": 0},
                                      timeout=120, interval=0.05)
    finally:
        timer.cancel()
    assert _port_is_free(ports[0])


def test_a_busy_own_port_or_a_bad_address_is_named():
    ports = _free_loopback_ports(1)
    with socket.create_server(("", ports[0])):
        with pytest.raises(distribute.DistributeError, match=f"Port {ports[0]} of this task "
                                                             r"\(TF_CONFIG\) is in use"):
            distribute.wait_for_peers(_cluster([ports[0], 1]), {"type": "worker", "index": 0},
                                      timeout=0.1)
    with pytest.raises(distribute.DistributeError, match="TF_CONFIG lists 'nohost', which is "
                                                         "not host:port"):
        distribute.wait_for_peers({"worker": [f"127.0.0.1:{ports[0]}", "nohost"]},
                                  {"type": "worker", "index": 0}, timeout=0.1)


def test_a_lone_task_or_an_evaluator_does_not_wait():
    distribute.wait_for_peers({"worker": ["127.0.0.1:1"]}, {"type": "worker", "index": 0})
    distribute.wait_for_peers({"worker": ["127.0.0.1:1"], "evaluator": ["127.0.0.1:2"]},
                              {"type": "evaluator", "index": 0})


def test_sigterm_handler_is_given_back_after_the_strategy_starts(monkeypatch):
    # TensorFlow's coordination agent replaces the SIGTERM handler with one that only logs;
    # played here by a fake strategy that does the same.
    import signal

    def fake_strategy():
        signal.signal(signal.SIGTERM, lambda *args: None)
        return "strategy"

    own_handler = lambda *args: None  # noqa: E731
    previous = signal.signal(signal.SIGTERM, own_handler)
    try:
        monkeypatch.setenv("TF_CONFIG", json.dumps(TWO_WORKERS))
        monkeypatch.setattr(distribute, "wait_for_peers", lambda *args, **kwargs: None)
        monkeypatch.setattr(tf.distribute, "MultiWorkerMirroredStrategy", fake_strategy)
        assert distribute.make_strategy("multi-worker") == "strategy"
        assert signal.getsignal(signal.SIGTERM) is own_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("value, expected", [(None, 300.0), ("", 300.0), ("2.5", 2.5)])
def test_peer_timeout_comes_from_the_environment(monkeypatch, value, expected):
    monkeypatch.delenv("KVAE_PEER_TIMEOUT", raising=False)
    if value is not None:
        monkeypatch.setenv("KVAE_PEER_TIMEOUT", value)
    assert distribute.peer_timeout() == expected


@pytest.mark.parametrize("value", ["soon", "0", "-3", "inf", "nan"])
def test_an_unusable_peer_timeout_is_named(monkeypatch, value):
    monkeypatch.setenv("KVAE_PEER_TIMEOUT", value)
    with pytest.raises(distribute.DistributeError, match="KVAE_PEER_TIMEOUT must be a positive "
                                                         f"number of seconds; received '{value}'"):
        distribute.peer_timeout()


# ---------------------------------------------------------------- choosing a strategy


def test_strategies_resolve_as_documented(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    # No GPU here: auto is the default strategy.
    assert distribute.resolve("auto") == "default"
    assert distribute.resolve("mirrored") == "mirrored"
    assert distribute.make_strategy("default") is tf.distribute.get_strategy()
    # mirrored without GPUs spans the logical CPUs (conftest makes two).
    assert distribute.make_strategy("mirrored").num_replicas_in_sync == 2
    # With two GPUs or more (simulated: this machine has none), auto mirrors them.
    physical = tf.config.list_physical_devices
    for num_gpus, expected in ((1, "default"), (2, "mirrored"), (4, "mirrored")):
        monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None, n=num_gpus: (
            [f"GPU:{i}" for i in range(n)] if kind == "GPU" else physical(kind)))
        assert distribute.resolve("auto") == expected
    monkeypatch.setattr(tf.config, "list_physical_devices", physical)
    monkeypatch.setenv("TF_CONFIG", json.dumps(TWO_WORKERS))
    assert distribute.resolve("multi-worker") == "multi-worker"
    assert distribute.cluster_spec() == (TWO_WORKERS["cluster"], TWO_WORKERS["task"])


@pytest.mark.parametrize("tf_config, strategy, message", [
    (None, "multi-worker", "--strategy multi-worker needs TF_CONFIG"),
    (json.dumps(TWO_WORKERS), "auto",
     "TF_CONFIG describes a cluster of 2 tasks but --strategy is auto; pass --strategy "
     "multi-worker"),
    ("{not json", "multi-worker", "TF_CONFIG is not a valid cluster description"),
    (json.dumps({"cluster": {"worker": ["a:1"]}}), "multi-worker",
     "TF_CONFIG is not a valid cluster description .*KeyError\\('task'\\)"),
    (json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}),
     "multi-worker", "task index 3 is outside its 'worker' list of 1"),
    (None, "ring", "Unknown strategy 'ring': expected one of 'auto', 'default'"),
])
def test_unusable_strategy_settings_name_the_problem(monkeypatch, tf_config, strategy,
                                                     message):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    if tf_config is not None:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(distribute.DistributeError, match=message):
        distribute.make_strategy(strategy)


@pytest.mark.parametrize("cluster, task_type, task_id, chief", [
    ({"worker": ["a", "b"]}, "worker", 0, True),
    ({"worker": ["a", "b"]}, "worker", 1, False),
    ({"chief": ["c"], "worker": ["a", "b"]}, "chief", 0, True),
    ({"chief": ["c"], "worker": ["a", "b"]}, "worker", 0, False),
    ({"worker": ["a"], "evaluator": ["e"]}, "evaluator", 0, False),
])
def test_the_chief_is_the_chief_task_or_worker_zero(cluster, task_type, task_id, chief):
    assert distribute.is_chief_task(cluster, task_type, task_id) is chief


def test_a_single_process_is_its_own_chief():
    assert distribute.is_chief(tf.distribute.get_strategy())
    assert not distribute.is_multi_worker(tf.distribute.get_strategy())


# ---------------------------------------------------------------- MirroredStrategy via train.fit


def test_mirrored_fit_matches_one_device_and_resumes_under_another_strategy(idx_folder,
                                                                           tmp_path):
    # 60 training images in global batches of 10, 5 per replica, no validation split (the
    # uneven first batch of a small validation set has its own test in test_model.py). In an
    # uneven final batch replicas may share a few noise rows (ELBOModel._layer_noise), so
    # exact parity is a property of even batches.
    split = dict(epochs=2, validation_fraction=0)
    config = tiny_train_config(idx_folder, strategy="default", **split)
    train.fit(config, tmp_path / "default", verbose=0)
    mirrored = tiny_train_config(idx_folder, strategy="mirrored", **split)
    train.fit(mirrored, tmp_path / "mirrored", verbose=0)
    # 12 Adam steps: replicas that took steps twice as large or shared noise would be ~1e-3 off.
    assert max_abs_difference(model_weights(tmp_path / "default"),
                              model_weights(tmp_path / "mirrored")) < 1e-5
    record = json.loads((tmp_path / "mirrored" / "config.json").read_text())
    assert record["data"]["num_replicas"] == 2 and record["train"]["strategy"] == "mirrored"
    np.testing.assert_allclose(
        [float(r["elbo"]) for r in csv_rows(tmp_path / "mirrored" / "history.csv")],
        [float(r["elbo"]) for r in csv_rows(tmp_path / "default" / "history.csv")],
        rtol=1e-5)

    # Interrupted under MirroredStrategy after epoch 0, resumed on one device: the strategy
    # may change on resume (the run's maths does not).
    run = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        train.fit(mirrored, run, verbose=0, callbacks=[interrupt_after_epoch(0)])
    assert not run.exists()
    train.fit(config, run, resume=True, verbose=0)
    assert [int(r["epoch"]) for r in csv_rows(run / "history.csv")] == [0, 1]
    assert json.loads((run / "config.json").read_text())["train"]["strategy"] == "default"
    keras.models.load_model(run / "model.keras")


def test_resume_rejects_a_change_of_precision(idx_folder, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train.fit(tiny_train_config(idx_folder), run, verbose=0,
                  callbacks=[interrupt_after_epoch(0)])
    with pytest.raises(train.RunError, match="these differ: precision"):
        train.fit(tiny_train_config(idx_folder, precision="mixed_bfloat16"), run, resume=True)


def test_a_lost_worker_gives_one_line_that_says_how_to_resume(tmp_path):
    # The message TF 2.21 gave the surviving worker when the other was killed (README, Scale
    # out; the kill-and-resume itself is in benchmarks/RESULTS.md's multi-worker note).
    lost = ("Collective ops is aborted by: Error reported from /job:worker/task:1: The "
            "following tasks are unhealthy (stopped sending heartbeats):\n"
            "/job:worker/replica:0/task:1\nThe tasks have crashed.")
    for text, cause in [
        ("{{function_node __wrapped__CollectiveReduceV2_Nordering_token_1_device_/job:worker/"
         "replica:0/task:0/device:CPU:0}} " + lost,
         "/job:worker/replica:0/task:1 stopped sending heartbeats"),
        ("Graph execution error:\n\nDetected at node adam/CollectiveReduceV2\n" + lost,
         "/job:worker/replica:0/task:1 stopped sending heartbeats"),
        ("Graph execution error:\n\nSocket closed", "Socket closed"),
    ]:
        message = str(train.worker_lost(tf.errors.UnavailableError(None, None, text),
                                        tmp_path / "run"))
        assert message.startswith(f"A worker of this multi-worker job stopped ({cause}). ")
        assert f"saved in {tmp_path / 'run.partial'}" in message and "--resume" in message
        assert "\n" not in message


# ---------------------------------------------------------------- mixed precision


def test_mixed_bfloat16_trains_with_the_distribution_math_in_float32(idx_folder, tmp_path):
    config = tiny_train_config(idx_folder, epochs=1, precision="mixed_bfloat16")
    metrics = train.fit(config, tmp_path / "run", verbose=0)
    figures = [value for value in metrics.values() if isinstance(value, (int, float))]
    assert figures and all(np.isfinite(value) for value in figures)
    assert keras.config.dtype_policy().name == "float32"  # fit restores the global policy
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    dense = [layer for layer in model.encoder.network.layers
             if isinstance(layer, keras.layers.Dense)][0]
    assert dense.compute_dtype == "bfloat16" and dense.kernel.dtype == "float32"
    x = np.random.default_rng(0).random((4, 8, 8, 1)).round().astype("float32")
    terms = model.elbo_terms(x)
    assert terms.kl.dtype == tf.float32 and terms.elbo.dtype == tf.float32
    assert np.isfinite(terms.elbo.numpy()).all()
    assert model.encode(x).distribution.loc.dtype == tf.float32
    # The KL is the closed form of q's float32 parameters, not a bfloat16-rounded figure.
    np.testing.assert_allclose(terms.kl.numpy(), closed_form_kl(model.encode(x)), rtol=1e-5)
