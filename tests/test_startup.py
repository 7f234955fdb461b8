"""First contact: the kvae command answers help, version and argument errors without
importing TensorFlow; ``import keras_vae`` still gives the whole API and saved models still
load; TensorFlow's start-up chatter is held back while real errors stay visible.

Each check runs in a fresh Python process: this one imported TensorFlow in conftest.py.
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from keras_vae import quiet

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
SHIPPED = REPOSITORY / "saved_models" / "mnist-bernoulli-mlp"

# What TF 2.21 printed on every command before (copied from a run on this machine).
CHATTER_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796304341.956738   17354 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors from "
    "different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796304341.957066   17354 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "I0000 00:00:1796304397.875358   17865 cpu_feature_guard.cc:227] This TensorFlow binary "
    "is optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other "
    "operations, rebuild TensorFlow with the appropriate compiler flags.",
    "E0000 00:00:1796304356.145195   17431 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
]
# Markers of those lines in any output.
CHATTER_MARKERS = ("absl::InitializeLog", "port.cc", "cudart_stub", "cuInit",
                   "cpu_feature_guard", "To enable the following instructions")


def _python(code, *, env=None, cwd=None, timeout=300):
    environment = {name: value for name, value in os.environ.items() if name != "KVAE_DEBUG"}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=environment, cwd=cwd or REPOSITORY, timeout=timeout)


# ------------------------------------------------------------------ no TensorFlow


def test_help_version_and_argument_errors_do_not_import_tensorflow():
    from keras_vae.cli.main import cli

    arguments = [["--help"], ["--version"], ["fit", "--epochs", "-1"],
                 ["fit", "--likelihood", "poisson"], ["fit", "--preset", "nope"],
                 ["fit", "--objective", "iwae", "--iw-samples", "5", "--free-bits", "1"],
                 ["fit", "--resume", "--overwrite"], ["frobnicate"],
                 ["evaluate"], ["sample", "--num", "0", "run"],
                 *([command, "--help"] for command in cli.commands)]
    result = _python(f"""
        import io, json, sys
        from contextlib import redirect_stderr, redirect_stdout
        from keras_vae.cli.main import main

        report = []
        for arguments in {arguments!r}:
            sys.argv = ["kvae", *arguments]
            with redirect_stdout(io.StringIO()) as out, redirect_stderr(io.StringIO()) as err:
                try:
                    main()
                except SystemExit as exit:
                    status = exit.code
            report.append([arguments, status, out.getvalue(), err.getvalue(),
                           "tensorflow" in sys.modules])
        print(json.dumps(report))
    """)
    assert result.returncode == 0, result.stderr
    for arguments, status, out, err, tensorflow_imported in json.loads(result.stdout):
        assert not tensorflow_imported, arguments
        if "--help" in arguments or "--version" in arguments:
            assert status == 0 and out, arguments
        else:  # one line, "Error: ...", no traceback
            assert status != 0 and err.count("\n") == 1 and err.startswith("Error: "), (
                arguments, err)


@pytest.fixture(scope="module")
def saved_vae(tmp_path_factory):
    """(path, weights) of a small saved VAE."""
    import keras_vae as kv

    model = kv.VAE(input_shape=(6,), latent_dim=2, hidden_units=(3,))
    path = tmp_path_factory.mktemp("saved") / "vae.keras"
    model.save(path)
    return path, model.get_weights()


def _assert_loaded(result, weights):
    assert result.returncode == 0, result.stderr
    kind, loaded = result.stdout.strip().splitlines()[-2:]
    assert kind == "keras_vae.model VAE"
    for mine, theirs in zip(weights, json.loads(loaded), strict=True):
        np.testing.assert_array_equal(mine, np.asarray(theirs, mine.dtype))


_LOAD = """
    model = keras.models.load_model({path!r})
    print(type(model).__module__, type(model).__name__)
    print(json.dumps([w.tolist() for w in model.get_weights()]))
"""


def test_import_keras_vae_gives_the_api_and_loads_saved_models(saved_vae):
    """Without TensorFlow until a name is used; Keras imported afterwards (by anyone) finds
    the VAE class of a .keras file."""
    path, weights = saved_vae
    result = _python(textwrap.dedent("""
        import json, sys
        import keras_vae as kv

        assert "tensorflow" not in sys.modules
        assert set(kv.__all__) <= set(dir(kv))
        print(kv.__version__)
        import keras
    """) + textwrap.dedent(_LOAD.format(path=str(path))) + textwrap.dedent("""
        import keras_vae.evaluation, keras_vae.layers, keras_vae.model, keras_vae.priors
        assert kv.VAE is keras_vae.model.VAE and kv.evaluation is keras_vae.evaluation
        assert kv.GaussianEncoder is keras_vae.layers.GaussianEncoder
        assert kv.BernoulliDecoder is keras_vae.layers.BernoulliDecoder
        assert kv.NormalDecoder is keras_vae.layers.NormalDecoder
        assert kv.StandardNormalPrior is keras_vae.priors.StandardNormalPrior
        for module in ("networks", "objectives", "priors", "schedules", "warmup"):
            assert getattr(kv, module) is sys.modules["keras_vae." + module]
        try:
            kv.no_such_name
        except AttributeError as error:
            assert "no_such_name" in str(error)
        else:
            raise AssertionError("kv.no_such_name did not raise")
    """))
    _assert_loaded(result, weights)
    assert result.stdout.splitlines()[0] == "0.1.0"


@pytest.mark.integration
@pytest.mark.parametrize("imports", [
    "import keras; import keras_vae",  # Keras first: the classes register at once
    "from keras_vae import objectives; import keras",  # Keras first imported by keras_vae,
    # in the middle of keras_vae.objectives: the classes register once that import is done
])
def test_a_saved_vae_loads_whatever_the_order_of_imports(saved_vae, imports):
    path, weights = saved_vae
    _assert_loaded(_python("import json; " + imports + textwrap.dedent(
        _LOAD.format(path=str(path)))), weights)


@pytest.mark.integration
def test_without_import_keras_vae_keras_cannot_find_the_class(saved_vae):
    """Keras 3.15 imports the module a .keras file names only for its own packages (keras,
    keras_hub, ...): ``import keras_vae`` is needed, and enough."""
    result = _python(f"""
        import keras
        keras.models.load_model({str(saved_vae[0])!r})
    """)
    assert result.returncode != 0 and "Could not locate class 'VAE'" in result.stderr


# ------------------------------------------------------------------ quiet start-up


def test_chatter_lines_are_recognised_and_others_are_not():
    for line in CHATTER_LINES:
        assert quiet.is_chatter(line), line
    for line in ["E0000 00:00:1796304356.145195   17431 cuda_executor.cc:1] out of memory",
                 "W0000 00:00:1796304356.145195   17431 op_kernel.cc:1] OP_REQUIRES failed",
                 "Traceback (most recent call last):", "Error: the data are not images.",
                 "UserWarning: something real", ""]:
        assert not quiet.is_chatter(line), line


_CHATTY_PACKAGE = '''
import os, sys, types
CHATTER = {chatter!r}
for line in CHATTER[:-1]:
    os.write(2, (line + "\\n").encode())
os.write(2, b"genuine C++ error line\\n")
sys.stderr.write("genuine Python warning\\n")
# the device probe prints the last chatter line, as CUDA's cuInit does
config = types.SimpleNamespace(list_physical_devices=lambda: os.write(
    2, (CHATTER[-1] + "\\n").encode()))
'''


@pytest.mark.parametrize("debug", [False, True])
def test_start_up_chatter_is_held_back_and_real_lines_stay(tmp_path, debug):
    (tmp_path / "chatty").mkdir()
    (tmp_path / "chatty" / "__init__.py").write_text(
        _CHATTY_PACKAGE.format(chatter=CHATTER_LINES))
    result = _python("""
        from keras_vae import quiet
        quiet.silence_tensorflow_start_up(module_name="chatty")
        import chatty
        print("imported")
    """, env={"PYTHONPATH": str(tmp_path), **({"KVAE_DEBUG": "1"} if debug else {})})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "imported\n"
    lines = result.stderr.splitlines()
    if debug:  # KVAE_DEBUG=1: every line as it was written (and no early device probe)
        assert lines == [*CHATTER_LINES[:-1], "genuine C++ error line",
                         "genuine Python warning"]
    else:
        assert lines == ["genuine C++ error line", "genuine Python warning"]


@pytest.mark.integration
def test_quick_start_commands_print_no_tensorflow_chatter(tmp_path):
    out = tmp_path / "not" / "yet" / "there" / "s.png"  # --out in folders to be created
    commands = [["sample", SHIPPED, "--num", "4", "--out", out], ["info", SHIPPED]]
    for arguments in commands:
        result = subprocess.run([sys.executable, "-m", "keras_vae.cli", *map(str, arguments)],
                                capture_output=True, text=True, timeout=300, cwd=tmp_path,
                                env={k: v for k, v in os.environ.items() if k != "KVAE_DEBUG"})
        assert result.returncode == 0, result.stderr
        for marker in CHATTER_MARKERS:
            assert marker not in result.stdout + result.stderr, (arguments, result.stderr)
        assert result.stderr == "", arguments
    assert out.stat().st_size > 0 and sorted(p.name for p in out.parent.iterdir()) == ["s.png"]
    # The same command with KVAE_DEBUG=1 shows the chatter: the filter, not luck, hid it.
    result = subprocess.run([sys.executable, "-m", "keras_vae.cli", "info", str(SHIPPED)],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, "KVAE_DEBUG": "1"})
    assert result.returncode == 0 and "absl::InitializeLog" in result.stderr
