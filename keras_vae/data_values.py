"""The value rule: what the examples of a likelihood's data kind look like when they reach the
model, and a one-line DataError for data that cannot be that.

The kinds are ``likelihoods.data_kind``'s; examples are images [N, H, W, C] or flat vectors
[N, d] (tabular data):

| kind            | likelihoods                      | images                  | vectors          |
|-----------------|----------------------------------|-------------------------|------------------|
| "binary"        | bernoulli                        | grey levels in [0, 1]   | values in [0, 1] |
| "unit_interval" | continuous_bernoulli             | grey levels in [0, 1]   | values in [0, 1] |
| "real"          | normal, laplace                  | grey levels in [0, 1]   | as they are      |
| "levels"        | logistic(_mixture), categorical  | integers 0..255         | integers >= 0    |

Images: integer grey levels 0..255 (of any integer type) are divided by 255 and floats must
already lie in [0, 1] (``to_unit_interval``), except for a discrete likelihood, which gets the
8-bit integers themselves (``to_levels``). Vectors are never rescaled: their scale is the
user's, and a guess (divide by 255?) would silently change the model. "binary" data are then
binarised by ``data.make_splits``. Everything reaches the model as float32, levels as
whole-number floats.
"""

import numpy as np

from keras_vae.errors import DataError

_DESCRIBED = {"c": "complex numbers", "U": "text", "S": "bytes", "O": "Python objects"}
_CONTINUOUS = "continuous_bernoulli, normal or laplace"


def model_values(examples, kind, what="The examples", likelihood=None):
    """``examples`` as the float32 values a model of data ``kind`` trains on (the table in the
    module docstring); ``what`` names them in errors, ``likelihood`` names the model's."""
    examples = np.asarray(examples)
    name = repr(likelihood) if likelihood else f"of {kind} data"
    if examples.ndim == 2:
        return to_vectors(examples, kind, what, name)
    if kind == "levels":
        return to_levels(examples, what, name, highest=255)
    return to_unit_interval(examples, what)


def to_unit_interval(images, what="The images"):
    """Images as float32 in [0, 1], or a DataError that says what is wrong with them.

    - bool: False/True -> 0/1;
    - integers of any dtype (uint8, int64, uint16 ...): 8-bit grey levels 0..255, divided by
      255; values outside 0..255 are an error (their scale is unknown: rescale them first);
    - floats: intensities in [0, 1], kept as they are; floats up to 255 are an error that
      says to divide by 255 (they are most likely grey levels, but a silent guess could as
      well be wrong); NaN, inf, negative or larger values are an error;
    - complex numbers, strings, objects and any other kind: an error.
    ``what`` names the images in the messages ("the training images of data.npz").
    """
    images = _real_numbers(images, what, "pixels must be real numbers: uint8 grey levels "
                                         "0..255 or floats in [0, 1]", unit="pixels")
    kind = images.dtype.kind
    if kind == "b":
        return images.astype(np.float32)
    low, high = images.min(), images.max()
    if kind in "iu":
        if low < 0 or high > 255:
            raise DataError(f"{what} hold integers from {low} to {high}; integer pixels must "
                            f"be 8-bit grey levels 0..255 (divided by 255 here): rescale "
                            f"them to 0..255, or to floats in [0, 1].")
        return (images / 255).astype(np.float32)
    if not np.isfinite(images).all():
        raise DataError(f"{what} hold NaN or infinite values; clean the data first.")
    if low < 0 or high > 255:
        raise DataError(f"{what} hold floats from {low:g} to {high:g}; pixels must be floats "
                        f"in [0, 1]: rescale them.")
    if high > 1:
        raise DataError(f"{what} hold floats up to {high:g}: they look like grey levels "
                        f"0..255, but float pixels must lie in [0, 1]; divide them by 255 (or "
                        f"store them as uint8).")
    return images.astype(np.float32)


def to_levels(examples, what="The images", likelihood="", highest=None):
    """Whole-number data as float32 integers 0..``highest`` (None: no upper bound), for a
    discrete likelihood: integers and booleans as they are, floats only if whole numbers;
    anything else is a DataError that names ``likelihood`` and the fix."""
    examples = _real_numbers(examples, what, "a discrete likelihood needs integers")
    needs = (f"the discrete likelihood {likelihood} needs integer data"
             + (f" (8-bit grey levels 0..{highest})" if highest is not None else " (0, 1, 2 ...)"))
    if examples.dtype.kind == "f":
        if not np.isfinite(examples).all():
            raise DataError(f"{what} hold NaN or infinite values; clean the data first.")
        fractional = examples[examples != np.round(examples)]
        if fractional.size:
            raise DataError(f"{needs[0].upper()}{needs[1:]}, but {_lower(what)} hold "
                            f"fractions such as {fractional.flat[0]:g}: store whole numbers "
                            f"(uint8 grey levels), or use a continuous likelihood "
                            f"({_CONTINUOUS}).")
    low, high = examples.min(), examples.max()
    if low < 0 or (highest is not None and high > highest):
        raise DataError(f"{needs[0].upper()}{needs[1:]}, but {_lower(what)} range from "
                        f"{low:g} to {high:g}: shift or rescale them into that range.")
    return examples.astype(np.float32)


def to_vectors(vectors, kind, what="The vectors", likelihood=""):
    """Flat vectors [N, d] as float32, used as they are (never rescaled): checked to be finite,
    in [0, 1] for "binary"/"unit_interval", whole numbers >= 0 for "levels"."""
    if kind == "levels":
        return to_levels(vectors, what, likelihood)
    vectors = _real_numbers(vectors, what, "tabular data must be numbers")
    if not np.isfinite(vectors).all():
        raise DataError(f"{what} hold NaN or infinite values; clean the data first.")
    low, high = vectors.min(), vectors.max()
    if kind in ("binary", "unit_interval") and (low < 0 or high > 1):
        raise DataError(f"The likelihood {likelihood} needs values in [0, 1], but "
                        f"{_lower(what)} range from {low:g} to {high:g}: rescale them to "
                        f"[0, 1], or use a likelihood for real values (normal, laplace).")
    return vectors.astype(np.float32)


def _real_numbers(array, what, rule, unit="values"):
    """``array`` unchanged if it holds real numbers (bool, int, float) and is not empty; else a
    DataError saying what it holds and ``rule``."""
    array = np.asarray(array)
    kind = array.dtype.kind
    if kind not in "biuf":
        described = _DESCRIBED.get(kind, f"{array.dtype} values")
        raise DataError(f"{what} hold {described}; {rule}.")
    if array.size == 0:
        raise DataError(f"{what} have no {unit} (shape {array.shape}).")
    return array


def _lower(what):
    return what[:1].lower() + what[1:]
