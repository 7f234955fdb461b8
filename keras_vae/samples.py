"""Samples as values: ``kvae sample --out FILE.npy|FILE.csv`` writes the means of p(x|z) for
draws z ~ p(z) themselves (``data_tables.save_values``) instead of a PNG grid
(``figures.write_samples``). It is the form for flat vectors (tabular data), which have no
picture, and works for images too."""

import pathlib

import numpy as np

from keras_vae.data_tables import VALUE_SUFFIXES, save_values


def writes_values(out):
    """Whether ``out`` names a file of values (.npy or .csv) rather than a picture."""
    return pathlib.Path(out).suffix.lower() in VALUE_SUFFIXES


def write_sample_values(run, out, num, seed):
    """``num`` seeded samples of RUN (a run folder or a .keras file), ``model.sample(num,
    seed)``, written to ``out`` (.npy: the array; .csv: one row per sample). Returns a
    ``figures.Written``."""
    from keras_vae import figures, runs

    values = np.asarray(runs.load_run(run).model.sample(num, seed=seed))
    return figures.Written(save_values(values, out), num)
