"""Hierarchical VAEs under MirroredStrategy: two replicas on the two logical CPUs conftest.py
configures train exactly as one device, for bottom-up (hvae) and top-down (ladder) inference,
the ELBO and the IWAE objective (K=3), a learned prior at the top and the residual merge
(each case about 25 s of CPU: two runs of 12 steps)."""

import json

import numpy as np
import pytest

from keras_vae import train
from tests.helpers import csv_rows, max_abs_difference, model_weights, tiny_train_config

CASES = {
    "hvae-elbo": dict(model="hvae"),
    "ladder-elbo-residual": dict(model="ladder", merge="residual"),
    "ladder-iwae3-mog": dict(model="ladder", objective="iwae", iw_samples=3, prior="mog",
                             prior_components=3),
}


def _config(idx_folder, strategy, options):
    # 60 images in global batches of 10 (5 per replica): even batches, no validation split,
    # as the one-layer test in test_distribute.py (an uneven last batch may share noise rows).
    return tiny_train_config(idx_folder, strategy=strategy, epochs=2, validation_fraction=0,
                             latent_dims=(3, 2), latent_hidden_units=(8,), **options)


@pytest.mark.parametrize("case", list(CASES))
def test_mirrored_hierarchy_trains_as_one_device(case, idx_folder, tmp_path):
    options = CASES[case]
    train.fit(_config(idx_folder, "default", options), tmp_path / "default", verbose=0)
    train.fit(_config(idx_folder, "mirrored", options), tmp_path / "mirrored", verbose=0)
    record = json.loads((tmp_path / "mirrored" / "config.json").read_text())
    assert record["data"]["num_replicas"] == 2 and record["train"]["strategy"] == "mirrored"
    assert record["train"]["latent_dims"] == [3, 2]
    default, mirrored = (model_weights(tmp_path / name) for name in ("default", "mirrored"))
    # 12 Adam steps: replicas that took steps twice as large, or drew the same noise for
    # both halves of a batch, would be ~1e-3 off.
    assert len(default) == len(mirrored)
    assert max_abs_difference(default, mirrored) < 1e-5
    history = {name: csv_rows(tmp_path / name / "history.csv")
               for name in ("default", "mirrored")}
    for key in ("loss", "kl"):
        np.testing.assert_allclose([float(row[key]) for row in history["mirrored"]],
                                   [float(row[key]) for row in history["default"]], rtol=1e-5)
