"""The option vocabularies and defaults have one owner (keras_vae/config.py): the kvae
command's options are built from them, and they name exactly what the library implements."""

import dataclasses
import math

import click
import keras
import pytest

from keras_vae import config, distribute, export, presets, train, warmup
from keras_vae.cli.main import cli
from keras_vae.config import TrainConfig
from keras_vae.errors import ConfigError, DistributeError, ExportError, RunError

# option name -> the vocabulary its click.Choice must list, in the same order
CHOICES = {
    ("fit", "likelihood"): config.LIKELIHOODS,
    ("fit", "binarize"): config.BINARIZATIONS,
    ("fit", "architecture"): config.ARCHITECTURES,
    ("fit", "objective"): config.OBJECTIVES,
    ("fit", "learning_rate_schedule"): config.LEARNING_RATE_SCHEDULES,
    ("fit", "kl_warmup"): config.KL_WARMUPS,
    ("fit", "kl_warmup_unit"): config.KL_WARMUP_UNITS,
    ("fit", "strategy"): config.STRATEGIES,
    ("fit", "precision"): config.PRECISIONS,
    ("fit", "prior"): config.PRIORS,
    ("fit", "model"): config.MODELS,
    ("fit", "merge"): config.MERGES,
    ("fit", "decoder_bias"): config.DECODER_BIASES,
    ("fit", "preset"): tuple(presets.PRESETS),
    ("latent-plot", "projection"): config.LATENT_PROJECTIONS,
    ("export", "export_format"): config.EXPORT_FORMATS,
    ("export", "quantize"): config.QUANTIZATIONS,
}


def _options(command):
    return {parameter.name: parameter for parameter in cli.commands[command].params
            if isinstance(parameter, click.Option)}


def test_every_train_config_field_is_a_fit_option_with_the_same_default():
    fit = _options("fit")
    for field, default in TrainConfig.defaults().items():
        assert field in fit, f"kvae fit has no --{field.replace('_', '-')}"
        assert fit[field].default == default, field
    # and fit has no training option that TrainConfig does not hold
    assert set(fit) - set(TrainConfig.defaults()) == {"preset", "output", "resume",
                                                       "overwrite", "replace_protected"}


def test_every_choice_is_the_library_vocabulary():
    for command in cli.commands:
        for name, option in _options(command).items():
            if isinstance(option.type, click.Choice):
                assert (command, name) in CHOICES, (command, name)
                assert tuple(option.type.choices) == CHOICES[(command, name)], (command, name)
    for (command, name), vocabulary in CHOICES.items():
        assert isinstance(_options(command)[name].type, click.Choice), (command, name)


def test_train_config_checks_every_choice_against_its_vocabulary():
    for field in ("likelihood", "architecture", "objective", "learning_rate_schedule",
                  "kl_warmup", "kl_warmup_unit", "strategy", "precision", "prior",
                  "decoder_bias"):
        with pytest.raises(ConfigError, match=f"{field}"):
            TrainConfig(**{field: "no-such-choice"})


# ------------------------------------------------------------------ vocabularies = registries


def test_likelihoods_are_the_decoder_heads():
    from keras_vae import likelihoods
    from keras_vae.model import VAE

    # The built-in heads (tests that register another one unregister it again).
    assert config.LIKELIHOODS == likelihoods.names()
    for likelihood in config.LIKELIHOODS:
        vae = VAE(input_shape=(4,), latent_dim=2, likelihood=likelihood, hidden_units=(3,))
        assert type(vae.decoder) is likelihoods.head_class(likelihood)


def test_priors_are_the_prior_layers():
    from keras_vae import priors

    assert tuple(priors.PRIOR_CLASSES) == config.PRIORS
    for name in ("standard", "mog", "vamp"):  # "flow": once priors/flow.py exists
        assert priors.prior_class(name).__name__ in priors.PRIOR_CLASSES[name]


def test_architectures_are_the_networks():
    from keras_vae import networks
    from keras_vae.model import VAE

    first_layers = set()
    for architecture in config.ARCHITECTURES:
        body = networks.encoder_body(architecture, (8, 8, 1),
                                     config.DEFAULT_HIDDEN_UNITS[architecture], "relu")
        first_layers.add(type(body.layers[0]))
        assert VAE(input_shape=(8, 8, 1), latent_dim=2,
                   architecture=architecture).architecture == architecture
    assert len(first_layers) == len(config.ARCHITECTURES)  # each builds its own network
    with pytest.raises(ConfigError, match="architecture"):
        VAE(input_shape=(8, 8, 1), latent_dim=2, architecture="transformer")


def test_learning_rate_schedules_all_start_at_the_learning_rate():
    """Every schedule starts at lr: constant lr, cosine lr (1 + cos 0) / 2, Burda's stage 0
    lr * 10^0."""
    for name in config.LEARNING_RATE_SCHEDULES:
        rate = train.learning_rate(TrainConfig(learning_rate_schedule=name,
                                               learning_rate=0.003), steps_per_epoch=10)
        value = rate(0) if callable(rate) else rate
        assert math.isclose(float(value), 0.003, rel_tol=1e-6), name


def test_kl_warmups_are_the_warmup_schedules():
    """'none' adds no callback; the others start at weight 0 and reach the target after T
    (linear) or after R T (cyclical)."""
    for name in config.KL_WARMUPS:
        callbacks = train.warmup_callbacks(TrainConfig(kl_warmup=name, kl_warmup_length=4))
        if name == "none":
            assert callbacks == []
            continue
        assert [type(c) for c in callbacks] == [warmup.KLWarmUp]
        assert warmup.kl_weight_at(name, 0, 4, target=2.0) == 0.0
        assert warmup.kl_weight_at(name, 2, 4, target=2.0, ratio=0.5) == 2.0 * (
            0.5 if name == "linear" else 1.0)
    for unit in config.KL_WARMUP_UNITS:
        assert warmup.KLWarmUp("linear", 4, unit).unit == unit


def test_strategies_are_the_ones_distribute_resolves(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    resolved = {}
    for name in config.STRATEGIES:
        try:
            resolved[name] = distribute.resolve(name)
        except DistributeError as error:
            resolved[name] = "TF_CONFIG" if "TF_CONFIG" in str(error) else str(error)
    # This machine has no GPU: auto is the default strategy; multi-worker needs TF_CONFIG.
    assert resolved == {"auto": "default", "default": "default", "mirrored": "mirrored",
                        "multi-worker": "TF_CONFIG"}
    with pytest.raises(DistributeError, match="Unknown strategy"):
        distribute.resolve("ring")


def test_precisions_are_keras_dtype_policies():
    for precision in config.PRECISIONS:
        previous = distribute.set_precision(precision)
        try:
            assert keras.config.dtype_policy().name == precision
        finally:
            keras.config.set_dtype_policy(previous)


def test_export_formats_and_quantizations_are_the_exports(tmp_path):
    for export_format in config.EXPORT_FORMATS:
        with pytest.raises(RunError):  # past the format check, stopped by the missing run
            export.export_run(tmp_path / "missing", export_format)
    with pytest.raises(ExportError, match="format"):
        export.export_run(tmp_path / "missing", "onnx")
    run = dataclasses.make_dataclass("Run", ["directory", "model_path"])(tmp_path, None)
    folders = {export.default_directory(run, "tflite", quantize)
               for quantize in config.QUANTIZATIONS}
    assert len(folders) == len(config.QUANTIZATIONS)  # one folder each, none overwritten
    with pytest.raises(ExportError, match="quantize must be one of"):
        export.export_tflite(None, tmp_path / "x", quantize="int4")


def test_presets_are_valid_train_configs():
    for name, preset in presets.PRESETS.items():
        assert set(preset.options) <= set(TrainConfig.defaults()), name
        presets.train_config(name)  # every option passes TrainConfig's checks


def test_the_training_guide_lists_every_preset():
    """docs/training.md's preset table has one row per preset of ``presets.PRESETS``."""
    from pathlib import Path

    guide = (Path(__file__).parent.parent / "docs" / "training.md").read_text()
    table = guide[guide.index("## Presets"):].split("\n## ")[0]
    listed = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    assert listed == set(presets.PRESETS)
