"""``HistoryWriter``: a run's history.csv, one row per completed epoch."""

import csv
import pathlib

import keras

from keras_vae.files import replace_atomically


class HistoryWriter(keras.callbacks.Callback):
    """history.csv with one row per completed epoch, exactly once even across resumes.

    A fit resumed at ``initial_epoch`` (the epochs its checkpoint holds) first drops the rows
    from that epoch on: written before a crash but not checkpointed. It does so when training
    begins, so even a resume with no epoch left to train leaves no such row. The file is
    rewritten atomically, so a kill leaves the previous version intact.
    """

    def __init__(self, path, initial_epoch=0):
        super().__init__()
        self.path = pathlib.Path(path)
        self.initial_epoch = initial_epoch
        self.rows = None

    def on_train_begin(self, logs=None):
        rows = self.read()
        self.rows = [row for row in rows if int(row["epoch"]) < self.initial_epoch]
        if len(self.rows) != len(rows):
            self._write()

    def on_epoch_end(self, epoch, logs=None):
        # Counts (active units) stay whole numbers; Keras' figures become floats.
        self.rows.append({"epoch": epoch, **{k: v if isinstance(v, int) else float(v)
                                             for k, v in (logs or {}).items()}})
        self._write()

    def _write(self):
        names = list(dict.fromkeys(key for row in self.rows for key in row))

        def write(f):
            writer = csv.DictWriter(f, fieldnames=names)
            writer.writeheader()
            writer.writerows(self.rows)

        replace_atomically(self.path, write)

    def read(self):
        """The rows of the history file (dicts of strings); [] before the first epoch."""
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))
