"""Training throughput of the 784-500-500-(2x50) / 50-500-500-784 MLP VAE, next to a float32
matmul measured in the same run.

    python benchmarks/throughput.py [--batch-sizes 100,500] [--seconds 20] [--repeats 3]
                                    [--data-dir ../shared/data/mnist] [--pipeline-steps 200]

For each batch size and each setting of XLA (``compile(jit_compile=...)``) it trains on
in-memory binary images and prints training examples/s, the achieved GFLOP/s and that as a
fraction of the matmul roofline. FLOPs per training example are counted from the layer sizes:
forward = 2 * sum(fan_in * fan_out) over the dense layers, and a training step costs about 3x
the forward pass (forward, gradient with respect to activations, and to weights), which gives
8.15 MFLOP per example for this model. Element-wise work (activations, sampling, log-probs)
is not counted, so the fraction is a lower bound on how busy the machine is.

With ``--data-dir`` (MNIST IDX files) it also compares, at batch 100 without XLA, the real
input pipeline of ``kvae fit`` (``data.make_splits``: shuffling, dynamic binarisation,
prefetch) with the same number of pre-binarised images held as in-memory tensors: equal
rates mean the input never starves training.

Timings are medians over ``--repeats`` timed windows taken after a warm-up (tracing, XLA
compilation): the machines here are shared and noisy, so compare figures from one run.
"""

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_vae as kv  # noqa: E402

INPUT_DIM, HIDDEN, LATENT_DIM = 784, (500, 500), 50


def training_flops_per_example():
    """3 x forward FLOPs of the encoder (784-500-500-100) and decoder (50-500-500-784)."""
    encoder = [INPUT_DIM, *HIDDEN, 2 * LATENT_DIM]
    decoder = [LATENT_DIM, *HIDDEN[::-1], INPUT_DIM]
    multiply_adds = sum(a * b for layers in (encoder, decoder)
                        for a, b in zip(layers[:-1], layers[1:]))
    return 3 * 2 * multiply_adds


def matmul_gflops(size=2048, seconds=5.0):
    """Float32 GFLOP/s of a size x size matmul: the practical roofline of this machine."""
    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    matmul().numpy()  # warm-up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        matmul().numpy()
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e9


def in_memory_batches(images, batch_size):
    """Images held as tensors, batched, cached and repeated: the input costs nothing."""
    dataset = tf.data.Dataset.from_tensor_slices(images.astype("float32"))
    return dataset.batch(batch_size, drop_remainder=True).cache().repeat().prefetch(2)


def training_examples_per_second(batch_size, jit_compile, seconds, repeats, dataset=None):
    """Median examples/s of model.fit over ``repeats`` timed windows; the data are random
    binary images in memory unless a (repeating) ``dataset`` of batches is given."""
    keras.utils.set_random_seed(0)
    model = kv.VAE(input_shape=(28, 28, 1), latent_dim=LATENT_DIM, hidden_units=HIDDEN)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    if dataset is None:
        images = np.random.default_rng(0).random((10 * batch_size, 28, 28, 1)) > 0.5
        dataset = in_memory_batches(images, batch_size)

    model.fit(dataset, epochs=1, steps_per_epoch=10, verbose=0, shuffle=False)  # trace, compile
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=10, verbose=0, shuffle=False)
    step_seconds = (time.perf_counter() - start) / 10
    steps = max(10, int(seconds / repeats / step_seconds))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
        rates.append(steps * batch_size / (time.perf_counter() - start))
    return statistics.median(rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="100,500")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="timed seconds per configuration (split over the repeats)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pipeline-steps", type=int, default=200,
                        help="steps per timed window of the input-pipeline comparison")
    parser.add_argument("--data-dir", default=None,
                        help="MNIST IDX folder: also compare the real pipeline with tensors")
    args = parser.parse_args()

    flops = training_flops_per_example()
    roofline = matmul_gflops()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    print(f"training cost: {flops / 1e6:.2f} MFLOP per example; "
          f"float32 matmul 2048^3: {roofline:.1f} GFLOP/s")
    print("| batch | XLA | examples/s | GFLOP/s | fraction of matmul |")
    print("|---:|:---:|---:|---:|---:|")
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        for jit_compile in (False, True):
            rate = training_examples_per_second(batch_size, jit_compile, args.seconds,
                                                args.repeats)
            achieved = rate * flops / 1e9
            print(f"| {batch_size} | {'on' if jit_compile else 'off'} | {rate:,.0f} | "
                  f"{achieved:.1f} | {achieved / roofline:.2f} |", flush=True)
    if args.data_dir:
        compare_input_pipeline(args.data_dir, args.pipeline_steps, args.repeats)


def compare_input_pipeline(data_dir, steps, repeats, batch_size=100):
    """Steps/s with kvae fit's MNIST pipeline vs the same images as in-memory tensors.

    Each window is one ``model.fit`` call of ``steps`` steps, timed from the call to its end,
    so it includes what a real epoch pays: a fresh iterator (the pipeline refills its
    55,000-image shuffle buffer). The two sources alternate (A, B, A, B, ...) so that a
    change in the load of this shared machine hits both alike; the figure is the ratio of
    their median rates.
    """
    from keras_vae import data

    splits = data.make_splits("mnist", data_dir, batch_size=batch_size)
    images = np.concatenate([batch.numpy() for batch in splits.train.take(100)])
    sources = {"real pipeline (shuffle, dynamic binarisation, prefetch)": splits.train.repeat(),
               "in-memory tensors": in_memory_batches(images, batch_size)}
    models = {}
    for name, dataset in sources.items():
        keras.utils.set_random_seed(0)
        model = kv.VAE(input_shape=(28, 28, 1), latent_dim=LATENT_DIM, hidden_units=HIDDEN)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
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


if __name__ == "__main__":
    main()
