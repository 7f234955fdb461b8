"""setup.py lists every package of keras_vae/: a folder it forgets is missing from a
non-editable install (pip install . or a wheel), where the editable one still works."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_setup_py_lists_every_package_folder():
    listed = set(re.search(r"packages=\[([^\]]*)\]", (ROOT / "setup.py").read_text(),
                           re.S).group(1).replace('"', "").replace("\n", "").replace(" ", "")
                 .split(","))
    on_disk = {".".join(init.parent.relative_to(ROOT).parts)
               for init in (ROOT / "keras_vae").rglob("__init__.py")}
    on_disk.add("keras_vae.cli")  # cli/ installs as keras_vae.cli (package_dir)
    assert on_disk == listed - {""}
