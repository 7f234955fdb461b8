"""``python -m keras_vae.cli`` runs the ``kvae`` command."""

from keras_vae.cli.main import main

main()
