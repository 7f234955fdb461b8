"""TFDS by name: unknown names, a builder prepared locally, and the offline path: it fails at
once (no download attempted) naming --data-dir, and removes only the folders it created.
No test here touches the network: the connectivity probe is replaced or aimed at loopback."""

import socket

import numpy as np
import pytest

from keras_vae import data, data_tfds


@pytest.fixture()
def offline(monkeypatch):
    """The probe reports no network, and any download attempt fails the test."""
    import tensorflow_datasets as tfds

    monkeypatch.setattr(data_tfds, "network_problem",
                        lambda *args, **kwargs: "cannot reach storage.googleapis.com:443 "
                                                "(Name or service not known)")

    def download(*args, **kwargs):
        raise AssertionError("TFDS tried to download although the probe failed")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", download)


def test_unknown_tfds_name_fails_clearly():
    with pytest.raises(data.DataError, match="Unknown dataset 'no_such_dataset_xyz'"):
        data.load_arrays("no_such_dataset_xyz")


def test_tfds_download_failure_says_to_pass_data_dir(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    monkeypatch.setattr(data_tfds, "network_problem", lambda *args, **kwargs: None)  # online
    with pytest.raises(data.DataError, match="Cannot download or prepare 'mnist' with TFDS "
                                             r"\(ConnectionError: no network\); .* pass "
                                             "--data-dir"):
        data_tfds.load_tfds("mnist", data_dir=str(tmp_path))


def test_tfds_image_dataset_prepared_locally_loads_by_name(tmp_path):
    # A TFDS builder defined here and prepared offline: the same code path as mnist or
    # cifar10 once TFDS has their files, with no network.
    import tensorflow_datasets as tfds

    class KvaeTinyImages(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(4, 4, 1)),
                "label": tfds.features.ClassLabel(num_classes=3)}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(10), "test": self._generate_examples(4)}

        def _generate_examples(self, count):
            for i in range(count):
                yield i, {"image": np.full((4, 4, 1), 20 * i, np.uint8), "label": i % 3}

    splits = data_tfds.load_tfds("kvae_tiny_images", data_dir=str(tmp_path))
    assert splits["train"][0].shape == (10, 4, 4, 1) and splits["test"][0].shape == (4, 4, 4, 1)
    assert sorted(splits["test"][0][:, 0, 0, 0].tolist()) == [0, 20, 40, 60]
    assert sorted(splits["test"][1].tolist()) == [0, 0, 1, 2]
    # A prepared TFDS folder is also recognised as a --data-dir.
    again = data.load_arrays("kvae_tiny_images", tmp_path)
    np.testing.assert_array_equal(np.sort(again["train"][1]), np.sort(splits["train"][1]))


def test_offline_catalogue_dataset_fails_at_once_and_leaves_no_folder(tmp_path, offline):
    root = tmp_path / "home" / "tensorflow_datasets"
    with pytest.raises(data.DataError, match="Cannot download 'mnist' with TFDS: cannot reach "
                                             "storage.googleapis.com:443 .*; on an offline "
                                             "machine pass --data-dir"):
        data_tfds.load_tfds("mnist", data_dir=str(root))
    assert not (tmp_path / "home").exists()  # it made "home" and everything below: all gone


def test_offline_default_tfds_folder_is_left_as_it_was(tmp_path, offline, monkeypatch):
    # The default folder (~/tensorflow_datasets) already holds a user's dataset: kept whole.
    import tensorflow_datasets as tfds

    root = tmp_path / "tensorflow_datasets"
    (root / "theirs" / "1.0.0").mkdir(parents=True)
    (root / "theirs" / "1.0.0" / "file").write_text("mine")
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(root))
    with pytest.raises(data.DataError, match="pass --data-dir"):
        data_tfds.load_tfds("mnist")
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "theirs", "theirs/1.0.0", "theirs/1.0.0/file"]


def test_cleanup_removes_only_what_the_failed_block_created(tmp_path):
    (tmp_path / "old" / "inner").mkdir(parents=True)
    (tmp_path / "old" / "keep.txt").write_text("x")
    with pytest.raises(OSError):
        with data_tfds.removing_created_folders_on_failure(tmp_path):
            (tmp_path / "old" / "inner" / "new" / "deep").mkdir(parents=True)
            (tmp_path / "fresh").mkdir()
            raise OSError("download failed")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "old", "old/inner", "old/keep.txt"]
    with data_tfds.removing_created_folders_on_failure(tmp_path):  # success: all kept
        (tmp_path / "made").mkdir()
    assert (tmp_path / "made").is_dir()


def test_probe_reports_a_closed_port_and_accepts_an_open_one():
    with socket.create_server(("127.0.0.1", 0)) as server:
        assert data_tfds.network_problem(server.getsockname()[:2], timeout=2) is None
        port = server.getsockname()[1]
    problem = data_tfds.network_problem(("127.0.0.1", port), timeout=2)
    assert problem.startswith(f"cannot reach 127.0.0.1:{port} (")


def test_probe_goes_through_the_https_proxy_when_one_is_set(monkeypatch):
    for key in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(key, raising=False)
    assert data_tfds.probe_address() == data_tfds.PROBE_ADDRESS
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert data_tfds.probe_address() == ("proxy.example", 3128)
