"""What reaches the model for each likelihood data kind: --binarize dynamic|static|none and
its checks, its config.json round trip, and the integer grey levels of a discrete likelihood
through training, evaluation and the bundled test examples."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae import bundled_examples, config, data, likelihoods, runs, train
from keras_vae.config import TrainConfig
from keras_vae.errors import ConfigError
from keras_vae.layers.normal import NormalDecoder
from tests.helpers import tiny_train_config, write_idx_folder
from tests.test_cli import assert_one_line_error, run_kvae


def _epoch(dataset):
    return np.concatenate([np.asarray(batch) for batch in dataset])


def _rows(images):
    """The examples as a sorted list of rows: the same multiset gives the same list."""
    flat = images.reshape(len(images), -1)
    return flat[np.lexsort(flat.T[::-1])]


# ---------------------------------------------------------------- the option


def test_binarize_defaults_to_dynamic_for_a_binary_likelihood_and_none_otherwise():
    assert TrainConfig().binarize == "dynamic"
    assert TrainConfig(likelihood="normal").binarize == "none"
    assert TrainConfig(binarize="static").binarize == "static"


def test_binarize_round_trips_through_config_json_and_old_records_load_as_before():
    for options in ({"binarize": "static"}, {"likelihood": "normal"}, {}):
        saved = json.loads(json.dumps(TrainConfig(**options).to_json()))
        assert TrainConfig.from_json(saved) == TrainConfig(**options)
    for likelihood, expected in (("bernoulli", "dynamic"), ("normal", "none")):
        old = TrainConfig(likelihood=likelihood).to_json()
        del old["binarize"], old["label_column"]  # a config.json written before these fields
        assert TrainConfig.from_json(old).binarize == expected


@pytest.mark.parametrize("options, message", [
    ({"binarize": "none"}, r"binarize='none' would give likelihood='bernoulli' grey levels, .* "
                           r"not a likelihood .* use likelihood='continuous_bernoulli'"),
    ({"likelihood": "normal", "binarize": "static"},
     r"binarize='static' makes binary data .* likelihood='normal' takes real values as they "
     r"are: use binarize='none'"),
    ({"binarize": "sometimes"}, r"binarize"),
])
def test_binarisations_that_do_not_fit_the_likelihood_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**options)


def test_kvae_fit_binarize_none_with_bernoulli_is_one_line(monkeypatch, capsys, tmp_path):
    status, _, err = run_kvae(monkeypatch, capsys, "fit", "--binarize", "none",
                              "--output", tmp_path / "run")
    assert_one_line_error(status, err, "binarize='none' would give likelihood='bernoulli'")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- the pipelines


@pytest.fixture()
def idx(tmp_path):
    write_idx_folder(tmp_path, num_train=40, num_test=20)
    return tmp_path


def _splits(folder, **options):
    return data.make_splits("custom", folder, batch_size=8, validation_fraction=0.25, seed=3,
                            **options)


def test_static_binarisation_is_one_draw_reshuffled_each_epoch(idx):
    splits = _splits(idx, likelihood="bernoulli", binarize="static")
    first, second = _epoch(splits.train), _epoch(splits.train)
    assert set(np.unique(first)) == {0.0, 1.0}
    assert not np.array_equal(first, second)  # reshuffled ...
    np.testing.assert_array_equal(_rows(first), _rows(second))  # ... but never redrawn
    grey = data.to_unit_interval(data.load_idx_folder(idx)["train"][0][:30])
    np.testing.assert_array_equal(_rows(first), _rows(data.binarized_once(grey, 3)))


def test_dynamic_binarisation_redraws_each_epoch(idx):
    splits = _splits(idx, likelihood="bernoulli", binarize="dynamic")
    first, second = _epoch(splits.train), _epoch(splits.train)
    assert not np.array_equal(_rows(first), _rows(second))


def test_validation_and_test_are_binarised_once_alike_under_static_and_dynamic(idx):
    static, dynamic = (_splits(idx, likelihood="bernoulli", binarize=binarize)
                       for binarize in ("static", "dynamic"))
    for split in ("validation", "test"):
        np.testing.assert_array_equal(_epoch(getattr(static, split)),
                                      _epoch(getattr(dynamic, split)))
        assert set(np.unique(_epoch(getattr(static, split)))) == {0.0, 1.0}
    # and the older spelling binarized=True is the dynamic one
    np.testing.assert_array_equal(_epoch(_splits(idx).test), _epoch(dynamic.test))


def test_binarize_none_keeps_grey_levels(idx):
    splits = _splits(idx, likelihood="normal", binarize="none")
    grey = data.to_unit_interval(data.load_idx_folder(idx)["test"][0])
    np.testing.assert_array_equal(_epoch(splits.test), grey)


# ---------------------------------------------------------------- a discrete likelihood


@keras.saving.register_keras_serializable(package="tests")
class LevelsCheckingDecoder(NormalDecoder):
    """A stand-in head for a discrete likelihood whose every batch must hold integer grey
    levels (not all 0 or 1): it fails the step otherwise."""

    def data_checks(self, x):
        return super().data_checks(x) + [tf.debugging.Assert(
            tf.logical_and(tf.reduce_all(x == tf.round(x)), tf.reduce_max(x) > 1.0),
            ["LevelsCheckingDecoder received data that are not integer grey levels"])]


@pytest.fixture(scope="module")
def levels_likelihood():
    """'test_levels', registered as a likelihood of "levels" data."""
    kind = likelihoods.data_kind
    likelihoods.register("test_levels", LevelsCheckingDecoder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(likelihoods, "data_kind",
                      lambda name: "levels" if name == "test_levels" else kind(name))
        patch.setattr(config, "LIKELIHOODS", likelihoods.names())
        yield "test_levels"
    likelihoods.unregister("test_levels")


@pytest.fixture(scope="module")
def levels_run(levels_likelihood, tmp_path_factory):
    folder = tmp_path_factory.mktemp("levels-idx")
    arrays = write_idx_folder(folder, size=6)
    run = tmp_path_factory.mktemp("runs") / "run"
    metrics = train.fit(tiny_train_config(folder, likelihood=levels_likelihood, epochs=1), run,
                        verbose=0)
    return run, arrays, metrics


def test_levels_data_reach_the_model_as_eight_bit_integers(levels_run):
    # The head's check fails training on anything but integer grey levels.
    run, arrays, metrics = levels_run
    assert np.isfinite(metrics["elbo"])
    assert json.loads((run / "config.json").read_text())["train"]["binarize"] == "none"


def test_evaluation_of_a_levels_run_sees_the_integers(levels_run):
    run, arrays, metrics = levels_run
    loaded = runs.load_run(run)
    images, _, shipped = runs.test_images(loaded)
    assert shipped is None
    np.testing.assert_array_equal(images[..., 0], arrays[("test", "images")])
    evaluated, count = runs.evaluate_run(loaded)
    assert count == 10 and evaluated["elbo"] == pytest.approx(metrics["elbo"], rel=1e-5)


def test_bundled_levels_images_round_trip_and_evaluate_alike(levels_run):
    run, arrays, _ = levels_run
    assert bundled_examples.bundle_test_examples(run) == 10
    loaded = runs.load_run(run)
    images, _, shipped = runs.test_images(loaded)
    assert shipped == run / runs.TEST_EXAMPLES
    np.testing.assert_array_equal(images[..., 0], arrays[("test", "images")])
    from_bundle, _ = runs.evaluate_run(loaded)
    from_data, _ = runs.evaluate_run(loaded, data_dir=str(loaded.config.data_dir))
    assert from_bundle["elbo"] == pytest.approx(from_data["elbo"], rel=1e-6)


def test_a_discrete_likelihood_on_float_images_is_one_line(levels_likelihood, tmp_path):
    np.savez(tmp_path / "grey.npz", x_train=np.full((4, 2, 2), 0.5), x_test=np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"The discrete likelihood 'test_levels' needs integer "
                                         r"data \(8-bit grey levels 0\.\.255\), but the "
                                         r"training images of .*grey\.npz hold fractions"):
        data.make_splits("custom", tmp_path / "grey.npz", likelihood=levels_likelihood)


def test_eight_bit_png_folders_give_levels_their_integers(levels_likelihood, tmp_path):
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (10, 4, 4), dtype=np.uint8)
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    splits = data.make_splits("custom", tmp_path, batch_size=4, validation_fraction=0,
                              likelihood=levels_likelihood)
    values = np.concatenate([_epoch(splits.train), _epoch(splits.test)])[..., 0]
    np.testing.assert_array_equal(_rows(values), _rows(pixels.astype(np.float32)))
