"""Every error keras-vae raises on purpose, under one base class.

``KerasVAEError`` is what the ``kvae`` command catches to print one line, ``Error: <what is
wrong and how to fix it>``, instead of a traceback; a message of one of these classes must
therefore name the problem and the fix on its first line. Each class also derives from the
built-in exception a Python caller would expect (``ValueError`` for bad input,
``RuntimeError`` for a failure while running), so ``except ValueError`` keeps working.

Modules raise the class of their concern and import it from here; this module imports
nothing, so reading it costs nothing (``kvae --help`` must not import TensorFlow).
"""


class KerasVAEError(Exception):
    """Base class of the errors keras-vae raises on purpose; the message says what to do."""


class ConfigError(KerasVAEError, ValueError):
    """An option or argument has a value that cannot work (wrong choice, not positive, ...)."""


class DataError(KerasVAEError, ValueError):
    """Data cannot be loaded or used as asked (missing files, wrong format or values)."""


class RunError(KerasVAEError, ValueError):
    """A run directory cannot be used as asked (missing, incomplete, protected, in use)."""


class ExportError(KerasVAEError, ValueError):
    """An export cannot be written or failed its checks."""


class DistributeError(KerasVAEError, ValueError):
    """A tf.distribute strategy cannot be set up as asked."""


class TrainingDiverged(KerasVAEError, RuntimeError):
    """The loss became NaN or infinite; the run keeps the weights of the last good epoch."""


class WorkerLost(KerasVAEError, RuntimeError):
    """Another worker of a multi-worker job stopped; the run is resumable from its last epoch."""
