"""The README's summary of the Burda et al. benchmark against its source, benchmarks/RESULTS.md.

The figures are written in both files; this keeps the README from drifting when a row of
RESULTS.md is re-measured. Only text is read: no TensorFlow, no data.
"""

import pathlib
import re

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
README = (REPOSITORY / "README.md").read_text()
RESULTS = (REPOSITORY / "benchmarks" / "RESULTS.md").read_text()
# README row: | VAE | -95.19 | -90.10 | -86.76 |  or  | IWAE, k = 5 | ... |
README_ROW = re.compile(r"^\| (VAE|IWAE, k = (\d+)) \| (-\d+\.\d\d) \| (-\d+\.\d\d) \| "
                        r"(-\d+\.\d\d) \|$", re.MULTILINE)


def readme_rows():
    """(model, k, test ELBO, test log p(x), paper) for each row of the README's table."""
    rows = []
    for name, k, elbo, log_px, paper in README_ROW.findall(README):
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


def test_the_readme_lists_the_vae_and_both_iwae_rows():
    assert sorted((model, k) for model, k, *_ in readme_rows()) == [
        ("IWAE", 5), ("IWAE", 50), ("VAE", 1)]


def test_the_readme_figures_equal_the_121_epoch_rows_of_results():
    for model, k, elbo, log_px, paper in readme_rows():
        assert (elbo, log_px, paper) == results_row(model, k), (model, k)
