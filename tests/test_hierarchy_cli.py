"""The kvae commands on hierarchical runs (issue 22): `kvae fit --model hvae|ladder` records its
options, reports KL and active units per layer in the epoch line, latent_history.csv and
TensorBoard, and resumes; `kvae evaluate` writes per-layer figures equal to a direct
computation; `kvae info` shows the layers of a run and of a bare .keras file; every picture
command works on a hierarchy and refuses a layer it does not have in one line."""

import json
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_vae import runs, train
from keras_vae.callbacks.latent_monitor import DIAGNOSTICS_SEED
from tests.helpers import csv_rows, interrupt_after_epoch, write_idx_folder
from tests.test_cli import assert_one_line_error, run_kvae
from tests.test_latent_monitor import _events

SIZES = {"z1": 6, "z2": 3}


def _hierarchy_arguments(data_dir, output, model, *extra):
    return ["fit", "--model", model, "--dataset", "custom", "--data-dir", data_dir,
            "--hidden-units", "16", "--latent-dims", "6,3", "--latent-hidden-units", "8",
            "--batch-size", "10", "--learning-rate-schedule", "constant", "--output", output,
            *extra]


def _epoch_lines(out):
    return [line for line in out.splitlines() if line.startswith("Epoch ")]


def _validation_images(run):
    config = runs.load_run(run).config
    return np.concatenate([np.asarray(batch) for batch in runs.load_splits(config).validation])


@pytest.mark.parametrize("model, inference", [("hvae", "bottom_up"), ("ladder", "top_down")])
def test_fit_reports_each_layer_and_resumes(model, inference, monkeypatch, capsys, tmp_path):
    write_idx_folder(tmp_path, num_train=120, num_test=20, size=8)
    run = tmp_path / "run"
    status, out, err = run_kvae(monkeypatch, capsys, *_hierarchy_arguments(
        tmp_path, run, model, "--epochs", "2"))
    assert status == 0, err
    record = json.loads((run / runs.CONFIG).read_text())["train"]
    assert (record["model"], record["latent_dims"], record["latent_hidden_units"],
            record["merge"], record["latent_dim"]) == (model, [6, 3], [8], "precision", 6)
    loaded = runs.load_run(run)
    assert loaded.model.inference == inference and dict(loaded.model.latent_sizes) == SIZES

    # latent_history.csv: per layer, the monitor's figures of the final weights
    rows = csv_rows(run / runs.LATENT_HISTORY)
    assert list(rows[0]) == ["epoch", "active_units", "active_units_z1", "active_units_z2",
                             *[f"kl_z1_dim_{i}" for i in range(6)],
                             *[f"kl_z2_dim_{i}" for i in range(3)]]
    images = _validation_images(run)
    layers = loaded.model.latent_diagnostics(images, seed=tf.constant(DIAGNOSTICS_SEED,
                                                                      tf.int64))
    for name, size in SIZES.items():
        kl = np.asarray(layers[name].kl_per_dimension, np.float64).mean(axis=0)
        np.testing.assert_allclose([float(rows[-1][f"kl_{name}_dim_{i}"]) for i in range(size)],
                                   kl, rtol=1e-4, atol=1e-6)
        variance = np.asarray(layers[name].posterior_mean, np.float64).var(axis=0)
        assert int(rows[-1][f"active_units_{name}"]) == int(np.sum(variance > 0.01))
    assert int(rows[-1]["active_units"]) == sum(int(rows[-1][f"active_units_{name}"])
                                                for name in SIZES)

    # the epoch line: each layer's KL (history.csv) and active units (latent_history.csv)
    history = csv_rows(run / runs.HISTORY)
    lines = _epoch_lines(out)
    assert len(lines) == 2 and "active_units_z" not in out
    for line, row, latent in zip(lines, history, rows):
        assert line.endswith(f"active units z1 {latent['active_units_z1']}/6, z2 "
                             f"{latent['active_units_z2']}/3"), line
        for name in ("kl_z1", "kl_z2", "val_kl_z1", "val_kl_z2"):
            assert re.search(rf", {name} {float(row[name]):.6g},", line), (name, line)
        np.testing.assert_allclose(float(row["kl_z1"]) + float(row["kl_z2"]), float(row["kl"]),
                                   rtol=1e-5)
    # TensorBoard: each layer's active units and KL, as in the CSV
    events = _events(run / runs.LOGS / "latent")
    assert {"samples_from_prior", "reconstructions"} <= set(events)
    for name, size in SIZES.items():
        assert events[f"active_units/{name}"][1] == float(rows[-1][f"active_units_{name}"])
        np.testing.assert_allclose(events[f"kl/{name}"][1], sum(
            float(rows[-1][f"kl_{name}_dim_{i}"]) for i in range(size)), rtol=1e-5)

    # --resume with more epochs continues the run: its rows kept, one more epoch of each
    status, out, err = run_kvae(monkeypatch, capsys, *_hierarchy_arguments(
        tmp_path, run, model, "--epochs", "3", "--resume"))
    assert status == 0, err
    assert [line.split(":")[0] for line in _epoch_lines(out)] == ["Epoch 3/3"]
    resumed = csv_rows(run / runs.LATENT_HISTORY)
    assert [int(row["epoch"]) for row in resumed] == [0, 1, 2] and resumed[:2] == rows
    assert [int(row["epoch"]) for row in csv_rows(run / runs.HISTORY)] == [0, 1, 2]
    assert json.loads((run / runs.CONFIG).read_text())["train"]["epochs"] == 3


@pytest.fixture(scope="module")
def hierarchy_run(tmp_path_factory):
    """A two-epoch bottom-up hierarchy (z1 of 6, z2 of 3) trained on 120 random 8x8 images,
    interrupted (Ctrl-C) after its first epoch and resumed."""
    folder = tmp_path_factory.mktemp("hierarchy")
    write_idx_folder(folder, num_train=120, num_test=30, size=8)
    config = train.TrainConfig(model="hvae", dataset="custom", data_dir=str(folder),
                               hidden_units=(16,), latent_dims=(6, 3),
                               latent_hidden_units=(8,), batch_size=10, epochs=2)
    with pytest.raises(KeyboardInterrupt):
        train.fit(config, folder / "run", verbose=0, callbacks=[interrupt_after_epoch(0)])
    train.fit(config, folder / "run", resume=True, verbose=0)
    return folder / "run"


def test_an_interrupted_hierarchy_resumes_where_it_stopped(hierarchy_run):
    for name in (runs.HISTORY, runs.LATENT_HISTORY):
        assert [int(row["epoch"]) for row in csv_rows(hierarchy_run / name)] == [0, 1]
    assert "kl_z2" in csv_rows(hierarchy_run / runs.HISTORY)[0]
    assert not runs.partial_dir(hierarchy_run).exists()


def test_evaluate_writes_per_layer_figures_equal_to_a_direct_computation(
        hierarchy_run, monkeypatch, capsys):
    status, out, err = run_kvae(monkeypatch, capsys, "evaluate", hierarchy_run,
                                "--iw-samples", "4", "--batch-size", "10", "--seed", "3")
    assert status == 0, err
    metrics = runs.read_metrics(hierarchy_run)
    loaded = runs.load_run(hierarchy_run)
    model, (images, _, _) = loaded.model, runs.test_images(loaded)
    batches = [images[start:start + 10] for start in range(0, len(images), 10)]
    # Each layer's share of the rate: ELBOTerms.layer_kl at the draws of the ELBO reported,
    # batch b drawn from the stateless seed [seed, b]; the shares sum to the rate.
    terms = [model.elbo_terms(x, seed=tf.constant([3, b], tf.int64))
             for b, x in enumerate(batches)]
    diagnostics = [model.latent_diagnostics(x, seed=tf.constant([3, 1], tf.int64))
                   for x in batches]
    for name, size in SIZES.items():
        layer = metrics["layers"][name]
        kl = np.concatenate([np.asarray(t.layer_kl[name], np.float64) for t in terms])
        np.testing.assert_allclose(layer["kl"], kl.mean(), rtol=1e-5)
        per_dimension = np.concatenate([np.asarray(d[name].kl_per_dimension, np.float64)
                                        for d in diagnostics])
        np.testing.assert_allclose(layer["kl_per_dimension"], per_dimension.mean(0),
                                   rtol=1e-4, atol=1e-6)
        means = np.concatenate([np.asarray(d[name].posterior_mean, np.float64)
                                for d in diagnostics])
        assert layer["active_units"] == int(np.sum(means.var(0) > 0.01))
        assert len(layer["kl_per_dimension"]) == size
        assert re.search(rf"^  kl {name} +{layer['kl']:.3f}   active units "
                         rf"{layer['active_units']} of {size}$", out, re.MULTILINE), out
    np.testing.assert_allclose(sum(metrics["layers"][n]["kl"] for n in SIZES), metrics["kl"],
                               rtol=1e-5)
    assert metrics["active_units"] == sum(metrics["layers"][n]["active_units"] for n in SIZES)
    # The IWAE estimate over every layer: log mean_k w_k of the model's log weights, draw k
    # of batch b from [seed, b K + k].
    estimates = []
    for b, x in enumerate(batches):
        log_weights = np.asarray(model.log_importance_weights(
            x, 4, tf.constant([3, b * 4], tf.int64)), np.float64)
        estimates.append(np.logaddexp.reduce(log_weights, axis=0) - np.log(4))
    np.testing.assert_allclose(metrics["log_likelihood"], np.concatenate(estimates).mean(),
                               rtol=1e-5)


def test_info_shows_the_layers_of_a_run_and_of_a_bare_keras_file(hierarchy_run, monkeypatch,
                                                                   capsys):
    layers = "latent layers z1 6, z2 3 (bottom-up inference, 8 units between two layers)"
    for target in (hierarchy_run, hierarchy_run / runs.MODEL):
        status, out, err = run_kvae(monkeypatch, capsys, "info", target)
        assert status == 0, err
        assert layers in out and "latent_dim" not in out.splitlines()[1], out
    described = runs.describe(runs.load_run(hierarchy_run / runs.MODEL))["model"]
    assert (described["latent_sizes"], described["inference"], described["latent_dim"]) == (
        SIZES, "bottom_up", 6)


def _png_shape(path):
    return np.asarray(Image.open(path)).shape


@pytest.mark.parametrize("command, count", [
    (["sample", "--num", "6"], "Wrote 6 samples"),
    (["reconstruct", "--num", "5"], "Wrote 5 reconstructions"),
    (["interpolate", "--steps", "4", "--pairs", "2"], "Wrote 2 interpolations of 4 steps"),
    (["interpolate", "--steps", "4", "--pairs", "2", "--layer", "z2"],
     "Wrote 2 interpolations of 4 steps"),
    (["latent-plot", "--layer", "z2"], "Wrote the posterior means of 30 test examples"),
    (["traverse", "--layer", "z2", "--dims", "2", "--steps", "3"],
     "Wrote traversals of 2 latent dimensions"),
    (["traverse", "--dims", "5", "--steps", "3"], "Wrote traversals of 5 latent dimensions"),
    (["training-plot"], "Wrote the curves of 2 epochs"),
])
def test_every_picture_command_works_on_a_hierarchy(command, count, hierarchy_run,
                                                    monkeypatch, capsys, tmp_path):
    out_path = tmp_path / "picture.png"
    status, out, err = run_kvae(monkeypatch, capsys, command[0], hierarchy_run, *command[1:],
                                "--out", out_path)
    assert status == 0, err
    assert count in out and _png_shape(out_path)[0] > 10


@pytest.mark.parametrize("command", ["latent-plot", "traverse", "interpolate"])
def test_a_layer_the_model_lacks_is_one_line(command, hierarchy_run, monkeypatch, capsys,
                                             tmp_path):
    status, _, err = run_kvae(monkeypatch, capsys, command, hierarchy_run, "--layer", "z3",
                              "--out", tmp_path / "picture.png")
    assert_one_line_error(status, err, r"no latent layer 'z3'; its layers: z1, z2 \(--layer\)")
    assert not (tmp_path / "picture.png").exists()
