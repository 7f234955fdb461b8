"""The ``kvae`` command line (installed as ``keras_vae.cli``): it parses, validates and calls
one library function per command; all printing happens here, none in the library."""
