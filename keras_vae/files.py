"""Atomic file writes: a reader (or a crash) sees the old content or the new, never half."""

import json
import os
import pathlib
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
