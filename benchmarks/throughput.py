"""Training throughput of the 784-500-500-(2x50) / 50-500-500-784 MLP VAE: keras-vae's
defaults side by side with a hand-written Keras 3 VAE and PyTorch, and the matmul roofline.

    python benchmarks/throughput.py [--quick] [--threads 1,2] [--batch-sizes 20,100,500]
                                    [--rounds 5] [--seconds 6]
    python benchmarks/throughput.py --overhead [--batch-sizes 20] [--rounds 5]
    python benchmarks/throughput.py --pipeline --data-dir ../shared/data/mnist

Default mode, the comparison (issue 20). Four trainers of the same model (ReLU, Bernoulli
likelihood, one reparameterised draw, analytic KL, Adam 1e-3) on random binary 28x28 images
held in memory:

- ``keras-vae``: ``kv.VAE(...)`` and ``compile(optimizer=Adam(1e-3))``, as a user gets it;
- ``kvae fit``: ``train.build_model`` with a default ``TrainConfig`` (what ``kvae fit`` trains);
- ``Keras``: a hand-written Keras 3 VAE (``HandWrittenVAE``) compiled with Keras' defaults;
- ``PyTorch``: the same model in PyTorch (CPU), a plain training loop. Imported only here;
  when it is not installed the column is skipped with a message (``pip install torch``).

Each trainer runs in a subprocess of its own per thread count (TensorFlow's intra- and
inter-op threads, or ``torch.set_num_threads``, fixed before any op), so thread settings stick.
The parent asks the workers in turn for one timed window each (round 1: every trainer at every
batch size, then round 2, ...), so a change in the load of this shared machine hits all of
them alike; the table gives the median of the rounds. A float32 2048^3 matmul is timed in the
same rounds with the same threads: GFLOP/s of training is examples/s x 8.15 MFLOP (3x the
forward matmuls: forward, gradient with respect to activations and to weights; element-wise
work not counted, so the fraction is a lower bound).

``--overhead``: what a keras-vae step does besides the matmuls. In one process (one thread),
alternating, the default model against copies without one piece each: the data checks, the
metric updates, the noise-seed variable (noise from a constant seed instead), and against one
step per call and XLA.

``--pipeline``: ``kvae fit``'s MNIST input pipeline against the same images as in-memory
tensors (``compare_input_pipeline``).

Timings are medians over alternating windows on a shared, noisy machine: compare figures
from one run (ratios), not across runs.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from throughput_trainers import (HIDDEN, INPUT_DIM, LATENT_DIM,  # noqa: E402
                                 KerasTrainer, TorchTrainer, hand_written_keras_model,
                                 in_memory_batches, keras_vae_model, kvae_fit_model)

TRAINERS = ("keras-vae", "kvae fit", "Keras", "PyTorch")


def training_flops_per_example():
    """3 x forward FLOPs of the encoder (784-500-500-100) and decoder (50-500-500-784)."""
    encoder = [INPUT_DIM, *HIDDEN, 2 * LATENT_DIM]
    decoder = [LATENT_DIM, *HIDDEN[::-1], INPUT_DIM]
    multiply_adds = sum(a * b for layers in (encoder, decoder)
                        for a, b in zip(layers[:-1], layers[1:]))
    return 3 * 2 * multiply_adds


def matmul_gflops(size=2048, seconds=5.0):
    """Float32 GFLOP/s of a size x size matmul: the practical roofline of this machine."""
    import tensorflow as tf

    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    matmul().numpy()  # warm-up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        matmul().numpy()
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e9


def worker(trainer_name, threads):
    """A subprocess: answers 'BATCH SECONDS' (examples/s of one window) or 'matmul SECONDS'
    (GFLOP/s) on stdin/stdout, one JSON line each, with ``threads`` threads throughout."""
    if trainer_name == "PyTorch":
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)
    else:
        from keras_vae import quiet

        quiet.silence_tensorflow_start_up()
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    makers = {"keras-vae": keras_vae_model, "kvae fit": kvae_fit_model,
              "Keras": hand_written_keras_model}
    trainers = {}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        what, seconds = line.split()
        if what == "matmul":
            print(json.dumps({"value": matmul_gflops(seconds=float(seconds))}), flush=True)
            continue
        batch_size = int(what)
        if batch_size not in trainers:
            trainers[batch_size] = (TorchTrainer(batch_size) if trainer_name == "PyTorch"
                                    else KerasTrainer(makers[trainer_name], batch_size))
        rate = trainers[batch_size].examples_per_second(float(seconds))
        print(json.dumps({"value": rate}), flush=True)


class Worker:
    """The parent's handle on one worker subprocess."""

    def __init__(self, trainer_name, threads):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", trainer_name, "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ask_line()

    def ask_line(self, request=None):
        if request is not None:
            self.process.stdin.write(request + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"a benchmark worker stopped (exit {self.process.wait()})")
        return json.loads(line).get("value")

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def torch_available():
    try:
        import importlib.util

        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def compare(thread_counts, batch_sizes, rounds, seconds):
    """Prints the side-by-side table (see the module docstring)."""
    trainers = list(TRAINERS)
    if not torch_available():
        print("PyTorch is not installed: its column is skipped (pip install torch).")
        trainers.remove("PyTorch")
    flops = training_flops_per_example()
    from importlib.metadata import version  # the parent imports no framework

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"TensorFlow {version('tensorflow')}, Keras {version('keras')}"
          + (f", PyTorch {version('torch')}" if "PyTorch" in trainers else ""))
    print(f"training cost: {flops / 1e6:.2f} MFLOP per example; {rounds} alternating rounds "
          f"of ~{seconds:g} s windows; medians")
    header = " | ".join(f"{name} ex/s" for name in trainers)
    print(f"\n| threads | batch | {header} | keras-vae / PyTorch | kvae fit / PyTorch | "
          f"keras-vae / Keras | keras-vae GFLOP/s | matmul GFLOP/s | fraction of matmul |")
    print("|---:|---:|" + "---:|" * (len(trainers) + 6))
    for threads in thread_counts:
        workers = {name: Worker(name, threads) for name in trainers}
        rates = {(name, b): [] for name in trainers for b in batch_sizes}
        matmul = []
        try:
            for _ in range(rounds):
                matmul.append(workers["keras-vae"].ask_line(f"matmul {min(seconds, 3.0)}"))
                for batch_size in batch_sizes:
                    for name, handle in workers.items():
                        rates[name, batch_size].append(
                            handle.ask_line(f"{batch_size} {seconds}"))
        finally:
            for handle in workers.values():
                handle.close()
        roofline = statistics.median(matmul)
        for batch_size in batch_sizes:
            median = {name: statistics.median(rates[name, batch_size]) for name in trainers}
            torch_rate = median.get("PyTorch")
            ratio = (lambda a: f"{a / torch_rate:.2f}") if torch_rate else (lambda a: "-")
            achieved = median["keras-vae"] * flops / 1e9
            cells = " | ".join(f"{median[name]:,.0f}" for name in trainers)
            print(f"| {threads} | {batch_size} | {cells} | {ratio(median['keras-vae'])} | "
                  f"{ratio(median['kvae fit'])} | "
                  f"{median['keras-vae'] / median['Keras']:.2f} | {achieved:.1f} | "
                  f"{roofline:.1f} | {achieved / roofline:.2f} |", flush=True)


# ------------------------------------------------------------------ per-step overhead


def overhead_variants():
    """name -> a function that changes a fresh default kv.VAE in one way (or not at all)."""
    import tensorflow as tf

    def no_data_checks(model):
        model.decoder.data_checks = lambda x: []

    def no_metric_updates(model):
        model._update_metrics = lambda terms: {"loss": tf.reduce_mean(terms.loss)}

    def constant_noise_seed(model):
        def noise(batch_size, num_draws=1):
            return tf.random.stateless_normal(
                [num_draws, batch_size, model._latent_size()], seed=[1, 2])
        model._posterior_noise = noise

    return {"default": {}, "no data checks": {"change": no_data_checks},
            "no metric updates": {"change": no_metric_updates},
            "noise from a constant seed": {"change": constant_noise_seed},
            "1 step per call": {"compile": {"steps_per_execution": 1}},
            "XLA": {"compile": {"jit_compile": True}}}


def overhead(batch_sizes, rounds, seconds):
    """Prints ms per step of the default model and of each variant, alternating."""
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras_vae as kv

    def make(settings):
        def model_of(batch_size):
            model = kv.VAE(input_shape=(28, 28, 1), latent_dim=LATENT_DIM, hidden_units=HIDDEN)
            settings.get("change", lambda m: None)(model)
            model.compile(optimizer=keras.optimizers.Adam(1e-3), **settings.get("compile", {}))
            return model
        return model_of

    print(f"one thread, {rounds} alternating rounds of ~{seconds:g} s windows; medians")
    print("| batch | variant | ms per step | vs default |")
    print("|---:|---|---:|---:|")
    for batch_size in batch_sizes:
        trainers = {name: KerasTrainer(make(settings), batch_size)
                    for name, settings in overhead_variants().items()}
        times = {name: [] for name in trainers}
        for _ in range(rounds):
            for name, trainer in trainers.items():
                times[name].append(1000 * batch_size / trainer.examples_per_second(seconds))
        default = statistics.median(times["default"])
        for name, values in times.items():
            print(f"| {batch_size} | {name} | {statistics.median(values):.2f} | "
                  f"{statistics.median(values) / default:.2f} |", flush=True)


# ------------------------------------------------------------------ the input pipeline


def compare_input_pipeline(data_dir, steps, repeats, batch_size=100):
    """Steps/s with kvae fit's MNIST pipeline vs the same images as in-memory tensors.

    Each window is one ``model.fit`` call of ``steps`` steps, timed from the call to its end,
    so it includes what a real epoch pays: a fresh iterator (the pipeline refills its
    55,000-image shuffle buffer). The two sources alternate (A, B, A, B, ...) so that a
    change in the load of this shared machine hits both alike; the figure is the ratio of
    their median rates.
    """
    import keras
    import numpy as np

    import keras_vae as kv
    from keras_vae import data

    splits = data.make_splits("mnist", data_dir, batch_size=batch_size)
    images = np.concatenate([batch.numpy() for batch in splits.train.take(100)])
    sources = {"real pipeline (shuffle, dynamic binarisation, prefetch)": splits.train.repeat(),
               "in-memory tensors": in_memory_batches(images, batch_size)}
    models = {}
    for name, dataset in sources.items():
        keras.utils.set_random_seed(0)
        model = kv.VAE(input_shape=(28, 28, 1), latent_dim=LATENT_DIM, hidden_units=HIDDEN)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=1)
        model.fit(dataset, epochs=1, steps_per_epoch=20, verbose=0, shuffle=False)  # trace
        models[name] = (model, dataset)
    rates = {name: [] for name in sources}
    for _ in range(repeats):
        for name, (model, dataset) in models.items():
            start = time.perf_counter()
            model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
            rates[name].append(steps / (time.perf_counter() - start))
    print(f"\ninput pipeline, batch {batch_size}, XLA off, {repeats} alternating windows of "
          f"{steps} steps each:")
    print("| input | steps/s (median) | windows |")
    print("|---|---:|---|")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.2f} | "
              f"{', '.join(f'{v:.2f}' for v in values)} |")
    first, second = (statistics.median(v) for v in rates.values())
    print(f"ratio pipeline / in-memory: {first / second:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a short run: one thread, batches 20 and 500, 3 rounds of 2 s")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--batch-sizes", default="20,100,500")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6.0,
                        help="seconds per timed window")
    parser.add_argument("--overhead", action="store_true",
                        help="time the pieces of a step besides the matmuls instead")
    parser.add_argument("--pipeline", action="store_true",
                        help="compare kvae fit's input pipeline with tensors (--data-dir)")
    parser.add_argument("--data-dir", default=None, help="MNIST IDX folder (--pipeline)")
    parser.add_argument("--pipeline-steps", type=int, default=200)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, int(args.threads))
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    if args.quick:
        args.threads, args.rounds, args.seconds = "1", 3, 2.0
        batch_sizes = [20, 500]
    if args.pipeline:
        if not args.data_dir:
            parser.error("--pipeline needs --data-dir (the MNIST IDX folder)")
        return compare_input_pipeline(args.data_dir, args.pipeline_steps, args.rounds)
    if args.overhead:
        return overhead(batch_sizes, args.rounds, args.seconds)
    compare([int(t) for t in args.threads.split(",")], batch_sizes, args.rounds, args.seconds)


if __name__ == "__main__":
    main()
