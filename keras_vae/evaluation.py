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
