"""Speed of the importance-weighted log-likelihood (``kvae evaluate --iw-samples K``) against
its arithmetic: the fraction of this machine's float32 matmul rate that it reaches.

    python benchmarks/evaluation_speed.py [--examples 200] [--samples 1000] [--repeats 3]
                                          [--chunk-rows 20000,4000,1000] [--xla]

The Burda et al. model (784-200-200-50 tanh, untrained: the cost does not depend on the
weights) on random binary images. Every importance sample is one decoder pass, 50-200-200-784:
2 * (50*200 + 200*200 + 200*784) = 413,600 FLOPs of matmuls, plus 784 Bernoulli
log-probabilities and the log-sum-exp; the encoder runs once per example, not per draw, and
is not counted. So the roofline of an estimate is

    seconds >= draws * decoder FLOPs per draw / (matmul GFLOP/s * 1e9)

with the matmul rate of a float32 2048^3 matmul measured in the same run
(``throughput.matmul_gflops``, every core). ``evaluation.log_likelihood`` decodes the K draws
of a batch of 100 images in chunks of ``--chunk-rows`` decoder rows (draws x examples); each
setting, with and without XLA (``--xla``), alternates with the others in one process, and
the table gives the median over ``--repeats``, microseconds per draw, the fraction of the
roofline, and what K = 5000 on the 10,000 MNIST test images (5e7 draws) would take.
"""

import argparse
import pathlib
import statistics
import sys
import time

import numpy as np

import keras_vae as kv
from keras_vae import evaluation

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from throughput import matmul_gflops  # noqa: E402

TEST_DRAWS = 10_000 * 5000  # K = 5000 on the MNIST test set


def decoder_flops_per_draw(model):
    """2 x the multiply-adds of the decoder's Dense kernels: FLOPs of one decoded draw."""
    return sum(2 * int(np.prod(weight.shape)) for weight in model.decoder.trainable_weights
               if len(weight.shape) == 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--samples", type=int, default=1000, help="K")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-rows", default="20000,4000,1000",
                        help="decoder rows (draws x examples) per chunk, comma-separated")
    parser.add_argument("--xla", action="store_true", help="also time each chunk with XLA")
    args = parser.parse_args()
    model = kv.VAE(input_shape=(28, 28, 1), latent_dim=50, hidden_units=(200, 200),
                   activation="tanh")
    x = (np.random.default_rng(0).random((args.examples, 28, 28, 1)) > 0.8).astype("float32")
    batch = min(100, args.examples)
    variants = {}
    for rows in (int(r) for r in args.chunk_rows.split(",")):
        for xla in ((False, True) if args.xla else (False,)):
            variants[f"{rows} rows{', XLA' if xla else ''}"] = dict(
                chunk_size=max(1, rows // batch), jit_compile=xla)
    for options in variants.values():  # trace once, outside the timing
        evaluation.log_likelihood(model, x[:batch], num_samples=args.samples, **options)
    times = {name: [] for name in variants}
    results = {}
    roofline = []
    for _ in range(args.repeats):
        roofline.append(matmul_gflops(seconds=2.0))
        for name, options in variants.items():
            start = time.perf_counter()
            results[name] = evaluation.log_likelihood(model, x, num_samples=args.samples,
                                                      **options)
            times[name].append((time.perf_counter() - start) / (args.examples * args.samples))
    flops, rate = decoder_flops_per_draw(model), statistics.median(roofline)
    print(f"decoder: {flops:,} FLOPs per draw; float32 matmul: {rate:.1f} GFLOP/s (median "
          f"of {args.repeats}); roofline {flops / rate / 1e3:.2f} us per draw")
    print(f"| chunk | us per draw (median of {args.repeats}) | fraction of matmul | "
          f"K = 5000 on 10,000 images |")
    print("|---|---:|---:|---:|")
    for name in variants:
        seconds = statistics.median(times[name])
        print(f"| {name} | {seconds * 1e6:.2f} | {flops / seconds / 1e9 / rate:.2f} | "
              f"{seconds * TEST_DRAWS / 60:.1f} min |")
    first = next(iter(results.values()))
    difference = max(np.abs(value - first).max() for value in results.values())
    print(f"\nThe estimates of all settings agree within {difference:.2g} nats.")


if __name__ == "__main__":
    main()
