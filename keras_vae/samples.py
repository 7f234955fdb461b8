"""What ``kvae sample`` writes: the means of p(x|z) for draws z ~ p(z), as a PNG grid of images
(``figures.sample_grid``) or as the values themselves, ``.npy`` or ``.csv``
(``data_tables.save_values``): the only form for flat vectors (tabular data), which have no
picture."""

import pathlib

import numpy as np

from keras_vae.data_tables import VALUE_SUFFIXES, save_values
from keras_vae.errors import DataError


def write_samples(run, out, num, seed):
    """``num`` seeded samples of RUN (a run folder or a .keras file) written to ``out``: a PNG
    grid, or the values for an ``out`` ending in .npy or .csv (one row per sample). A model of
    flat vectors refuses a PNG. Returns a ``figures.Written``."""
    from keras_vae import figures, plots, runs

    model = runs.load_run(run).model
    if pathlib.Path(out).suffix.lower() in VALUE_SUFFIXES:
        values = np.asarray(model.sample(num, seed=seed))
        return figures.Written(save_values(values, out), num)
    if len(model.image_shape) == 1:
        raise DataError(f"{run} models vectors of {model.image_shape[0]} values, which have no "
                        f"picture: pass --out samples.csv or --out samples.npy to write the "
                        f"sampled values.")
    return figures.Written(plots.save_png(figures.sample_grid(model, num, seed), out), num)
