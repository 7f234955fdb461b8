"""Atomic writes of files and folders: a reader (or a crash) sees the old content or the new,
never half.

Temporary and old copies take names no user owns, ``.<name>.kvae-tmp-<random>`` and
``.<name>.kvae-old-<random>`` beside their target, made with O_EXCL (``tempfile``) so that
they never take the place of an existing file: replacing ``target`` touches nothing but
``target`` and the copies it made itself.
"""

import contextlib
import json
import os
import pathlib
import shutil
import tempfile

TEMPORARY_MARK = ".kvae-tmp-"  # in the name of a file or folder being written
OLD_MARK = ".kvae-old-"  # in the name of a folder being replaced, for the instant it takes


def replace_atomically(path, write, mode="w"):
    """Calls ``write(file)`` on a temporary file beside ``path``, then renames it into place:
    readers see the old content or the new, never a half-written file."""
    path = pathlib.Path(path)
    with tempfile.NamedTemporaryFile(mode, dir=path.parent, delete=False,
                                     prefix=f".{path.name}{TEMPORARY_MARK}",
                                     **({"newline": ""} if "b" not in mode else {})) as f:
        try:
            write(f)
        except BaseException:
            f.close()
            os.unlink(f.name)
            raise
    os.chmod(f.name, 0o644)  # NamedTemporaryFile creates 0600 files
    os.replace(f.name, path)


def write_json_atomically(path, values):
    """Writes ``values`` as indented JSON to ``path`` atomically."""
    replace_atomically(path, lambda f: f.write(json.dumps(values, indent=2, sort_keys=True)
                                               + "\n"))


def replace_directory(new, target, replace_protected=False):
    """Moves the complete folder ``new`` to ``target``, replacing (and only then deleting) an
    older ``target``: at every moment ``target`` is the old folder, the new one, or absent
    for the instant between two renames (the old one then waits under a fresh
    ``.<target>.kvae-old-<random>`` name, never a name a user may own).

    A ``target`` inside a protected folder (``runs.PROTECTED``) is replaced only with
    ``replace_protected``; RunError otherwise, before anything moves.
    """
    new, target = pathlib.Path(new), pathlib.Path(target)
    if target.exists():
        from keras_vae import runs  # runs imports this module

        runs.check_not_protected(target, "replace", replace_protected)
        old = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}{OLD_MARK}",
                                            dir=target.parent))
        os.replace(target, old)  # a folder may be renamed onto an empty one
        os.replace(new, target)
        shutil.rmtree(old)
    else:
        os.replace(new, target)


@contextlib.contextmanager
def staged_directory(target, overwrite=False, replace_protected=False):
    """Yields an empty temporary folder beside ``target``; moves it to ``target`` when the
    block completes, deletes it when the block fails. An existing ``target`` is kept unless
    ``overwrite`` (FileExistsError), and replaced only once its successor is complete; one
    inside a protected folder only with ``replace_protected`` too (RunError, checked before
    the block runs)."""
    target = pathlib.Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass --overwrite to replace it.")
    if target.exists():
        from keras_vae import runs

        runs.check_not_protected(target, "replace", replace_protected)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}{TEMPORARY_MARK}",
                                            dir=target.parent))
    try:
        yield staging
        os.chmod(staging, 0o755)  # mkdtemp creates 0700 folders
        replace_directory(staging, target, replace_protected)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when it was moved
