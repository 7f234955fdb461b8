"""First contact with ``kvae`` (issue 18): how long its help and argument errors take and how
much memory they use, how fast an offline ``kvae fit --dataset mnist`` fails, and how many
bytes one epoch of progress writes into a log.

    python benchmarks/startup.py --baseline /path/to/old/kvae --repeats 5 \\
        --data-dir ../shared/data/mnist

Each command runs in a fresh process; wall time and the child's peak resident memory come
from ``os.wait4`` (what ``/usr/bin/time -v`` reports as "Maximum resident set size"). With
``--baseline`` the old and the new ``kvae`` alternate, so both see the same load; the table
gives medians. ``--data-dir`` adds one epoch of ``kvae fit`` with stdout sent to a file (the
log a batch job writes), measured for both. ``--offline`` adds ``kvae fit --dataset mnist``
with no --data-dir on this machine without network (only the new kvae: the old one retried
for about 3.5 minutes).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

COMMANDS = (["--help"], ["--version"], ["fit", "--help"], ["evaluate", "--help"],
            ["fit", "--epochs", "-1"])


def measure(command, stdout=subprocess.DEVNULL, cwd=None):
    """(seconds, peak resident MB, exit status) of one run of ``command``."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.DEVNULL, cwd=cwd)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    return seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def epoch_log_bytes(kvae, data_dir, folder):
    """Bytes that one epoch of ``kvae fit`` writes to a non-terminal stdout."""
    log = os.path.join(folder, "fit.log")
    with open(log, "wb") as out:
        measure([kvae, "fit", "--dataset", "mnist", "--data-dir", os.path.abspath(data_dir),
                 "--epochs", "1", "--output", os.path.join(folder, "run")], stdout=out,
                cwd=folder)
    return os.path.getsize(log)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kvae", default=shutil.which("kvae") or "kvae")
    parser.add_argument("--baseline", help="an older kvae to compare with, side by side")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", help="MNIST IDX folder: also measure one epoch's log")
    parser.add_argument("--offline", action="store_true",
                        help="also time kvae fit --dataset mnist without --data-dir")
    args = parser.parse_args()
    versions = {"new": args.kvae, **({"old": args.baseline} if args.baseline else {})}

    print("| command | " + " | ".join(f"{name}: s (median) | {name}: MB"
                                      for name in versions) + " |")
    print("|---|" + "---:|---:|" * len(versions))
    for arguments in COMMANDS:
        figures = {name: [] for name in versions}
        for _ in range(args.repeats):
            for name, kvae in versions.items():  # alternating: both see the same load
                figures[name].append(measure([kvae, *arguments]))
        cells = []
        for runs in figures.values():
            cells += [f"{statistics.median(r[0] for r in runs):.2f}",
                      f"{max(r[1] for r in runs):.0f}"]
        print(f"| `kvae {' '.join(arguments)}` | " + " | ".join(cells) + " |")

    if args.offline:
        with tempfile.TemporaryDirectory() as folder:
            seconds, memory, status = measure(
                [args.kvae, "fit", "--dataset", "mnist", "--output",
                 os.path.join(folder, "run")], cwd=folder)
            print(f"\noffline `kvae fit --dataset mnist` (new): exit {status} after "
                  f"{seconds:.1f} s, {memory:.0f} MB")
    if args.data_dir:
        for name, kvae in versions.items():
            with tempfile.TemporaryDirectory() as folder:
                print(f"one epoch of kvae fit into a log ({name}): "
                      f"{epoch_log_bytes(kvae, args.data_dir, folder):,} bytes")


if __name__ == "__main__":
    main()
