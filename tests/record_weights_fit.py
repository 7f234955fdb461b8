"""``python -m tests.record_weights_fit WEIGHTS.npz ARGS...``: runs ``kvae ARGS`` in this
process through the real entry point, and saves the model's weights at the end of training
to WEIGHTS.npz, so a test can compare the workers of a multi-worker run (the other workers'
own copies live in temporary folders that they delete)."""

import sys

import keras
import numpy as np


class RecordWeights(keras.callbacks.Callback):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_train_end(self, logs=None):
        np.savez(self.path, *self.model.get_weights())


def main():
    weights_path, *arguments = sys.argv[1:]
    from keras_vae import train
    from keras_vae.cli.main import main as kvae

    fit = train.fit

    def fit_recording_weights(*args, callbacks=(), **kwargs):
        return fit(*args, callbacks=[*callbacks, RecordWeights(weights_path)], **kwargs)

    train.fit = fit_recording_weights
    sys.argv = ["kvae", *arguments]
    kvae()


if __name__ == "__main__":
    main()
