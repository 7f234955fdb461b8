"""Issue 24's recipe, the preset ``ladder-vamp-mnist`` (keras_vae/presets.py): it is
ladder-mnist's model and recipe with the VampPrior at the top, batch 100, Adam 2e-3 and
stages 0..5; benchmarks/mnist_nll.py trains exactly it; benchmarks/ship_pilots.py's
candidates are valid configurations."""

import importlib
import pathlib

import pytest

from keras_vae import presets, train

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
NAME = "ladder-vamp-mnist"


@pytest.fixture
def benchmark_module(monkeypatch):
    """A module of benchmarks/ by name (they import their neighbours)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module


def test_the_ship_preset_is_the_ladder_with_a_vampprior_at_batch_100():
    ladder = vars(presets.train_config("ladder-mnist"))
    ship = vars(presets.train_config(NAME))
    changed = {key: ship[key] for key in ship if ship[key] != ladder[key]}
    assert changed == {"prior": "vamp", "prior_components": 500, "batch_size": 100,
                       "learning_rate": 2e-3, "epochs": 364}
    # Burda's schedule, stages 0..5 (sum of 3^i for i < 6), so that --epochs 1093 --resume
    # continues it on the same schedule (stage 6).
    assert ship["epochs"] == presets.burda_epochs(6) == 1 + 3 + 9 + 27 + 81 + 243
    assert (ship["learning_rate_schedule"], ship["binarize"], ship["validation_fraction"],
            ship["kl_warmup"], ship["kl_warmup_length"]) == ("burda", "dynamic", 0.0,
                                                            "linear", 4)


def test_the_ship_model_adds_only_the_pseudo_inputs_to_the_ladder():
    # The VampPrior's only weights are its 500 pseudo-inputs of 784 pixels: the encoder
    # that maps them is the ladder's own. ladder-mnist: 531,084 trainable weights
    # (benchmarks/RESULTS.md, issue 22).
    ladder = train.build_model(presets.train_config("ladder-mnist"), (28, 28, 1))
    ship = train.build_model(presets.train_config(NAME), (28, 28, 1))

    def count(model):
        return sum(int(weight.numpy().size) for weight in model.trainable_weights)

    assert count(ladder) == 531_084
    assert count(ship) == 531_084 + 500 * 28 * 28


def test_mnist_nll_trains_the_ship_preset_unchanged(benchmark_module):
    # The long run's command, `mnist_nll.py --preset ladder-vamp-mnist --stages 6`, trains
    # the same configuration as `kvae fit --preset ladder-vamp-mnist`.
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
    config = presets.train_config(*pilots.CANDIDATES["ladder-vamp100"][:1],
                                  **pilots.CANDIDATES["ladder-vamp100"][1])
    ship = presets.train_config(NAME)
    # the chosen pilot is the shipped recipe but for the run's length
    assert config == presets.train_config(NAME, epochs=config.epochs)
    assert config.epochs == 121 and ship.epochs == 364
