"""Runs as folders that travel: test images shipped inside a run (test_examples.npz) round
trip exactly, and the picture commands use them when the dataset is gone."""

import shutil

import numpy as np
import pytest

from keras_vae import runs, train
from tests.helpers import tiny_train_config
from tests.test_cli import assert_one_line_error, run_kvae


def test_binary_images_round_trip_packed_eight_pixels_per_byte(tmp_path):
    images = (np.random.default_rng(0).random((100, 28, 28, 1)) > 0.7).astype("float32")
    labels = np.arange(100) % 10
    runs.save_test_examples(tmp_path, images, labels)
    loaded, loaded_labels = runs.load_test_examples(tmp_path)
    np.testing.assert_array_equal(loaded, images)
    np.testing.assert_array_equal(loaded_labels, labels)
    assert loaded.dtype == np.float32 and loaded.shape == (100, 28, 28, 1)
    # 78,400 pixels in 9,800 bytes before compression: one bit each, plus the zip's overhead.
    assert (tmp_path / runs.TEST_EXAMPLES).stat().st_size < 9800 + 2000


def test_grey_images_round_trip_exactly_and_others_are_refused(tmp_path):
    grey = np.random.default_rng(1).integers(0, 256, (5, 6, 6, 3)) / 255
    runs.save_test_examples(tmp_path, grey)
    loaded, labels = runs.load_test_examples(tmp_path)
    np.testing.assert_allclose(loaded, grey, atol=1e-7)
    assert labels is None
    with pytest.raises(ValueError, match="Only binary or 8-bit grey images"):
        runs.save_test_examples(tmp_path, grey + 0.001)


def test_a_missing_file_is_none_and_a_corrupt_one_one_line(tmp_path):
    assert runs.load_test_examples(tmp_path) is None
    (tmp_path / runs.TEST_EXAMPLES).write_bytes(b"not a zip")
    with pytest.raises(train.RunError, match="test_examples.npz is corrupt .*pass --data-dir"):
        runs.load_test_examples(tmp_path)


def test_picture_commands_use_the_shipped_test_images_without_the_dataset(
        idx_folder, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    config = tiny_train_config(idx_folder, epochs=1)
    train.fit(config, run, verbose=0)
    assert runs.bundle_test_examples(run) == 20
    split = train.load_splits(config)
    expected = np.concatenate([np.asarray(batch) for batch in split.test])
    images, labels = runs.load_test_examples(run)
    np.testing.assert_array_equal(images, expected)  # binarised exactly as evaluate sees them
    np.testing.assert_array_equal(labels, split.test_labels)

    shutil.rmtree(idx_folder)  # a fresh machine: the run's data_dir is gone
    for command in ("latent-plot", "interpolate", "reconstruct"):
        out = tmp_path / f"{command}.png"
        status, _, err = run_kvae(monkeypatch, capsys, command, run, "--out", out)
        assert status == 0, err
        assert "Using the 20 test images shipped in" in err and out.stat().st_size > 0
    # Asking for the dataset explicitly still goes to it, and says what is missing.
    status, _, err = run_kvae(monkeypatch, capsys, "latent-plot", run, "--data-dir",
                              idx_folder, "--out", tmp_path / "x.png")
    assert status != 0 and "Traceback" not in err


def test_fit_numbers_its_default_output_past_earlier_runs(idx_folder, tmp_path, monkeypatch,
                                                          capsys):
    monkeypatch.chdir(tmp_path)
    options = ["fit", "--dataset", "custom", "--data-dir", idx_folder, "--hidden-units", "16",
               "--latent-dim", "2", "--batch-size", "10", "--epochs", "1"]
    home = tmp_path / "saved_models"
    shipped = home / "custom-bernoulli-mlp"  # stands for the model the repository ships
    shipped.mkdir(parents=True)
    (shipped / "model.keras").write_text("shipped")
    # A bad option stays a one-line error: the notice comes only once training starts.
    monkeypatch.delenv("TF_CONFIG", raising=False)
    status, _, err = run_kvae(monkeypatch, capsys, *options, "--strategy", "multi-worker")
    assert_one_line_error(status, err, "--strategy multi-worker needs TF_CONFIG")
    status, out, err = run_kvae(monkeypatch, capsys, *options)
    assert status == 0, err
    assert ("saved_models/custom-bernoulli-mlp holds a run already; this one goes to "
            "saved_models/custom-bernoulli-mlp-2.") in err
    assert (home / "custom-bernoulli-mlp-2" / "model.keras").is_file()
    assert (shipped / "model.keras").read_text() == "shipped"  # untouched
    # --overwrite (like --resume) means the last name in use, not a new one.
    status, _, err = run_kvae(monkeypatch, capsys, *options, "--overwrite")
    assert status == 0, err
    assert ("--overwrite without --output: replacing saved_models/custom-bernoulli-mlp-2, the "
            "last run of this name.") in err
    assert sorted(path.name for path in home.iterdir()) == ["custom-bernoulli-mlp",
                                                            "custom-bernoulli-mlp-2"]
    assert (shipped / "model.keras").read_text() == "shipped"
