"""Tabular data (keras_vae/data_tables.py): CSV files of numeric columns as flat vectors, their
one-line errors, values written back as .csv/.npy, and kvae fit -> evaluate -> sample on a
small CSV."""

import json

import numpy as np
import pytest

from keras_vae import data, data_tables
from keras_vae.errors import ConfigError, DataError
from tests.test_cli import assert_one_line_error, run_kvae


def write_csv(path, text):
    path.write_text(text)
    return path


def table(num_rows=20, seed=0):
    """(header, rows [n, 3] of decimals, label names) of a small table."""
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(size=(num_rows, 3)), 3)
    names = rng.choice(["setosa", "virginica", "versicolor"], size=num_rows)
    return values, names


def table_csv(path, num_rows=20, seed=0):
    values, names = table(num_rows, seed)
    lines = ["a,b,species,c"] + [f"{v[0]},{v[1]},{name},{v[2]}" for v, name in zip(values, names)]
    return write_csv(path, "\n".join(lines) + "\n"), values, names


def test_csv_rows_become_vectors_with_a_seeded_test_split_and_named_labels(tmp_path):
    path, values, names = table_csv(tmp_path / "t.csv")
    splits = data_tables.load_csv(path, label_column="species")
    train, test = splits["train"], splits["test"]
    assert train[0].shape == (18, 3) and test[0].shape == (2, 3)  # 10% held out
    # every row exactly once, with its own label (names numbered in sorted order)
    together = np.concatenate([train[0], test[0]])
    labels = np.concatenate([train[1], test[1]])
    order = np.lexsort(together.T)
    np.testing.assert_array_equal(together[order], values[np.lexsort(values.T)])
    expected = np.searchsorted(["setosa", "versicolor", "virginica"], names)
    np.testing.assert_array_equal(labels[order], expected[np.lexsort(values.T)])
    again = data_tables.load_csv(path, label_column="species")
    np.testing.assert_array_equal(again["test"][0], test[0])  # the split is seeded


def test_whole_number_labels_stay_numbers_and_blank_lines_and_a_bom_are_ignored(tmp_path):
    path = write_csv(tmp_path / "t.csv", "\ufeffx,y,label\n1,2,7\n\n3,4,2\n5,6,7\n")
    splits = data_tables.load_csv(path, label_column="label")
    labels = sorted(np.concatenate([splits["train"][1], splits["test"][1]]).tolist())
    assert labels == [2, 7, 7]


def test_without_a_label_column_every_column_is_modelled(tmp_path):
    path = write_csv(tmp_path / "t.csv", "x,y\n1,2\n3,4\n5,6\n")
    splits = data.load_arrays("t", path)
    assert splits["train"][0].shape == (2, 2) and splits["train"][1] is None


@pytest.mark.parametrize("text, message", [
    ("a,b\n1,2\n3,red\n", r"t\.csv line 3, column 'b' holds 'red', not a number: every column "
                          r"must be numeric"),
    ("a,b\n1,2\n3,\n", r"t\.csv line 3, column 'b' is empty: missing values are not supported"),
    ("a,b\n1,2\n3,nan\n", r"t\.csv line 3, column 'b' holds 'nan': missing or infinite"),
    ("1,2\n3,4\n5,6\n", r"t\.csv line 1 holds numbers, not column names: a CSV source needs a "
                        r"header row"),
    ("a,b\n1,2\n3,4,5\n", r"t\.csv line 3 has 3 values but line 1 names 2 columns"),
    (",a\n0,1\n1,2\n", r"t\.csv line 1: column 1 has no name"),
    ("a,a\n0,1\n1,2\n", r"t\.csv line 1 names the column 'a' more than once"),
    ("a,b\n1,2\n", r"t\.csv has 1 example rows; it needs at least 2"),
    ("", r"t\.csv is empty"),
])
def test_a_csv_that_cannot_be_vectors_is_one_line_naming_line_and_column(tmp_path, text,
                                                                          message):
    path = write_csv(tmp_path / "t.csv", text)
    with pytest.raises(DataError, match=message) as error:
        data.load_arrays("t", path)
    assert "\n" not in str(error.value)


def test_label_column_errors(tmp_path):
    path, _, _ = table_csv(tmp_path / "t.csv")
    with pytest.raises(DataError, match=r"has no column 'kind' \(--label-column\); its columns "
                                        r"are a, b, species, c"):
        data.load_arrays("t", path, label_column="kind")
    np.savez(tmp_path / "d.npz", x_train=np.zeros((3, 2)), x_test=np.zeros((2, 2)))
    with pytest.raises(DataError, match="--label-column names a column of a CSV file"):
        data.load_arrays("t", tmp_path / "d.npz", label_column="kind")
    blank = write_csv(tmp_path / "b.csv", "x,label\n1,a\n2,\n")
    with pytest.raises(DataError, match=r"b\.csv line 3, column 'label' is empty: give every "
                                        r"example a label"):
        data.load_arrays("t", blank, label_column="label")
    with pytest.raises(DataError, match="is a file but not an .npz or a .csv"):
        data.load_arrays("t", write_csv(tmp_path / "t.tsv", "a\tb\n"))


def test_npz_of_flat_vectors_is_tabular_data(tmp_path):
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(30, 5)), rng.normal(size=(10, 5))
    np.savez(tmp_path / "v.npz", x_train=train, x_test=test)
    splits = data.make_splits("v", tmp_path / "v.npz", batch_size=8, likelihood="normal",
                              validation_fraction=0)
    assert splits.image_shape == (5,)
    np.testing.assert_allclose(np.concatenate(list(splits.test)), test, rtol=1e-6)  # unscaled


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_values_are_written_as_csv_or_npy(tmp_path, suffix):
    values = np.array([[0.5, -1.25, 3.0], [1e-3, 2.0, 7.0]], np.float32)
    path = data_tables.save_values(values, tmp_path / "new" / f"s{suffix}")
    if suffix == ".npy":
        np.testing.assert_array_equal(np.load(path), values)
    else:
        assert path.read_text().splitlines()[0] == "x0,x1,x2"
        back = data_tables.load_csv(path, test_fraction=0.5)
        np.testing.assert_allclose(np.sort(np.concatenate([back["train"][0],
                                                           back["test"][0]]), axis=0),
                                   np.sort(values, axis=0), rtol=1e-7)
    with pytest.raises(ConfigError, match="values are written as .csv or .npy"):
        data_tables.save_values(values, tmp_path / "s.txt")


# ---------------------------------------------------------------- kvae on a table


@pytest.fixture(scope="module")
def blobs_run(tmp_path_factory):
    """A kvae fit run (one epoch) on a 60-row CSV of four columns and a label column."""
    import sys

    from keras_vae.cli.main import main

    folder = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    lines = ["w,x,y,z,group"] + [",".join(f"{v:.3f}" for v in rng.normal(size=4) + 3 * g)
                                 + f",g{g}" for g in range(3) for _ in range(20)]
    path = write_csv(folder / "blobs.csv", "\n".join(lines) + "\n")
    run = folder / "run"
    argv = sys.argv
    sys.argv = ["kvae", "fit", "--dataset", "blobs", "--data-dir", str(path), "--likelihood",
                "normal", "--label-column", "group", "--latent-dim", "2", "--hidden-units",
                "8", "--batch-size", "10", "--epochs", "1", "--output", str(run)]
    try:
        with pytest.raises(SystemExit) as exit_info:
            main()
    finally:
        sys.argv = argv
    assert exit_info.value.code == 0
    return run, path


def test_fit_on_a_csv_records_the_table_and_evaluates(blobs_run, monkeypatch, capsys):
    run, path = blobs_run
    record = json.loads((run / "config.json").read_text())
    assert record["data"]["image_shape"] == [4]
    assert record["train"]["label_column"] == "group" and record["train"]["binarize"] == "none"
    assert (record["data"]["num_train"] + record["data"]["num_validation"],
            record["data"]["num_test"]) == (54, 6)
    status, out, err = run_kvae(monkeypatch, capsys, "evaluate", run, "--iw-samples", "3")
    assert status == 0, err
    assert "Evaluated" in out and "on 6 test examples" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["log_likelihood"])


def test_sample_writes_the_vectors_of_a_tabular_run_and_refuses_a_picture(blobs_run, tmp_path,
                                                                          monkeypatch, capsys):
    run, _ = blobs_run
    status, out, err = run_kvae(monkeypatch, capsys, "sample", run, "--num", "7", "--out",
                                tmp_path / "s.npy")
    assert status == 0, err
    assert np.load(tmp_path / "s.npy").shape == (7, 4)
    status, out, err = run_kvae(monkeypatch, capsys, "sample", run, "--num", "7", "--out",
                                tmp_path / "s.csv")
    assert status == 0 and len((tmp_path / "s.csv").read_text().splitlines()) == 8
    status, _, err = run_kvae(monkeypatch, capsys, "sample", run, "--out", tmp_path / "s.png")
    assert_one_line_error(status, err, r"The examples are vectors of 4 values, not images: "
                                       r"they have no picture \(kvae sample --out samples.csv "
                                       r"writes sampled values")
    assert not (tmp_path / "s.png").exists()


def test_latent_plot_of_a_tabular_run_works_and_reconstruct_refuses(blobs_run, tmp_path,
                                                                   monkeypatch, capsys):
    run, _ = blobs_run
    status, _, err = run_kvae(monkeypatch, capsys, "latent-plot", run, "--out",
                              tmp_path / "l.png")
    assert status == 0, err
    status, _, err = run_kvae(monkeypatch, capsys, "reconstruct", run, "--out",
                              tmp_path / "r.png")
    assert_one_line_error(status, err, "The examples are vectors of 4 values, not images")


@pytest.mark.parametrize("arguments, message", [
    (["--architecture", "conv"], r"architecture='conv' takes images of shape \(height, width, "
                                 r"channels\); received input_shape=\(4,\)"),
    (["--likelihood", "bernoulli"], r"The likelihood 'bernoulli' needs values in \[0, 1\]"),
])
def test_fit_on_a_csv_with_options_that_cannot_work_is_one_line(blobs_run, tmp_path, arguments,
                                                                message, monkeypatch, capsys):
    _, path = blobs_run
    status, _, err = run_kvae(monkeypatch, capsys, "fit", "--data-dir", path, "--label-column",
                              "group", "--likelihood", "normal", *arguments, "--output",
                              tmp_path / "run")
    assert_one_line_error(status, err, message)
    assert not (tmp_path / "run").exists()


def test_fit_on_a_csv_with_a_non_numeric_column_is_one_line_naming_it(blobs_run, tmp_path,
                                                                      monkeypatch, capsys):
    _, path = blobs_run
    status, _, err = run_kvae(monkeypatch, capsys, "fit", "--data-dir", path, "--likelihood",
                              "normal", "--output", tmp_path / "run")
    assert_one_line_error(status, err, r"blobs\.csv line 2, column 'group' holds 'g0', not a "
                                       r"number: .* name it with --label-column")
    assert not (tmp_path / "run").exists()


def test_a_tabular_run_evaluates_on_other_vectors_without_its_label_column(blobs_run, tmp_path,
                                                                          monkeypatch, capsys):
    run, _ = blobs_run
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "v.npz", x_train=rng.normal(size=(6, 4)), x_test=rng.normal(size=(5, 4)))
    status, out, err = run_kvae(monkeypatch, capsys, "evaluate", run, "--data-dir",
                                tmp_path / "v.npz")
    assert status == 0, err
    assert "on 5 test examples" in out
