"""Pictures of training and of rate against distortion (keras_vae/figures_training.py): the
curves drawn are the numbers of history.csv and latent_history.csv, the rate-distortion points
those of metrics.json, and the iso-lines have D + R constant."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from keras_vae import figures, figures_training, runs
from keras_vae.errors import RunError

COLUMNS = ["epoch", "elbo", "kl", "loss", "reconstruction", "kl_weight", "val_elbo", "val_kl",
           "val_loss", "val_reconstruction"]


def _write_csv(path, columns, rows):
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        writer.writerows(rows)


def _history(folder, num_epochs=6, latent_dim=None):
    """A run folder with a history.csv of a warm-up run (and a latent_history.csv); returns
    the columns written."""
    rng = np.random.default_rng(0)
    epochs = np.arange(num_epochs)
    columns = {"epoch": epochs, "reconstruction": 150 - 10 * epochs + rng.random(num_epochs),
               "kl": 5 + epochs + rng.random(num_epochs),
               "kl_weight": np.minimum(1.0, epochs / 3)}
    columns["elbo"] = -(columns["reconstruction"] + columns["kl"])
    columns["loss"] = columns["reconstruction"] + columns["kl_weight"] * columns["kl"]
    for name in ("elbo", "kl", "loss", "reconstruction"):
        columns[f"val_{name}"] = columns[name] * 1.01
    _write_csv(folder / runs.HISTORY, COLUMNS,
               np.column_stack([columns[name] for name in COLUMNS]).tolist())
    if latent_dim:
        kl = np.outer(epochs + 1, np.linspace(1, 0, latent_dim))  # the last one collapsed
        active = (kl > 0.01).sum(axis=1)
        _write_csv(folder / runs.LATENT_HISTORY, ["epoch", "active_units",
                                                  *(f"kl_dim_{i}" for i in range(latent_dim))],
                   np.column_stack([epochs, active, kl]).tolist())
        columns["kl_per_dimension"], columns["active_units"] = kl, active
    return columns


def _lines(figure):
    """{(axes title, legend label): (x, y)} of every line drawn."""
    return {(axes.get_title(), line.get_label()): (line.get_xdata(), line.get_ydata())
            for axes in figure.axes for line in axes.get_lines()}


def test_training_curves_are_the_numbers_of_history_csv(tmp_path):
    written = _history(tmp_path, latent_dim=4)
    history = figures_training.read_csv_columns(tmp_path / runs.HISTORY)
    latent = figures_training.read_latent_history(tmp_path / runs.LATENT_HISTORY)
    figure, plotted = figures_training.training_figure(history, latent)
    lines = _lines(figure)
    epochs = np.arange(1, 7)
    expected = {
        ("-ELBO and loss (nats per example)", "-ELBO, training"): -written["elbo"],
        ("-ELBO and loss (nats per example)", "-ELBO, validation"): -written["val_elbo"],
        ("-ELBO and loss (nats per example)", "loss, training"): written["loss"],
        ("-ELBO and loss (nats per example)", "loss, validation"): written["val_loss"],
        ("Reconstruction -log p(x|z) (nats)", "training"): written["reconstruction"],
        ("Reconstruction -log p(x|z) (nats)", "validation"): written["val_reconstruction"],
        ("KL(q(z|x) || p(z)) (nats)", "training"): written["kl"],
        ("KL(q(z|x) || p(z)) (nats)", "validation"): written["val_kl"],
        ("KL weight (beta)", "KL weight"): written["kl_weight"],
        ("Active units: Var_x(E_q[z_i]) > 0.01", "active units"): written["active_units"],
    }
    for key, values in expected.items():
        x, y = lines[key]
        np.testing.assert_allclose(x, epochs, err_msg=str(key))
        np.testing.assert_allclose(y, values, rtol=1e-12, err_msg=str(key))
        np.testing.assert_allclose(plotted[key[0]][key[1]][1], values, rtol=1e-12)
    # KL per dimension: a heat map, dimensions by final KL (largest first) against epochs
    heat_axes = next(a for a in figure.axes if a.get_title().startswith("KL per latent"))
    image = heat_axes.get_images()[0].get_array()
    np.testing.assert_allclose(image, written["kl_per_dimension"].T, rtol=1e-12)
    np.testing.assert_allclose(plotted[figures_training.COLLAPSE_TITLE]["3"][1],
                               written["kl_per_dimension"][:, 3])


def test_without_latent_history_or_warm_up_the_figure_says_so(tmp_path):
    _history(tmp_path)
    history = figures_training.read_csv_columns(tmp_path / runs.HISTORY)
    del history["kl_weight"]
    figure, plotted = figures_training.training_figure(history, None, kl_weight=0.5)
    texts = [text.get_text() for axes in figure.axes for text in axes.texts]
    assert any(text.startswith("latent_history.csv is absent") for text in texts)
    np.testing.assert_allclose(plotted["KL weight (beta)"]["constant: no warm-up"][1], 0.5)
    figure, _ = figures_training.training_figure(history, None)
    texts = [text.get_text() for axes in figure.axes for text in axes.texts]
    assert any(text.startswith("no warm-up") for text in texts)


def test_training_plot_png_of_the_shipped_history(tmp_path):
    from tests.test_shipped_model import SHIPPED

    written = figures.write_training_plot(SHIPPED, tmp_path / "training.png")
    assert written.count == 121
    with Image.open(written.path) as png:
        assert png.size == (1500, 860)
    figure, plotted = figures_training.training_figure(
        figures_training.read_csv_columns(SHIPPED / runs.HISTORY))
    with open(SHIPPED / runs.HISTORY, newline="") as file:
        rows = list(csv.DictReader(file))
    np.testing.assert_allclose(plotted["Reconstruction -log p(x|z) (nats)"]["training"][1],
                               [float(row["reconstruction"]) for row in rows])


def test_unreadable_histories_are_one_line_errors(tmp_path):
    with pytest.raises(RunError, match="does not exist: the run has no per-epoch record"):
        figures_training.read_csv_columns(tmp_path / runs.HISTORY)
    (tmp_path / runs.HISTORY).write_text("epoch,elbo\n0,abc\n")
    with pytest.raises(RunError, match="not a number"):
        figures_training.read_csv_columns(tmp_path / runs.HISTORY)
    _write_csv(tmp_path / runs.LATENT_HISTORY, ["epoch", "kl_dim_0"], [[0, 1.0]])
    with pytest.raises(RunError, match="lacks the columns active_units"):
        figures_training.read_latent_history(tmp_path / runs.LATENT_HISTORY)
    with pytest.raises(RunError, match="is not a run folder"):
        figures.write_training_plot(tmp_path / "nothing", tmp_path / "t.png")


# ------------------------------------------------------------------ rate and distortion


def test_rate_distortion_points_and_equal_elbo_lines():
    points = [figures_training.RatePoint("beta-0.5", 40.0, 60.0, 0.5),
              figures_training.RatePoint("beta-1", 25.0, 70.0, 1.0),
              figures_training.RatePoint("beta-2", 12.0, 90.0, 2.0)]
    figure, levels = figures_training.rate_distortion_figure(points)
    axes = figure.axes[0]
    drawn = np.concatenate([c.get_offsets() for c in axes.collections])
    np.testing.assert_allclose(drawn, [[60, 40], [70, 25], [90, 12]])  # x: D, y: R
    assert [text.get_text() for text in axes.texts][:3] == [
        "beta-0.5 (beta=0.5)", "beta-1 (beta=1)", "beta-2 (beta=2)"]
    lines = axes.get_lines()
    assert len(lines) == len(levels) >= 3
    for line, level in zip(lines, levels):
        np.testing.assert_allclose(np.add(line.get_xdata(), line.get_ydata()), level)
    assert min(levels) < 95 and max(levels) > 102  # the lines span the points' -ELBO
    assert "distortion" in axes.get_xlabel() and "rate" in axes.get_ylabel()


def test_rate_point_reads_metrics_json_without_loading_the_model(tmp_path, monkeypatch):
    run = tmp_path / "beta-2"
    run.mkdir()
    (run / runs.METRICS).write_text(json.dumps({"kl": 12.5, "reconstruction": 80.25}))
    (run / runs.CONFIG).write_text(json.dumps({"train": {"kl_weight": 2.0}}))
    monkeypatch.setattr(runs, "load_run", lambda *args: pytest.fail("loaded the model"))
    point, evaluated = figures.rate_point(run)
    assert (point.name, point.rate, point.distortion, point.kl_weight, evaluated) == (
        "beta-2", 12.5, 80.25, 2.0, False)


def test_rate_point_of_the_shipped_model_is_its_metrics_json(tmp_path):
    from tests.test_shipped_model import SHIPPED

    point, evaluated = figures.rate_point(SHIPPED)
    metrics = json.loads((SHIPPED / runs.METRICS).read_text())
    assert not evaluated and point.rate == metrics["kl"]
    assert point.distortion == metrics["reconstruction"] and point.kl_weight == 1.0
    written = figures.write_rate_distortion([point], tmp_path / "rd.png")
    with Image.open(written.path) as png:
        assert png.size == (900, 720)
