"""The value rule (keras_vae/data_values.py): what the examples of each likelihood data kind
look like when they reach the model, and the one-line errors for data that cannot be that."""

import numpy as np
import pytest

from keras_vae import data_values
from keras_vae.errors import DataError

GREY = np.array([[[0, 51], [127, 255]]], np.uint8)[..., None]  # one 2x2x1 image


@pytest.mark.parametrize("kind", ["binary", "unit_interval", "real"])
def test_images_of_continuous_and_binary_kinds_are_grey_levels_in_the_unit_interval(kind):
    values = data_values.model_values(GREY, kind)
    np.testing.assert_allclose(values.ravel(), [0, 0.2, 127 / 255, 1], rtol=1e-6)
    assert values.dtype == np.float32


@pytest.mark.parametrize("source", [GREY, GREY.astype(np.int64), GREY.astype(np.float64)])
def test_levels_images_keep_their_eight_bit_integers(source):
    values = data_values.model_values(source, "levels", likelihood="logistic")
    np.testing.assert_array_equal(values.ravel(), [0, 51, 127, 255])
    assert values.dtype == np.float32


@pytest.mark.parametrize("source, message", [
    (np.full((1, 2, 2, 1), 0.5), r"The discrete likelihood 'logistic' needs integer data "
                                 r"\(8-bit grey levels 0\.\.255\), but the training images of "
                                 r"x\.npz hold fractions such as 0\.5: store whole numbers"),
    (np.full((1, 2, 2, 1), 256), r"needs integer data \(8-bit grey levels 0\.\.255\), but the "
                                 r"training images of x\.npz range from 256 to 256"),
    (np.full((1, 2, 2, 1), -1.0), "range from -1 to -1"),
    (np.full((1, 2, 2, 1), np.nan), "hold NaN or infinite values"),
    (np.full((1, 2, 2, 1), "a"), "hold text; a discrete likelihood needs integers"),
])
def test_a_discrete_likelihood_on_data_that_are_not_integers_is_one_line(source, message):
    with pytest.raises(DataError, match=message) as error:
        data_values.model_values(source, "levels", "The training images of x.npz", "logistic")
    assert "\n" not in str(error.value)


def test_vectors_are_used_as_they_are_for_real_data():
    vectors = np.array([[-3.5, 1000.0, 0.25], [7, 8, 9]])
    np.testing.assert_array_equal(data_values.model_values(vectors, "real"), vectors)
    # integers are not taken for 8-bit grey levels: a table's scale is the user's
    ints = np.array([[0, 1, 200]], np.int64)
    np.testing.assert_array_equal(data_values.model_values(ints, "real"), ints)


@pytest.mark.parametrize("kind", ["binary", "unit_interval"])
def test_vectors_for_unit_interval_kinds_must_lie_in_it_and_are_not_rescaled(kind):
    binary = np.array([[0, 1, 1], [1, 0, 0]], np.int64)
    np.testing.assert_array_equal(data_values.model_values(binary, kind), binary)
    with pytest.raises(DataError, match=r"The likelihood 'bernoulli' needs values in \[0, 1\], "
                                        r"but the training examples of t\.csv range from 0 to "
                                        r"2: rescale them"):
        data_values.model_values(binary * 2, kind, "The training examples of t.csv",
                                 "bernoulli")


def test_levels_vectors_are_non_negative_whole_numbers_without_an_eight_bit_bound():
    counts = np.array([[0, 3, 1000]], np.int64)
    np.testing.assert_array_equal(data_values.model_values(counts, "levels", likelihood="c"),
                                  counts)
    with pytest.raises(DataError, match=r"needs integer data \(0, 1, 2 \.\.\.\), but the "
                                        r"examples hold fractions such as 0\.5"):
        data_values.model_values(np.array([[0.5, 1.0]]), "levels", "The examples", "c")


def test_non_finite_vectors_fail():
    with pytest.raises(DataError, match="hold NaN or infinite values"):
        data_values.model_values(np.array([[0.0, np.inf]]), "real")
