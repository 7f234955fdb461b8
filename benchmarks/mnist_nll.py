"""MNIST test log-likelihood by the protocol of Burda et al. 2016 (one stochastic layer).

The recipe is the preset ``burda-mnist`` (keras_vae/presets.py: their 784-200-200-50 tanh
MLPs, dynamically binarised MNIST, batch 20, Adam with epsilon 1e-4, stage i of 3^i epochs at
1e-3 * 10^(-i/7)); this script chooses the number of stages, the objective and its K. Test
log-likelihood: the importance-weighted estimate with K = 5000 on the 10,000 t10k images
(fixed binarisation).

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
from keras_vae.files import write_json_atomically

PAPER = {("elbo", 1): -86.76, ("iwae", 5): -85.54, ("iwae", 50): -84.78}


def burda_config(data_dir, stages, objective, iw_samples, seed):
    """The preset burda-mnist, trained for stages 0..stages-1 with ``objective``."""
    return presets.train_config("burda-mnist", data_dir=data_dir,
                                epochs=presets.burda_epochs(stages), objective=objective,
                                iw_samples=iw_samples, seed=seed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder of the MNIST IDX files")
    parser.add_argument("--stages", type=int, default=5,
                        help="run stages 0..STAGES-1 (5: 121 epochs; the paper: 8)")
    parser.add_argument("--objective", choices=["elbo", "iwae"], default="elbo")
    parser.add_argument("--iw-samples", type=int, default=1, help="K in training")
    parser.add_argument("--eval-samples", type=int, default=5000, help="K in evaluation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True, help="run directory")
    parser.add_argument("--resume", action="store_true",
                        help="(implied when OUTPUT.partial exists)")
    args = parser.parse_args()

    config = burda_config(args.data_dir, args.stages, args.objective, args.iw_samples,
                          args.seed)
    output = pathlib.Path(args.output)
    start = time.perf_counter()
    complete = runs.is_run(output)
    if complete and lifecycle.epochs_trained(output) > config.epochs:
        parser.error(f"{output} has trained {lifecycle.epochs_trained(output)} epochs, more than "
                     f"--stages {args.stages} gives ({config.epochs}); pass its own --stages "
                     f"or another --output.")
    if not complete or lifecycle.epochs_trained(output) < config.epochs:
        # Continue an interrupted run whenever there is one, and train a complete run of
        # fewer stages further: the benchmark takes hours.
        resume = args.resume or complete or runs.partial_dir(output).exists()
        train.fit(config, output, resume=resume, verbose=2)
    train_seconds = time.perf_counter() - start

    # Exactly `kvae evaluate OUTPUT --iw-samples K`: writes metrics.json and per_example.csv,
    # and continues an interrupted estimate (most of an hour at K = 5000).
    start = time.perf_counter()
    metrics, _ = runs.evaluate_run(runs.load_run(output), iw_samples=args.eval_samples)
    evaluate_seconds = time.perf_counter() - start
    result = {
        "objective": args.objective, "iw_samples": args.iw_samples, "stages": args.stages,
        "epochs": config.epochs, "test_elbo": metrics["elbo"],
        "test_log_likelihood": metrics["log_likelihood"],
        "log_likelihood_stderr": metrics["log_likelihood_stderr"],
        "eval_samples": args.eval_samples, "active_units": metrics["active_units"],
        "kl": metrics["kl"], "paper_log_likelihood": PAPER.get((args.objective,
                                                                args.iw_samples)),
        "train_seconds_this_call": train_seconds, "evaluate_seconds": evaluate_seconds,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    write_json_atomically(output / "benchmark.json", result)
    name = "VAE" if args.objective == "elbo" else "IWAE"
    paper = result["paper_log_likelihood"]
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
