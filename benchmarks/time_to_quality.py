"""Time to quality (issue 24): test log p(x) of one training run at several epochs, against
the CPU time its training took to get there.

``kvae fit`` keeps only its newest checkpoint (RUN.partial/backup/epoch-N), so a watcher
copies the checkpoints of the epochs wanted while the run trains (for the vamp-mnist run:
/work/wt/ship-runs/snapshot_watch.sh, benchmarks/RESULTS.md "Issue 24"). Each snapshot folder
holds the checkpoint (checkpoint.weights.h5, state.json: the epochs done), the run's
config.json and the times.json of ``mnist_nll.py`` as it was then (the wall and CPU seconds of
every epoch trained so far, summed over interruptions; the copy is taken within seconds of the
epoch's end, so it may miss that last epoch's time: within one epoch, about 17 CPU-s here).

For each snapshot this rebuilds the model from config.json (``train.build_model``), loads the
checkpoint, and evaluates it exactly as ``kvae evaluate RUN --iw-samples K`` evaluates a run
(``run_reports.test_metrics`` on the run's test split, the same seed), continuing an
interrupted estimate from SNAPSHOT/evaluation.partial.npz; it writes SNAPSHOT/metrics.json and
prints one Markdown row per snapshot: epochs, training CPU-hours, test ELBO, test log p(x) +-
its standard error. Nats per example.

    nice -n 19 python benchmarks/time_to_quality.py --key vamp-mnist/train \\
        --iw-samples 5000 /work/wt/ship-runs/snapshots/epoch-*
"""

import argparse
import json
import pathlib

from keras_vae import runs
from keras_vae.callbacks.epoch_checkpoint import EpochCheckpoint
from keras_vae.config import TrainConfig
from keras_vae.files import write_json_atomically

METRICS = "metrics.json"


def snapshot_model(folder):
    """(model, config, epochs done) of a snapshot folder: the run's model with the weights,
    optimizer state and noise seed of its checkpoint."""
    from keras_vae import train

    weights = EpochCheckpoint.weights_file(folder)
    if weights is None or not (folder / runs.CONFIG).exists():
        raise SystemExit(f"{folder} is not a snapshot: it needs {runs.CONFIG} and one of "
                         f"{', '.join(EpochCheckpoint.WEIGHT_FILES)} (snapshot_watch.sh copies "
                         f"them from RUN.partial/backup/epoch-N).")
    record = json.loads((folder / runs.CONFIG).read_text())
    config = TrainConfig.from_json(record["train"])
    image_shape = tuple(record["data"]["image_shape"])
    model = train.build_model(config, image_shape)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(weights)
    epochs = json.loads((folder / EpochCheckpoint.STATE).read_text())["epochs_done"]
    return model, config, epochs


def evaluate_snapshot(folder, iw_samples, seed=0):
    """``kvae evaluate``'s metrics of the snapshot in ``folder`` (written to its
    metrics.json, with "epochs"), continuing an interrupted K-sample estimate."""
    import numpy as np

    from keras_vae import run_reports

    folder = pathlib.Path(folder)
    model, config, epochs = snapshot_model(folder)
    splits = runs.load_splits(config)
    images = np.concatenate([np.asarray(batch) for batch in splits.test])
    metrics, _ = run_reports.test_metrics(
        model, images, iw_samples=iw_samples, seed=seed,
        progress_file=folder / runs.EVALUATION_PROGRESS)
    metrics["epochs"] = epochs
    write_json_atomically(folder / METRICS, metrics)
    (folder / runs.EVALUATION_PROGRESS).unlink(missing_ok=True)
    return metrics


def training_cpu_seconds(folder, key):
    """CPU seconds of training up to the snapshot (its times.json under ``key``), or None."""
    times = folder / "times.json"
    if not times.exists():
        return None
    return json.loads(times.read_text()).get(key, [None, None])[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshots", nargs="+", help="snapshot folders (epoch-N)")
    parser.add_argument("--iw-samples", type=int, default=5000, help="K of the estimate")
    parser.add_argument("--key", required=True, help="the run's entry in times.json")
    args = parser.parse_args()
    print("| epochs | training CPU-h | test ELBO | test log p(x), K=%d |" % args.iw_samples)
    print("|---:|---:|---:|---:|")
    for folder in sorted(pathlib.Path(name) for name in args.snapshots):
        done = folder / METRICS
        metrics = json.loads(done.read_text()) if done.exists() else None
        if metrics is None or metrics.get("iw_samples") != args.iw_samples:
            metrics = evaluate_snapshot(folder, args.iw_samples)
        cpu = training_cpu_seconds(folder, args.key)
        hours = "n/a" if cpu is None else f"{cpu / 3600:.2f}"
        print(f"| {metrics['epochs']} | {hours} | {metrics['elbo']:.2f} | "
              f"{metrics['log_likelihood']:.2f} +- {metrics['log_likelihood_stderr']:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
