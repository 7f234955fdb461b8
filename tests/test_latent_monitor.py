"""LatentMonitor (callbacks/latent_monitor.py, tensorboard_writer.py): the KL per latent
dimension and the active units it reports are the closed forms on its fixed images; they reach
TensorBoard, latent_history.csv (kept once per epoch across resumes) and kvae fit's epoch line;
the sample grid repeats while the weights do; it works in a plain model.fit, under
MirroredStrategy, and writes nothing on a worker that is not the chief."""

import io
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import keras_vae as kv
from keras_vae import distribute, figures, runs, train
from keras_vae.callbacks import LatentMonitor, latent_monitor
from keras_vae.errors import DataError
from tests.helpers import (csv_rows, interrupt_after_epoch, prototype_images,
                           tiny_train_config, write_idx_folder)
from tests.test_cli import _fit_arguments, run_kvae


def _model(latent_dim=3):
    model = kv.VAE(input_shape=(8, 8, 1), latent_dim=latent_dim, hidden_units=(16,))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def _events(folder):
    """{tag: {step: value}} of the TensorBoard run in ``folder`` (the last value written at a
    step): scalars as floats, images as uint8 arrays decoded from their PNG."""
    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    found = {}
    for tag in accumulator.Tags()["tensors"]:
        for event in accumulator.Tensors(tag):
            proto = event.tensor_proto
            if proto.string_val:  # an image: width, height, PNG bytes
                value = np.asarray(Image.open(io.BytesIO(proto.string_val[2])))
            else:
                value = tf.make_ndarray(proto)
                value = float(value) if value.ndim == 0 else value
            found.setdefault(tag, {})[event.step] = value
    return found


def _closed_form_kl_per_dimension(model, images):
    """KL(q(z_i|x) || N(0, 1)) = 0.5 (sigma_i^2 + mu_i^2 - 1 - log sigma_i^2), nats, averaged
    over the images, from the posterior's own mean and standard deviation (float64)."""
    q = model.encode(images)
    mu = q.mean().numpy().astype(np.float64)
    sigma = q.stddev().numpy().astype(np.float64)
    return (0.5 * (sigma**2 + mu**2 - 1 - np.log(sigma**2))).mean(axis=0)


def _kl_written(events, step, latent_dim):
    return np.array([events[f"kl_per_dimension/{i}"][step] for i in range(latent_dim)])


def _row_figures(row, latent_dim):
    return int(row["active_units"]), np.array([float(row[f"kl_dim_{i}"])
                                               for i in range(latent_dim)])


def test_kl_per_dimension_is_the_closed_form_on_the_fixed_images_in_a_plain_fit(tmp_path):
    train_images, _ = prototype_images(200, seed=1)
    validation, _ = prototype_images(400, seed=2)
    model = _model()
    # 300 of the 400 validation images: two calls of the compiled function (250 + 50).
    monitor = LatentMonitor(validation, log_dir=tmp_path / "logs",
                            history_file=tmp_path / "latent.csv", num_images=300)
    history = model.fit(train_images, validation_data=validation, batch_size=20, epochs=1,
                        verbose=0, callbacks=[monitor])
    expected = _closed_form_kl_per_dimension(model, validation[:300])  # the final weights
    assert expected.min() > 1e-3  # every dimension in use: a real comparison
    events = _events(tmp_path / "logs" / "latent")
    np.testing.assert_allclose(_kl_written(events, 0, 3), expected, rtol=1e-5)
    np.testing.assert_allclose(events["kl"][0], expected.sum(), rtol=1e-5)
    # KL per dimension, not per image: the first 300 images, not all 400.
    assert not np.allclose(_closed_form_kl_per_dimension(model, validation), expected,
                           rtol=1e-5)
    (row,) = csv_rows(tmp_path / "latent.csv")
    assert list(row) == ["epoch", "active_units", "kl_dim_0", "kl_dim_1", "kl_dim_2"]
    active, kl = _row_figures(row, 3)
    np.testing.assert_allclose(kl, expected, rtol=1e-6)
    assert history.history["active_units"] == [active] == [int(events["active_units"][0])]


def test_active_units_count_posterior_means_that_vary_more_than_0_01(tmp_path):
    images, _ = prototype_images(500, seed=3)
    model = _model(latent_dim=4)
    model.encode(images[:1])  # builds the head
    kernel, bias = (w.copy() for w in model.encoder.head.get_weights())
    # The head's first 4 outputs are the posterior means. Dimension 3 varies widely; 1 and 2
    # are dimension 3 scaled to a variance of 0.005 and 0.02 (either side of 0.01); 0 is
    # constant. By hand: 2 active units (dimensions 2 and 3).
    kernel[:, 3] *= 30
    model.encoder.head.set_weights([kernel, bias])
    variance = np.var(model.encode(images).mean().numpy()[:, 3].astype(np.float64))
    assert variance > 0.1
    kernel[:, 0] = 0
    kernel[:, 1] = kernel[:, 3] * np.sqrt(0.005 / variance)
    kernel[:, 2] = kernel[:, 3] * np.sqrt(0.02 / variance)
    model.encoder.head.set_weights([kernel, bias])

    monitor = LatentMonitor(images, log_dir=tmp_path / "logs",
                            history_file=tmp_path / "latent.csv")
    monitor.set_model(model)
    monitor.on_train_begin()
    logs = {}
    monitor.on_epoch_end(0, logs)
    assert logs["active_units"] == 2
    assert int(_events(tmp_path / "logs" / "latent")["active_units"][0]) == 2
    assert csv_rows(tmp_path / "latent.csv")[0]["active_units"] == "2"


def test_the_images_have_the_grid_sizes_and_the_prior_grid_repeats_while_weights_do(tmp_path):
    images, _ = prototype_images(50, seed=4)
    model = _model()
    monitor = LatentMonitor(images, log_dir=tmp_path / "logs", num_samples=9,
                            num_reconstructions=5, seed=7)
    monitor.set_model(model)
    monitor.on_train_begin()
    monitor.on_epoch_end(0, {})
    monitor.on_epoch_end(1, {})  # no training in between: the same weights
    events = _events(tmp_path / "logs" / "latent")
    samples, reconstructions = events["samples_from_prior"], events["reconstructions"]
    np.testing.assert_array_equal(samples[0], samples[1])
    # The grids figures.py draws (plots.image_grid): 3 x 3 samples from the prior drawn with
    # seed 7; 5 fixed images above their 5 reconstructions.
    np.testing.assert_array_equal(samples[0], np.asarray(figures.sample_grid(model, 9, 7)))
    assert not np.array_equal(samples[0], np.asarray(figures.sample_grid(model, 9, 8)))
    np.testing.assert_array_equal(
        reconstructions[1], np.asarray(figures.reconstruction_grid(model, images[:5])))
    height, width = samples[0].shape[:2]
    assert height == width > 3 * 8  # three cells of 8 pixels, with padding, scaled
    height, width = reconstructions[0].shape[:2]
    assert width > 5 * 8 and height > 2 * 8 and abs(width / height - 5 / 2) < 0.3


def test_latent_history_equals_tensorboard_and_keeps_each_epoch_once_on_resume(tmp_path):
    train_images, _ = prototype_images(100, seed=5)
    validation, _ = prototype_images(60, seed=6)
    path, logs = tmp_path / runs.LATENT_HISTORY, tmp_path / "logs"
    model = _model()
    model.fit(train_images, batch_size=20, epochs=3, verbose=0,
              callbacks=[LatentMonitor(validation, log_dir=logs, history_file=path)])
    first = csv_rows(path)
    events = _events(logs / "latent")
    assert [int(row["epoch"]) for row in first] == [0, 1, 2]
    for row in first:
        epoch = int(row["epoch"])
        active, kl = _row_figures(row, 3)
        np.testing.assert_allclose(kl, _kl_written(events, epoch, 3), rtol=1e-6)
        assert active == int(events["active_units"][epoch])
    # Resumed from a checkpoint of 2 epochs: the row of epoch 2 goes as training begins,
    # then epochs 2 and 3 are written once each.
    resumed = LatentMonitor(validation, history_file=path, initial_epoch=2)
    resumed.set_model(model)
    resumed.on_train_begin()
    assert [int(row["epoch"]) for row in csv_rows(path)] == [0, 1]
    model.fit(train_images, batch_size=20, epochs=4, initial_epoch=2, verbose=0,
              callbacks=[resumed])
    rows = csv_rows(path)
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2, 3] and rows[:2] == first[:2]
    # A user's resumed fit that does not say initial_epoch repeats epoch 3 once, not twice.
    model.fit(train_images, batch_size=20, epochs=4, initial_epoch=3, verbose=0,
              callbacks=[LatentMonitor(validation, history_file=path)])
    assert [int(row["epoch"]) for row in csv_rows(path)] == [0, 1, 2, 3]


def test_kvae_fit_keeps_the_latent_history_in_step_with_history_csv(idx_folder, tmp_path):
    run = tmp_path / "run"
    config = tiny_train_config(idx_folder, learning_rate_schedule="constant")
    with pytest.raises(KeyboardInterrupt):
        train.fit(config, run, verbose=0, callbacks=[interrupt_after_epoch(0)])
    # Resumed with the TensorBoard logs off: allowed, it changes no figure.
    train.fit(tiny_train_config(idx_folder, learning_rate_schedule="constant",
                                tensorboard=False), run, resume=True, verbose=0)
    assert [int(r["epoch"]) for r in csv_rows(run / runs.LATENT_HISTORY)] == [0, 1]
    # A complete run trained further carries its latent history over.
    train.fit(tiny_train_config(idx_folder, learning_rate_schedule="constant", epochs=3), run,
              resume=True, verbose=0)
    rows = csv_rows(run / runs.LATENT_HISTORY)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2] == [
        int(r["epoch"]) for r in csv_rows(run / runs.HISTORY)]
    # The last row is the final model's KL per dimension on the validation images.
    model = keras.models.load_model(run / runs.MODEL)
    splits = runs.load_splits(config)
    validation = np.concatenate([np.asarray(batch) for batch in splits.validation])
    np.testing.assert_allclose(_row_figures(rows[-1], 2)[1],
                               _closed_form_kl_per_dimension(model, validation), rtol=1e-5)


def test_no_tensorboard_writes_no_logs_and_is_recorded(idx_folder, tmp_path):
    run = tmp_path / "run"
    train.fit(tiny_train_config(idx_folder, epochs=1, tensorboard=False), run, verbose=0)
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "history.csv",
                                                      runs.LATENT_HISTORY, "model.keras"]
    record = json.loads((run / runs.CONFIG).read_text())["train"]
    assert record["tensorboard"] is False
    del record["tensorboard"]  # a config.json written before the option: logs on
    assert train.TrainConfig.from_json(record).tensorboard is True


def test_kvae_fit_epoch_lines_show_active_units_and_logs_hold_the_latent_run(
        monkeypatch, capsys, tmp_path):
    write_idx_folder(tmp_path, num_train=120, num_test=20, size=8)
    run = tmp_path / "run"
    status, out, err = run_kvae(monkeypatch, capsys, *_fit_arguments(
        tmp_path, run, "--epochs", "2"))
    assert status == 0, err
    lines = [line for line in out.splitlines() if line.startswith("Epoch ")]
    rows = csv_rows(run / runs.LATENT_HISTORY)
    assert [line.rpartition(", ")[2] for line in lines] == [
        f"active units {row['active_units']}/2" for row in rows]
    events = _events(run / runs.LOGS / "latent")
    assert sorted(events["kl"]) == [0, 1] and {"samples_from_prior", "reconstructions"} <= set(
        events)


def test_under_mirrored_strategy_one_monitor_writes_the_closed_form(tmp_path):
    images, _ = prototype_images(120, seed=7)
    # The process's one MirroredStrategy over conftest's two logical CPUs (a second one
    # would reuse its collective keys: distribute._mirrored_strategy).
    strategy = distribute.make_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        model = _model()
    monitor = LatentMonitor(images[:40], log_dir=tmp_path / "logs",
                            history_file=tmp_path / "latent.csv")
    model.fit(images, validation_data=images[:40], batch_size=20, epochs=2, verbose=0,
              callbacks=[monitor])
    assert len(list((tmp_path / "logs" / "latent").glob("events.out.tfevents.*"))) == 1
    events = _events(tmp_path / "logs" / "latent")
    np.testing.assert_allclose(_kl_written(events, 1, 3),
                               _closed_form_kl_per_dimension(model, images[:40]), rtol=1e-5)
    assert [int(r["epoch"]) for r in csv_rows(tmp_path / "latent.csv")] == [0, 1]


def test_train_fit_under_mirrored_strategy_writes_one_latent_run(idx_folder, tmp_path):
    run = tmp_path / "run"
    train.fit(tiny_train_config(idx_folder, strategy="mirrored", epochs=1), run, verbose=0)
    assert len(list((run / runs.LOGS / "latent").glob("events.out.tfevents.*"))) == 1
    assert [int(r["epoch"]) for r in csv_rows(run / runs.LATENT_HISTORY)] == [0]


def test_a_worker_that_is_not_the_chief_computes_and_writes_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(latent_monitor.distribute, "is_chief", lambda strategy: False)
    images, _ = prototype_images(40, seed=8)
    model = _model()
    history = model.fit(images, epochs=1, verbose=0, callbacks=[LatentMonitor(
        images, log_dir=tmp_path / "logs", history_file=tmp_path / "latent.csv")])
    assert "active_units" not in history.history
    assert not any(tmp_path.iterdir())


def test_images_come_from_an_array_or_a_dataset_and_cannot_be_none():
    images, labels = prototype_images(30, seed=9)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(7)
    np.testing.assert_array_equal(latent_monitor.first_images(dataset, 20), images[:20])
    np.testing.assert_array_equal(latent_monitor.first_images(images, 1000), images)
    with pytest.raises(DataError, match="at least one image"):
        LatentMonitor(images[:0])
    monitor = LatentMonitor(images[:, :4])
    monitor.set_model(_model())
    with pytest.raises(DataError, match=r"shape \(4, 8, 1\) but the model takes \(8, 8, 1\)"):
        monitor.on_train_begin()
