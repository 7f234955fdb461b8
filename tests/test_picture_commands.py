"""The picture commands (cli/picture_commands.py): latent-plot, traverse, training-plot and
rate-distortion on the shipped model (offline, its bundled test images) and on a tiny run with
a 2-D latent space; PNGs of the promised size where --out says, and a default --out that never
replaces an existing file."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from tests.test_cli import _fit_arguments, assert_one_line_error, run_kvae
from tests.test_shipped_model import SHIPPED

NEW_COMMANDS = ("latent-plot", "traverse", "training-plot", "rate-distortion")


def _png_size(path):
    with Image.open(path) as picture:
        picture.load()
        return picture.size


def test_new_commands_have_help_with_examples(monkeypatch, capsys):
    for command in NEW_COMMANDS:
        status, out, _ = run_kvae(monkeypatch, capsys, command, "--help")
        assert status == 0 and "Examples:" in out and f"kvae {command}" in out, command


def test_help_imports_neither_tensorflow_nor_matplotlib():
    code = ("import sys\nfrom keras_vae.cli.main import cli\n"
            "for command in [[], ['traverse'], ['latent-plot'], ['rate-distortion']]:\n"
            "    try:\n        cli.main([*command, '--help'])\n    except SystemExit:\n"
            "        pass\n"
            "print(sorted(m for m in ('tensorflow', 'matplotlib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("command, default", [
    ("sample", "samples.png"), ("reconstruct", "recon.png"), ("interpolate", "interp.png"),
    ("latent-plot", "latent.png"), ("traverse", "traverse.png"),
    ("training-plot", "training.png"), ("rate-distortion", "rate-distortion.png")])
def test_the_default_out_never_replaces_an_existing_file(monkeypatch, capsys, tmp_path,
                                                         command, default):
    monkeypatch.chdir(tmp_path)
    (tmp_path / default).write_text("an earlier picture")
    status, _, err = run_kvae(monkeypatch, capsys, command, SHIPPED)
    assert_one_line_error(status, err, f"{default} exists and --out was not given: kvae "
                                       f"replaces only a file you name; pass --out {default}")
    assert (tmp_path / default).read_text() == "an earlier picture"


def test_shipped_model_pictures_work_offline(monkeypatch, capsys, tmp_path):
    from keras_vae import data

    def no_dataset(*args, **kwargs):
        raise AssertionError("the pictures of the shipped model must not need the dataset")

    monkeypatch.setattr(data, "make_splits", no_dataset)
    cases = {
        "latent-plot": (["--projection", "active", "--num", "500"], (760, 680),
                        "Wrote the posterior means of 500 test examples"),
        "traverse": (["--dims", "3", "--steps", "4", "--image-index", "2"],
                     (300 + 2 * (4 * 30 + 2) + 30, 70 + 2 * (3 * 30 + 2) + 80),
                     "Wrote traversals of 3 latent dimensions"),
        "training-plot": ([], (1500, 860), "Wrote the curves of 121 epochs"),
        "rate-distortion": ([], (900, 720), "Wrote the rate and distortion of 1 run to"),
    }
    for command, (options, size, said) in cases.items():
        out = tmp_path / "new" / f"{command}.png"
        status, stdout, err = run_kvae(monkeypatch, capsys, command, SHIPPED, *options,
                                       "--out", out)
        assert status == 0, (command, err)
        assert said in stdout and str(out) in stdout, (command, stdout)
        assert _png_size(out) == size, command
    # naming the file replaces it
    status, _, err = run_kvae(monkeypatch, capsys, "training-plot", SHIPPED, "--out",
                              tmp_path / "new" / "training-plot.png")
    assert status == 0, err


def test_bad_picture_options_are_one_line(monkeypatch, capsys, tmp_path):
    status, _, err = run_kvae(monkeypatch, capsys, "traverse", SHIPPED, "--image-index",
                              "10000", "--out", tmp_path / "t.png")
    assert_one_line_error(status, err, "--image-index 10000 is outside the 10000 test images")
    status, _, err = run_kvae(monkeypatch, capsys, "latent-plot", SHIPPED, "--layer", "z2",
                              "--out", tmp_path / "l.png")
    assert_one_line_error(status, err, "no latent layer 'z2'; its layers: z")
    status, _, err = run_kvae(monkeypatch, capsys, "latent-plot", SHIPPED, "--projection",
                              "mds")
    assert_one_line_error(status, err, "Invalid value for '--projection'")
    status, _, err = run_kvae(monkeypatch, capsys, "rate-distortion", "--out", tmp_path / "r.png")
    assert_one_line_error(status, err, "Missing argument 'RUNS...'")
    status, _, err = run_kvae(monkeypatch, capsys, "training-plot", tmp_path / "none",
                              "--out", tmp_path / "t.png")
    assert_one_line_error(status, err, "is not a run folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_missing_projection_library_stops_before_the_model_loads(monkeypatch, capsys,
                                                                    tmp_path):
    import importlib.util

    from keras_vae import runs

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "umap" else find_spec(name, *args))
    monkeypatch.setattr(runs, "load_run", lambda *args: pytest.fail("loaded the model"))
    status, _, err = run_kvae(monkeypatch, capsys, "latent-plot", SHIPPED, "--projection",
                              "umap", "--out", tmp_path / "u.png")
    assert_one_line_error(status, err, r"--projection umap needs umap-learn, which is not "
                                       r"installed: pip install 'keras-vae\[projections\]'")


def test_a_two_dimensional_run_gets_its_manifold_and_its_rate_distortion_point(
        monkeypatch, capsys, idx_folder, tmp_path):
    run = tmp_path / "run"
    status, _, err = run_kvae(monkeypatch, capsys, *_fit_arguments(idx_folder, run,
                                                                   "--epochs", "2"))
    assert status == 0, err
    status, _, err = run_kvae(monkeypatch, capsys, "latent-plot", run, "--out",
                              tmp_path / "latent.png")
    assert status == 0, err
    assert _png_size(tmp_path / "latent.png") == (1400, 680)  # scatter and manifold
    status, _, err = run_kvae(monkeypatch, capsys, "training-plot", run, "--out",
                              tmp_path / "training.png")
    assert status == 0, err
    # no metrics.json yet: the point comes from an evaluation in memory, which kvae evaluate
    # then repeats (seed 0) and saves
    status, out, err = run_kvae(monkeypatch, capsys, "rate-distortion", run, "--out",
                                tmp_path / "rd.png")
    assert status == 0 and f"Evaluated {run} (it has no metrics.json" in err, err
    assert not (run / "metrics.json").exists()
    from keras_vae import figures

    point, evaluated = figures.rate_point(run)
    assert run_kvae(monkeypatch, capsys, "evaluate", run)[0] == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert evaluated and (point.rate, point.distortion) == (metrics["kl"],
                                                            metrics["reconstruction"])
