"""``LatentSummaries``: a ``LatentMonitor``'s figures as TensorBoard summaries.

Written to ``log_dir/latent`` (``RUN_NAME``), a run of its own beside the ``train`` and
``validation`` runs that ``keras.callbacks.TensorBoard(log_dir)`` writes, at step = the epoch
(0-based, as Keras' callback counts), so that the curves line up. Tags:

    active_units                 #{i : Var_x(E_q[z_i|x]) > 0.01}
    kl                           sum_i KL_i, nats per example (the rate on the fixed images)
    kl_per_dimension/07          KL_7, nats per example (one scalar chart per dimension)
    kl_across_dimensions         histogram of the KL_i: how many dimensions carry how much
    active_units/z1, kl/z1, ...  the same of each layer of a hierarchy (its dimensions follow
                                 each other in kl_per_dimension, in latent_sizes order)
    samples_from_prior           means of p(x|z), z ~ p(z), the same draws every epoch
    reconstructions              fixed images (top row) above their reconstructions

Open with ``tensorboard --logdir RUN/logs``.
"""

import pathlib

import numpy as np
import tensorflow as tf

RUN_NAME = "latent"


class LatentSummaries:
    """A summary writer for the latent figures of each epoch, in ``log_dir/latent``."""

    def __init__(self, log_dir):
        self.directory = pathlib.Path(log_dir) / RUN_NAME
        self._writer = tf.summary.create_file_writer(str(self.directory))

    def write(self, step, kl_per_dimension, active_units, samples=None, reconstructions=None,
              layers=None):
        """Writes one epoch's figures at ``step``; ``samples`` and ``reconstructions`` are
        PIL images (``figures.sample_grid``, ``figures.reconstruction_grid``), or None for
        data that are not images (tabular vectors); ``layers`` {name: (KL per dimension,
        active units)} of a hierarchy adds ``active_units/<layer>`` and ``kl/<layer>``."""
        kl_per_dimension = np.asarray(kl_per_dimension, np.float64)
        digits = len(str(len(kl_per_dimension) - 1))  # kl_per_dimension/07 sorts before /10
        with self._writer.as_default(step=int(step)):
            tf.summary.scalar("active_units", active_units, description=(
                "Latent dimensions whose posterior mean varies over the fixed images: "
                "Var_x(E_q[z_i|x]) > 0.01 (Burda et al. 2016)."))
            tf.summary.scalar("kl", kl_per_dimension.sum(), description=(
                "KL(q(z|x) || p(z)) on the fixed images, nats per example."))
            for index, kl in enumerate(kl_per_dimension):
                tf.summary.scalar(f"kl_per_dimension/{index:0{digits}d}", kl)
            layers = layers if layers and len(layers) > 1 else {}
            for name, (kl, units) in layers.items():
                tf.summary.scalar(f"active_units/{name}", units)
                tf.summary.scalar(f"kl/{name}", float(np.sum(kl)))
            tf.summary.histogram("kl_across_dimensions", kl_per_dimension, description=(
                "KL of each latent dimension, nats per example: near 0, a collapsed one."))
            if samples is not None:
                tf.summary.image("samples_from_prior", as_image_batch(samples), description=(
                    "Means of p(x|z) for z ~ p(z), the same draws every epoch."))
            if reconstructions is not None:
                tf.summary.image("reconstructions", as_image_batch(reconstructions),
                                 description=("Fixed images (top) above the means of p(x|z) "
                                              "at z = E_q[z|x] (bottom)."))
        self._writer.flush()

    def flush(self):
        self._writer.flush()


def as_image_batch(picture):
    """A PIL image as the [1, height, width, channels] uint8 tensor tf.summary.image takes."""
    pixels = np.asarray(picture, np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return pixels[None]
