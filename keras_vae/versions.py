"""The versions of the libraries a result depends on, recorded beside it (a run's config.json,
an export's metadata.json)."""

import platform


def library_versions():
    """{library: version} of keras-vae, TensorFlow, Keras, TFP and Python."""
    import keras
    import tensorflow as tf
    import tensorflow_probability as tfp

    import keras_vae

    return {"keras_vae": keras_vae.__version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "tensorflow_probability": tfp.__version__,
            "python": platform.python_version()}
