"""Export: SavedModel signatures read without keras_vae, TFLite files run through LiteRT,
both checked number by number against the Keras model; atomic writes; refused bad files."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae as kv
from keras_vae import evaluation, export
from tests.helpers import prototype_images
from tests.test_cli import assert_one_line_error, run_kvae

IMAGE_SHAPE = (28, 28, 1)
LATENT_DIM = 8


@pytest.fixture(scope="module")
def images():
    """(train, test) binary 28x28 images: 8 patterns with 3% of the pixels flipped."""
    train, _ = prototype_images(1000, seed=1, shape=IMAGE_SHAPE, num_prototypes=8, flip=0.03)
    test, _ = prototype_images(200, seed=2, shape=IMAGE_SHAPE, num_prototypes=8, flip=0.03)
    return train, test


@pytest.fixture(scope="module")
def trained(images):
    """A 784-64-(2x8) / 8-64-784 Bernoulli VAE trained until it models the patterns."""
    keras.utils.set_random_seed(7)
    model = kv.VAE(IMAGE_SHAPE, latent_dim=LATENT_DIM, hidden_units=(64,))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(images[0], batch_size=50, epochs=8, verbose=0)
    return model


@pytest.fixture(scope="module")
def tflite_exports(trained, tmp_path_factory):
    """{quantize: (folder, metadata)} for every quantisation of the trained model."""
    root = tmp_path_factory.mktemp("tflite")
    return {quantize: (root / quantize, export.export_tflite(trained, root / quantize, quantize))
            for quantize in export.QUANTIZATIONS}


def _z(num, seed=0):
    return np.random.default_rng(seed).standard_normal((num, LATENT_DIM)).astype("float32")


def _keras_decoder(model, z):
    return {"mean": model.decode(z).mean().numpy()}


def _keras_encoder(model, x):
    posterior = model.encode(x)
    return {"loc": posterior.mean().numpy(), "scale": posterior.stddev().numpy()}


# ---------------------------------------------------------------- SavedModel

FRESH_PROCESS = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf

    inputs = np.load(sys.argv[2])
    loaded = tf.saved_model.load(sys.argv[1])
    outputs = {}
    for name, function in loaded.signatures.items():
        specs = function.structured_input_signature[1]
        outputs[name + ":inputs"] = np.array(
            [f"{key}:{spec.dtype.name}:{spec.shape}" for key, spec in sorted(specs.items())])
        arguments = {key: tf.constant(inputs[key]) for key in specs}
        for key, value in function(**arguments).items():
            outputs[f"{name}/{key}"] = value.numpy()
    assert "keras_vae" not in sys.modules, "the SavedModel pulled in keras_vae"
    np.savez(sys.argv[3], **outputs)
""")


def test_saved_model_signatures_match_keras_in_a_process_without_keras_vae(trained, images,
                                                                          tmp_path):
    report = export.export_saved_model(trained, tmp_path / "saved_model")
    assert sorted(report["max_abs_difference"]) == [
        "decode", "encode", "reconstruct", "sample", "sample_from_noise", "serving_default"]
    assert max(max(v.values()) for v in report["max_abs_difference"].values()) <= 1e-5
    x, z, z_noise = images[1][:64], _z(64), _z(64, seed=1)
    np.savez(tmp_path / "inputs.npz", x=x, z=z, num=np.int32(5), seed=np.int32(3),
             z_noise=z_noise)
    script = tmp_path / "load.py"
    script.write_text(FRESH_PROCESS)
    process = subprocess.run(
        [sys.executable, script, tmp_path / "saved_model", tmp_path / "inputs.npz",
         tmp_path / "outputs.npz"], capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    out = dict(np.load(tmp_path / "outputs.npz"))

    assert sorted({key.split("/")[0].split(":")[0] for key in out}) == [
        "decode", "encode", "reconstruct", "sample", "sample_from_noise", "serving_default"]
    assert list(out["decode:inputs"]) == [f"z:float32:(None, {LATENT_DIM})"]
    assert list(out["encode:inputs"]) == ["x:float32:(None, 28, 28, 1)"]
    assert list(out["sample:inputs"]) == ["num:int32:()", "seed:int32:()"]
    assert list(out["sample_from_noise:inputs"]) == [f"z_noise:float32:(None, {LATENT_DIM})"]

    likelihood = trained.decode(z)
    # The standard prior's z is its noise: sample_from_noise decodes it as decode does.
    drawn = trained.decode(trained.latent_from_noise({"z_noise": z_noise}))
    expected = {
        "decode/mean": likelihood.mean(), "decode/logits": likelihood.distribution.logits,
        "serving_default/mean": likelihood.mean(),
        "encode/loc": trained.encode(x).mean(), "encode/scale": trained.encode(x).stddev(),
        "reconstruct/mean": trained.reconstruct(x),
        "sample/x": trained.sample(5, seed=3),
        "sample_from_noise/mean": drawn.mean(),
        "sample_from_noise/logits": drawn.distribution.logits,
        "sample_from_noise/z": tf.constant(z_noise),
    }
    for key, value in expected.items():
        assert out[key].shape == tuple(value.shape), key
        np.testing.assert_allclose(out[key], value.numpy(), atol=1e-5, rtol=0, err_msg=key)


def test_normal_likelihood_exports_mean_and_scale(tmp_path):
    model = kv.VAE((6, 6, 1), latent_dim=3, hidden_units=(16,), likelihood="normal",
                   decoder=kv.NormalDecoder((6, 6, 1), scale="per_example", hidden_units=(16,)))
    z = _z(10)[:, :3]
    x = np.random.default_rng(0).random((10, 6, 6, 1)).astype("float32")
    export.export_saved_model(model, tmp_path / "saved_model")
    loaded = tf.saved_model.load(str(tmp_path / "saved_model"))
    decoded = loaded.signatures["decode"](z=tf.constant(z))
    np.testing.assert_allclose(decoded["mean"], model.decode(z).mean(), atol=1e-5)
    np.testing.assert_allclose(decoded["scale"], model.decode(z).stddev(), atol=1e-5)

    metadata = export.export_tflite(model, tmp_path / "tflite")
    assert metadata["files"]["decoder"]["outputs"][0]["range"] is None  # not probabilities
    decoder = export.tflite_runner(tmp_path / "tflite" / "decoder.tflite", "decode")
    np.testing.assert_allclose(decoder(z=z)["mean"], model.decode(z).mean(), atol=1e-5)
    encoder = export.tflite_runner(tmp_path / "tflite" / "encoder.tflite", "encode")
    np.testing.assert_allclose(encoder(x=x)["scale"], model.encode(x).stddev(), atol=1e-5)


# ---------------------------------------------------------------- TFLite


@pytest.mark.parametrize("quantize, tolerance", [("none", 1e-5), ("float16", 1e-3)])  # tighter than
# the export's float16 bound (1/255): a tiny model's rounding errors add up less
def test_tflite_matches_keras_at_batch_1_and_64(quantize, tolerance, tflite_exports, trained,
                                                images):
    folder, _ = tflite_exports[quantize]
    decoder = export.tflite_runner(folder / "decoder.tflite", "decode")
    encoder = export.tflite_runner(folder / "encoder.tflite", "encode")
    x = images[1][:64]
    # z from the prior and from the posterior of real inputs: both regions an app meets.
    for z in (_z(64), trained.encode(x).mean().numpy()):
        for batch in (1, 64):
            expected = _keras_decoder(trained, z[:batch])["mean"]
            got = decoder(z=z[:batch])["mean"]
            assert got.shape == (batch, *IMAGE_SHAPE)
            assert np.max(np.abs(got - expected)) <= tolerance
    for batch in (1, 64):
        expected = _keras_encoder(trained, x[:batch])
        got = encoder(x=x[:batch])
        for name in ("loc", "scale"):
            assert np.max(np.abs(got[name] - expected[name])) <= tolerance, name


def _reconstruction_nll(encode, decode, x):
    """Mean over images of -log p(x | z = posterior mean), nats per image."""
    probabilities = decode(encode(x))
    return float(np.mean(evaluation.bernoulli_negative_log_likelihood(probabilities, x)))


def test_quantised_files_change_the_test_nll_by_little(tflite_exports, trained, images):
    x = images[1]
    keras_nll = _reconstruction_nll(lambda v: trained.encode(v).mean().numpy(),
                                    lambda z: trained.decode(z).mean().numpy(), x)
    # The same figure from the model's exact log_prob (logits), to check the helper.
    exact = -trained.decode(trained.encode(x).mean()).log_prob(x).numpy().mean()
    np.testing.assert_allclose(keras_nll, exact, rtol=1e-4)
    changes = {}
    for quantize, (folder, _) in tflite_exports.items():
        encoder = export.tflite_runner(folder / "encoder.tflite", "encode")
        decoder = export.tflite_runner(folder / "decoder.tflite", "decode")
        nll = _reconstruction_nll(lambda v: encoder(x=v)["loc"], lambda z: decoder(z=z)["mean"],
                                  x)
        changes[quantize] = abs(nll - keras_nll)
    assert changes["none"] < 1e-3 and changes["float16"] < 0.01, changes
    assert changes["dynamic-int8"] < 0.1, changes


def test_full_int8_is_really_int8_and_its_error_is_reported(tflite_exports, trained):
    ops = {q: set(metadata["files"]["decoder"]["ops"])
           for q, (_, metadata) in tflite_exports.items()}
    # Full int8 quantises activations at the input and dequantises at the output; the
    # dynamic-range file keeps float32 activations and has neither.
    assert {"QUANTIZE", "DEQUANTIZE"} <= ops["int8"]
    assert not {"QUANTIZE", "DEQUANTIZE"} & ops["dynamic-int8"]
    # The error recorded in metadata.json is the one the file really has.
    folder, metadata = tflite_exports["int8"]
    z = export.check_inputs(trained)["z"]
    runner = export.tflite_runner(folder / "decoder.tflite", "decode")
    measured = np.max(np.abs(runner(z=z)["mean"] - _keras_decoder(trained, z)["mean"]))
    recorded = metadata["files"]["decoder"]["max_abs_difference"]["batch_64"]
    assert 1e-4 < recorded and abs(recorded - measured) < 1e-6, (recorded, measured)


def test_file_sizes_follow_the_parameter_count(tflite_exports, trained):
    sizes = {q: (folder / "decoder.tflite").stat().st_size
             for q, (folder, _) in tflite_exports.items()}
    weights = trained.decoder.count_params()
    assert 4 * weights <= sizes["none"] < 4 * weights * 1.1
    assert 0.45 < sizes["float16"] / sizes["none"] < 0.55
    # int8 weights plus, per output channel, a float32 scale and an int64 zero point (784
    # channels of 64 weights here): a third of float32 rather than a quarter.
    assert 0.2 < sizes["dynamic-int8"] / sizes["none"] < 0.35
    assert 0.2 < sizes["int8"] / sizes["none"] < 0.4


def test_weightless_conversion_is_refused(trained):
    """DESIGN.md trap 7: converting a tf.Module around the Keras layers gives a tiny file that
    outputs NaN. The export's check must refuse it, whatever it was produced by."""
    class Wrapped(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, LATENT_DIM], tf.float32)],
                     autograph=False)
        def decode(self, z):
            return self.model.decode(z).mean()

    wrapped = Wrapped(trained)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [wrapped.decode.get_concrete_function()], wrapped)
    content = converter.convert()
    assert len(content) < trained.decoder.count_params()  # the trap is real
    with pytest.raises(export.ExportError, match="too small for its .* parameters.*trap 7"):
        export.check_tflite(content, trained, "decoder", "none", export.check_inputs(trained))


def test_no_random_or_flex_ops_and_no_softplus_overflow(tmp_path):
    model = kv.VAE((6, 6, 1), latent_dim=4, hidden_units=(8,))
    head = model.encoder.head
    # raw scales 200 and -200: log(exp(200) + 1) would be inf in float32 (trap 8).
    head.kernel.assign(np.zeros(head.kernel.shape, "float32"))
    head.bias.assign(np.array([0, 0, 0, 0, 200, 200, -200, -200], "float32"))
    metadata = export.export_tflite(model, tmp_path / "tflite")
    for part in ("decoder", "encoder", "sampler"):
        content = (tmp_path / "tflite" / f"{part}.tflite").read_bytes()
        ops = {op["op_name"] for op in export.runner_ops(content)}
        assert ops == set(metadata["files"][part]["ops"])
        assert not any(op.startswith("Flex") or "RANDOM" in op or op == "MULTINOMIAL"
                       for op in ops), ops
    encoder = export.tflite_runner(tmp_path / "tflite" / "encoder.tflite", "encode")
    scale = encoder(x=np.zeros((2, 6, 6, 1), "float32"))["scale"]
    np.testing.assert_allclose(scale, [[200, 200, 1e-5, 1e-5]] * 2, rtol=1e-6)
    np.testing.assert_allclose(scale, model.encode(np.zeros((2, 6, 6, 1))).stddev(), rtol=1e-6)


def test_metadata_alone_lets_an_app_draw_samples(tflite_exports, trained):
    folder, _ = tflite_exports["float16"]
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["quantization"] == "float16"
    assert metadata["prior"] == {"distribution": "Normal", "loc": 0.0, "scale": 1.0,
                                 "event_shape": [LATENT_DIM],
                                 "how_to_sample": metadata["prior"]["how_to_sample"]}
    assert {"keras_vae", "tensorflow"} <= set(metadata["versions"])
    decoder = metadata["files"]["decoder"]
    assert decoder["sha256"] and decoder["bytes"] == (folder / decoder["file"]).stat().st_size
    assert "[0, 1]" in metadata["preprocessing"]["encoder_input"]

    # What an app does with the JSON and the file alone.
    (z_spec,), (mean_spec,) = decoder["inputs"], decoder["outputs"]
    z = np.random.default_rng(5).normal(metadata["prior"]["loc"], metadata["prior"]["scale"],
                                        (3, metadata["latent_dim"])).astype(z_spec["dtype"])
    runner = export.tflite_runner(folder / decoder["file"], decoder["signature"])
    image = runner(**{z_spec["name"]: z})[mean_spec["name"]]
    assert image.shape == (3, *metadata["image_shape"])
    low, high = mean_spec["range"]
    assert low <= image.min() and image.max() <= high
    np.testing.assert_allclose(image, _keras_decoder(trained, z)["mean"], atol=1e-3)
    assert z_spec["tensor"] in {d["name"] for d in runner.get_input_details().values()}


# ---------------------------------------------------------------- atomic writes and the CLI


def test_kvae_export_is_atomic_and_never_overwrites_silently(trained, tmp_path, monkeypatch,
                                                             capsys):
    run = tmp_path / "run"
    run.mkdir()
    trained.save(run / "model.keras")
    status, out, err = run_kvae(monkeypatch, capsys, "export", run, "--format", "tflite")
    assert status == 0, err
    target = run / "export" / "tflite"
    assert sorted(p.name for p in target.iterdir()) == ["decoder.tflite", "encoder.tflite",
                                                        "metadata.json", "sampler.tflite"]
    assert "decoder.tflite" in out and "bytes" in out
    before = (target / "decoder.tflite").read_bytes()

    status, _, err = run_kvae(monkeypatch, capsys, "export", run, "--format", "tflite")
    assert_one_line_error(status, err, "already exists; pass --overwrite")

    def broken(*args, **kwargs):
        raise export.ExportError("conversion failed on purpose")

    monkeypatch.setattr(export.tflite, "convert", broken)
    status, _, err = run_kvae(monkeypatch, capsys, "export", run, "--format", "tflite",
                              "--overwrite")
    assert_one_line_error(status, err, "conversion failed on purpose")
    assert (target / "decoder.tflite").read_bytes() == before  # the old export survives
    assert sorted(p.name for p in (run / "export").iterdir()) == ["tflite"]  # no leftovers

    # --overwrite replaces an export, never anything else (here: the run itself).
    status, _, err = run_kvae(monkeypatch, capsys, "export", run, "--format", "tflite",
                              "--output", run, "--overwrite")
    assert_one_line_error(status, err, "exists and is not an export .* choose another")
    assert (run / "model.keras").exists()
    monkeypatch.undo()
    (target / "stale").write_text("from the old export")
    status, _, err = run_kvae(monkeypatch, capsys, "export", run, "--format", "tflite",
                              "--overwrite")
    assert status == 0, err
    assert sorted(p.name for p in target.iterdir()) == ["decoder.tflite", "encoder.tflite",
                                                        "metadata.json", "sampler.tflite"]
    assert sorted(p.name for p in (run / "export").iterdir()) == ["tflite"]


def test_kvae_export_bad_input_gives_one_line(tmp_path, monkeypatch, capsys):
    status, _, err = run_kvae(monkeypatch, capsys, "export", tmp_path / "missing")
    assert_one_line_error(status, err, "does not exist: give a run directory or a .keras file")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    status, _, err = run_kvae(monkeypatch, capsys, "export", corrupt)
    assert_one_line_error(status, err, r"model.keras is not a .keras file \(not a zip archive")
    status, _, err = run_kvae(monkeypatch, capsys, "export", corrupt, "--quantize", "int4")
    assert_one_line_error(status, err, "Invalid value for '--quantize'")
    assert not (corrupt / "export").exists()


def test_saved_model_refuses_quantisation(trained, tmp_path):
    trained.save(tmp_path / "m.keras")
    with pytest.raises(export.ExportError, match="--quantize applies to --format tflite"):
        export.export_run(tmp_path / "m.keras", "saved_model", quantize="float16")


def test_bernoulli_nll_helper_matches_the_closed_form():
    p = np.array([[0.2, 0.9], [0.5, 1.0]])
    x = np.array([[0.0, 1.0], [1.0, 1.0]])
    expected = [-(np.log(0.8) + np.log(0.9)), -(np.log(0.5) + np.log(1 - 1e-7))]
    np.testing.assert_allclose(evaluation.bernoulli_negative_log_likelihood(p, x), expected)

