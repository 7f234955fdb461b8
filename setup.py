"""Distribution ``keras-vae``: import ``keras_vae``, command ``kvae``."""

import re
from pathlib import Path

from setuptools import setup

version = re.search(
    r'__version__ = "([^"]+)"', Path("keras_vae/__init__.py").read_text()).group(1)

setup(
    name="keras-vae",
    version=version,
    description="Variational autoencoders for TensorFlow: Keras 3 layers with "
                "TensorFlow Probability outputs, honest evaluation, export to TFLite.",
    long_description=Path("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # cli/ is a top-level folder of the repository but installs as keras_vae.cli, so no bare
    # module named `cli` lands in site-packages.
    packages=["keras_vae", "keras_vae.callbacks", "keras_vae.cli", "keras_vae.export",
              "keras_vae.hierarchy", "keras_vae.layers", "keras_vae.priors"],
    package_dir={"keras_vae": "keras_vae", "keras_vae.cli": "cli"},
    install_requires=[
        "tensorflow>=2.16",
        "tensorflow-probability[tf]>=0.24",
        "tensorflow-datasets>=4.9",
        "importlib_resources",  # TFDS 4.9 imports it to prepare datasets, without declaring it
        "keras>=3.0",
        "click>=8.0",
        "tensorboard",
        "numpy",
        "pillow",  # pixel grids (plots.image_grid)
        "matplotlib>=3.5",  # the latent, traversal, training and rate-distortion pictures
        "ai-edge-litert",  # the LiteRT interpreter that checks every TFLite export
    ],
    extras_require={
        "test": ["pytest>=7", "pytest-xdist>=3"],
        # kvae latent-plot --projection tsne (scikit-learn) and --projection umap (umap-learn)
        "projections": ["scikit-learn>=1.2", "umap-learn>=0.5"],
    },
    entry_points={"console_scripts": ["kvae=keras_vae.cli.main:main"]},
)
