"""Tabular data: a CSV file of numeric columns -> flat vectors [N, d] (+ class labels), and
vectors written back as ``.csv`` or ``.npy`` (``kvae sample --out samples.csv``).

The CSV format read here (RFC 4180, comma-separated, UTF-8):

- the first line names the columns. It is required: it is how an error names a column and
  how ``label_column`` finds one; a first line of numbers is refused rather than guessed at;
- every further non-blank line is one example, one value per column: integers or decimals
  (``3``, ``-0.25``, ``1e-3``). Text, empty fields (missing values), ``nan`` and ``inf`` are
  refused with an error naming the line and the column: the likelihoods have no notion of a
  missing value, so filling or dropping them is the user's decision;
- ``label_column`` names a column of class labels (whole numbers, or names numbered in sorted
  order); it is not modelled, it colours ``kvae latent-plot``.

Like an image folder, the file is one set: a seeded random 10% is held out as the test split
(``data_files.hold_out_test``). Values are used as they are (no rescaling); whether they suit
the likelihood is ``data_values``' check.
"""

import csv
import math
import pathlib

import numpy as np

from keras_vae.data_files import hold_out_test
from keras_vae.errors import ConfigError, DataError

VALUE_SUFFIXES = (".csv", ".npy")  # files of values that ``save_values`` writes


def load_csv(path, label_column=None, test_fraction=0.1, seed=0):
    """{split: (vectors float64 [N, d], labels int64 [N] or None)} from the CSV ``path``."""
    path = pathlib.Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            rows = [(number, row) for number, row in enumerate(csv.reader(file), start=1)
                    if any(field.strip() for field in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"Cannot read {path} as CSV: {error}.") from None
    if not rows:
        raise DataError(f"{path} is empty; a CSV source needs a header row naming its columns, "
                        f"then one row per example.")
    header_line, header = rows[0][0], _column_names(path, rows[0][0], rows[0][1])
    rows = rows[1:]
    if len(rows) < 2:
        raise DataError(f"{path} has {len(rows)} example rows; it needs at least 2 (one is "
                        f"held out for testing).")
    label_index = None
    if label_column is not None:
        if label_column not in header:
            raise DataError(f"{path} has no column {label_column!r} (--label-column); its "
                            f"columns are {', '.join(header)}.")
        label_index = header.index(label_column)
    features = [index for index in range(len(header)) if index != label_index]
    if not features:
        raise DataError(f"{path} has no column to model besides the label column "
                        f"{label_column!r}.")
    values = np.empty((len(rows), len(features)), np.float64)
    raw_labels = []
    for example, (number, row) in enumerate(rows):
        if len(row) != len(header):
            raise DataError(f"{path} line {number} has {len(row)} values but line "
                            f"{header_line} names {len(header)} columns; give every row one "
                            f"value per column.")
        for position, index in enumerate(features):
            values[example, position] = _number(path, number, header[index], row[index])
        if label_index is not None:
            raw_labels.append(_present(path, number, label_column, row[label_index],
                                       "give every example a label, or leave out "
                                       "--label-column."))
    labels = _class_indices(raw_labels) if label_index is not None else None
    return hold_out_test(values, labels, test_fraction, seed)


def _column_names(path, line, row):
    names = [field.strip() for field in row]
    if all(_is_number(name) for name in names):
        raise DataError(f"{path} line {line} holds numbers, not column names: a CSV source needs a "
                        f"header row naming its columns; add one.")
    for position, name in enumerate(names, start=1):
        if not name:
            raise DataError(f"{path} line {line}: column {position} has no name; name every column "
                            f"(pandas writes its index unnamed: use to_csv(index=False)).")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"{path} line {line} names the column {repeated[0]!r} more than once; give "
                        f"every column its own name.")
    return names


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _present(path, line, column, text, fix):
    """``text`` stripped, or a DataError naming the empty field and ``fix``."""
    text = text.strip()
    if not text:
        raise DataError(f"{path} line {line}, column {column!r} is empty: {fix}")
    return text


def _number(path, line, column, text):
    """``text`` as a finite float, or a DataError naming the file, line and column."""
    text = _present(path, line, column, text, "missing values are not supported; fill them "
                                              "in or drop the row.")
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{path} line {line}, column {column!r} holds {text!r}, not a number: "
                        f"every column must be numeric; encode it as numbers (for example "
                        f"one-hot columns), drop it, or name it with --label-column.") from None
    if not math.isfinite(value):
        raise DataError(f"{path} line {line}, column {column!r} holds {text!r}: missing or "
                        f"infinite values are not supported; fill them in or drop the row.")
    return value


def _class_indices(labels):
    """Labels as int64 class indices: whole numbers as they are; otherwise each distinct name
    numbered in sorted order."""
    try:
        numbers = np.array([float(label) for label in labels])
        if np.all(np.isfinite(numbers)) and np.array_equal(numbers, np.round(numbers)):
            return numbers.astype(np.int64)
    except ValueError:
        pass
    names = sorted(set(labels))
    return np.array([names.index(label) for label in labels], np.int64)


def save_values(values, path):
    """Writes ``values`` [N, ...] to ``path``: ``.npy`` (the array as it is) or ``.csv`` (one
    row per example, its values flattened, under a header x0, x1, ...), atomically, creating
    missing folders. ConfigError for another suffix or a path that cannot be written."""
    from keras_vae.files import replace_atomically

    path = pathlib.Path(path)
    values = np.asarray(values)
    suffix = path.suffix.lower()
    if suffix not in VALUE_SUFFIXES:
        raise ConfigError(f"{path}: values are written as {' or '.join(VALUE_SUFFIXES)}; "
                          f"choose one of these suffixes.")
    if suffix == ".npy":
        def write(file):
            np.save(file, values)
    else:
        flat = values.reshape(len(values), -1)

        def write(file):
            file.write(",".join(f"x{index}" for index in range(flat.shape[1])) + "\n")
            np.savetxt(file, flat, delimiter=",", fmt="%.9g")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_atomically(path, write, mode="wb" if suffix == ".npy" else "w")
    except OSError as error:
        raise ConfigError(f"Cannot write {path}: {error.strerror or error}; choose another "
                          f"path (--out).") from None
    return path
