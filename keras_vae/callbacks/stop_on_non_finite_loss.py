"""``StopOnNonFiniteLoss``: training stops at the first NaN or infinite loss."""

import keras
import numpy as np


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops at the first NaN/inf loss and puts back the weights of the last completed epoch.

    Keras' TerminateOnNaN stops too, but keeps the NaN weights; here ``failed_epoch`` (1-based)
    tells the trainer to save the good ones and say which epoch failed, and ``failed_steps``
    (first, last), 1-based within that epoch, which steps the failing call ran.

    With several steps per tf.function call (``steps_per_execution``) the callback sees the
    loss once per call. It is the epoch's running mean (``ELBOModel``'s loss tracker), which
    stays NaN or inf once one step's loss was, so a non-finite step anywhere in the call is
    caught at the end of that call; the steps after it in the same call cannot undo it, and
    their weights are discarded with the rest of the epoch's.
    """

    def __init__(self):
        super().__init__()
        self.failed_epoch = None
        self.failed_steps = None
        self._good_weights = None
        self._epoch = 0
        self._first_step = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._good_weights = self.model.get_weights()

    def on_train_batch_begin(self, batch, logs=None):
        self._first_step = batch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.all(np.isfinite(np.asarray(loss, np.float64))):
            self.failed_epoch = self._epoch + 1  # 1-based for people
            # Keras reports the last step a full call would run; an epoch may end before it
            last = min(batch + 1, (self.params or {}).get("steps") or batch + 1)
            self.failed_steps = (self._first_step + 1, last)
            self.model.set_weights(self._good_weights)
            self.model.stop_training = True
