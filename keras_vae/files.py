"""Atomic writes of files and folders: a reader (or a crash) sees the old content or the new,
never half."""

import contextlib
import json
import os
import pathlib
import shutil
import tempfile


def replace_atomically(path, write, mode="w"):
    """Calls ``write(file)`` on a temporary file beside ``path``, then renames it into place:
    readers see the old content or the new, never a half-written file."""
    path = pathlib.Path(path)
    with tempfile.NamedTemporaryFile(mode, dir=path.parent, suffix=".tmp", delete=False,
                                     **({"newline": ""} if "b" not in mode else {})) as f:
        write(f)
    os.chmod(f.name, 0o644)  # NamedTemporaryFile creates 0600 files
    os.replace(f.name, path)


def write_json_atomically(path, values):
    """Writes ``values`` as indented JSON to ``path`` atomically."""
    replace_atomically(path, lambda f: f.write(json.dumps(values, indent=2, sort_keys=True)
                                               + "\n"))


def replace_directory(new, target):
    """Moves the complete folder ``new`` to ``target``, replacing (and only then deleting) an
    older ``target``: at every moment ``target`` is the old folder, the new one, or absent
    for the instant between two renames (the old one then waits as ``<target>.old``)."""
    new, target = pathlib.Path(new), pathlib.Path(target)
    old = target.with_name(target.name + ".old")
    if target.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
    os.replace(new, target)
    if old.exists():
        shutil.rmtree(old)


@contextlib.contextmanager
def staged_directory(target, overwrite=False):
    """Yields an empty temporary folder beside ``target``; moves it to ``target`` when the
    block completes, deletes it when the block fails. An existing ``target`` is kept unless
    ``overwrite`` (FileExistsError), and replaced only once its successor is complete."""
    target = pathlib.Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass --overwrite to replace it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp",
                                            dir=target.parent))
    try:
        yield staging
        os.chmod(staging, 0o755)  # mkdtemp creates 0700 folders
        replace_directory(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when it was moved
