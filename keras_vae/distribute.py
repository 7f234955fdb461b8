"""Which ``tf.distribute`` strategy a run trains under, and which worker writes the run.

``--strategy``:
- ``default``: TensorFlow's default strategy (one device);
- ``mirrored``: ``MirroredStrategy`` over every visible GPU, or over every logical CPU device
  when there is no GPU (one replica on a plain CPU machine; tests configure two);
- ``multi-worker``: ``MultiWorkerMirroredStrategy`` configured from the ``TF_CONFIG``
  environment variable, which Kubernetes TFJob, Slurm scripts and Ray's TensorFlow trainer
  all set, so the same ``kvae fit`` command runs under any of them;
- ``auto``: ``mirrored`` when two or more GPUs are visible, ``default`` otherwise.

Under every strategy the batch size is the global batch, split across the replicas; the
learning rate is the one asked for; the loss is the mean over the global batch
(``VAE.train_step``, DESIGN.md trap 3).

Only the chief writes the run directory. The chief is the task of type ``chief``, or worker 0
when the cluster has no chief. Every other worker runs the same saves (a save may take part in
collective operations, so all workers must make it) into a temporary folder of its own,
which it deletes at the end.

Starting a multi-worker job: each task waits for the others before it creates the strategy
(``wait_for_peers``). TensorFlow's own cluster start-up blocks in C++ until every task has
joined, where Ctrl-C cannot reach it and SIGTERM only wakes its preemption notifier: a peer
that never starts would hold the process until SIGKILL. So, while it waits, each task keeps
its own ``TF_CONFIG`` port open (so that the others see it is there) and opens a TCP
connection to every other chief or worker task every half second; Ctrl-C stops the wait
with ``KeyboardInterrupt`` (``kvae`` prints its resume message), SIGTERM ends the process,
and after ``KVAE_PEER_TIMEOUT`` seconds (environment variable; default 300) the task gives
up with a ``DistributeError`` that names the missing task. Once the strategy exists, the
SIGTERM handler the process had before is put back, so SIGTERM still ends a multi-worker
run (which ``--resume`` continues from its last epoch).
"""

import json
import math
import os
import signal
import socket
import threading
import time

import keras
import tensorflow as tf

from keras_vae.config import PRECISIONS, STRATEGIES  # noqa: F401 - the vocabulary's owner
from keras_vae.errors import DistributeError  # noqa: F401


def cluster_spec():
    """``(cluster, task)`` read from ``TF_CONFIG``, or ``(None, None)`` when it is unset.

    ``TF_CONFIG`` is JSON: ``{"cluster": {"worker": ["host0:port", "host1:port"]},
    "task": {"type": "worker", "index": 0}}``, with an optional ``"chief"`` list.
    """
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None, None
    example = ('TF_CONFIG=\'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
               '"task": {"type": "worker", "index": 0}}\'')
    try:
        values = json.loads(text)
        cluster, task = values["cluster"], values["task"]
        members = cluster[task["type"]]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise DistributeError(f"TF_CONFIG is not a valid cluster description ({error!r}); "
                              f"set it like {example}.") from None
    if not 0 <= index < len(members):
        raise DistributeError(f"TF_CONFIG's task index {index} is outside its "
                              f"{task['type']!r} list of {len(members)}; each task needs its "
                              f"own index.")
    return cluster, task


def num_tasks(cluster):
    """Number of processes a TF_CONFIG cluster describes (evaluators excluded)."""
    return sum(len(members) for role, members in (cluster or {}).items()
               if role in ("chief", "worker"))


def resolve(name):
    """The concrete strategy ``name`` stands for on this machine (``auto`` resolved)."""
    if name not in STRATEGIES:
        raise DistributeError(f"Unknown strategy {name!r}: expected one of "
                              f"{', '.join(map(repr, STRATEGIES))}.")
    cluster, _ = cluster_spec()
    if name == "auto" and num_tasks(cluster) > 1:
        # Without this a launcher's N processes would each train alone into the same folder.
        raise DistributeError(f"TF_CONFIG describes a cluster of {num_tasks(cluster)} tasks "
                              f"but --strategy is auto; pass --strategy multi-worker to train "
                              f"across them, or unset TF_CONFIG.")
    if name == "auto":
        # Physical devices: listing them does not initialise the runtime.
        return "mirrored" if len(tf.config.list_physical_devices("GPU")) >= 2 else "default"
    if name == "multi-worker" and cluster is None:
        raise DistributeError("--strategy multi-worker needs TF_CONFIG to describe the cluster "
                              "and this task; set it (see the README, 'Scale out') or use "
                              "--strategy mirrored on one machine.")
    return name


def make_strategy(name):
    """The ``tf.distribute.Strategy`` for ``name``; call it before TensorFlow runs any op.

    ``MultiWorkerMirroredStrategy`` must be created before the first eager operation
    (DESIGN.md trap 5), so ``train.fit`` calls this first of all.
    """
    name = resolve(name)
    if name == "multi-worker":
        wait_for_peers(*cluster_spec(), timeout=peer_timeout())
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous_sigterm = signal.getsignal(signal.SIGTERM) if in_main_thread else None
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as error:
            raise DistributeError(f"Cannot start MultiWorkerMirroredStrategy "
                                  f"({str(error).splitlines()[0]}); it must be set up before "
                                  f"TensorFlow runs anything in this process.") from None
        finally:
            # TensorFlow's coordination agent installs a SIGTERM handler that only logs
            # "SIGTERM caught"; put back the one this process had (None: not set in Python).
            if previous_sigterm is not None:
                signal.signal(signal.SIGTERM, previous_sigterm)
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return _mirrored_strategy(tuple(device.name for device in devices))
    return tf.distribute.get_strategy()


PEER_TIMEOUT_VARIABLE = "KVAE_PEER_TIMEOUT"
DEFAULT_PEER_TIMEOUT_SECONDS = 300.0


def peer_timeout():
    """Seconds a multi-worker task waits for the others: ``$KVAE_PEER_TIMEOUT`` or 300."""
    text = os.environ.get(PEER_TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_PEER_TIMEOUT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise DistributeError(f"{PEER_TIMEOUT_VARIABLE} must be a positive number of seconds; "
                              f"received {text!r}.")
    return seconds


def _host_and_port(member):
    """"host:port" (or "[v6 address]:port") of a TF_CONFIG list -> (host, port)."""
    host, _, port = str(member).rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise DistributeError(f"TF_CONFIG lists {member!r}, which is not host:port; give each "
                              f"task as host:port, for example localhost:12345.") from None


def _accepts(address, timeout):
    """True when a TCP connection to ``address`` opens within ``timeout`` seconds."""
    try:
        socket.create_connection(address, timeout=timeout).close()
        return True
    except OSError:
        return False


def _hold_port(port):
    """A listening socket on ``port`` of every interface, as TensorFlow's server will bind."""
    try:
        if socket.has_dualstack_ipv6():
            return socket.create_server(("", port), family=socket.AF_INET6,
                                        dualstack_ipv6=True)
        return socket.create_server(("", port))
    except OSError as error:
        raise DistributeError(f"Port {port} of this task (TF_CONFIG) is in use "
                              f"({error.strerror}); stop the process that holds it, or give "
                              f"this task another port.") from None


def wait_for_peers(cluster, task, timeout=DEFAULT_PEER_TIMEOUT_SECONDS, interval=0.5):
    """Returns once every other chief or worker task of ``cluster`` accepts a TCP connection.

    Meanwhile this task listens on its own port, so that the others find it too; the port is
    free again on return, for TensorFlow's server. Ctrl-C raises KeyboardInterrupt at once;
    after ``timeout`` seconds a DistributeError names the tasks that never answered.
    """
    roles = ("chief", "worker")
    if not cluster or task is None or task["type"] not in roles:
        return
    me = (task["type"], int(task["index"]))
    waiting = [(role, index, member) for role in roles
               for index, member in enumerate(cluster.get(role, [])) if (role, index) != me]
    if not waiting:
        return
    addresses = {member: _host_and_port(member) for _, _, member in waiting}
    listener = _hold_port(_host_and_port(cluster[me[0]][me[1]])[1])
    deadline = time.monotonic() + timeout
    try:
        while True:
            waiting = [peer for peer in waiting
                       if not _accepts(addresses[peer[2]], min(1.0, timeout))]
            if not waiting:
                return
            if time.monotonic() >= deadline:
                missing = ", ".join(f"{role} {index} ({member})"
                                    for role, index, member in waiting)
                raise DistributeError(
                    f"{missing} of TF_CONFIG did not start within {timeout:g} s; start every "
                    f"task TF_CONFIG lists (each with its own task index), check their "
                    f"addresses, or wait longer with {PEER_TIMEOUT_VARIABLE}=SECONDS.")
            time.sleep(interval)
    finally:
        listener.close()


_MIRRORED = {}


def _mirrored_strategy(devices):
    """One MirroredStrategy per device set and process.

    Each new MirroredStrategy numbers its collective operations from the same start, so a
    second one over the same devices (a second fit in one process) reuses the first one's
    instance keys: TF 2.21 then fails with "Shape mismatch in the collective instance 100" when
    the models differ, and cannot be trusted when they do not.
    """
    if devices not in _MIRRORED:
        _MIRRORED[devices] = tf.distribute.MirroredStrategy(list(devices))
    return _MIRRORED[devices]


def is_multi_worker(strategy):
    """True when ``strategy`` spans several processes (collectives between workers)."""
    extended = getattr(strategy, "extended", None)
    in_multi_worker_mode = getattr(extended, "_in_multi_worker_mode", None)
    return bool(in_multi_worker_mode and in_multi_worker_mode())


def is_chief(strategy):
    """True for the one process that writes the run directory (see ``is_chief_task``)."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    return is_chief_task(resolver.cluster_spec().as_dict(), resolver.task_type,
                         resolver.task_id)


def is_chief_task(cluster, task_type, task_id):
    """The chief of a cluster: the task of type ``chief``, or worker 0 when there is none."""
    if "chief" in cluster:
        return task_type == "chief"
    return task_type == "worker" and int(task_id) == 0


def set_precision(precision):
    """Sets Keras' global dtype policy for the layers built next; returns the previous one.

    With ``mixed_float16`` or ``mixed_bfloat16`` the networks compute in 16 bits and keep
    float32 variables; the encoder and decoder heads cast their outputs to float32, so
    log_prob, the KL and the log-sum-exp stay in float32 (layers.py). Keras wraps the optimizer
    in a LossScaleOptimizer for ``mixed_float16``.
    """
    if precision not in PRECISIONS:
        raise DistributeError(f"Unknown precision {precision!r}: expected one of "
                              f"{', '.join(map(repr, PRECISIONS))}.")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    return previous
