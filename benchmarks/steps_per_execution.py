"""Seconds per epoch of the Burda et al. VAE (the preset ``burda-mnist``: 784-200-200-50 tanh,
batch 20, 3,000 steps per epoch on MNIST) under training settings, side by side.

    python benchmarks/steps_per_execution.py --data-dir ../shared/data/mnist [--epochs 2]
        [--rounds 3] [--baseline OLD_TREE] [--variants default,spe1,xla]

Each setting trains the preset for ``--epochs`` epochs with ``train.fit`` in a fresh
subprocess (TensorFlow's default threads: both cores), and the settings alternate round by
round, so a change in the load of this shared machine hits all of them alike. The first epoch
includes tracing, so the table reports the median over rounds of the *last* epoch's seconds
(``EpochProgress`` prints them), and what the 121 epochs of ``--stages 5`` take at that rate.

Settings: ``default`` is the preset as it is; ``spe1`` one step per tf.function call;
``xla`` the preset with ``jit_compile=True``; ``baseline`` (with ``--baseline``, a folder
holding another version of the ``keras_vae`` package, e.g. ``git archive <commit> | tar -x``)
the preset of that version, its own defaults.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

EPOCHS_OF_FIVE_STAGES = 121
VARIANTS = {"default": {}, "spe1": {"steps_per_execution": 1}, "xla": {"jit_compile": True}}

RUNNER = """
import sys, tempfile
from keras_vae import presets, train
from keras_vae.callbacks.epoch_progress import EpochProgress
config = presets.train_config("burda-mnist", data_dir=sys.argv[1], epochs=int(sys.argv[2]),
                              **eval(sys.argv[3]))
train.fit(config, tempfile.mkdtemp() + "/run", verbose=0, callbacks=[EpochProgress()])
"""


def epoch_seconds(tree, data_dir, epochs, overrides):
    """Seconds of each epoch of one training run of the preset, from a subprocess that
    imports ``keras_vae`` from ``tree`` (None: this environment's)."""
    environment = dict(os.environ)
    if tree:
        environment["PYTHONPATH"] = os.path.abspath(tree)
    with tempfile.TemporaryDirectory() as folder:
        output = subprocess.run(
            [sys.executable, "-c", RUNNER, os.path.abspath(data_dir), str(epochs),
             repr(overrides)], cwd=folder, env=environment, capture_output=True, text=True)
    seconds = [float(s) for s in re.findall(r"^Epoch \d+/\d+: ([\d.]+) s", output.stdout,
                                            re.MULTILINE)]
    if len(seconds) != epochs:
        raise RuntimeError(f"the run failed:\n{output.stdout[-2000:]}{output.stderr[-2000:]}")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder of the MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default="default,spe1,xla")
    parser.add_argument("--baseline", help="a folder holding another keras_vae version")
    args = parser.parse_args()
    settings = {name: (None, VARIANTS[name]) for name in args.variants.split(",")}
    if args.baseline:
        settings["baseline"] = (args.baseline, {})
    times = {name: [] for name in settings}
    for _ in range(args.rounds):
        for name, (tree, overrides) in settings.items():
            times[name].append(epoch_seconds(tree, args.data_dir, args.epochs, overrides))
            print(f"{name}: {times[name][-1]}", file=sys.stderr, flush=True)
    print(f"| setting | s per epoch (last of {args.epochs}, median of {args.rounds}) | "
          f"all rounds | ms per step | 121 epochs |")
    print("|---|---:|---|---:|---:|")
    for name, rounds in times.items():
        last = statistics.median(run[-1] for run in rounds)
        print(f"| {name} | {last:.1f} | {', '.join(f'{run[-1]:.1f}' for run in rounds)} | "
              f"{last / 3000 * 1000:.2f} | {last * EPOCHS_OF_FIVE_STAGES / 60:.0f} min |")


if __name__ == "__main__":
    main()
