"""TFDS image datasets by name (``mnist``, ``fashion_mnist``, ``cifar10`` ...) -> NumPy arrays,
failing at once, and leaving nothing behind, on a machine without the network.

TFDS downloads a dataset the first time it is asked for it. Offline, its downloader retries
every file ten times with back-off (``tensorflow_datasets/core/download/downloader.py``,
``MAX_RETRIES``): 3.5 minutes and about 40 ``urllib3 ... Retrying`` lines for MNIST before it
gives up, leaving empty folders in ``~/tensorflow_datasets``. So, before TFDS downloads
anything:

1. a dataset already prepared locally is read without touching the network;
2. otherwise a catalogue dataset needs the network: one TCP connection to
   ``PROBE_ADDRESS`` (the Google Cloud Storage host that serves TFDS's prepared datasets and
   MNIST; the ``https_proxy`` when one is set) must open within ``PROBE_TIMEOUT_SECONDS``,
   or the load fails with a ``DataError`` that names ``--data-dir``;
3. whatever the attempt fails on, the folders it created are removed (only those: a folder
   that existed before is never touched).
"""

import contextlib
import os
import pathlib
import shutil
import socket
import threading
import urllib.parse

from keras_vae.data_files import as_image_array, as_labels
from keras_vae.errors import DataError

PROBE_ADDRESS = ("storage.googleapis.com", 443)
PROBE_TIMEOUT_SECONDS = 5.0

_OFFLINE_HINT = ("on an offline machine pass --data-dir with a local copy (for example the "
                 "MNIST IDX files)")


def probe_address():
    """(host, port) the connectivity probe opens: the HTTPS proxy when one is set (downloads
    go through it), else ``PROBE_ADDRESS``."""
    proxy = next((os.environ[key] for key in ("https_proxy", "HTTPS_PROXY", "all_proxy",
                                              "ALL_PROXY") if os.environ.get(key)), None)
    if proxy:
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
        if parts.hostname:
            return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    return PROBE_ADDRESS


def network_problem(address=None, timeout=PROBE_TIMEOUT_SECONDS):
    """None when a TCP connection to ``address`` (default ``probe_address()``) opens within
    ``timeout`` seconds, else why not, in a few words.

    The connection runs in a daemon thread: a name lookup does not honour socket timeouts,
    and a slow resolver must not hold the command for longer than ``timeout``.
    """
    address = address or probe_address()
    outcome = []

    def connect():
        try:
            socket.create_connection(address, timeout=timeout).close()
            outcome.append(None)
        except OSError as error:
            outcome.append(error.strerror or type(error).__name__)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    if outcome and outcome[0] is None:
        return None
    reason = outcome[0] if outcome else f"no answer within {timeout:g} s"
    return f"cannot reach {address[0]}:{address[1]} ({reason})"


@contextlib.contextmanager
def removing_created_folders_on_failure(root):
    """On an exception inside the block, deletes every folder under (and including) ``root``
    that did not exist when the block began, then re-raises; folders that existed are kept,
    with everything in them that existed."""
    root = pathlib.Path(root).expanduser().absolute()
    topmost_new = None
    for folder in (root, *root.parents):
        if folder.exists():
            break
        topmost_new = folder
    existing = set()
    if topmost_new is None:
        existing = {pathlib.Path(parent) for parent, _, _ in os.walk(root)}
    try:
        yield
    except BaseException:
        if topmost_new is not None:
            shutil.rmtree(topmost_new, ignore_errors=True)
        elif root.is_dir():
            for parent, folders, files in os.walk(root):
                new = [name for name in folders if pathlib.Path(parent, name) not in existing]
                for name in new:
                    shutil.rmtree(pathlib.Path(parent, name), ignore_errors=True)
                folders[:] = [name for name in folders if name not in new]
        raise


def _in_catalogue(builder):
    """True for TFDS's own datasets, which all download their files; a builder defined
    elsewhere may generate its examples locally."""
    return type(builder).__module__.startswith("tensorflow_datasets.")


def load_tfds(name, data_dir=None):
    """{split: (images, labels or None)} from a TFDS image dataset, read into memory."""
    import tensorflow_datasets as tfds

    root = data_dir or tfds.core.constants.DATA_DIR
    with removing_created_folders_on_failure(root):
        try:
            builder = tfds.builder(name, data_dir=data_dir)
        except tfds.core.registered.DatasetNotFoundError:
            raise DataError(f"Unknown dataset {name!r}: give a TFDS image dataset name such "
                            f"as mnist, fashion_mnist, kmnist or cifar10, or a local "
                            f"--data-dir.") from None
        if "image" not in builder.info.features:
            raise DataError(f"TFDS dataset {name!r} has no 'image' feature; it is not an "
                            f"image dataset.")
        # dataset_info.json first: is_prepared() logs a warning for a folder without it.
        prepared = (pathlib.Path(builder.data_path) / "dataset_info.json").exists() \
            and builder.is_prepared()
        if not prepared:
            problem = network_problem() if _in_catalogue(builder) else None
            if problem:
                raise DataError(f"Cannot download {name!r} with TFDS: {problem}; "
                                f"{_OFFLINE_HINT}.")
            try:
                builder.download_and_prepare()
            except Exception as error:  # noqa: BLE001 - TFDS raises many types for network failures
                first_line = str(error).splitlines()[0] if str(error) else ""
                cause = f"{type(error).__name__}: {first_line}".rstrip(": ")
                raise DataError(f"Cannot download or prepare {name!r} with TFDS ({cause}); "
                                f"{_OFFLINE_HINT}.") from None
    splits = {}
    for split in ("train", "test"):
        try:
            arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
        except (KeyError, ValueError) as error:
            raise DataError(f"TFDS dataset {name!r} has no usable {split!r} split "
                            f"({str(error).splitlines()[0]}).") from None
        labels = arrays.get("label")
        splits[split] = (as_image_array(arrays["image"], f"{name} {split}"),
                         None if labels is None else as_labels(labels, f"{name} {split}"))
    return splits

