"""Learned priors on MNIST (issue 21): the same VAE trained with the standard, mixture-of-
Gaussians and VampPrior priors, then test log p(x) at K = 5000 on the 10,000 test images.

The recipe follows Tomczak & Welling (VAE with a VampPrior, AISTATS 2018) where kvae fit can:
784-300-300-(2x40) / 40-300-300-784 MLPs (theirs use gated dense layers; ours ReLU), 40
latents, dynamically binarised MNIST, batch 100, Adam 5e-4 at a constant rate, a linear KL
warm-up (theirs: 100 epochs; ours: ``--warmup`` epochs, scaled to the shorter budget), K = 500
pseudo-inputs (the MoG: ``config.DEFAULT_PRIOR_COMPONENTS``). They train for up to 2,000
epochs with early stopping and report test log p(x) -88.56 (standard) and -85.57 (VampPrior)
nats at K = 5000 (their Table 2, "VAE"); this budget is far shorter, so compare the priors with
each other here, not with the paper.

    nice -n 19 python benchmarks/priors_mnist.py --data-dir ../shared/data/mnist \\
        --epochs 20 --output /work/wt/priors-bench

Every run is a ``kvae fit`` run folder, OUTPUT/<prior>; the same command continues whatever
was interrupted (training through ``--resume``, the K = 5000 estimate through its progress
file), so it may be stopped at any time. Training of all priors comes first, then the
evaluations. Prints one Markdown row per prior (test ELBO, log p(x), epochs, wall and CPU
time) and writes OUTPUT/<prior>/benchmark.json. A larger ``--epochs`` later trains the
complete runs further (and evaluates them again).
"""

import argparse
import json
import os
import pathlib
import platform
import time

import keras

from keras_vae import lifecycle, runs, train
from keras_vae.config import DEFAULT_PRIOR_COMPONENTS, TrainConfig
from keras_vae.files import write_json_atomically

PRIORS = ("standard", "mog", "vamp")
PAPER = {"standard": -88.56, "vamp": -85.57}  # Tomczak & Welling 2018, Table 2, VAE
TIMES = "times.json"  # [wall, CPU] seconds of each prior's epochs and evaluation, summed


def priors_config(data_dir, prior, epochs, warmup, seed):
    """The VampPrior paper's recipe (see the module docstring) with ``prior``."""
    return TrainConfig(
        dataset="mnist", data_dir=data_dir, likelihood="bernoulli", architecture="mlp",
        latent_dim=40, hidden_units=(300, 300), activation="relu", epochs=epochs,
        batch_size=100, learning_rate=5e-4, learning_rate_schedule="constant",
        kl_warmup="linear" if warmup else "none", kl_warmup_length=max(warmup, 1),
        validation_fraction=0.0, steps_per_execution=10, prior=prior, seed=seed)


def _add_time(folder, key, wall, cpu):
    path = folder / TIMES
    times = json.loads(path.read_text()) if path.exists() else {}
    times[key] = [a + b for a, b in zip(times.get(key, [0.0, 0.0]), [wall, cpu])]
    write_json_atomically(path, times)
    return times


class EpochTimes(keras.callbacks.Callback):
    """Adds each epoch's wall and CPU seconds to OUTPUT/times.json as the epoch ends, so that
    an interrupted run's epochs are counted too."""

    def __init__(self, folder, key):
        super().__init__()
        self.folder, self.key = folder, key

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        _add_time(self.folder, self.key, time.perf_counter() - self.start[0],
                  time.process_time() - self.start[1])


def train_to(run, config, output, key):
    """Trains the run folder ``run`` to ``config.epochs``, its epochs' times added to
    OUTPUT/times.json under ``key``: an interrupted run continues, a complete one of fewer
    epochs trains further (the constant learning rate allows it), one of enough is left."""
    complete = runs.is_run(run)
    if complete and lifecycle.epochs_trained(run) >= config.epochs:
        return
    resume = complete or runs.partial_dir(run).exists()
    train.fit(config, run, resume=resume, verbose=2, callbacks=[EpochTimes(output, key)])


def _timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder of the MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5, help="linear KL warm-up, epochs")
    parser.add_argument("--eval-samples", type=int, default=5000, help="K in evaluation")
    parser.add_argument("--priors", default=",".join(PRIORS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True, help="folder of the runs")
    args = parser.parse_args()
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    names = args.priors.split(",")

    for prior in names:  # training first: the evaluations take longer
        train_to(output / prior, priors_config(args.data_dir, prior, args.epochs, args.warmup,
                                               args.seed), output, f"{prior}/train")

    header = ("| prior | K components | epochs (warm-up) | test ELBO | test log p(x), K=%d | "
              "Tomczak & Welling | active units | train: wall / CPU | evaluation: wall / CPU |"
              % args.eval_samples)
    rows = []
    for prior in names:
        run = output / prior
        (metrics, _), wall, cpu = _timed(lambda: runs.evaluate_run(
            runs.load_run(run), iw_samples=args.eval_samples))
        times = _add_time(output, f"{prior}/evaluate", wall, cpu)
        train_wall, train_cpu = times.get(f"{prior}/train", [float("nan")] * 2)
        eval_wall, eval_cpu = times[f"{prior}/evaluate"]
        result = {
            "prior": prior, "components": DEFAULT_PRIOR_COMPONENTS.get(prior),
            "epochs": args.epochs, "warmup_epochs": args.warmup,
            "test_elbo": metrics["elbo"], "test_log_likelihood": metrics["log_likelihood"],
            "log_likelihood_stderr": metrics["log_likelihood_stderr"],
            "eval_samples": args.eval_samples, "active_units": metrics["active_units"],
            "paper_log_likelihood": PAPER.get(prior),
            "train_seconds": train_wall, "train_cpu_seconds": train_cpu,
            "evaluate_seconds": eval_wall, "evaluate_cpu_seconds": eval_cpu,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        }
        write_json_atomically(run / "benchmark.json", result)
        rows.append(
            f"| {prior} | {result['components'] or '-'} | {args.epochs} ({args.warmup}) | "
            f"{metrics['elbo']:.2f} | {metrics['log_likelihood']:.2f} +- "
            f"{metrics['log_likelihood_stderr']:.2f} | {PAPER.get(prior, '-')} | "
            f"{metrics['active_units']} | {train_wall / 60:.1f} / {train_cpu / 60:.1f} min | "
            f"{eval_wall / 60:.1f} / {eval_cpu / 60:.1f} min |")
        print(rows[-1], flush=True)
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
