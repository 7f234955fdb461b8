"""Training progress as one line per epoch, for output that is not a terminal.

Keras' progress bar redraws itself with carriage returns and backspaces many times a second:
on a terminal that is one line, but in a log file (``kvae fit ... > log``, CI, a batch job)
every redraw stays, about 88 KB per MNIST epoch (880 KB for 10 epochs). ``EpochProgress``
writes one line when an epoch ends instead::

    Epoch 3/10: 41.2 s, loss 101.234, elbo -101.234, kl 24.5617, ..., active units 17/50

and for a hierarchy, whose logs hold each layer's KL and active units::

    Epoch 3/10: 12.1 s, ..., kl 24.5617, kl_z1 20.1, kl_z2 4.46, ..., active units z1 5/8, z2 2/4

``progress_for(stream)`` chooses: Keras' bar (``verbose=1``) on a terminal, this callback
(with ``verbose=0``) anywhere else. Figures are the epoch's logs as Keras gives them (nats
per example for the ELBO terms), and the active units of a ``LatentMonitor`` out of the
model's latent dimensions.
"""

import sys
import time

import keras

LAYER_UNITS = "active_units_"  # + layer name: a hierarchy's active units per layer


class EpochProgress(keras.callbacks.Callback):
    """Writes ``Epoch k/N: <seconds> s, <metric> <value>, ...`` to ``stream`` (default: the
    current ``sys.stdout``) at the end of every epoch, flushed at once."""

    def __init__(self, stream=None):
        super().__init__()
        self._stream = stream
        self._started = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.monotonic() - self._started if self._started is not None else 0.0
        logs = logs or {}
        figures = "".join(f", {self._figure(name, value, logs)}" for name, value in logs.items()
                          if not name.startswith(LAYER_UNITS))
        stream = self._stream or sys.stdout
        stream.write(f"Epoch {epoch + 1}/{self.params.get('epochs', '?')}: {seconds:.1f} s"
                     f"{figures}\n")
        stream.flush()

    def _figure(self, name, value, logs):
        """``name value``; active units (``LatentMonitor``) as "active units 17/50", out of
        the model's latent dimensions, or per layer as "active units z1 5/8, z2 2/4" when
        the logs hold each layer's (a hierarchy)."""
        if name != "active_units":
            return f"{name} {_number(value)}"
        sizes = getattr(self.model, "latent_sizes", None) if self.model is not None else None
        sizes = dict(sizes or {})
        if len(sizes) > 1 and all(LAYER_UNITS + layer in logs for layer in sizes):
            return "active units " + ", ".join(
                f"{layer} {_number(logs[LAYER_UNITS + layer])}/{size}"
                for layer, size in sizes.items())
        total = f"/{sum(sizes.values())}" if sizes else ""
        return f"active units {_number(value)}{total}"


def _number(value):
    """6 significant digits: 101.234 nats, a learning rate of 0.001 or 1e-05."""
    try:
        return f"{float(value):.6g}"
    except (TypeError, ValueError):
        return str(value)


def is_terminal(stream):
    """True when ``stream`` is an interactive terminal."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def progress_for(stream):
    """(verbose, callbacks) for ``model.fit`` reporting to ``stream``: Keras' progress bar on
    a terminal, ``EpochProgress`` (one line per epoch) in a file or a pipe."""
    if is_terminal(stream):
        return 1, []
    return 0, [EpochProgress(stream)]


def end_progress_line(stream):
    """Ends the line a progress bar may have left unfinished on a terminal, so that a message
    written next (``Interrupted. ...``) starts on a line of its own. In a file or a pipe,
    ``EpochProgress`` only writes whole lines: nothing to do."""
    if is_terminal(stream):
        stream.write("\n")
        stream.flush()
