"""Pieces that several ``kvae`` commands share: the examples epilog, the RUN argument, the data
options, the --out option of the pictures. Pure Python and click only: no TensorFlow."""

import pathlib

import click


def examples(*lines):
    """A help epilog listing example command lines."""
    return "\n\n\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


run_argument = click.argument("run", type=click.Path())
data_options = [
    click.option("--dataset", default=None,
                 help="Data to use [default: the run's own]; needed for a bare .keras file."),
    click.option("--data-dir", type=click.Path(), default=None,
                 help="Local data folder or .npz [default: the run's own]."),
]


def with_data_options(function):
    for option in reversed(data_options):
        function = option(function)
    return function


def out_option(default):
    """--out FILE.png, ``default`` when not given; an existing file is replaced only when the
    user named it, so the default never takes the place of a picture made earlier (or of
    any file of that name)."""

    def resolve(context, parameter, value):
        if value is not None:
            return value
        if pathlib.Path(default).exists():
            raise click.BadParameter(f"{default} exists and --out was not given: kvae "
                                     f"replaces only a file you name; pass --out {default} "
                                     f"to replace it, or another path.", context, parameter)
        return default

    # default None: the callback then knows the option was not given (click 8.4 records the
    # parameter's source only after the callback)
    return click.option("--out", type=click.Path(dir_okay=False), default=None,
                        callback=resolve,
                        help=f"PNG file to write; missing folders are created. An existing "
                             f"file is replaced only when named here.  [default: {default}]")


def say_which_test_images(written):
    """Tells (on stderr) when the pictures used the test images a run ships."""
    if written.shipped_test_images is not None:
        click.echo(f"Using the {written.num_test_images} test images shipped in "
                   f"{written.shipped_test_images} (--data-dir for others).", err=True)
