"""Holds back TensorFlow's start-up chatter; every other line still shows.

On TF 2.21 ``import tensorflow`` prints, on every run of every command::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:... port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:... cudart_stub.cc:31] Could not find cuda drivers on your machine, ...

and the first look at the devices adds, on a machine without a GPU,
``E0000 ... cuda_platform.cc:52] failed call to cuInit: ...``. C++ writes these straight to
file descriptor 2 before absl's logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` does not
hide them and Python's ``sys.stderr`` never sees them.

The mechanism: while TensorFlow's ``__init__`` runs and then lists the devices (which is
when CUDA is probed), descriptor 2 points at a temporary file; afterwards it is restored and
every captured line that is not known chatter (``is_chatter``) is written to it, in order:
a real error, a Python warning or a traceback stays visible. ``KVAE_DEBUG=1`` turns the
filter off. ``silence_tensorflow_start_up`` arms it for the first ``import tensorflow``,
whoever imports it (``import_hooks.wrap_execution``); the ``kvae`` command calls it first.
"""

import contextlib
import os
import re
import sys
import tempfile

from keras_vae import import_hooks

# Known chatter: absl's notice, INFO lines (``I<mmdd> <time> <thread> <file>.cc:<line>]``),
# the continuation of cpu_feature_guard's INFO line, and the ERROR/WARNING lines that only
# say there is no GPU or that a CUDA plugin was registered twice.
CHATTER = tuple(re.compile(pattern) for pattern in (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    r"STDERR$",
    r"^I\d{4} [\d:.]+ +\d+ [\w./-]+\.cc:\d+\] ",
    r"^To enable the following instructions: .*rebuild TensorFlow with the appropriate "
    r"compiler flags\.$",
    r"^[EW]\d{4} [\d:.]+ +\d+ [\w./-]+\.cc:\d+\] (failed call to cuInit|Unable to register "
    r"cu(DNN|FFT|BLAS) factory|TF-TRT Warning: Could not find TensorRT)",
))


def debugging():
    """True when KVAE_DEBUG is set (to anything but empty or 0): show every line TensorFlow
    prints, and tracebacks instead of one-line errors."""
    return os.environ.get("KVAE_DEBUG", "") not in ("", "0")


def enabled():
    """Whether the chatter is held back: unless ``debugging()``."""
    return not debugging()


def is_chatter(line):
    """True for a line of TensorFlow's start-up chatter (see ``CHATTER``)."""
    return any(pattern.search(line.rstrip("\r\n")) for pattern in CHATTER)


@contextlib.contextmanager
def held_stderr():
    """Sends file descriptor 2 to a temporary file inside the block; then writes back every
    line that is not chatter. A file, not a pipe: a pipe's buffer (64 KB) would block a
    writer that nobody reads while the block runs."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().splitlines(keepends=True)
                    if not is_chatter(line.decode("utf-8", "replace"))]
            if kept:
                os.write(2, b"".join(kept))


def silence_tensorflow_start_up(module_name="tensorflow"):
    """Holds back the chatter of the first ``import tensorflow`` in this process, and of the
    device probe right after it. Nothing happens when TensorFlow is imported already or when
    KVAE_DEBUG is set. (``module_name``: for tests, a stand-in that prints like TensorFlow.)"""
    if enabled() and module_name not in sys.modules:
        import_hooks.wrap_execution(module_name, _start_quietly)


def _start_quietly(execute, tensorflow):
    with held_stderr():
        execute()
        # The CUDA probe ("failed call to cuInit") runs at the first look at the devices.
        # Listing them does not initialise the runtime: logical devices and a
        # MultiWorkerMirroredStrategy can still be set up afterwards.
        tensorflow.config.list_physical_devices()
