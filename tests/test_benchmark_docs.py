"""The summary of the Burda et al. benchmark in docs/evaluation.md against its source,
benchmarks/RESULTS.md.

The figures are written in both files; this keeps the docs from drifting when a row of
RESULTS.md is re-measured. Only text is read: no TensorFlow, no data.
"""

import pathlib
import re

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
SUMMARY = (REPOSITORY / "docs" / "evaluation.md").read_text()
RESULTS = (REPOSITORY / "benchmarks" / "RESULTS.md").read_text()
# summary row: | VAE | -95.19 | -90.10 | -86.76 |  or  | IWAE, k = 5 | ... |
SUMMARY_ROW = re.compile(r"^\| (VAE|IWAE, k = (\d+)) \| (-\d+\.\d\d) \| (-\d+\.\d\d) \| "
                        r"(-\d+\.\d\d) \|$", re.MULTILINE)


def summary_rows():
    """(model, k, test ELBO, test log p(x), paper) for each row of the summary's table."""
    rows = []
    for name, k, elbo, log_px, paper in SUMMARY_ROW.findall(SUMMARY):
        model, k = ("VAE", 1) if name == "VAE" else ("IWAE", int(k))
        rows.append((model, k, elbo, log_px, paper))
    return rows


def results_row(model, k):
    """(test ELBO, test log p(x), paper) of the 121-epoch row for model and k in RESULTS.md."""
    pattern = (rf"^\| {model} \| {k} \| 0\.\.4 \(121\) \| [^|]+ \| (-\d+\.\d\d) \+- \d\.\d\d \| "
               rf"\*\*(-\d+\.\d\d) \+- \d\.\d\d\*\* \|.*\| (-\d+\.\d\d) \|$")
    found = re.findall(pattern, RESULTS, re.MULTILINE)
    assert len(found) == 1, f"RESULTS.md should hold one 121-epoch row for {model} k={k}"
    return found[0]


def test_the_summary_lists_the_vae_and_both_iwae_rows():
    assert sorted((model, k) for model, k, *_ in summary_rows()) == [
        ("IWAE", 5), ("IWAE", 50), ("VAE", 1)]


def test_the_summary_figures_equal_the_121_epoch_rows_of_results():
    for model, k, elbo, log_px, paper in summary_rows():
        assert (elbo, log_px, paper) == results_row(model, k), (model, k)
