"""The issue-22 presets (keras_vae/presets.py) and the model choice of
benchmarks/mnist_nll.py: the recipes say what their descriptions say, the script builds the
configuration it is asked for and keeps its one-layer default."""

import importlib
import pathlib
import subprocess
import sys

import pytest

from keras_vae import presets, train

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
HIERARCHY_PRESETS = ("burda-mnist-2layer", "ladder-mnist", "ladder-conv-mnist")
MODEL_FIELDS = {"model", "merge", "architecture", "latent_dim", "latent_dims", "hidden_units",
                "latent_hidden_units", "activation"}
WARMUP_FIELDS = {"kl_warmup", "kl_warmup_length"}  # presets.HIERARCHY_WARMUP


@pytest.fixture
def mnist_nll(monkeypatch):
    """benchmarks/mnist_nll.py as a module (it imports its neighbour priors_mnist.py)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("mnist_nll")


def test_hierarchy_presets_train_on_the_burda_recipe():
    burda = presets.train_config("burda-mnist")
    for name in HIERARCHY_PRESETS:
        config = presets.train_config(name)
        own = MODEL_FIELDS | WARMUP_FIELDS
        recipe = {key: value for key, value in vars(config).items() if key not in own}
        assert recipe == {key: value for key, value in vars(burda).items()
                          if key not in own}, name
        warmup = (config.kl_warmup, config.kl_warmup_length)
        assert warmup == ("linear", 4), name
        assert config.epochs == 121 and config.model != "vae", name


def test_the_two_layer_preset_is_burda_et_al_s_architecture():
    # yburda/iwae experiments.py, layers=2: latent_units [100, 50], hidden_units_q
    # [[200, 200], [100, 100]], hidden_units_p [[100, 100], [200, 200]], tanh.
    config = presets.train_config("burda-mnist-2layer")
    assert (config.model, config.architecture, config.latent_dims, config.hidden_units,
            config.latent_hidden_units, config.activation) == (
        "hvae", "mlp", (100, 50), (200, 200), (100, 100), "tanh")
    model = train.build_model(config, (28, 28, 1))
    # Weights and biases of each Dense layer, in closed form: q(z1|x) 784-200-200-(2x100),
    # q(z2|z1) 100-100-100-(2x50), p(z1|z2) 50-100-100-(2x100), p(x|z1) 100-200-200-784.
    chains = [(784, 200, 200, 200), (100, 100, 100, 100), (50, 100, 100, 200),
              (100, 200, 200, 784)]
    expected = sum(fan_in * fan_out + fan_out for chain in chains
                   for fan_in, fan_out in zip(chain, chain[1:]))
    assert expected == 521_084
    assert sum(int(weight.numpy().size) for weight in model.trainable_weights) == expected


def test_the_ladder_preset_differs_from_the_two_layer_one_in_inference_alone():
    two_layer = vars(presets.train_config("burda-mnist-2layer"))
    ladder = vars(presets.train_config("ladder-mnist"))
    assert {key for key in two_layer if two_layer[key] != ladder[key]} == {"model"}
    assert ladder["model"] == "ladder" and ladder["merge"] == "precision"


def test_mnist_nll_keeps_the_one_layer_burda_run_by_default(mnist_nll):
    args = mnist_nll.parser().parse_args(["--data-dir", "d", "--output", "o"])
    config, given = mnist_nll.configuration(args)
    assert given == {}
    assert config == presets.train_config("burda-mnist", data_dir="d", epochs=121)
    assert mnist_nll.paper_figure(args.preset, "elbo", 1, given) == -86.76


def test_mnist_nll_trains_the_preset_and_model_it_is_given(mnist_nll):
    args = mnist_nll.parser().parse_args([
        "--data-dir", "d", "--output", "o", "--preset", "burda-mnist-2layer", "--stages", "2",
        "--objective", "iwae", "--iw-samples", "5"])
    config, given = mnist_nll.configuration(args)
    assert config == presets.train_config("burda-mnist-2layer", data_dir="d", epochs=4,
                                          objective="iwae", iw_samples=5)
    assert mnist_nll.paper_figure(args.preset, "iwae", 50, given) == -82.90

    args = mnist_nll.parser().parse_args([
        "--data-dir", "d", "--output", "o", "--model", "ladder", "--latent-dims", "8,4",
        "--latent-hidden-units", "none", "--hidden-units", "16", "--merge", "residual"])
    config, given = mnist_nll.configuration(args)
    assert (config.model, config.latent_dims, config.latent_hidden_units, config.hidden_units,
            config.merge, config.batch_size) == ("ladder", (8, 4), (), (16,), "residual", 20)
    assert mnist_nll.paper_figure(args.preset, "elbo", 1, given) is None  # not Burda's model


def test_mnist_nll_rejects_a_bad_model_combination_in_one_line(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "mnist_nll.py"), "--data-dir", str(tmp_path),
         "--output", str(tmp_path / "run"), "--model", "hvae", "--merge", "residual"],
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines()[-1].endswith(
        "error: --merge applies to --model ladder only (hvae infers bottom-up).")
    assert not (tmp_path / "run").exists()


def test_every_epoch_cost_configuration_is_a_valid_preset_run(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    epoch_cost = importlib.import_module("hierarchy_epoch_cost")
    for name, (preset, overrides) in epoch_cost.CONFIGURATIONS.items():
        assert "," not in name, name  # --configurations is a comma-separated list of names
        config = presets.train_config(preset, **overrides)
        assert config.epochs == epoch_cost.EPOCHS == presets.burda_epochs(5), name
    # the six configurations, each once (VAE, hvae k=1, IWAE k=5 and 50, the ladders)
    assert {(preset, overrides.get("iw_samples", 1))
            for preset, overrides in epoch_cost.CONFIGURATIONS.values()} >= {
        ("burda-mnist", 1), ("burda-mnist-2layer", 1), ("burda-mnist-2layer", 5),
        ("burda-mnist-2layer", 50), ("ladder-mnist", 1), ("ladder-conv-mnist", 1)}
