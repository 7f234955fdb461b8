"""Data sources and pipelines: IDX parsing and its errors, checksums, .npz and image folders,
scaling, binarisation (dynamic for training, fixed for evaluation), splits."""

import gzip
import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_vae import data
from tests.helpers import idx_bytes, mnist_dir, write_idx_folder


@pytest.mark.parametrize("gzipped", [True, False])
def test_idx_folder_round_trip(tmp_path, gzipped):
    arrays = write_idx_folder(tmp_path, gzipped=gzipped)
    splits = data.load_idx_folder(tmp_path)
    np.testing.assert_array_equal(splits["train"][0][..., 0], arrays[("train", "images")])
    np.testing.assert_array_equal(splits["test"][1], arrays[("test", "labels")])
    assert splits["train"][0].shape == (30, 6, 6, 1)


def test_bad_magic_number_names_the_file(tmp_path):
    write_idx_folder(tmp_path)
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(b"\x12\x34\x08\x03" + bytes(100)))
    with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte.gz is not an IDX file "
                                             r"\(bad magic number"):
        data.load_idx_folder(tmp_path)


def test_truncated_idx_file_names_the_file_and_sizes(tmp_path):
    write_idx_folder(tmp_path, gzipped=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(data.DataError, match=r"train-images-idx3-ubyte is truncated: shape "
                                             r"\(30, 6, 6\) needs 1096 bytes, the file has 1089"):
        data.load_idx_folder(tmp_path)


def test_missing_idx_file_lists_the_four_expected_files(tmp_path):
    write_idx_folder(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(data.DataError, match="has no train-labels-idx1-ubyte"):
        data.load_idx_folder(tmp_path)


def test_images_and_labels_of_different_lengths_fail(tmp_path):
    write_idx_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros(3, np.uint8))))
    with pytest.raises(data.DataError, match="do not match labels"):
        data.load_idx_folder(tmp_path)


def test_checksum_mismatch_of_a_known_mnist_file_warns_but_loads(tmp_path):
    write_idx_folder(tmp_path)
    with pytest.warns(UserWarning, match="differs from the original MNIST file"):
        data.load_idx_folder(tmp_path, verify_mnist=True)


@pytest.mark.skipif(mnist_dir() is None, reason="MNIST not found in ../shared/data/mnist "
                                                "(set KVAE_MNIST_DIR)")
def test_shared_mnist_copy_verifies_except_the_rebuilt_training_images():
    folder = mnist_dir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = data.load_idx_folder(folder, verify_mnist=True)
    messages = [str(w.message) for w in caught]
    # The README of that folder: test split and labels are byte-identical to the originals,
    # the training images are a faithful rebuild that cannot match the original checksum.
    assert len(messages) == 1 and "train-images-idx3-ubyte" in messages[0]
    assert splits["train"][0].shape == (60000, 28, 28, 1)
    assert splits["test"][0].shape == (10000, 28, 28, 1)
    assert splits["test"][1][:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first labels


def test_npz_source(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=rng.integers(0, 256, (20, 4, 4), dtype=np.uint8),
             x_test=rng.integers(0, 256, (5, 4, 4), dtype=np.uint8), y_test=np.arange(5))
    splits = data.load_arrays("custom", path)
    assert splits["train"][0].shape == (20, 4, 4, 1) and splits["train"][1] is None
    assert splits["test"][1].tolist() == [0, 1, 2, 3, 4]


def test_npz_without_required_arrays_says_what_it_needs(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, images=np.zeros((3, 4, 4)))
    with pytest.raises(data.DataError, match="lacks x_train, x_test"):
        data.load_arrays("custom", path)


def test_image_folder_source_holds_out_a_test_split(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    splits = data.load_arrays("custom", tmp_path)
    assert splits["train"][0].shape == (9, 6, 5, 3) and splits["test"][0].shape == (1, 6, 5, 3)


def test_unreadable_image_folder_fails_clearly(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(data.DataError, match="Cannot decode .*broken.png as an image"):
        data.load_arrays("custom", tmp_path)


def test_missing_data_dir_fails_clearly(tmp_path):
    with pytest.raises(data.DataError, match="does-not-exist does not exist"):
        data.load_arrays("mnist", tmp_path / "does-not-exist")


def test_unknown_tfds_name_fails_clearly():
    with pytest.raises(data.DataError, match="Unknown dataset 'no_such_dataset_xyz'"):
        data.load_arrays("no_such_dataset_xyz")


def test_tfds_download_failure_says_to_pass_data_dir(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(data.DataError, match="Cannot download or prepare 'mnist' with TFDS "
                                             r"\(ConnectionError: no network\); .* pass "
                                             "--data-dir"):
        data.load_tfds("mnist", data_dir=str(tmp_path))


def test_uint8_images_scale_to_unit_interval_and_bad_floats_fail():
    scaled = data.to_unit_interval(np.array([0, 51, 255], np.uint8))
    np.testing.assert_allclose(scaled, [0.0, 0.2, 1.0])
    with pytest.raises(data.DataError, match="Float images must lie in"):
        data.to_unit_interval(np.array([0.0, 2.0]))


# ---------------------------------------------------------------- pipelines


def _splits(tmp_path, **kwargs):
    write_idx_folder(tmp_path, num_train=40, num_test=20)
    return data.make_splits("custom", tmp_path, batch_size=8, **kwargs)


def _epoch(dataset):
    return np.concatenate([batch.numpy() for batch in dataset])


def test_splits_hold_out_validation_from_train(tmp_path):
    splits = _splits(tmp_path, validation_fraction=0.25)
    assert (splits.num_train, splits.num_validation, splits.num_test) == (30, 10, 20)
    assert len(_epoch(splits.train)) == 30 and len(_epoch(splits.validation)) == 10
    assert splits.image_shape == (6, 6, 1)


def test_training_binarisation_is_fresh_each_epoch_and_seeded(tmp_path):
    splits = _splits(tmp_path, validation_fraction=0.0, seed=3)
    first, second = _epoch(splits.train), _epoch(splits.train)
    assert set(np.unique(first)) <= {0.0, 1.0}
    assert not np.array_equal(first, second)  # reshuffled and redrawn
    again = _epoch(data.make_splits("custom", tmp_path, batch_size=8,
                                    validation_fraction=0.0, seed=3).train)
    np.testing.assert_array_equal(first, again)  # the same seed gives the same stream


def test_training_pipeline_gives_every_image_once_per_epoch_in_a_new_order():
    images = (np.arange(50, dtype=np.float32) / 50)[:, None, None, None] * np.ones((1, 2, 2, 1),
                                                                                  np.float32)
    dataset = data._pipeline(images, 7, None, seed=0, shuffle=True)
    batches = [batch.numpy() for batch in dataset]
    assert [len(b) for b in batches] == [7] * 7 + [1]
    first, second = np.concatenate(batches)[:, 0, 0, 0], _epoch(dataset)[:, 0, 0, 0]
    np.testing.assert_array_equal(np.sort(first), images[:, 0, 0, 0])  # each exactly once
    assert not np.array_equal(first, images[:, 0, 0, 0])  # shuffled
    assert not np.array_equal(first, second)  # reshuffled each epoch
    np.testing.assert_array_equal(np.sort(second), images[:, 0, 0, 0])


def test_dynamic_binarisation_draws_each_pixel_with_its_intensity(tmp_path):
    # One image of constant intensity 0.3, seen 400 times: the mean of the draws must be
    # 0.3 within 5 standard errors (sqrt(0.3 * 0.7 / (400 * 36)) = 0.0038 per pixel mean).
    images = np.full((1, 6, 6, 1), 0.3, np.float32)
    dataset = data._pipeline(images, 1, "dynamic", seed=0, shuffle=True).repeat(400)
    draws = _epoch(dataset)
    assert abs(draws.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / draws.size)


def test_evaluation_binarisation_is_fixed(tmp_path):
    splits = _splits(tmp_path)
    np.testing.assert_array_equal(_epoch(splits.test), _epoch(splits.test))
    assert set(np.unique(_epoch(splits.test))) <= {0.0, 1.0}


def test_continuous_data_are_not_binarised(tmp_path):
    splits = _splits(tmp_path, binarized=False)
    values = np.unique(_epoch(splits.test))
    assert values.min() >= 0 and values.max() <= 1 and len(values) > 2


def test_binarize_matches_a_threshold_on_uniform_draws():
    images = tf.constant([[0.0, 0.25, 0.5, 1.0]])
    seed = tf.constant([1, 2], tf.int64)
    uniform = tf.random.stateless_uniform([1, 4], seed=seed).numpy()
    np.testing.assert_array_equal(data.binarize(images, seed), (uniform < images).numpy())


def test_tfds_image_dataset_prepared_locally_loads_by_name(tmp_path):
    # A TFDS builder defined here and prepared offline: the same code path as mnist or
    # cifar10 once TFDS has their files, with no network.
    import tensorflow_datasets as tfds

    class KvaeTinyImages(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(4, 4, 1)),
                "label": tfds.features.ClassLabel(num_classes=3)}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(10), "test": self._generate_examples(4)}

        def _generate_examples(self, count):
            for i in range(count):
                yield i, {"image": np.full((4, 4, 1), 20 * i, np.uint8), "label": i % 3}

    splits = data.load_tfds("kvae_tiny_images", data_dir=str(tmp_path))
    assert splits["train"][0].shape == (10, 4, 4, 1) and splits["test"][0].shape == (4, 4, 4, 1)
    assert sorted(splits["test"][0][:, 0, 0, 0].tolist()) == [0, 20, 40, 60]
    assert sorted(splits["test"][1].tolist()) == [0, 0, 1, 2]
    # A prepared TFDS folder is also recognised as a --data-dir.
    again = data.load_arrays("kvae_tiny_images", tmp_path)
    np.testing.assert_array_equal(np.sort(again["train"][1]), np.sort(splits["train"][1]))
