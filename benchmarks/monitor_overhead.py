"""What the ``LatentMonitor`` of ``kvae fit`` adds to an MNIST epoch.

    python benchmarks/monitor_overhead.py [--data-dir ../shared/data/mnist] [--repeats 10]
                                          [--epochs 2]

The model and pipeline are ``kvae fit``'s defaults (``train.build_model`` of a default
``TrainConfig``: the 784-500-500-(2x50) / 50-500-500-784 MLP, batch 50, 55,000 training and
5,000 validation images of ``data.make_splits``; random binary images of the same sizes when
no MNIST folder is given: the cost does not depend on the pixels). It measures, in one
process so that the machine's load hits both alike:

- a training epoch: ``model.fit`` of one epoch with validation, without the monitor, the
  median of ``--epochs`` epochs after a warm-up;
- the monitor's work at the end of an epoch (``on_epoch_end``: KL per dimension and active
  units on the first 1,000 validation images through one compiled function, the sample and
  reconstruction grids, the TensorBoard summaries and latent_history.csv), the median of
  ``--repeats`` calls after the first (which traces the function), and its parts;

and prints the overhead as monitor seconds / epoch seconds. Medians: the machines here are
shared and noisy.
"""

import argparse
import os
import platform
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_vae import data, figures, train  # noqa: E402
from keras_vae.callbacks import LatentMonitor  # noqa: E402


def mnist_sized_splits(data_dir, config):
    """kvae fit's splits of MNIST, or random binary images of MNIST's sizes."""
    if data_dir:
        return data.make_splits("mnist", data_dir, batch_size=config.batch_size,
                                validation_fraction=config.validation_fraction, seed=0)
    rng = np.random.default_rng(0)
    images = {split: (rng.random((count, 28, 28, 1)) > 0.5).astype("float32")
              for split, count in (("train", 55_000), ("validation", 5_000))}
    batches = {split: tf.data.Dataset.from_tensor_slices(array).batch(config.batch_size)
               .prefetch(tf.data.AUTOTUNE) for split, array in images.items()}
    return data.Splits(train=batches["train"].shuffle(64, seed=0),
                       validation=batches["validation"], test=batches["validation"],
                       image_shape=(28, 28, 1), num_train=55_000, num_validation=5_000,
                       num_test=5_000)


def median_seconds(function, repeats):
    """Median wall-clock seconds of ``repeats`` calls of ``function``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="MNIST IDX folder (else random)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    config = train.TrainConfig()
    splits = mnist_sized_splits(args.data_dir, config)
    keras.utils.set_random_seed(0)
    model = train.build_model(config, splits.image_shape,
                              steps_per_epoch=splits.num_train // config.batch_size)
    model.fit(splits.train.take(20), validation_data=splits.validation.take(2), verbose=0)
    epoch_times = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        model.fit(splits.train, validation_data=splits.validation, epochs=1, verbose=0)
        epoch_times.append(time.perf_counter() - start)
    epoch = statistics.median(epoch_times)

    with tempfile.TemporaryDirectory() as folder:
        images = np.concatenate([np.asarray(batch) for batch in splits.validation])
        monitor = LatentMonitor(images, log_dir=f"{folder}/logs",
                                history_file=f"{folder}/latent_history.csv", initial_epoch=0)
        monitor.set_model(model)
        monitor.on_train_begin()
        start = time.perf_counter()
        monitor.on_epoch_end(0, {})  # traces the compiled function: once per fit
        first = time.perf_counter() - start
        epochs = iter(range(1, 10**6))
        whole = median_seconds(lambda: monitor.on_epoch_end(next(epochs), {}), args.repeats)
        diagnostics = median_seconds(monitor.diagnostics, args.repeats)
        grids = median_seconds(lambda: (
            figures.sample_grid(model, monitor.num_samples, monitor.seed),
            figures.reconstruction_grid(model, monitor.images[:monitor.num_reconstructions])),
            args.repeats)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; TensorFlow {tf.__version__}, "
          f"Keras {keras.__version__}; data: {'MNIST' if args.data_dir else 'random'}")
    print(f"epoch ({splits.num_train:,} images, batch {config.batch_size}, with validation), "
          f"median of {args.epochs}: {epoch:.2f} s "
          f"({', '.join(f'{t:.2f}' for t in epoch_times)})")
    print(f"the monitor's first epoch (tracing its function, once per fit): {first:.2f} s")
    print(f"| monitor work per epoch ({len(monitor.images)} images) | ms (median of "
          f"{args.repeats}) | share of an epoch |")
    print("|---|---:|---:|")
    for name, seconds in (("KL per dimension and active units (compiled)", diagnostics),
                          ("sample and reconstruction grids", grids),
                          ("all of on_epoch_end (with TensorBoard and CSV)", whole)):
        print(f"| {name} | {seconds * 1000:.1f} | {seconds / epoch:.2%} |")


if __name__ == "__main__":
    main()
