"""``EpochCheckpoint``: the state of training after every epoch, safe against a kill."""

import json
import pathlib
import shutil

import keras

from keras_vae import runs
from keras_vae.files import write_json_atomically


class EpochCheckpoint(keras.callbacks.Callback):
    """Weights, optimizer state and the noise stream after every epoch, crash-safe.

    Each checkpoint is a folder ``epoch-NNNNNN/`` holding ``checkpoint.weights.h5`` (or, for
    the checkpoint a longer run starts from, the complete run's model file: ``adopt``)
    and, written last and atomically, ``state.json``; only folders with a ``state.json``
    count, and older ones are deleted once a newer one is complete. A kill at any instant
    (even while the weights file is half written) therefore leaves the previous complete
    checkpoint. Keras' BackupAndRestore cannot promise that: a checkpoint interrupted
    mid-write fails to load on resume (seen here with SIGINT; its fallback only catches
    OSError).
    """

    # Either file restores weights, Adam's moments and step count, and the noise seed:
    # model.load_weights reads the weights part of a .keras archive, optimizer included.
    WEIGHT_FILES = ("checkpoint.weights.h5", runs.MODEL)
    STATE = "state.json"

    def __init__(self, directory, restore_from=None):
        """Writes to ``directory``; restores from ``restore_from`` (default ``directory``):
        the workers of a multi-worker run all restore the chief's checkpoint."""
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.restore_from = pathlib.Path(restore_from or directory)

    def latest(self):
        """The newest complete checkpoint folder to restore, or None."""
        complete = sorted(p for p in self.restore_from.glob("epoch-*")
                          if (p / self.STATE).exists() and self.weights_file(p) is not None)
        return complete[-1] if complete else None

    @classmethod
    def weights_file(cls, folder):
        """The weights file of a checkpoint folder, or None."""
        return next((folder / name for name in cls.WEIGHT_FILES if (folder / name).exists()),
                    None)

    def epochs_done(self):
        """The number of epochs the newest complete checkpoint holds (0 without one)."""
        latest = self.latest()
        return json.loads((latest / self.STATE).read_text())["epochs_done"] if latest else 0

    def restore(self, model):
        """Loads the newest complete checkpoint into ``model``; returns the epochs it holds."""
        latest = self.latest()
        if latest is None:
            return 0
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self.weights_file(latest))
        return self.epochs_done()

    def adopt(self, model_file, epochs_done):
        """Makes a copy of a complete run's ``model_file`` the checkpoint of ``epochs_done``
        epochs, from which a longer run continues."""
        target = self.directory / f"epoch-{epochs_done:06d}"
        target.mkdir(parents=True)
        shutil.copy2(model_file, target / runs.MODEL)
        write_json_atomically(target / self.STATE, {"epochs_done": epochs_done})

    def on_epoch_end(self, epoch, logs=None):
        target = self.directory / f"epoch-{epoch + 1:06d}"
        if target.exists():
            shutil.rmtree(target)  # left incomplete by an earlier kill
        target.mkdir(parents=True)
        self.model.save_weights(target / self.WEIGHT_FILES[0])
        write_json_atomically(target / self.STATE, {"epochs_done": epoch + 1})
        for older in self.directory.glob("epoch-*"):
            if older != target:
                shutil.rmtree(older, ignore_errors=True)
