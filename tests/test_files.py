"""Atomic replacement never touches what it did not create: temporary and old copies take
names no user owns, and a protected folder is not replaced unless asked."""

import pytest

from keras_vae import files, runs
from keras_vae.errors import RunError


def _tree(folder):
    return {str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
            for path in sorted(folder.rglob("*"))}


def test_replacing_a_folder_keeps_a_users_folder_named_like_its_old_copy(tmp_path):
    target, new = tmp_path / "run", tmp_path / "new"
    (target).mkdir()
    (target / "model").write_text("old")
    new.mkdir()
    (new / "model").write_text("new")
    users = tmp_path / "run.old"  # the name the old copy used to take, and delete
    users.mkdir()
    (users / "keep.txt").write_text("a user's own folder")
    files.replace_directory(new, target)
    assert _tree(tmp_path) == {"run": None, "run/model": b"new", "run.old": None,
                               "run.old/keep.txt": b"a user's own folder"}


def test_an_export_replaced_in_place_keeps_a_users_old_copy(tmp_path):
    export = tmp_path / "export" / "saved_model"
    export.mkdir(parents=True)
    (export / "saved_model.pb").write_text("first")
    users = tmp_path / "export" / "saved_model.old"
    users.mkdir()
    (users / "saved_model.pb").write_text("the user's backup")
    with files.staged_directory(export, overwrite=True) as staging:
        (staging / "saved_model.pb").write_text("second")
        assert staging.name.startswith(".saved_model.kvae-tmp-")
    assert _tree(tmp_path / "export") == {
        "saved_model": None, "saved_model/saved_model.pb": b"second",
        "saved_model.old": None, "saved_model.old/saved_model.pb": b"the user's backup"}


def test_a_failed_write_leaves_the_target_and_no_temporary_copy(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "a").write_text("kept")
    with pytest.raises(RuntimeError), files.staged_directory(target, overwrite=True) as staging:
        (staging / "a").write_text("half")
        raise RuntimeError("killed")
    path = tmp_path / "metrics.json"
    path.write_text("kept")

    def write_half(file):
        file.write("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        files.replace_atomically(path, write_half)
    assert _tree(tmp_path) == {"metrics.json": b"kept", "out": None, "out/a": b"kept"}


def test_nothing_inside_a_protected_folder_is_replaced_unless_asked(tmp_path):
    shipped = tmp_path / "shipped"
    export = shipped / "export" / "tflite"
    export.mkdir(parents=True)
    (export / "decoder.tflite").write_text("shipped")
    (shipped / runs.PROTECTED).write_text(runs.PROTECTED_TEXT)
    with pytest.raises(RunError, match="tflite is inside .*shipped, a protected model "
                                       "folder \\(it holds PROTECTED\\)"):
        with files.staged_directory(export, overwrite=True) as staging:
            (staging / "decoder.tflite").write_text("replaced")
    assert (export / "decoder.tflite").read_text() == "shipped"
    # Adding what is not there yet is allowed; replacing, only when asked.
    with files.staged_directory(shipped / "export" / "tflite-int8") as staging:
        (staging / "decoder.tflite").write_text("new")
    with files.staged_directory(export, overwrite=True, replace_protected=True) as staging:
        (staging / "decoder.tflite").write_text("replaced")
    assert (export / "decoder.tflite").read_text() == "replaced"
