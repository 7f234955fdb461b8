"""The model protocol module: free of TensorFlow, and a runtime-checkable description of the
members (the models that implement it are tested in test_model.py and test_evaluation.py)."""

import pathlib
import subprocess
import sys

from keras_vae import protocol

PROTOCOL_FILE = pathlib.Path(protocol.__file__)


def test_the_protocol_module_imports_no_tensorflow():
    # Loaded on its own (not through keras_vae/__init__), in a fresh interpreter.
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('protocol', {str(PROTOCOL_FILE)!r})\n"
            "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_object_missing_a_member_is_not_a_model_of_the_protocol():
    class EncoderDecoderOnly:
        image_shape, latent_sizes = (2,), {"z": 1}

        def encode(self, x):
            return x

        def decode(self, z):
            return z

    assert not isinstance(EncoderDecoderOnly(), protocol.LatentVariableModel)
