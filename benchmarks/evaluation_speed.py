"""Microseconds per decoded draw of the importance-weighted log-likelihood (the K = 5000
evaluation), with TFP's Bernoulli log_prob and with keras-vae's ``LogitBernoulli``.

    python benchmarks/evaluation_speed.py [--examples 200] [--samples 1000] [--repeats 3]

The Burda et al. model (784-200-200-50 tanh, untrained: the cost does not depend on the
weights) on random binary images. Each draw is one decoder pass and 784 Bernoulli
log-probabilities; TFP computes log p = (1 - x) log sigmoid(-l) + x log sigmoid(l) with two
softplus per pixel, ``LogitBernoulli`` x l - softplus(l) with one. The two variants alternate
in one process, so their ratio is fair on a shared machine; the median of the repeats is
printed.
"""

import argparse
import statistics
import time

import numpy as np
import tensorflow_probability as tfp

import keras_vae as kv
from keras_vae import evaluation, objectives

tfd = tfp.distributions


class WithTFPBernoulli:
    """The same model, with p(x|z) rebuilt as TFP's own Bernoulli on the same logits; it
    gives the evaluation the protocol's ``log_importance_weights``."""

    def __init__(self, model):
        self.model = model

    def log_importance_weights(self, x, num_samples, seed):
        return objectives.single_layer_log_weights(
            x, self.model.encode(x), self.decode, self.model.prior_distribution(), num_samples,
            seed)

    def decode(self, z):
        likelihood = self.model.decode(z)
        return tfd.Independent(tfd.Bernoulli(logits=likelihood.distribution.logits,
                                             dtype=likelihood.dtype),
                               likelihood.reinterpreted_batch_ndims)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--samples", type=int, default=1000, help="K")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = kv.VAE(input_shape=(28, 28, 1), latent_dim=50, hidden_units=(200, 200),
                   activation="tanh")
    x = (np.random.default_rng(0).random((args.examples, 28, 28, 1)) > 0.8).astype("float32")
    variants = {"TFP Bernoulli": WithTFPBernoulli(model), "LogitBernoulli": model}
    times = {name: [] for name in variants}
    results = {}
    for name, variant in variants.items():  # trace once, outside the timing
        evaluation.log_likelihood(variant, x[:100], num_samples=args.samples)
    for _ in range(args.repeats):
        for name, variant in variants.items():
            start = time.perf_counter()
            results[name] = evaluation.log_likelihood(variant, x, num_samples=args.samples)
            times[name].append((time.perf_counter() - start) / (args.examples * args.samples))
    difference = np.abs(results["TFP Bernoulli"] - results["LogitBernoulli"]).max()
    print(f"| log_prob | us per decoded draw (median of {args.repeats}) |")
    print("|---|---:|")
    for name in variants:
        print(f"| {name} | {statistics.median(times[name]) * 1e6:.1f} |")
    ratio = statistics.median(times["TFP Bernoulli"]) / statistics.median(times["LogitBernoulli"])
    print(f"\nLogitBernoulli is {ratio:.2f}x as fast; the estimates differ by at most "
          f"{difference:.2g} nats (float32 rounding).")
    print(f"K = 5000 on the 10,000 test images (5e7 draws) at this rate: "
          f"{statistics.median(times['LogitBernoulli']) * 5e7 / 60:.0f} min.")


if __name__ == "__main__":
    main()
