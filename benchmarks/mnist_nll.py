"""MNIST test log-likelihood by the protocol of Burda et al. 2016, for any preset's model.

The recipe is the preset ``burda-mnist`` (keras_vae/presets.py: their 784-200-200-50 tanh
MLPs, dynamically binarised MNIST, batch 20, Adam with epsilon 1e-4, stage i of 3^i epochs at
1e-3 * 10^(-i/7)); this script chooses the number of stages, the objective and its K. Test
log-likelihood: the importance-weighted estimate with K = 5000 on the 10,000 t10k images
(fixed binarisation).

``--preset`` trains another preset's model on its own recipe (issue 22: ``burda-mnist-2layer``,
their two-stochastic-layer VAE; ``ladder-mnist``; ``ladder-conv-mnist``), and ``--model``,
``--latent-dims``, ``--latent-hidden-units``, ``--hidden-units``, ``--architecture`` and
``--merge`` change its model (``kvae fit``'s options of the same names):

    nice -n 19 python benchmarks/mnist_nll.py --data-dir ../shared/data/mnist --stages 5 \
        --preset burda-mnist-2layer --output /work/wt/hier-bench/hvae-k1

    python benchmarks/mnist_nll.py --data-dir ../shared/data/mnist --stages 5 \\
        --objective elbo --iw-samples 1 --output /tmp/burda/vae-k1

``--stages 5`` runs stages 0..4 (121 epochs); the paper runs 8 (3,280 epochs) and reports
test log-likelihood -86.76 (VAE, k=1), -85.54 (IWAE, k=5) and -84.78 (IWAE, k=50) nats.
The run is a ``kvae fit`` run directory, and the same command continues it after an
interruption; given more ``--stages``, it trains a complete run further. The evaluation is
``kvae evaluate OUTPUT --iw-samples K`` (metrics.json). The script prints one Markdown table
row with the figures and the time taken, and writes them to OUTPUT/benchmark.json.
"""

import argparse
import json
import pathlib
import platform
import os
import time

from keras_vae import lifecycle, presets, runs, train
from keras_vae.errors import KerasVAEError
from keras_vae.files import write_json_atomically

from priors_mnist import TIMES, EpochTimes

# Burda et al. 2016, table 1, MNIST, test log p(x) at K=5000 after stages 0..7: (preset,
# objective, k) -> nats (two layers: 784-200-200-100 and 100-100-50, their code).
PAPER = {("burda-mnist", "elbo", 1): -86.76, ("burda-mnist", "iwae", 5): -85.54,
         ("burda-mnist", "iwae", 50): -84.78,
         ("burda-mnist-2layer", "elbo", 1): -85.33, ("burda-mnist-2layer", "iwae", 5): -83.89,
         ("burda-mnist-2layer", "iwae", 50): -82.90}
# Options of the model that --model and friends override (TrainConfig fields).
MODEL_OPTIONS = ("model", "latent_dims", "latent_hidden_units", "hidden_units",
                 "architecture", "merge")


def _sizes(text):
    """"100,50" -> (100, 50); "none" -> () (no hidden layers between latent layers)."""
    return () if text.strip().lower() == "none" else tuple(
        int(size) for size in text.split(","))


def burda_config(data_dir, stages, objective, iw_samples, seed, preset="burda-mnist",
                 **model_options):
    """The preset ``preset`` (default burda-mnist), with ``model_options`` (TrainConfig
    fields of ``MODEL_OPTIONS``), trained for stages 0..stages-1 with ``objective``."""
    return presets.train_config(preset, data_dir=data_dir,
                                epochs=presets.burda_epochs(stages), objective=objective,
                                iw_samples=iw_samples, seed=seed, **model_options)


def paper_figure(preset, objective, iw_samples, model_options):
    """Burda et al.'s figure for this preset's model and objective; None when the model was
    changed or the paper has none."""
    return None if model_options else PAPER.get((preset, objective, iw_samples))


def parser():
    """The command line of this script."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder of the MNIST IDX files")
    parser.add_argument("--preset", default="burda-mnist", choices=list(presets.PRESETS),
                        help="the model and recipe (keras_vae/presets.py)")
    parser.add_argument("--model", choices=["vae", "hvae", "ladder"])
    parser.add_argument("--latent-dims", type=_sizes, help="e.g. 100,50 (hvae, ladder)")
    parser.add_argument("--latent-hidden-units", type=_sizes, help="e.g. 100,100, or none")
    parser.add_argument("--hidden-units", type=_sizes, help="e.g. 200,200 (conv: filters)")
    parser.add_argument("--architecture", choices=["mlp", "conv"])
    parser.add_argument("--merge", choices=["precision", "residual"])
    parser.add_argument("--stages", type=int, default=5,
                        help="run stages 0..STAGES-1 (5: 121 epochs; the paper: 8)")
    parser.add_argument("--objective", choices=["elbo", "iwae"], default="elbo")
    parser.add_argument("--iw-samples", type=int, default=1, help="K in training")
    parser.add_argument("--eval-samples", type=int, default=5000, help="K in evaluation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True, help="run directory")
    parser.add_argument("--resume", action="store_true",
                        help="(implied when OUTPUT.partial exists)")
    return parser


def configuration(args):
    """(TrainConfig, the model options given) of parsed arguments ``args``."""
    model_options = {name: getattr(args, name) for name in MODEL_OPTIONS
                     if getattr(args, name) is not None}
    return burda_config(args.data_dir, args.stages, args.objective, args.iw_samples,
                        args.seed, preset=args.preset, **model_options), model_options


def main():
    command = parser()
    args = command.parse_args()
    try:
        config, model_options = configuration(args)
    except KerasVAEError as error:  # e.g. --merge residual with --model hvae: one line
        command.error(str(error))
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    complete = runs.is_run(output)
    if complete and lifecycle.epochs_trained(output) > config.epochs:
        command.error(f"{output} has trained {lifecycle.epochs_trained(output)} epochs, more than "
                     f"--stages {args.stages} gives ({config.epochs}); pass its own --stages "
                     f"or another --output.")
    if not complete or lifecycle.epochs_trained(output) < config.epochs:
        # Continue an interrupted run whenever there is one, and train a complete run of
        # fewer stages further: the benchmark takes hours.
        resume = args.resume or complete or runs.partial_dir(output).exists()
        # CPU and wall seconds of every epoch, summed over interruptions, into
        # OUTPUT/../times.json under OUTPUT's name (the CPU-hours of the issue-22 table).
        train.fit(config, output, resume=resume, verbose=2,
                  callbacks=[EpochTimes(output.parent, f"{output.name}/train")])
    train_seconds = time.perf_counter() - start

    # Exactly `kvae evaluate OUTPUT --iw-samples K`: writes metrics.json and per_example.csv,
    # and continues an interrupted estimate (most of an hour at K = 5000).
    start, start_cpu = time.perf_counter(), time.process_time()
    metrics, _ = runs.evaluate_run(runs.load_run(output), iw_samples=args.eval_samples)
    evaluate_seconds = time.perf_counter() - start
    evaluate_cpu_seconds = time.process_time() - start_cpu
    times = output.parent / TIMES
    train_wall_cpu = (json.loads(times.read_text()).get(f"{output.name}/train")
                      if times.exists() else None)
    paper = paper_figure(args.preset, args.objective, args.iw_samples, model_options)
    result = {
        "preset": args.preset, **{name: getattr(config, name) for name in MODEL_OPTIONS},
        "objective": args.objective, "iw_samples": args.iw_samples, "stages": args.stages,
        "epochs": config.epochs, "test_elbo": metrics["elbo"],
        "test_log_likelihood": metrics["log_likelihood"],
        "log_likelihood_stderr": metrics["log_likelihood_stderr"],
        "eval_samples": args.eval_samples, "active_units": metrics["active_units"],
        "kl": metrics["kl"], "paper_log_likelihood": paper,
        "train_seconds_this_call": train_seconds, "evaluate_seconds": evaluate_seconds,
        "evaluate_cpu_seconds_this_call": evaluate_cpu_seconds,
        # every epoch's, summed over interruptions (None: trained before times.json existed)
        "train_epochs_wall_cpu_seconds": train_wall_cpu,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    write_json_atomically(output / "benchmark.json", result)
    name = "VAE" if args.objective == "elbo" else "IWAE"
    if config.model != "vae":
        name = f"{len(config.latent_dims)}-layer {config.model} {name}"
    print("| model | k | stages (epochs) | test ELBO | test log p(x), K=%d | paper | active "
          "units | train time | evaluation time |" % args.eval_samples)
    print(f"| {name} | {args.iw_samples} | 0..{args.stages - 1} ({config.epochs}) | "
          f"{metrics['elbo']:.2f} | {metrics['log_likelihood']:.2f} +- "
          f"{metrics['log_likelihood_stderr']:.2f} | {paper if paper else '-'} | "
          f"{metrics['active_units']} | {train_seconds / 60:.1f} min | "
          f"{evaluate_seconds / 60:.1f} min |")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
