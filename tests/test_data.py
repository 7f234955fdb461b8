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


def test_uint8_images_scale_to_unit_interval():
    scaled = data.to_unit_interval(np.array([0, 51, 255], np.uint8))
    np.testing.assert_allclose(scaled, [0.0, 0.2, 1.0])
    assert scaled.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.uint16, np.int8, np.uint32])
def test_integer_grey_levels_of_any_dtype_scale_like_uint8(dtype):
    # Before: divided by the dtype's maximum (int64: 9.2e18), so they trained on values ~0.
    levels = np.array([0, 51, 127], dtype)
    np.testing.assert_allclose(data.to_unit_interval(levels), [0.0, 0.2, 127 / 255], rtol=1e-6)


def test_int64_npz_trains_on_the_same_values_as_uint8(tmp_path):
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 256, (20, 4, 4)), rng.integers(0, 256, (5, 4, 4))
    np.savez(tmp_path / "wide.npz", x_train=train, x_test=test)  # int64
    np.savez(tmp_path / "narrow.npz", x_train=train.astype(np.uint8),
             x_test=test.astype(np.uint8))
    wide, narrow = (data.make_splits("custom", tmp_path / name, batch_size=5, binarized=False,
                                     validation_fraction=0)
                    for name in ("wide.npz", "narrow.npz"))
    np.testing.assert_array_equal(_epoch(wide.test), _epoch(narrow.test))
    np.testing.assert_allclose(_epoch(wide.test)[..., 0], test / 255, rtol=1e-6)


@pytest.mark.parametrize("values, message", [
    (np.array([0, 256]), "hold integers from 0 to 256; integer pixels must be 8-bit grey "
                         r"levels 0\.\.255"),
    (np.array([-1, 3], np.int8), "hold integers from -1 to 3"),
    (np.array([0.0, 200.0]), r"hold floats up to 200: .* divide them by 255"),
    (np.array([0.0, 300.0]), "hold floats from 0 to 300; pixels must be floats in "
                             r"\[0, 1\]: rescale them"),
    (np.array([-0.5, 0.5]), "hold floats from -0.5 to 0.5"),
    (np.array([0.0, np.nan]), "hold NaN or infinite values"),
    (np.array([0.5 + 0.1j]), "hold complex numbers; pixels must be real numbers"),
    (np.array(["a", "b"]), "hold text"),
    (np.array([object()]), "hold Python objects"),
    (np.zeros((2, 0)), "have no pixels"),
])
def test_images_of_the_wrong_kind_or_range_fail_naming_them(values, message):
    with pytest.raises(data.DataError, match="The training images of x.npz " + message):
        data.to_unit_interval(values, "The training images of x.npz")


def test_float_images_in_unit_interval_and_bool_images_are_kept():
    np.testing.assert_array_equal(data.to_unit_interval(np.array([0.0, 0.25, 1.0])),
                                  [0.0, 0.25, 1.0])
    np.testing.assert_array_equal(data.to_unit_interval(np.array([True, False])), [1.0, 0.0])


def test_complex_npz_fails_before_training(tmp_path):
    path = tmp_path / "complex.npz"
    np.savez(path, x_train=np.full((4, 3, 3), 0.5 + 0.5j), x_test=np.full((2, 3, 3), 0.5))
    with pytest.raises(data.DataError, match=f"The training images of {path} hold complex"):
        data.make_splits("custom", path)


def test_npz_of_python_objects_says_so(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, x_train=np.array([None, 1], dtype=object), x_test=np.zeros((1, 2, 2)))
    with pytest.raises(data.DataError, match="holds Python objects, not numeric arrays"):
        data.load_arrays("custom", path)


def test_npz_labels_that_are_not_class_indices_fail(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((2, 2, 2), np.uint8), x_test=np.zeros((2, 2, 2), np.uint8),
             y_test=np.array(["cat", "dog"]))
    with pytest.raises(data.DataError, match="y_test holds <U3 values; labels must be "
                                             "whole-number class indices"):
        data.load_arrays("custom", path)


def test_idx_files_of_wider_integers_are_checked_like_npz(tmp_path):
    write_idx_folder(tmp_path, gzipped=False)
    images = np.array([[[0, 300], [5, 6]]], ">i4")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(
        bytes([0, 0, 0x0C, 3]) + b"".join(int(d).to_bytes(4, "big") for d in images.shape)
        + images.tobytes())
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(1, np.uint8)))
    with pytest.raises(data.DataError, match="test images of .* hold integers from 0 to 300"):
        data.make_splits("custom", tmp_path)


def test_sixteen_bit_pngs_scale_by_their_own_depth(tmp_path):
    for i, level in enumerate([0, 13107, 65535, 65535]):  # 13107 / 65535 = 0.2
        Image.fromarray(np.full((2, 2), level, np.uint16)).save(tmp_path / f"{i}.png")
    splits = data.load_arrays("custom", tmp_path)  # decoded to 8 bits: 0, 51, 255
    values = data.to_unit_interval(np.concatenate([splits["train"][0],
                                                   splits["test"][0]])).ravel()
    np.testing.assert_allclose(np.sort(np.unique(values)), [0.0, 0.2, 1.0], rtol=1e-6)


# ---------------------------------------------------------------- shapes


def test_idx_payload_longer_than_its_header_names_the_file(tmp_path):
    write_idx_folder(tmp_path, gzipped=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes() + bytes(5))
    with pytest.raises(data.DataError, match=r"t10k-images-idx3-ubyte is longer than its header "
                                             r"says: shape \(10, 6, 6\) needs 376 bytes, the "
                                             r"file has 381"):
        data.load_idx_folder(tmp_path)


def test_idx_header_with_huge_dimensions_is_a_data_error(tmp_path):
    # 2**32 - 1 in each of three dimensions: its product overflows int64.
    path = tmp_path / "big-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + b"\xff\xff\xff\xff" * 3 + bytes(10))
    with pytest.raises(data.DataError, match="big-idx3-ubyte is truncated"):
        data.read_idx(path)


def test_train_and_test_of_different_shapes_fail(tmp_path):
    path = tmp_path / "mixed.npz"
    np.savez(path, x_train=np.zeros((4, 28, 28), np.uint8), x_test=np.zeros((2, 14, 14), np.uint8))
    with pytest.raises(data.DataError, match="training images of .*mixed.npz are 28x28x1 but "
                                             "its test images are 14x14x1"):
        data.make_splits("custom", path)


def test_check_examples_shape_names_both_shapes_and_the_source():
    data.check_examples_shape((28, 28, 1), (28, 28, 1), "here")
    with pytest.raises(data.DataError, match="The data in small.npz are 14x14x1 but the model "
                                             "takes 28x28x1; pass --data-dir"):
        data.check_examples_shape((14, 14, 1), (28, 28, 1), "small.npz")


def test_splits_name_their_source(tmp_path):
    write_idx_folder(tmp_path)
    assert data.make_splits("custom", tmp_path).source == str(tmp_path)


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


# ---------------------------------------------------------------- data meet a model


@pytest.fixture(scope="module")
def six_by_six_run(tmp_path_factory):
    """A run trained (one epoch) on 6x6 images."""
    from keras_vae import train
    from tests.helpers import tiny_train_config

    folder = tmp_path_factory.mktemp("idx6")
    write_idx_folder(folder, size=6)
    run = tmp_path_factory.mktemp("runs") / "run"
    train.fit(tiny_train_config(folder, epochs=1), run, verbose=0)
    return run


@pytest.mark.parametrize("command", ["evaluate", "reconstruct", "interpolate", "latent-plot"])
def test_data_of_another_shape_than_the_model_is_one_line(six_by_six_run, tmp_path, command,
                                                          monkeypatch, capsys):
    # Before: "Graph execution error", "in user code:" or a Keras call trace.
    from tests.test_cli import assert_one_line_error, run_kvae

    small = tmp_path / "small.npz"
    np.savez(small, x_train=np.zeros((4, 4, 4), np.uint8), x_test=np.zeros((3, 4, 4), np.uint8))
    status, _, err = run_kvae(monkeypatch, capsys, command, six_by_six_run, "--data-dir", small,
                              *([] if command == "evaluate" else ["--out", tmp_path / "x.png"]))
    assert_one_line_error(status, err, f"The data in {small} are 4x4x1 but the model takes "
                                       f"6x6x1; pass --data-dir")
    assert not (tmp_path / "x.png").exists()


def test_fit_on_data_the_architecture_cannot_take_makes_no_folder(tmp_path):
    from keras_vae import train
    from tests.helpers import tiny_train_config

    write_idx_folder(tmp_path, size=6)  # conv with two stride-2 layers needs multiples of 4
    run = tmp_path / "run"
    with pytest.raises(ValueError, match=r"needs height and width divisible by 4; received "
                                         r"input_shape=\(6, 6, 1\)"):
        train.fit(tiny_train_config(tmp_path, architecture="conv", hidden_units=(4, 4)), run)
    assert not run.exists() and not train.partial_dir(run).exists()
