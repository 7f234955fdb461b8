"""The kvae command line: bad input gives one line and a non-zero status; the commands work
end to end on a small real slice of MNIST. (Ctrl-C and SIGKILL: test_cli_resume.py.)"""

import gzip
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_vae import data, evaluation, export, runs, train
from keras_vae.cli.main import main
from tests.helpers import idx_bytes, mnist_dir


def run_kvae(monkeypatch, capsys, *arguments):
    """Runs ``kvae ARGUMENTS`` in this process through the real entry point; returns
    (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["kvae", *map(str, arguments)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def assert_one_line_error(status, err, pattern):
    assert status != 0
    lines = [line for line in err.splitlines() if line.strip() and
             not line.startswith("Warning:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in err
    assert re.search(pattern, lines[0]), lines[0]


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("arguments, pattern", [
    (["fit", "--epochs", "-1"], "Invalid value for '--epochs': -1 is not in the range x>=1"),
    (["fit", "--batch-size", "0"], "Invalid value for '--batch-size': 0 is not in the range"),
    (["fit", "--likelihood", "poisson"], "Invalid value for '--likelihood'"),
    (["fit", "--hidden-units", "200,x"], "not a comma-separated list of integers"),
    (["fit", "--resume", "--overwrite"], "--resume and --overwrite exclude each other"),
    (["fit", "--objective", "iwae", "--iw-samples", "5", "--free-bits", "1"],
     "free_bits applies to the ELBO's KL term"),
    (["fit", "--latent-dim", "50", "--free-bits", "1", "--free-bits-groups", "3"],
     "free_bits_groups must divide latent_dim=50"),
    (["evaluate", "no/run", "--iw-samples", "-3"], "Invalid value for '--iw-samples'"),
    (["sample", "no/such/run"], "no/such/run does not exist: give a run directory or a "
                                ".keras file"),
    (["frobnicate"], "No such command 'frobnicate'"),
    (["fit", "--strategy", "multi-worker"], "--strategy multi-worker needs TF_CONFIG"),
    (["fit", "--strategy", "ring"], "Invalid value for '--strategy'"),
    (["fit", "--precision", "float8"], "Invalid value for '--precision'"),
])
def test_bad_arguments_give_one_line(arguments, pattern, monkeypatch, capsys):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    status, _, err = run_kvae(monkeypatch, capsys, *arguments)
    assert_one_line_error(status, err, pattern)


def test_unknown_dataset_name(monkeypatch, capsys, tmp_path):
    status, _, err = run_kvae(monkeypatch, capsys, "fit", "--dataset", "no_such_dataset_xyz",
                              "--output", tmp_path / "run")
    assert_one_line_error(status, err, "Unknown dataset 'no_such_dataset_xyz'")
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


def test_missing_idx_file(monkeypatch, capsys, idx_folder, tmp_path):
    (idx_folder / "t10k-images-idx3-ubyte.gz").unlink()
    status, _, err = run_kvae(monkeypatch, capsys, "fit", "--data-dir", idx_folder,
                              "--output", tmp_path / "run")
    assert_one_line_error(status, err, "has no t10k-images-idx3-ubyte")


def test_corrupt_idx_file(monkeypatch, capsys, idx_folder, tmp_path):
    (idx_folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"garbage!"))
    status, _, err = run_kvae(monkeypatch, capsys, "fit", "--data-dir", idx_folder,
                              "--output", tmp_path / "run")
    assert_one_line_error(status, err, "train-images-idx3-ubyte.gz is not an IDX file")


def test_unreadable_image_folder(monkeypatch, capsys, tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"\x89PNG broken")
    status, _, err = run_kvae(monkeypatch, capsys, "fit", "--data-dir", tmp_path / "images",
                              "--output", tmp_path / "run")
    assert_one_line_error(status, err, "Cannot decode .*a.png as an image")


def test_path_that_is_not_a_run(monkeypatch, capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    status, _, err = run_kvae(monkeypatch, capsys, "info", tmp_path)
    assert_one_line_error(status, err, "is not a run directory \\(it has no model.keras\\)")
    status, _, err = run_kvae(monkeypatch, capsys, "info", tmp_path / "notes.txt")
    assert_one_line_error(status, err, "is not a run: give a run directory or a .keras file")
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    status, _, err = run_kvae(monkeypatch, capsys, "info", tmp_path / "broken.keras")
    assert_one_line_error(status, err,
                          r"broken.keras is not a .keras file \(not a zip archive; 9 bytes\)")


def test_every_command_has_help_with_examples(monkeypatch, capsys):
    for command in ("fit", "evaluate", "sample", "reconstruct", "interpolate", "latent-plot",
                    "export", "info"):
        status, out, _ = run_kvae(monkeypatch, capsys, command, "--help")
        assert status == 0 and "Examples:" in out and f"kvae {command}" in out


# ---------------------------------------------------------------- runs on synthetic data


def _fit_arguments(data_dir, output, *extra):
    return ["fit", "--dataset", "custom", "--data-dir", data_dir, "--hidden-units", "16",
            "--latent-dim", "2", "--batch-size", "10", "--output", output, *extra]


def test_existing_output_is_never_overwritten_silently(monkeypatch, capsys, idx_folder,
                                                       tmp_path):
    output = tmp_path / "run"
    status, out, err = run_kvae(monkeypatch, capsys,
                                *_fit_arguments(idx_folder, output, "--epochs", "1"))
    assert status == 0, err
    assert "test set, nats per example" in out
    first_model = (output / "model.keras").read_bytes()

    status, _, err = run_kvae(monkeypatch, capsys,
                              *_fit_arguments(idx_folder, output, "--epochs", "1"))
    assert_one_line_error(status, err, "already exists; pass --overwrite")
    assert (output / "model.keras").read_bytes() == first_model
    status, _, err = run_kvae(monkeypatch, capsys, *_fit_arguments(
        idx_folder, output, "--epochs", "2", "--resume"))
    assert_one_line_error(status, err, "complete run with the cosine learning-rate schedule")
    assert (output / "model.keras").read_bytes() == first_model

    status, _, err = run_kvae(monkeypatch, capsys, *_fit_arguments(
        idx_folder, output, "--epochs", "1", "--seed", "1", "--overwrite"))
    assert status == 0, err
    assert (output / "model.keras").read_bytes() != first_model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx", "run"]


# ---------------------------------------------------------------- end to end on real MNIST


@pytest.fixture(scope="module")
def mnist_slice(tmp_path_factory):
    """The first 2,000 training and 500 test images of the real MNIST, as IDX files."""
    source = mnist_dir()
    if source is None:
        pytest.skip("MNIST not found in ../shared/data/mnist (set KVAE_MNIST_DIR)")
    splits = data.load_idx_folder(source)
    folder = tmp_path_factory.mktemp("mnist_slice")
    sizes = {"train": 2000, "test": 500}
    for (split, kind), stem in data.IDX_FILES.items():
        array = splits[split][0][..., 0] if kind == "images" else splits[split][1]
        (folder / (stem + ".gz")).write_bytes(gzip.compress(idx_bytes(array[:sizes[split]])))
    return folder


def _png_size(path):
    with Image.open(path) as picture:
        picture.load()
        return picture.size


def _grid_size(rows, columns, cell=28, padding=2, scale=2):
    return ((columns * (cell + padding) + padding) * scale,
            (rows * (cell + padding) + padding) * scale)


@pytest.mark.integration
def test_cli_end_to_end_on_a_slice_of_mnist(mnist_slice, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    status, out, err = run_kvae(
        monkeypatch, capsys, "fit", "--dataset", "mnist", "--data-dir", mnist_slice,
        "--epochs", "5", "--batch-size", "50", "--latent-dim", "8", "--hidden-units", "64",
        "--output", run)
    assert status == 0, err
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "history.csv",
                                                      "latent_history.csv", "logs", "model.keras"]
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["latent_dim"] == 8 and config["train"]["hidden_units"] == [64]
    assert {"tensorflow", "keras", "keras_vae", "tensorflow_probability"} <= set(
        config["versions"])
    assert any((run / "logs" / "train").iterdir())

    status, out, err = run_kvae(monkeypatch, capsys, "evaluate", run, "--iw-samples", "50")
    assert status == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert not (run / runs.EVALUATION_PROGRESS).exists()  # deleted once the estimate is done
    # The K=50 bound is tighter than the ELBO, and both are printed with the active units.
    assert metrics["elbo"] < metrics["log_likelihood"] < 0 and metrics["iw_samples"] == 50
    assert f"{metrics['log_likelihood']:.3f}" in out and "active units" in out
    assert 1 <= metrics["active_units"] <= 8 and len(metrics["kl_per_dimension"]) == 8
    per_example = np.loadtxt(run / "per_example.csv", delimiter=",", skiprows=1)
    assert per_example.shape == (metrics["num_examples"], 5)  # index, elbo, rec., kl, log p
    np.testing.assert_allclose(per_example[:, 4].mean(), metrics["log_likelihood"], atol=1e-4)
    # Five epochs on 1,833 images: far from converged, but far better than 784 coin flips.
    assert 100 < -metrics["elbo"] < 543
    np.testing.assert_allclose(-metrics["elbo"], metrics["reconstruction"] + metrics["kl"],
                               rtol=1e-5)
    # bits/dim = -ELBO / (784 pixels * ln 2): the same bound as a code length per pixel.
    np.testing.assert_allclose(metrics["bits_per_dim"], -metrics["elbo"] / (784 * np.log(2)),
                               rtol=1e-6)
    assert f"{-metrics['elbo']:.3f}" in out.replace("-", "")
    # Fixed binarisation and seeded draws: the same command gives the same figures.
    run_kvae(monkeypatch, capsys, "evaluate", run, "--iw-samples", "50")
    assert json.loads((run / "metrics.json").read_text()) == metrics

    pictures = {
        "sample": (["--num", "64", "--seed", "0"], _grid_size(8, 8)),
        "reconstruct": (["--num", "16"], _grid_size(2, 16)),
        "interpolate": (["--steps", "10", "--pairs", "4"], _grid_size(4, 10)),
        "latent-plot": (["--num", "300"], (760, 680)),
    }
    for command, (options, size) in pictures.items():
        out_path = tmp_path / f"{command}.png"
        status, _, err = run_kvae(monkeypatch, capsys, command, run, *options, "--out", out_path)
        assert status == 0, (command, err)
        assert _png_size(out_path) == size, command

    status, out, _ = run_kvae(monkeypatch, capsys, "info", run)
    assert status == 0
    # 784-64-(8+8) encoder and 8-64-784 decoder, weights and biases
    weights = (784 * 64 + 64 + 64 * 16 + 16) + (8 * 64 + 64 + 64 * 784 + 784)
    assert f"{weights:,} trainable parameters" in out and "elbo" in out

    # Export: a dynamic-range int8 decoder and encoder change the test-set reconstruction
    # NLL of this trained model by less than 0.1 nats per image.
    status, out, err = run_kvae(monkeypatch, capsys, "export", run, "--format", "tflite",
                                "--quantize", "dynamic-int8")
    assert status == 0, err
    folder = run / "export" / "tflite-dynamic-int8"
    loaded = runs.load_run(run)
    x = np.concatenate([np.asarray(b) for b in train.load_splits(loaded.data_config()).test])
    keras_nll = evaluation.bernoulli_negative_log_likelihood(loaded.model.reconstruct(x),
                                                             x).mean()
    encoder = export.tflite_runner(folder / "encoder.tflite", "encode")
    decoder = export.tflite_runner(folder / "decoder.tflite", "decode")
    tflite_nll = evaluation.bernoulli_negative_log_likelihood(
        decoder(z=encoder(x=x)["loc"])["mean"], x).mean()
    assert abs(tflite_nll - keras_nll) < 0.1, (tflite_nll, keras_nll)


def test_console_script_reports_bad_input_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "keras_vae.cli", "fit", "--batch-size", "0"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("Error: Invalid value for "
                                                              "'--batch-size'")
    assert "Traceback" not in result.stderr


def test_summary_claims_standard_errors_only_when_it_has_them():
    from keras_vae.cli.main import _summary

    fitted = _summary("Trained run", {"elbo": -100.0, "kl": 20.0})
    assert "standard error" not in fitted and "+-" not in fitted
    evaluated = _summary("run", {"elbo": -100.0, "elbo_stderr": 0.25})
    assert "(+- standard error)" in evaluated and "-100.000 +- 0.250" in evaluated


# ---------------------------------------------------------------- presets


def _resolved_config(*arguments):
    """The TrainConfig ``kvae fit ARGUMENTS`` would train with (parsed, not run)."""
    from keras_vae.cli.fit_options import train_config
    from keras_vae.cli.main import cli

    context = cli.commands["fit"].make_context("fit", list(arguments))
    fields = train.TrainConfig.defaults()
    values = {name: value for name, value in context.params.items() if name in fields}
    return train_config(context, context.params["preset"], values)


def test_preset_options_then_the_options_given_win():
    from keras_vae import presets

    burda = presets.PRESETS["burda-mnist"].options
    assert _resolved_config("--preset", "burda-mnist") == train.TrainConfig(**burda)
    config = _resolved_config("--preset", "burda-mnist", "--epochs", "1", "--data-dir", "d",
                              "--activation", "relu")  # relu: fit's default, given: it wins
    assert (config.epochs, config.data_dir, config.activation) == (1, "d", "relu")
    assert (config.batch_size, config.hidden_units, config.learning_rate_schedule,
            config.adam_epsilon, config.validation_fraction) == (20, (200, 200), "burda",
                                                                 1e-4, 0.0)
    # Without --preset every option is fit's default: TrainConfig's.
    assert _resolved_config() == train.TrainConfig()


def test_fit_with_a_preset_trains_its_recipe(monkeypatch, capsys, idx_folder, tmp_path):
    status, out, err = run_kvae(monkeypatch, capsys, "fit", "--preset", "burda-mnist",
                                "--dataset", "custom", "--data-dir", idx_folder,
                                "--hidden-units", "16", "--latent-dim", "2", "--epochs", "1",
                                "--output", tmp_path / "run")
    assert status == 0, err
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert (recorded["activation"], recorded["batch_size"], recorded["adam_epsilon"],
            recorded["learning_rate_schedule"], recorded["hidden_units"],
            recorded["epochs"]) == ("tanh", 20, 1e-4, "burda", [16], 1)


def test_unknown_preset_lists_the_presets(monkeypatch, capsys):
    status, _, err = run_kvae(monkeypatch, capsys, "fit", "--preset", "nope")
    assert_one_line_error(status, err, "Invalid value for '--preset': 'nope' is not one of "
                                       "'kvae-mnist', 'burda-mnist'")


# ---------------------------------------------------------------- pictures where asked


def test_out_may_name_folders_that_do_not_exist(monkeypatch, capsys, tmp_path):
    from tests.test_shipped_model import SHIPPED

    out = tmp_path / "new" / "folders" / "samples.png"
    status, stdout, err = run_kvae(monkeypatch, capsys, "sample", SHIPPED, "--num", "4",
                                   "--out", out)
    assert status == 0, err
    assert _png_size(out) == _grid_size(2, 2) and f"Wrote 4 samples to {out}" in stdout
    assert sorted(p.name for p in out.parent.iterdir()) == ["samples.png"]  # no temp file


def test_out_that_cannot_be_written_is_one_line(monkeypatch, capsys, tmp_path):
    from tests.test_shipped_model import SHIPPED

    (tmp_path / "file").write_text("not a folder")
    status, _, err = run_kvae(monkeypatch, capsys, "sample", SHIPPED, "--num", "4", "--out",
                              tmp_path / "file" / "samples.png")
    assert_one_line_error(status, err, "Cannot write .*samples.png: .*file is a file, not a "
                                       "folder; choose another path \\(--out\\)")
    assert (tmp_path / "file").read_text() == "not a folder"
    status, _, err = run_kvae(monkeypatch, capsys, "sample", SHIPPED, "--out", tmp_path)
    assert_one_line_error(status, err, "is a directory")


def test_an_unforeseen_failure_is_still_one_line(monkeypatch, capsys):
    from keras_vae import figures

    def fail(*args, **kwargs):
        raise RuntimeError("\nGraph execution error:\n\nDetected at node ...")

    monkeypatch.setattr(figures, "write_samples", fail)
    status, _, err = run_kvae(monkeypatch, capsys, "sample", "run")
    assert_one_line_error(status, err, r"^Error: Graph execution error: \(RuntimeError; "
                                       r"KVAE_DEBUG=1 shows the traceback\)\.$")
    monkeypatch.setenv("KVAE_DEBUG", "1")
    monkeypatch.setattr(sys, "argv", ["kvae", "sample", "run"])
    with pytest.raises(RuntimeError, match="Graph execution error"):
        main()
