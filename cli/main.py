"""Entry point of the ``kvae`` command."""

import os

import click

# Quieten TensorFlow's C++ start-up chatter before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="keras-vae", prog_name="kvae")
def main():
    """keras-vae: variational autoencoders for TensorFlow. Figures are in nats per example."""
