"""``LatentMonitor``: how a VAE uses its latent space, epoch by epoch, while it trains.

On a fixed set of images (up to 1000, taken once when the monitor is made, for example the
first validation images) it computes at the end of every epoch, through the model protocol
(``latent_diagnostics``, one compiled function):

    KL per dimension   KL_i = (1/N) sum_x KL(q(z_i|x) || p(z_i)),  nats, over the N images
    active units       #{i : Var_x(E_q[z_i|x]) > 0.01}   (Burda et al. 2016, sec. 5.2:
                                                          ``evaluation.active_units``)

A dimension whose KL_i is near 0 nats carries no information about x: the posterior has
collapsed onto the prior there (Bowman et al. 2016). With several latent layers (a
hierarchy) each layer is reported on its own as well: KL_i of z1 is KL(q(z1_i|.) ||
p(z1_i|z2)) at the monitor's draw, as ``latent_diagnostics`` gives it.

Each epoch it then
- adds ``active_units`` (and for a hierarchy ``active_units_z1``, ``active_units_z2``, ...)
  to the epoch's logs, for the callbacks after it (``kvae fit``'s epoch line: "active units
  17/50", or "active units z1 5/8, z2 2/4"; Keras' ``History``);
- with ``log_dir``, writes to TensorBoard (``tensorboard_writer``, in ``log_dir/latent``):
  the KL per dimension, its sum and the active units, a grid of means of p(x|z) for draws
  z ~ p(z) from the same seed every epoch (so that epochs compare), and the first fixed
  images above their reconstructions;
- with ``history_file``, rewrites a CSV (``runs.LATENT_HISTORY`` in a run folder) with one
  row per epoch: ``epoch, active_units, kl_dim_0, ..., kl_dim_{d-1}`` (per layer for a
  hierarchy: ``latent_history`` owns the columns), atomically, each epoch once across
  resumes (``HistoryWriter``'s rules).

In your own training (``model`` is a ``kv.VAE`` or any model of the protocol)::

    from keras_vae.callbacks import LatentMonitor

    model.fit(x_train, validation_data=x_val, epochs=10, callbacks=[
        keras.callbacks.TensorBoard("logs"),       # loss, elbo, kl, ... per epoch
        LatentMonitor(x_val, log_dir="logs")])     # KL per dimension, active units, images
    # then: tensorboard --logdir logs

Under a ``tf.distribute`` strategy only the chief computes and writes (``distribute.is_chief``);
the other workers' monitors do nothing. Cost: one forward pass of the encoder over the fixed
images and two small decodes per epoch (benchmarks/RESULTS.md, "Latent monitor").
"""

import pathlib

import keras
import numpy as np
import tensorflow as tf

from keras_vae import distribute, evaluation, figures, latent_history
from keras_vae.callbacks.history_writer import HistoryWriter
from keras_vae.callbacks.tensorboard_writer import LatentSummaries
from keras_vae.errors import DataError

NUM_IMAGES = 1000  # enough for Var_x of each posterior mean; one encoder pass costs little
BATCH_SIZE = 250  # images per call of the compiled function: bounds its memory
NUM_SAMPLES = 64  # draws from the prior in the sample grid
NUM_RECONSTRUCTIONS = 10  # fixed images shown above their reconstructions
# Stateless seed of latent_diagnostics' one draw (used only where the KL is not analytic).
DIAGNOSTICS_SEED = (0, 1)


class LatentMonitor(keras.callbacks.Callback):
    """KL per latent dimension and active units on fixed images, after every epoch.

    Args:
        images: the images to watch: an array [N, *image_shape] or a ``tf.data.Dataset``
            yielding batches of x or (x, y); the first ``num_images`` are kept, now.
        log_dir: TensorBoard folder (``log_dir/latent`` is written), or None for none.
        history_file: CSV path for one row per epoch, or None for none.
        initial_epoch: the epoch a resumed fit starts at: the history file's rows from it
            on are dropped when training begins (``HistoryWriter``), even when no epoch is
            left to train. None: each epoch's row replaces the rows from that epoch on.
        num_images, num_samples, num_reconstructions: see the module constants.
        seed: the seed of the prior draws in the sample grid, the same every epoch.
    """

    def __init__(self, images, log_dir=None, history_file=None, initial_epoch=None,
                 num_images=NUM_IMAGES, num_samples=NUM_SAMPLES,
                 num_reconstructions=NUM_RECONSTRUCTIONS, seed=0):
        super().__init__()
        self.images = first_images(images, num_images)
        self.log_dir = None if log_dir is None else pathlib.Path(log_dir)
        self.initial_epoch = initial_epoch
        self.history = None if history_file is None else HistoryWriter(history_file,
                                                                       initial_epoch or 0)
        self.num_samples = num_samples
        self.num_reconstructions = num_reconstructions
        self.seed = seed
        self.last = None  # (KL per dimension [d], active units) of the last epoch
        self.last_layers = None  # {layer name: (KL per dimension, active units)}, the same
        self._summaries = None
        self._diagnose = None
        self._is_chief = True

    def on_train_begin(self, logs=None):
        strategy = getattr(self.model, "distribute_strategy", None) or tf.distribute.get_strategy()
        self._is_chief = distribute.is_chief(strategy)
        if not self._is_chief:
            return
        shape, expected = tuple(self.images.shape[1:]), tuple(self.model.image_shape)
        if shape != expected:
            raise DataError(f"LatentMonitor's images have shape {shape} but the model takes "
                            f"{expected}; give it images like the ones the model trains on.")
        self._diagnose = _compiled_diagnostics(self.model, self.images.shape[1:])
        if self.log_dir is not None and self._summaries is None:
            self._summaries = LatentSummaries(self.log_dir)
        if self.history is not None and self.initial_epoch is not None:
            self.history.on_train_begin()
        elif self.history is not None:
            self.history.rows = self.history.read()

    def on_epoch_end(self, epoch, logs=None):
        if not self._is_chief:
            return
        layers = {name: (kl, evaluation.active_units(variance))
                  for name, (kl, variance) in self.layer_diagnostics().items()}
        kl_per_dimension = np.concatenate([kl for kl, _ in layers.values()])
        active = sum(units for _, units in layers.values())
        self.last = (kl_per_dimension, active)
        self.last_layers = layers
        if logs is not None:
            logs["active_units"] = active
            if len(layers) > 1:  # "active units z1 5/8, z2 2/4" (EpochProgress)
                logs.update({f"active_units_{name}": units
                             for name, (_, units) in layers.items()})
        if self._summaries is not None:
            pictures = {}
            if len(self.model.image_shape) == 3:  # flat vectors (tabular data) have no picture
                pictures = dict(
                    samples=figures.sample_grid(self.model, self.num_samples, self.seed),
                    reconstructions=figures.reconstruction_grid(
                        self.model, self.images[:self.num_reconstructions]))
            self._summaries.write(epoch, kl_per_dimension, active, layers=layers, **pictures)
        if self.history is not None:
            # An epoch trained again (a fit resumed without ``initial_epoch``, a new fit into
            # the same file) replaces the rows from it on.
            self.history.rows = [row for row in self.history.rows if int(row["epoch"]) < epoch]
            self.history.on_epoch_end(epoch, latent_history.history_row(layers))

    def on_train_end(self, logs=None):
        if self._summaries is not None:
            self._summaries.flush()

    def diagnostics(self):
        """(KL per dimension [d], Var_x of each posterior mean [d]) on the fixed images, float64
        numpy, every layer's dimensions in ``latent_sizes`` order: the figures of this epoch's
        weights."""
        layers = self.layer_diagnostics().values()
        return tuple(np.concatenate(column) for column in zip(*layers))

    def layer_diagnostics(self):
        """{layer name: (KL per dimension [size], Var_x of each posterior mean [size])} on the
        fixed images, float64 numpy, in ``latent_sizes`` order."""
        diagnose = self._diagnose or _compiled_diagnostics(self.model, self.images.shape[1:])
        kl_sums, means = {}, {}
        for start in range(0, len(self.images), BATCH_SIZE):
            batch = diagnose(tf.constant(self.images[start:start + BATCH_SIZE]))
            for name, (kl_sum, mean) in batch.items():
                kl_sums[name] = kl_sums.get(name, 0.0) + kl_sum.numpy().astype(np.float64)
                means.setdefault(name, []).append(mean.numpy())
        order = [name for name in self.model.latent_sizes if name in kl_sums] or kl_sums
        return {name: (kl_sums[name] / len(self.images),
                       np.concatenate(means[name]).astype(np.float64).var(axis=0))
                for name in order}


def history_row(kl_per_dimension, active_units):
    """The latent-history columns after ``epoch`` of a one-layer model: active_units,
    kl_dim_0 ... kl_dim_{d-1} (``latent_history.history_row``, which also takes layers)."""
    return latent_history.history_row({"z": (kl_per_dimension, active_units)})


def _compiled_diagnostics(model, image_shape):
    """One compiled function x -> {layer name: (sum over the batch of KL_i [size], E_q[z|x]
    [batch, size])}, in ``latent_sizes`` order; traced once for any batch size."""
    seed = tf.constant(DIAGNOSTICS_SEED, tf.int64)

    @tf.function(input_signature=[tf.TensorSpec([None, *image_shape], tf.float32)])
    def diagnose(x):
        return {name: (tf.reduce_sum(tf.cast(layer.kl_per_dimension, tf.float32), axis=0),
                       tf.cast(layer.posterior_mean, tf.float32))
                for name, layer in model.latent_diagnostics(x, seed=seed).items()}

    return diagnose


def first_images(images, num_images):
    """The first ``num_images`` examples of an array or of a dataset of x or (x, y) batches,
    as a float32 array; DataError when there are none."""
    if isinstance(images, tf.data.Dataset):
        parts, count = [], 0
        for batch in images:
            batch = np.asarray(batch[0] if isinstance(batch, (tuple, list)) else batch)
            parts.append(batch[:num_images - count])
            count += len(parts[-1])
            if count >= num_images:
                break
        images = np.concatenate(parts) if parts else np.zeros((0,))
    images = np.asarray(images, np.float32)[:num_images]
    if len(images) == 0:
        raise DataError("LatentMonitor needs at least one image to watch; received none. "
                         "Pass validation images (an array or a dataset).")
    return images
