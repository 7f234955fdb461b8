"""Issue 24's recipe, the preset ``vamp-mnist`` (keras_vae/presets.py): it is Tomczak &
Welling's one-layer VAE with the VampPrior on burda-mnist's schedule, batch 100, stages
0..5; benchmarks/mnist_nll.py trains exactly it; benchmarks/ship_pilots.py's
candidates are valid configurations."""

import importlib
import pathlib

import pytest

from keras_vae import presets, train

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
NAME = "vamp-mnist"


@pytest.fixture
def benchmark_module(monkeypatch):
    """A module of benchmarks/ by name (they import their neighbours)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module


def test_the_ship_preset_is_tomczak_and_welling_s_vae_on_burda_s_schedule():
    burda = vars(presets.train_config("burda-mnist"))
    ship = vars(presets.train_config(NAME))
    changed = {key: ship[key] for key in ship if ship[key] != burda[key]}
    assert changed == {"latent_dim": 40, "hidden_units": (300, 300), "activation": "relu",
                       "prior": "vamp", "prior_components": 500, "batch_size": 100,
                       "kl_warmup": "linear", "kl_warmup_length": 4, "epochs": 364}
    # Burda's schedule from 1e-3, stages 0..5 (sum of 3^i for i < 6), so that
    # --epochs 1093 --resume continues it on the same schedule (stage 6).
    assert ship["epochs"] == presets.burda_epochs(6) == 1 + 3 + 9 + 27 + 81 + 243
    assert (ship["model"], ship["learning_rate"], ship["learning_rate_schedule"],
            ship["binarize"], ship["validation_fraction"]) == ("vae", 1e-3, "burda",
                                                               "dynamic", 0.0)


def test_the_ship_model_adds_only_the_pseudo_inputs_to_its_vae():
    # The VampPrior's only weights are its 500 pseudo-inputs of 784 pixels: the encoder that
    # maps them is the VAE's own. Closed form of the MLPs: q 784-300-300-(2x40), p
    # 40-300-300-784, weights and biases of each Dense layer.
    ship = train.build_model(presets.train_config(NAME), (28, 28, 1))
    chains = [(784, 300, 300, 80), (40, 300, 300, 784)]
    mlps = sum(fan_in * fan_out + fan_out for chain in chains
               for fan_in, fan_out in zip(chain, chain[1:]))
    assert sum(int(weight.numpy().size) for weight in ship.trainable_weights) == (
        mlps + 500 * 28 * 28)


def test_mnist_nll_trains_the_ship_preset_unchanged(benchmark_module):
    # The long run's command, `mnist_nll.py --preset vamp-mnist --stages 6`, trains
    # the same configuration as `kvae fit --preset vamp-mnist`.
    mnist_nll = benchmark_module("mnist_nll")
    args = mnist_nll.parser().parse_args(["--data-dir", "d", "--output", "o", "--preset", NAME,
                                          "--stages", "6"])
    config, given = mnist_nll.configuration(args)
    assert given == {}
    assert config == presets.train_config(NAME, data_dir="d")


def test_every_pilot_is_a_valid_preset_run(benchmark_module):
    pilots = benchmark_module("ship_pilots")
    for name, (preset, options) in pilots.CANDIDATES.items():
        assert "," not in name, name  # --candidates is a comma-separated list
        config = presets.train_config(preset, **options)
        assert config.dataset == "mnist" and config.prior in ("standard", "vamp"), name
    preset, options = pilots.CANDIDATES["vamp100-relu"]
    config = presets.train_config(preset, **options)
    # the chosen pilot is the shipped recipe but for the run's length
    assert config == presets.train_config(NAME, epochs=config.epochs)
    assert config.epochs == 121


def test_the_pilots_stop_at_the_first_epoch_end_past_their_cpu_budget(benchmark_module):
    pilots = benchmark_module("ship_pilots")

    class Model:
        stop_training = False

    for budget, stops_after in ((0.0, 1), (1e9, None)):
        callback = pilots.CPUBudget(budget)
        callback.set_model(Model())
        callback.on_train_begin()
        for epoch in range(3):
            callback.on_epoch_begin(epoch)
            sum(range(10_000))  # some CPU time
            callback.on_epoch_end(epoch, {"elbo": -100.0 - epoch})
            if callback.model.stop_training:
                break
        assert callback.model.stop_training == (stops_after is not None)
        assert len(callback.epochs) == (stops_after or 3)
        assert [row["elbo"] for row in callback.epochs] == [-100.0, -101.0, -102.0][
            :len(callback.epochs)]
        assert all(row["cpu"] >= 0 and row["wall"] >= 0 for row in callback.epochs)
