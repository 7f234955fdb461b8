"""Evaluation of a trained VAE on held-out data, in nats per example.

``elbo_metrics`` gives the test ELBO and its two terms, estimated with one posterior draw per
example from the model's seeded noise stream:

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)) <= log p(x)
    reconstruction = -log p(x|z)   (distortion),   kl = KL(q(z|x) || p(z))   (rate)

Bits per dimension = -ELBO / (number of pixels * ln 2), an upper bound on the code length.
"""

import math

import numpy as np


def elbo_metrics(model, dataset):
    """{"elbo", "reconstruction", "kl", "loss", "bits_per_dim"} on a dataset of batches
    (labels ignored): means over every example, nats (bits for bits_per_dim)."""
    if model.optimizer is None:
        model.compile()  # evaluate() needs a compiled model; no optimizer is used
    metrics = {k: float(v) for k, v in
               model.evaluate(dataset, return_dict=True, verbose=0).items()}
    metrics["bits_per_dim"] = -metrics["elbo"] / (np.prod(model.image_shape) * math.log(2))
    return metrics


def bernoulli_negative_log_likelihood(probabilities, x, epsilon=1e-7):
    """-sum_pixels [x log p + (1 - x) log(1 - p)] per example, in nats, from probabilities p.

    For outputs that carry only probabilities (an exported decoder). p is clipped to
    [epsilon, 1 - epsilon] because a float32 sigmoid or an int8 file can return exactly 0
    or 1; use the decoder's own ``log_prob`` (exact, from logits) wherever it is available.
    """
    p = np.clip(np.asarray(probabilities, np.float64), epsilon, 1 - epsilon)
    x = np.asarray(x, np.float64)
    terms = x * np.log(p) + (1 - x) * np.log1p(-p)
    return -terms.reshape(len(terms), -1).sum(axis=1)
