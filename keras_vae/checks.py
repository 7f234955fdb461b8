"""Argument checks shared by every module: one wording for every "must be one of" and
"must be a positive ..." error.

Each check returns the value (normalised: ``int``/``float``) or raises ``ConfigError`` (a
``ValueError``) whose message names the argument, what was expected and what was received,
as Keras' own errors do. Pure Python: no TensorFlow import.
"""

import math
import numbers

from keras_vae.errors import ConfigError


def check_choice(name, value, choices):
    """``value`` if it is one of ``choices``; else ConfigError listing the valid values."""
    if value not in choices:
        valid = ", ".join(repr(choice) for choice in choices)
        raise ConfigError(f"Unknown {name} {value!r}: expected one of {valid}.")
    return value


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive_int(name, value):
    """``value`` as an int > 0; else ConfigError."""
    if not _is_integer(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer; received {value!r}.")
    return int(value)


def check_non_negative_int(name, value):
    """``value`` as an int >= 0; else ConfigError."""
    if not _is_integer(value) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer; received {value!r}.")
    return int(value)


def check_positive_float(name, value):
    """``value`` as a finite float > 0; else ConfigError (inf and NaN included)."""
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive finite number; received {value!r}.")
    return float(value)


def check_non_negative_float(name, value):
    """``value`` as a finite float >= 0; else ConfigError (inf and NaN included)."""
    if not _is_real(value) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a non-negative finite number; received {value!r}.")
    return float(value)


def check_fraction(name, value, low_open=False, high_open=False):
    """``value`` as a float in [0, 1] (ends excluded when ``*_open``); else ConfigError."""
    low = "(" if low_open else "["
    high = ")" if high_open else "]"
    if not _is_real(value) or not math.isfinite(value) or value < 0 or value > 1 \
            or (low_open and value == 0) or (high_open and value == 1):
        raise ConfigError(f"{name} must lie in {low}0, 1{high}; received {value!r}.")
    return float(value)
