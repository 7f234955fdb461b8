"""The run's callbacks: history.csv written once per epoch across resumes, checkpoints that
survive a kill in the middle of writing."""

import numpy as np

from keras_vae import runs, train
from keras_vae.callbacks import EpochCheckpoint, HistoryWriter
from tests.helpers import csv_rows as _rows, tiny_train_config as _config


def test_history_writer_keeps_each_epoch_once_across_a_resume(tmp_path):
    path = tmp_path / "history.csv"
    writer = HistoryWriter(path)
    writer.on_train_begin()
    for epoch in range(3):  # epochs 0-2 written; suppose only 0-1 were checkpointed
        writer.on_epoch_end(epoch, {"loss": float(epoch)})
    # Resumed with no epoch left to train (--epochs 2): the unrecorded row still goes.
    HistoryWriter(path, initial_epoch=2).on_train_begin()
    assert [int(r["epoch"]) for r in _rows(path)] == [0, 1]
    resumed = HistoryWriter(path, initial_epoch=2)
    resumed.on_train_begin()
    for epoch in (2, 3):
        resumed.on_epoch_end(epoch, {"loss": 10.0 + epoch})
    assert [(int(r["epoch"]), float(r["loss"])) for r in _rows(path)] == [
        (0, 0.0), (1, 1.0), (2, 12.0), (3, 13.0)]



def test_checkpoint_survives_a_kill_in_the_middle_of_writing(idx_folder, tmp_path):
    config = _config(idx_folder, learning_rate_schedule="cosine")
    splits = runs.load_splits(config)
    model = train.build_model(config, splits.image_shape, steps_per_epoch=6)
    checkpoint = EpochCheckpoint(tmp_path / "backup")
    model.fit(splits.train, epochs=2, verbose=0, callbacks=[checkpoint])
    saved_weights = [w.copy() for w in model.get_weights()]
    saved_optimizer = [np.array(v) for v in model.optimizer.variables]
    # A kill while epoch 3 was being written: its folder exists, its weights file is garbage,
    # its state.json was never written.
    broken = tmp_path / "backup" / "epoch-000003"
    broken.mkdir()
    (broken / "checkpoint.weights.h5").write_bytes(b"half a file")

    fresh = train.build_model(config, splits.image_shape, steps_per_epoch=6)
    assert checkpoint.restore(fresh) == 2
    for restored, saved in zip(fresh.get_weights(), saved_weights):
        np.testing.assert_array_equal(restored, saved)
    for restored, saved in zip(fresh.optimizer.variables, saved_optimizer):
        np.testing.assert_array_equal(np.array(restored), saved)  # Adam moments, iterations
    assert int(fresh.optimizer.iterations.numpy()) == 2 * 6  # 55 training images, batches of 10
    # The cosine schedule continues where it stopped: it reads the restored step count.
    np.testing.assert_allclose(float(fresh.optimizer.learning_rate),
                               float(model.optimizer.learning_rate), rtol=1e-6)
    assert float(fresh.optimizer.learning_rate) < config.learning_rate


