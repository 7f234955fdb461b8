"""Pilots for issue 24: candidate recipes for the shipped MNIST VAE on one CPU budget.

Each candidate is a preset of ``keras_vae/presets.py`` with some TrainConfig options changed.
It trains (``train.fit``, dynamically binarised MNIST, all 60,000 training images) until this
process has spent ``--cpu-budget`` CPU seconds on it (checked at the end of each epoch, so the
last epoch overshoots by up to one epoch), and is then scored on

- the training ELBO of its last epoch (the epoch mean Keras logged, nats);
- the test ELBO on the 10,000 test images (``train.fit``'s metrics, one draw per image);
- the importance-weighted estimate of test log p(x) with ``--eval-samples`` K (default 100)
  on the first ``--test-images`` (default 2,000) test images, fixed binarisation (the run's
  own test split, seed 2): ``log p(x) >= E[log mean_k p(x, z_k) / q(z_k | x)]`` (Burda et
  al. 2016), a lower bound that tightens with K, so it ranks candidates, it does not give
  their K = 5000 figure.

CPU time is ``time.process_time()`` (all threads of this process), per epoch. One row per
candidate goes to OUTPUT/pilots.json (a candidate already there is skipped, so the command
continues after an interruption; a half-trained pilot starts again):

    nice -n 19 python benchmarks/ship_pilots.py --data-dir ../shared/data/mnist \\
        --output /work/wt/ship-runs/pilots --candidates ladder20,ladder-vamp100
"""

import argparse
import json
import pathlib
import shutil
import time

import keras
import numpy as np

from keras_vae import evaluation, presets, runs, train
from keras_vae.files import write_json_atomically

# name -> (preset, TrainConfig options that differ from it)
CANDIDATES = {
    "ladder20": ("ladder-mnist", {}),
    "ladder20-iwae5": ("ladder-mnist", dict(objective="iwae", iw_samples=5)),  # not run yet
    "ladder100": ("ladder-mnist", dict(batch_size=100, learning_rate=2e-3)),
    "ladder-vamp100": ("ladder-mnist", dict(prior="vamp", prior_components=500,
                                            batch_size=100, learning_rate=2e-3)),
    # One layer with the VampPrior, Tomczak & Welling's sizes (784-300-300-40 ReLU; the
    # priors benchmark trained it at 5e-4), on Burda's stage schedule at 1e-3.
    "vamp100-relu": ("burda-mnist", dict(prior="vamp", prior_components=500, batch_size=100,
                                         activation="relu", hidden_units=(300, 300),
                                         latent_dim=40, kl_warmup="linear",
                                         kl_warmup_length=4)),
    "ladder-vamp100-relu-1e-3": ("ladder-mnist", dict(
        prior="vamp", prior_components=500, batch_size=100, activation="relu",
        hidden_units=(300, 300))),
}


class CPUBudget(keras.callbacks.Callback):
    """Records each epoch's wall and CPU seconds; stops training after the epoch in which
    the CPU seconds spent since training began pass ``budget``."""

    def __init__(self, budget):
        super().__init__()
        self.budget, self.epochs = budget, []

    def on_train_begin(self, logs=None):
        self.start_cpu = time.process_time()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        wall, cpu = (time.perf_counter() - self.epoch_start[0],
                     time.process_time() - self.epoch_start[1])
        self.epochs.append(dict(epoch=epoch + 1, wall=wall, cpu=cpu,
                                **{k: float(v) for k, v in (logs or {}).items()}))
        if time.process_time() - self.start_cpu >= self.budget:
            self.model.stop_training = True


def test_subset(config, count):
    """The first ``count`` test images of ``config``'s data, as its run sees them (fixed
    binarisation)."""
    batches = [np.asarray(batch[0] if isinstance(batch, (tuple, list)) else batch)
               for batch in runs.load_splits(config).test]
    return np.concatenate(batches)[:count]


def pilot(name, data_dir, budget, output, eval_samples, test_images):
    """Trains candidate ``name`` for ``budget`` CPU seconds; returns its row (a dict)."""
    preset, options = CANDIDATES[name]
    config = presets.train_config(preset, data_dir=data_dir, **options)
    run = output / name
    for folder in (run, runs.partial_dir(run)):  # a half-done pilot starts again
        shutil.rmtree(folder, ignore_errors=True)
    budget_callback = CPUBudget(budget)
    start_cpu = time.process_time()
    test_metrics = train.fit(config, run, verbose=2, callbacks=[budget_callback])
    train_cpu = time.process_time() - start_cpu
    model = runs.load_run(run).model
    start_cpu = time.process_time()
    values = evaluation.log_likelihood(model, test_subset(config, test_images),
                                       num_samples=eval_samples)
    last = budget_callback.epochs[-1]
    return dict(
        candidate=name, preset=preset, options={k: list(v) if isinstance(v, tuple) else v
                                                for k, v in options.items()},
        epochs=len(budget_callback.epochs),
        steps=len(budget_callback.epochs) * -(-60000 // config.batch_size),
        train_cpu_seconds=train_cpu,
        epoch_cpu_seconds=[round(e["cpu"], 1) for e in budget_callback.epochs],
        epoch_wall_seconds=[round(e["wall"], 1) for e in budget_callback.epochs],
        train_elbo_history=[round(e["elbo"], 2) for e in budget_callback.epochs],
        last_epoch_logs=last, test_elbo_10000=test_metrics.get("elbo"),
        test_log_likelihood=float(values.mean()),
        test_log_likelihood_stderr=float(values.std(ddof=1) / np.sqrt(len(values))),
        eval_samples=eval_samples, test_images=len(values),
        eval_cpu_seconds=time.process_time() - start_cpu)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--cpu-budget", type=float, default=240.0, help="CPU s of training")
    parser.add_argument("--eval-samples", type=int, default=100)
    parser.add_argument("--test-images", type=int, default=2000)
    args = parser.parse_args()
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    results_path = output / "pilots.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in args.candidates.split(","):
        if name in results:
            continue
        results[name] = pilot(name, args.data_dir, args.cpu_budget, output,
                              args.eval_samples, args.test_images)
        write_json_atomically(results_path, results)
        row = results[name]
        print(f"| {name} | {row['epochs']} | {row['steps']} | {row['train_cpu_seconds']:.0f} | "
              f"{row['train_elbo_history'][-1]:.2f} | {row['test_elbo_10000']:.2f} | "
              f"{row['test_log_likelihood']:.2f} +- {row['test_log_likelihood_stderr']:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
