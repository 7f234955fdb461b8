"""The run folder (runs.py): one owner of its file names; test images shipped inside a run
(test_examples.npz) round trip exactly and serve the picture commands when the dataset is
gone; new runs go to runs/ and --resume/--overwrite act only on a run the user names;
protected (shipped) folders keep what they hold."""

import json
import pathlib
import re
import shutil

import numpy as np
import pytest

from keras_vae import bundled_examples, runs, train
from keras_vae.errors import RunError
from tests.helpers import tiny_train_config
from tests.test_cli import assert_one_line_error, run_kvae


def test_binary_images_round_trip_packed_eight_pixels_per_byte(tmp_path):
    images = (np.random.default_rng(0).random((100, 28, 28, 1)) > 0.7).astype("float32")
    labels = np.arange(100) % 10
    bundled_examples.save_test_examples(tmp_path, images, labels)
    loaded, loaded_labels = bundled_examples.load_test_examples(tmp_path)
    np.testing.assert_array_equal(loaded, images)
    np.testing.assert_array_equal(loaded_labels, labels)
    assert loaded.dtype == np.float32 and loaded.shape == (100, 28, 28, 1)
    # 78,400 pixels in 9,800 bytes before compression: one bit each, plus the zip's overhead.
    assert (tmp_path / runs.TEST_EXAMPLES).stat().st_size < 9800 + 2000


def test_grey_images_round_trip_exactly_and_others_are_refused(tmp_path):
    grey = np.random.default_rng(1).integers(0, 256, (5, 6, 6, 3)) / 255
    bundled_examples.save_test_examples(tmp_path, grey)
    loaded, labels = bundled_examples.load_test_examples(tmp_path)
    np.testing.assert_allclose(loaded, grey, atol=1e-7)
    assert labels is None
    with pytest.raises(ValueError, match="Only binary or 8-bit grey images"):
        bundled_examples.save_test_examples(tmp_path, grey + 0.001)


def test_a_missing_file_is_none_and_a_corrupt_one_one_line(tmp_path):
    assert bundled_examples.load_test_examples(tmp_path) is None
    (tmp_path / runs.TEST_EXAMPLES).write_bytes(b"not a zip")
    with pytest.raises(RunError, match="test_examples.npz is corrupt .*pass --data-dir"):
        bundled_examples.load_test_examples(tmp_path)


def test_evaluate_uses_the_shipped_test_images_without_the_dataset_with_the_same_figures(
        idx_folder, tmp_path):
    """A run that carries test_examples.npz (as the shipped model does) evaluates on them when
    no data are named: the same images in the same batches with the same seed as its own test
    split, so the same figures, on a machine without the dataset."""
    run = tmp_path / "run"
    train.fit(tiny_train_config(idx_folder, epochs=1), run, verbose=0)
    from_data, count = runs.evaluate_run(runs.load_run(run), iw_samples=3)
    assert from_data["test_data"] == "the run's test split"
    bundled_examples.bundle_test_examples(run)
    shutil.rmtree(idx_folder)  # a fresh machine: the run's data_dir is gone
    shipped, shipped_count = runs.evaluate_run(runs.load_run(run), iw_samples=3)
    assert shipped_count == count == 20
    assert shipped["test_data"] == str(run / runs.TEST_EXAMPLES)
    for name in ("elbo", "reconstruction", "kl", "log_likelihood", "active_units"):
        assert shipped[name] == from_data[name], name


def test_picture_commands_use_the_shipped_test_images_without_the_dataset(
        idx_folder, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    config = tiny_train_config(idx_folder, epochs=1)
    train.fit(config, run, verbose=0)
    assert bundled_examples.bundle_test_examples(run) == 20
    split = runs.load_splits(config)
    expected = np.concatenate([np.asarray(batch) for batch in split.test])
    images, labels = bundled_examples.load_test_examples(run)
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


_TINY = ["--dataset", "custom", "--hidden-units", "16", "--latent-dim", "2", "--batch-size",
         "10", "--epochs", "1"]


def test_fit_puts_new_runs_in_runs_numbered_past_earlier_ones(idx_folder, tmp_path,
                                                               monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    options = ["fit", *_TINY, "--data-dir", idx_folder]
    shipped = tmp_path / "saved_models" / "custom-bernoulli-mlp"  # a model the repo ships
    shipped.mkdir(parents=True)
    (shipped / runs.MODEL).write_text("shipped")
    # A bad option stays a one-line error: the notice comes only once training starts.
    monkeypatch.delenv("TF_CONFIG", raising=False)
    status, _, err = run_kvae(monkeypatch, capsys, *options, "--strategy", "multi-worker")
    assert_one_line_error(status, err, "--strategy multi-worker needs TF_CONFIG")
    for expected in ("custom-bernoulli-mlp", "custom-bernoulli-mlp-2"):
        status, out, err = run_kvae(monkeypatch, capsys, *options)
        assert status == 0, err
        assert f"Trained runs/{expected}" in out
        assert runs.is_run(tmp_path / "runs" / expected)
    assert ("runs/custom-bernoulli-mlp holds a run already; this one goes to "
            "runs/custom-bernoulli-mlp-2.") in err
    assert sorted(path.name for path in (tmp_path / "saved_models").iterdir()) == [
        "custom-bernoulli-mlp"]
    assert (shipped / runs.MODEL).read_text() == "shipped"  # untouched


@pytest.mark.parametrize("flag, verb", [("--overwrite", "replaces"), ("--resume", "continues")])
def test_resume_and_overwrite_never_choose_a_run_the_user_did_not_name(flag, verb, idx_folder,
                                                                       tmp_path, monkeypatch,
                                                                       capsys):
    monkeypatch.chdir(tmp_path)
    options = ["fit", *_TINY, "--data-dir", idx_folder, flag]
    status, _, err = run_kvae(monkeypatch, capsys, *options)
    assert_one_line_error(status, err, f"{flag} {verb} only a run you name: pass --output RUN "
                                       f"\\(there is no run named runs/custom-bernoulli-mlp yet\\)")
    for name in ("custom-bernoulli-mlp", "custom-bernoulli-mlp-2"):
        (tmp_path / "runs" / name).mkdir(parents=True)
    before = sorted(str(path) for path in tmp_path.rglob("*"))
    status, _, err = run_kvae(monkeypatch, capsys, *options)
    assert_one_line_error(status, err, "runs of this name: runs/custom-bernoulli-mlp, "
                                       "runs/custom-bernoulli-mlp-2\\)")
    assert sorted(str(path) for path in tmp_path.rglob("*")) == before


def test_a_published_run_carries_no_machine_path_and_refuses_replacement(
        idx_folder, tmp_path, monkeypatch, capsys):
    run = tmp_path / "published"
    train.fit(tiny_train_config(idx_folder, epochs=1), run, verbose=0)
    runs.evaluate_run(runs.load_run(run))
    runs.publish(run)
    record = json.loads((run / runs.CONFIG).read_text())
    assert record["train"]["data_dir"] is None
    assert str(tmp_path) not in json.dumps(record)
    assert "--replace-protected" in (run / runs.PROTECTED).read_text()
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    status, _, err = run_kvae(monkeypatch, capsys, "fit", *_TINY, "--data-dir", idx_folder,
                              "--output", run, "--overwrite")
    assert_one_line_error(status, err, "published is a protected model folder .*"
                                       "--replace-protected")
    # kvae evaluate prints its figures but keeps the published metrics.json.
    with pytest.warns(UserWarning, match="is protected: its metrics.json and "
                                         "per_example.csv are kept"):
        status, out, err = run_kvae(monkeypatch, capsys, "evaluate", run, "--data-dir",
                                    idx_folder, "--seed", "3")
    assert status == 0 and "elbo" in out, err
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before
    # Asked explicitly, evaluate replaces them.
    runs.evaluate_run(runs.load_run(run), seed=3, data_dir=str(idx_folder),
                      replace_protected=True)
    assert json.loads((run / runs.METRICS).read_text())["seed"] == 3


def test_an_older_config_json_with_a_relative_data_dir_stays_readable(idx_folder, tmp_path,
                                                                      monkeypatch):
    run = tmp_path / "run"
    train.fit(tiny_train_config(idx_folder, epochs=1), run, verbose=0)
    record = json.loads((run / runs.CONFIG).read_text())
    record["train"]["data_dir"] = "idx"  # as given, by the versions before this one
    del record["train"]["precision"]  # an option added since: takes its default
    (run / runs.CONFIG).write_text(json.dumps(record))
    monkeypatch.chdir(tmp_path)  # where that run was made
    loaded = runs.load_run(run)
    assert loaded.config.data_dir == "idx" and loaded.config.precision == "float32"
    assert runs.evaluate_run(loaded)[1] == 20


def test_only_runs_py_spells_the_run_folders_file_names():
    root = pathlib.Path(__file__).resolve().parents[1]
    names = (runs.CONFIG, runs.MODEL, runs.HISTORY, runs.METRICS, runs.PER_EXAMPLE,
             runs.TEST_EXAMPLES, runs.EVALUATION_PROGRESS)
    pattern = re.compile("|".join(re.escape(f'"{name}"') for name in names))
    offenders = sorted(
        str(path.relative_to(root)) for folder in ("keras_vae", "cli")
        for path in (root / folder).rglob("*.py")
        if path.name != "runs.py" and pattern.search(path.read_text()))
    assert offenders == []


@pytest.mark.integration
def test_reading_and_evaluating_a_run_never_imports_the_trainer(idx_folder, tmp_path):
    import subprocess
    import sys

    run = tmp_path / "run"
    train.fit(tiny_train_config(idx_folder, epochs=1), run, verbose=0)
    code = ("import sys\nfrom keras_vae import runs\n"
            f"runs.evaluate_run(runs.load_run({str(run)!r}))\n"
            "assert 'keras_vae.train' not in sys.modules, 'runs imported the trainer'\n"
            "assert 'keras_vae.lifecycle' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def _tiny_run_folder(folder):
    """A run folder made by hand: a tiny saved VAE and a valid config.json."""
    import keras_vae as kv

    folder.mkdir()
    kv.VAE(input_shape=(6, 6, 1), latent_dim=2, hidden_units=(8,)).save(folder / runs.MODEL)
    (folder / runs.CONFIG).write_text(json.dumps({"train": {"latent_dim": 2}}))
    return folder


def _keras_sequential(path):
    import keras

    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(path)


# What a broken run folder holds -> what the one-line error must say (issue 18: an empty or
# random model.keras was "File not found", another Keras model an AttributeError traceback,
# a broken config.json the raw JSON parser's message).
BROKEN_RUNS = {
    "empty model": (lambda run: (run / runs.MODEL).write_bytes(b""),
                    r"model.keras is not a .keras file \(not a zip archive; 0 bytes\)"),
    "random bytes": (lambda run: (run / runs.MODEL).write_bytes(bytes(range(256)) * 8),
                     r"is not a .keras file \(not a zip archive; 2,048 bytes\)"),
    "another keras model": (lambda run: _keras_sequential(run / runs.MODEL),
                            "holds a Keras Sequential, not a keras-vae model"),
    "config not json": (lambda run: (run / runs.CONFIG).write_text('{"train": {"epochs": 3'),
                        r"config.json is not valid JSON \(line 1, column 23: Expecting"),
    "config a list": (lambda run: (run / runs.CONFIG).write_text("[1, 2]"),
                      "config.json holds a JSON list, not an object"),
    "config bad value": (lambda run: (run / runs.CONFIG).write_text(
        '{"train": {"epochs": "ten"}}'), "config.json is not a keras-vae run record "
                                         r"\(epochs must be a positive integer"),
    "config without train": (lambda run: (run / runs.CONFIG).write_text("{}"),
                             "is not a keras-vae run record \\(no 'train' entry\\)"),
    "metrics not numbers": (lambda run: (run / runs.METRICS).write_text(
        '{"elbo": "high"}'), r"metrics.json: elbo is 'high', not a number; delete it"),
}


@pytest.mark.parametrize("case", BROKEN_RUNS)
def test_a_broken_run_folder_is_one_line_naming_the_file(case, tmp_path, monkeypatch, capsys):
    break_it, message = BROKEN_RUNS[case]
    run = _tiny_run_folder(tmp_path / "run")
    break_it(run)
    for command in ("info", "evaluate"):
        status, _, err = run_kvae(monkeypatch, capsys, command, run, "--data-dir", tmp_path) \
            if command == "evaluate" else run_kvae(monkeypatch, capsys, command, run)
        if case == "metrics not numbers" and command == "evaluate":
            continue  # evaluate writes a new metrics.json; it never reads the old one
        assert_one_line_error(status, err, message)
