"""Writes examples/blobs.csv, the small table of docs/training.md's tabular example: 240 rows of
four numeric columns x1..x4 drawn from three Gaussian clusters (80 each, unit variance around
centres 4 apart), and a column ``cluster`` naming each row's cluster (red, green, blue).

    python examples/make_blobs_csv.py      # seeded: writes the same file every time
"""

import pathlib

import numpy as np

CENTRES = {"red": (0, 0, 0, 0), "green": (4, 0, 4, 0), "blue": (0, 4, 0, 4)}
ROWS_PER_CLUSTER = 80


def main(path=pathlib.Path(__file__).with_name("blobs.csv")):
    rng = np.random.default_rng(0)
    rows = [(name, np.asarray(centre) + rng.normal(size=4))
            for name, centre in CENTRES.items() for _ in range(ROWS_PER_CLUSTER)]
    order = rng.permutation(len(rows))
    lines = ["x1,x2,x3,x4,cluster"] + [
        ",".join(f"{value:.3f}" for value in rows[i][1]) + f",{rows[i][0]}" for i in order]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
