"""Grey-level MNIST (issue 21): the same VAE with the continuous Bernoulli, Normal,
discretised logistic (and logistic mixture) likelihoods, test log p(x) in nats and bits/dim.

The recipe is the priors benchmark's (``priors_mnist.py``) on grey levels: 784-300-300-(2x40)
/ 40-300-300-784 ReLU MLPs, 40 latents, the standard prior, all 60,000 MNIST training images
with ``--binarize none``, batch 100, Adam at a constant rate, no KL warm-up. The data each
likelihood sees: the continuous ones the intensities k / 255 in [0, 1] (not dequantised), the
discrete ones the 8-bit integers k themselves.

    nice -n 19 python benchmarks/greylevel_mnist.py --data-dir ../shared/data/mnist \\
        --epochs 10 --eval-samples 1000 --output /work/wt/greylevel-bench

Comparability. A discrete likelihood's log p(x) is a probability mass over the 256 levels:
its bits/dim are those of the published 8-bit tables. A continuous one's is a density at the
grid points k / 255, on another scale (``metrics.json``'s ``bits_per_dim_meaning``); since
the data are not dequantised, "density - 8 bits" bounds nothing. So for the continuous heads
the script also reads the trained decoder as a mass over the same 256 bins as the discretised
logistic (``keras_vae.binned_density``) and estimates that model's log-mass at the same K
with the same draws: the column that compares with the discrete heads.

Every run is a ``kvae fit`` run folder, OUTPUT/<likelihood>; the same command continues what
was interrupted (training through ``--resume``, the K-sample estimates through their progress
files) and skips what is done (OUTPUT/<likelihood>/benchmark-K<K>.json for this budget).
Each run also gets reconstructions.png and samples.png. Prints a Markdown table.
"""

import argparse
import json
import math
import os
import pathlib
import platform

from priors_mnist import _add_time, _timed, train_to

from keras_vae import evaluation, figures, runs
from keras_vae.binned_density import BinnedDensityModel
from keras_vae.config import TrainConfig
from keras_vae.files import write_json_atomically

LIKELIHOODS = ("continuous_bernoulli", "normal", "logistic", "logistic_mixture")
CONTINUOUS = ("continuous_bernoulli", "normal")  # read as bin masses too
BINNED_PROGRESS = "binned_evaluation.partial.npz"
DIMENSIONS = 784


def greylevel_config(data_dir, likelihood, epochs, learning_rate, seed):
    """The recipe of the module docstring with ``likelihood``."""
    return TrainConfig(
        dataset="mnist", data_dir=data_dir, likelihood=likelihood, binarize="none",
        architecture="mlp", latent_dim=40, hidden_units=(300, 300), activation="relu",
        epochs=epochs, batch_size=100, learning_rate=learning_rate,
        learning_rate_schedule="constant", kl_warmup="none", validation_fraction=0.0,
        steps_per_execution=10, prior="standard", seed=seed)


def bits(nats):
    """-nats / (D ln 2): bits per dimension of a log-likelihood in nats per image."""
    return -nats / (DIMENSIONS * math.log(2))


def train_all(args, output, names):
    for likelihood in names:
        train_to(output / likelihood, greylevel_config(
            args.data_dir, likelihood, args.epochs, args.learning_rate, args.seed),
            output, f"{likelihood}/train")


def evaluate_one(args, output, likelihood):
    """OUTPUT/<likelihood>/benchmark-K<K>.json: the run's figures at K = ``--eval-samples``
    (done once per K and epoch budget; metrics.json holds the last evaluation's)."""
    run = output / likelihood
    record = run / f"benchmark-K{args.eval_samples}.json"
    if record.exists():
        result = json.loads(record.read_text())
        if result["epochs"] == args.epochs:
            return result
    loaded = runs.load_run(run)
    figures.write_reconstructions(run, run / "reconstructions.png", 10)
    figures.write_samples(run, run / "samples.png", 64, seed=0)
    (metrics, _), wall, cpu = _timed(lambda: runs.evaluate_run(
        loaded, iw_samples=args.eval_samples))
    key = f"{likelihood}/%s-K{args.eval_samples}"  # OUTPUT/times.json, summed over restarts
    times = _add_time(output, key % "evaluate", wall, cpu)
    binned = None
    if likelihood in CONTINUOUS:
        images, _, _ = runs.test_images(loaded)
        values, wall, cpu = _timed(lambda: evaluation.log_likelihood(
            BinnedDensityModel(loaded.model), images, num_samples=args.eval_samples, seed=0,
            progress_file=run / BINNED_PROGRESS))
        times = _add_time(output, key % "evaluate_binned", wall, cpu)
        (run / BINNED_PROGRESS).unlink(missing_ok=True)
        if not all(map(math.isfinite, values)):  # a mass is at most 1: never record garbage
            raise SystemExit(f"{likelihood}: {sum(not math.isfinite(v) for v in values)} "
                             f"binned estimates are not finite.")
        binned = {"log_likelihood": float(values.mean()),
                  "log_likelihood_stderr": float(values.std(ddof=1) / math.sqrt(len(values)))}
    parts = {"train": f"{likelihood}/train", "evaluate": key % "evaluate",
             "evaluate_binned": key % "evaluate_binned"}
    result = {
        "likelihood": likelihood, "epochs": args.epochs, "eval_samples": args.eval_samples,
        "num_examples": metrics["num_examples"], "test_elbo": metrics["elbo"],
        "test_log_likelihood": metrics["log_likelihood"],
        "log_likelihood_stderr": metrics["log_likelihood_stderr"],
        "nll_bits_per_dim": metrics["nll_bits_per_dim"],
        "bits_per_dim_meaning": metrics.get("bits_per_dim_meaning"),
        "binned": binned, "active_units": metrics["active_units"],
        "times": {part: times[name] for part, name in parts.items() if name in times},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    write_json_atomically(record, result)
    return result


def row(result):
    times = result["times"]
    train_wall, train_cpu = times.get("train", [float("nan")] * 2)
    eval_wall = sum(value[0] for key, value in times.items() if key != "train")
    eval_cpu = sum(value[1] for key, value in times.items() if key != "train")
    binned = result["binned"]
    kind = "density" if binned else "mass"
    mass = (f"{binned['log_likelihood']:.2f} +- {binned['log_likelihood_stderr']:.2f} "
            f"({bits(binned['log_likelihood']):.3f})" if binned else "(the same)")
    return (f"| {result['likelihood']} | {kind} | {result['epochs']} | "
            f"{result['test_elbo']:.2f} | {result['test_log_likelihood']:.2f} +- "
            f"{result['log_likelihood_stderr']:.2f} | {result['nll_bits_per_dim']:.3f} | "
            f"{mass} | {result['active_units']} | {train_wall / 60:.1f} / "
            f"{train_cpu / 60:.1f} min | {eval_wall / 60:.1f} / {eval_cpu / 60:.1f} min |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder of the MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--eval-samples", type=int, default=1000, help="K in evaluation")
    parser.add_argument("--likelihoods", default=",".join(LIKELIHOODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True, help="folder of the runs")
    args = parser.parse_args()
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    names = args.likelihoods.split(",")
    train_all(args, output, names)  # training first: the evaluations take longer
    rows = []
    for likelihood in names:
        rows.append(row(evaluate_one(args, output, likelihood)))
        print(rows[-1], flush=True)
    print(f"| likelihood | log p(x) is a | epochs | test ELBO | test log p(x), "
          f"K={args.eval_samples} | bits/dim | as a mass over the 256 bins: log P(x) "
          f"(bits/dim) | active units | train: wall / CPU | evaluation: wall / CPU |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
