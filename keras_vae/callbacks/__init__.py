"""Keras callbacks of a training run, one concept per module (as Keras keeps its own)."""

from keras_vae.callbacks.epoch_checkpoint import EpochCheckpoint  # noqa: F401
from keras_vae.callbacks.history_writer import HistoryWriter  # noqa: F401
from keras_vae.callbacks.stop_on_non_finite_loss import StopOnNonFiniteLoss  # noqa: F401
from keras_vae.callbacks.latent_monitor import LatentMonitor  # noqa: F401
