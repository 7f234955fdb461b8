"""The learned priors in a model: their weights train, save and reload exactly, two replicas
train like one device, ``kvae fit --prior`` end to end, and the one-line errors of bad prior
options. The priors' maths: test_learned_priors.py."""

import json

import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae import config as options, lifecycle, priors, train
from keras_vae.errors import ConfigError, RunError
from keras_vae.priors import MixtureOfGaussiansPrior, VampPrior
from tests.test_cli import assert_one_line_error, run_kvae
from tests.helpers import (csv_rows, interrupt_after_epoch, max_abs_difference, model_weights,
                           tiny_train_config)

PRIOR_WEIGHTS = {"mog": ["means", "scale_parameters", "logits"],
                 "vamp": ["pseudo_input_parameters"]}


def _model(prior, **kwargs):
    return kv.VAE(input_shape=(4, 4, 1), latent_dim=3, hidden_units=(8,), prior=prior, **kwargs)


def _binary_images(count, seed=0):
    return (np.random.default_rng(seed).random((count, 4, 4, 1)) < 0.4).astype("float32")


@pytest.mark.parametrize("name", ["mog", "vamp"])
def test_the_prior_is_built_by_name_and_a_train_step_moves_every_prior_weight(name):
    model = _model(name)
    expected = {"mog": MixtureOfGaussiansPrior, "vamp": VampPrior}[name]
    assert isinstance(model.prior, expected)
    assert model.prior.num_components == options.DEFAULT_PRIOR_COMPONENTS[name]
    if name == "vamp":  # the Bernoulli head's data are in [0, 1]: so are the pseudo-inputs
        assert model.prior.image_shape == (4, 4, 1) and model.prior.data_range == (0.0, 1.0)
    before = {w.name: w.numpy().copy() for w in model.prior.weights}
    assert sorted(before) == sorted(PRIOR_WEIGHTS[name])
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(_binary_images(20), epochs=1, batch_size=10, verbose=0)
    for weight in model.prior.weights:
        assert np.abs(weight.numpy() - before[weight.name]).max() > 1e-4, weight.name


def test_build_prior_takes_the_components_and_the_data_range():
    prior = priors.build_prior("vamp", 2, 6, input_shape=(3,), data_range=None)
    assert (prior.num_components, prior.image_shape, prior.data_range) == (6, (3,), None)
    assert prior.name == "prior"
    assert priors.build_prior("mog", 2).num_components == 10
    assert isinstance(priors.build_prior("standard", 2), kv.StandardNormalPrior)
    assert priors.data_range_of(kv.BernoulliDecoder) == (0.0, 1.0)
    assert priors.data_range_of(kv.NormalDecoder) is None


@pytest.mark.parametrize("name", ["mog", "vamp"])
def test_keras_file_round_trip_is_exact(name, tmp_path):
    model = _model(name)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(_binary_images(20), epochs=1, batch_size=10, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded.prior) is type(model.prior)
    assert loaded.prior.get_config() == model.prior.get_config()
    # The VampPrior holds no encoder: the encoder's weights are saved once, with the model.
    assert len(loaded.weights) == len(model.weights)
    for saved, reloaded in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(saved.numpy(), reloaded.numpy())
    z = np.random.default_rng(1).normal(size=(9, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.prior_distribution().log_prob(z),
                                  model.prior_distribution().log_prob(z))
    noise = priors.draw_noise(model.sampler_noise_spec(), 9, seed=2)
    np.testing.assert_array_equal(loaded.latent_from_noise(noise), model.latent_from_noise(noise))
    np.testing.assert_array_equal(loaded.sample(5, seed=3), model.sample(5, seed=3))


def test_sample_draws_from_the_learned_prior():
    # A mixture with one heavy component far from 0: the decoded means follow it.
    model = _model("mog", likelihood="normal")
    means = np.zeros((10, 3), "float32")
    means[4] = 50.0
    logits = np.full(10, -30.0, "float32")
    logits[4] = 0.0
    model.prior.means.assign(means)
    model.prior.logits.assign(logits)
    z = model.prior_distribution().sample(200, seed=[1, 0]).numpy()  # model.sample(seed=1)
    assert np.abs(z.mean(0) - 50.0).max() < 0.5
    decoded = model.decode(z).mean().numpy()
    np.testing.assert_allclose(model.sample(200, seed=1), decoded, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["mog", "vamp"])
def test_mirrored_fit_with_a_learned_prior_matches_one_device(name, idx_folder, tmp_path):
    # As test_distribute's parity test: 60 images, global batches of 10 (5 per replica).
    split = dict(epochs=2, validation_fraction=0, prior=name, prior_components=4)
    train.fit(tiny_train_config(idx_folder, strategy="default", **split),
              tmp_path / "default", verbose=0)
    train.fit(tiny_train_config(idx_folder, strategy="mirrored", **split),
              tmp_path / "mirrored", verbose=0)
    assert max_abs_difference(model_weights(tmp_path / "default"),
                              model_weights(tmp_path / "mirrored")) < 1e-5
    np.testing.assert_allclose(
        [float(r["elbo"]) for r in csv_rows(tmp_path / "mirrored" / "history.csv")],
        [float(r["elbo"]) for r in csv_rows(tmp_path / "default" / "history.csv")], rtol=1e-5)


def test_diagnostics_with_a_non_factorised_prior_report_active_units_and_no_per_dim_kl():
    model = _model("mog")
    images = _binary_images(30)
    diagnostics = model.latent_diagnostics(images, [0, 0])["z"]
    np.testing.assert_array_equal(diagnostics.posterior_mean, model.encode(images).mean())
    assert np.all(np.isnan(diagnostics.kl_per_dimension))
    metrics, _ = kv.evaluation.evaluate(model, images, batch_size=10)
    variance = model.encode(images).mean().numpy().var(0)
    assert metrics["active_units"] == int(np.sum(variance > 0.01))
    assert np.isfinite(metrics["kl"]) and metrics["kl"] > 0


def test_free_bits_with_a_mixture_prior_floor_the_whole_kl_or_are_refused():
    with pytest.raises(ConfigError, match="free_bits_groups=1"):
        _model("mog", free_bits=0.5)
    with pytest.raises(ConfigError, match="free_bits_groups=1"):
        train.TrainConfig(prior="vamp", free_bits=0.5)
    model = _model("mog", free_bits=50.0, free_bits_groups=1)
    terms = model.elbo_terms(_binary_images(10), seed=[0, 1])
    # The batch-mean KL is below 50 nats: the loss is the reconstruction plus the floor.
    assert float(np.mean(terms.kl)) < 50.0
    np.testing.assert_allclose(terms.loss, terms.reconstruction + 50.0, rtol=1e-6)


def test_bad_prior_options_give_one_line_errors():
    with pytest.raises(ConfigError, match="prior_components must be a positive integer; "
                                          "received 0"):
        train.TrainConfig(prior="mog", prior_components=0)
    with pytest.raises(ConfigError, match="the 'standard' prior has none"):
        train.TrainConfig(prior_components=5)
    with pytest.raises(ConfigError, match="Unknown prior 'gmm': expected one of 'standard', "
                                          "'mog', 'vamp', 'flow'"):
        train.TrainConfig(prior="gmm")
    with pytest.raises(ConfigError, match=r"pseudo-inputs have shape \(5,\) but the model's "
                                          r"data have shape \(4, 4, 1\)"):
        _model(VampPrior(3, num_components=4, input_shape=(5,)))
    with pytest.raises(ConfigError, match="VampPrior needs input_shape"):
        VampPrior(3)
    with pytest.raises(ConfigError, match="pass encoder="):
        VampPrior(3, input_shape=(2,)).distribution()
    # Old config.json files, written before the prior options, load with the standard prior.
    old = train.TrainConfig().to_json()
    del old["prior"], old["prior_components"]
    assert train.TrainConfig.from_json(old).prior == "standard"


def test_resuming_a_standard_run_with_a_learned_prior_names_the_prior(idx_folder, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train.fit(tiny_train_config(idx_folder), run, verbose=0,
                  callbacks=[interrupt_after_epoch(0)])
    with pytest.raises(RunError, match=r"was trained with --prior standard; its model.keras has "
                                       r"no weights for --prior vamp --prior-components 3, so "
                                       r"--resume keeps the prior"):
        train.fit(tiny_train_config(idx_folder, prior="vamp", prior_components=3), run,
                  resume=True, verbose=0)
    assert lifecycle.interrupted_message(run).startswith("Interrupted. The last completed")


def test_kvae_fit_with_a_learned_prior_end_to_end(idx_folder, tmp_path, monkeypatch, capsys):
    for name in ("mog", "vamp"):
        run = tmp_path / name
        status, _, err = run_kvae(
            monkeypatch, capsys, "fit", "--dataset", "custom", "--data-dir", idx_folder,
            "--epochs", 1, "--batch-size", 10, "--hidden-units", 8, "--latent-dim", 2,
            "--prior", name, "--prior-components", 3, "--output", run)
        assert status in (0, None), err
        recorded = json.loads((run / "config.json").read_text())["train"]
        assert (recorded["prior"], recorded["prior_components"]) == (name, 3)
        assert keras.models.load_model(run / "model.keras").prior.num_components == 3
        status, _, err = run_kvae(monkeypatch, capsys, "sample", run, "--num", 4, "--out",
                                  tmp_path / f"{name}.png")
        assert status in (0, None), err
        assert (tmp_path / f"{name}.png").exists()
        status, _, err = run_kvae(monkeypatch, capsys, "evaluate", run, "--iw-samples", 3)
        assert status in (0, None), err
    status, _, err = run_kvae(monkeypatch, capsys, "fit", "--prior-components", 2)
    assert_one_line_error(status, err, "the 'standard' prior has none")
    status, _, err = run_kvae(monkeypatch, capsys, "fit", "--prior", "mog",
                              "--prior-components", 0)
    assert status == 2 and "--prior-components" in err
