"""``StopOnNonFiniteLoss``: training stops at the first NaN or infinite loss."""

import keras
import numpy as np


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops at the first NaN/inf loss and puts back the weights of the last completed epoch.

    Keras' TerminateOnNaN stops too, but keeps the NaN weights; here ``failed_epoch`` (1-based)
    tells the trainer to save the good ones and say which epoch failed.
    """

    def __init__(self):
        super().__init__()
        self.failed_epoch = None
        self._good_weights = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._good_weights = self.model.get_weights()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            self.failed_epoch = self._epoch + 1  # 1-based for people
            self.model.set_weights(self._good_weights)
            self.model.stop_training = True
