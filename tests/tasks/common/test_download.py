"""Downloads against a bounded HTTP server on 127.0.0.1: good, wrong hash, cut, offline."""

import hashlib
import http.server
import os
import stat
import threading
from pathlib import Path

import pytest

from robustrep.tasks.common import download as dl

PAYLOAD = bytes(range(256)) * 400  # 100 KiB, several chunks of the reader
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        import time
        self.server.seen.append(self.path)
        if self.path == "/stall":  # no answer at all for a while
            time.sleep(1.5)
            return
        body = self.server.files.get(self.path, PAYLOAD)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path == "/cut":  # announce the whole file, send a third, hang up
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path == "/trickle":  # a byte every 0.1 s for 4 s (each read well in time)
            for byte in body[:40]:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.1)
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    monkeypatch.delenv("ROBUSTREP_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.seen, srv.files = [], {}
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    stop = threading.Timer(60, srv.shutdown)  # bounded: stops by itself if a test hangs
    stop.start()
    try:
        yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        stop.cancel()
        srv.shutdown()
        srv.server_close()


def _left(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_file_lands_whole_and_is_reused(server, tmp_path):
    srv, base = server
    dest = tmp_path / "cache" / "w.pth"
    assert dl.download(f"{base}/good", dest, SHA, "test weights", timeout=10) == dest
    assert dest.read_bytes() == PAYLOAD and _left(dest.parent) == ["w.pth"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    dl.download(f"{base}/good", dest, SHA[:8], "test weights", timeout=10)  # prefix, cached
    assert srv.seen == ["/good"]


def test_wrong_hash_is_refused_and_leaves_nothing(server, tmp_path):
    _, base = server
    dest = tmp_path / "cache" / "w.pth"
    with pytest.raises(dl.DownloadError, match="SHA-256") as err:
        dl.download(f"{base}/good", dest, "0" * 64, "test weights", timeout=10)
    assert "\n" not in str(err.value)
    assert _left(dest.parent) == []


def test_cut_connection_is_refused_and_leaves_nothing(server, tmp_path):
    _, base = server
    dest = tmp_path / "cache" / "w.pth"
    with pytest.raises(dl.DownloadError):
        dl.download(f"{base}/cut", dest, SHA, "test weights", timeout=10)
    assert _left(dest.parent) == []


def test_a_killed_downloads_partial_file_is_removed_by_the_next(server, tmp_path):
    """SIGTERM or kill -9 skips _fetch's clean-up: its hidden .part file stayed in the cache for
    good, one more each time (the published Inception file is 95 MB)."""
    _, base = server
    dest = tmp_path / "cache" / "w.pth"
    dest.parent.mkdir()
    (dest.parent / ".w.pth.k1ll3d.part").write_bytes(PAYLOAD[:1000])
    (dest.parent / ".other.pth.abc.part").write_bytes(b"")  # another file's: not this one's
    dl.download(f"{base}/good", dest, SHA, "test weights", timeout=10)
    assert _left(dest.parent) == [".other.pth.abc.part", "w.pth"]


def test_a_second_process_waits_for_the_first_fetch_and_uses_its_file(server, tmp_path,
                                                                      capsys):
    """Two runs of a report fetching one file at once: the second fetched it again beside the
    first (twice the traffic, two partial files)."""
    import fcntl
    import time
    srv, base = server
    dest = tmp_path / "cache" / "w.pth"
    dest.parent.mkdir()
    fd = os.open(dest.parent, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the first process, fetching

    def first_finishes():
        time.sleep(0.3)
        dest.write_bytes(PAYLOAD)
        os.close(fd)

    thread = threading.Thread(target=first_finishes)
    thread.start()
    try:
        assert dl.download(f"{base}/good", dest, SHA, "test weights", timeout=10) == dest
    finally:
        thread.join()
    assert srv.seen == [] and dest.read_bytes() == PAYLOAD
    assert capsys.readouterr().err == f"note: waiting for another process fetching {dest}\n"


@pytest.mark.parametrize("var", ["ROBUSTREP_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_refuses_before_any_connection(server, tmp_path, monkeypatch, var):
    srv, base = server
    monkeypatch.setenv(var, "1")
    dest = tmp_path / "cache" / "w.pth"
    with pytest.raises(dl.DownloadError) as err:
        dl.download(f"{base}/good", dest, SHA, "test weights", timeout=10)
    msg = str(err.value)
    assert f"{var}=1" in msg and str(dest) in msg and f"{base}/good" in msg  # what, where
    # how to turn downloads on: the gan program's line offers to "let robustrep fetch it"
    assert f"downloads are off ({var}=1): unset {var} to fetch it, or place the file" in msg
    assert srv.seen == [] and not dest.parent.exists()


def test_a_download_shows_its_progress_and_says_where_it_saved(server, tmp_path, monkeypatch,
                                                               capsys):
    """The 95 MB Inception download showed nothing until it ended, and said nothing then."""
    from robustrep.tasks.common import progress as progress_module
    srv, base = server
    body = bytes(2_500_000)
    srv.files["/big"] = body
    bars = []

    class Bar:
        def __init__(self, total, desc="", unit="step", **kwargs):
            self.total, self.desc, self.unit, self.n = total, desc, unit, 0
            bars.append(self)

        def update(self, n=1):
            self.n += n

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    monkeypatch.setattr(progress_module, "progress", Bar)
    dest = tmp_path / "cache" / "w.pth"
    dl.download(f"{base}/big", dest, hashlib.sha256(body).hexdigest(), "test weights",
                timeout=10)
    [bar] = bars
    assert (bar.total, bar.n, bar.unit, bar.desc) == (3, 2, "MB", "test weights")  # MB, 10^6
    assert capsys.readouterr().err == f"saved test weights (2.5 MB) to {dest}\n"


def test_a_trickling_server_is_given_up_with_how_long_it_waited(server, tmp_path):
    """The socket's timeout is per read: a byte every 20 s never ended a download."""
    import time
    _, base = server
    dest = tmp_path / "cache" / "w.pth"
    start = time.monotonic()
    with pytest.raises(dl.DownloadError) as err:
        dl.download(f"{base}/trickle", dest, SHA, "test weights", timeout=1)
    assert time.monotonic() - start < 3  # the server trickles for 4 s
    msg = str(err.value)
    assert "stalled:" in msg and "bytes in the last 1 s" in msg and "gave up" in msg, msg
    assert _left(dest.parent) == []


def test_a_server_that_does_not_answer_says_how_long_it_waited(server, tmp_path):
    _, base = server
    with pytest.raises(dl.DownloadError, match=r"no data for 0\.5 s \(timed out\)"):
        dl.download(f"{base}/stall", tmp_path / "w.pth", SHA, "test weights", timeout=0.5)


def test_a_full_disk_says_where_the_cache_goes(server, tmp_path, monkeypatch):
    """ENOSPC while fetching had the system's line alone; a read-only cache says to move it."""
    _, base = server
    monkeypatch.setenv("ROBUSTREP_CACHE", str(tmp_path / "cache"))
    dest = tmp_path / "cache" / "w.pth"

    def full_disk(path, suffix):  # a temporary file whose writes fail as on a full disk
        tmp = path.parent / f".{path.name}.full{suffix}"
        tmp.write_bytes(b"")
        return os.open("/dev/full", os.O_WRONLY), str(tmp)

    monkeypatch.setattr(dl, "temp_beside", full_disk)
    with pytest.raises(dl.DownloadError) as err:
        dl.download(f"{base}/good", dest, SHA, "test weights", timeout=10)
    msg = str(err.value)
    assert "No space left on device; it is robustrep's cache" in msg, msg
    assert msg.endswith("set ROBUSTREP_CACHE to a folder you can write to")
    assert _left(dest.parent) == []


def test_inception_weights_fetched_on_first_use(server, tmp_path, monkeypatch):
    from robustrep.tasks.gan.feature_nets import inception_path
    srv, base = server
    monkeypatch.setenv("ROBUSTREP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ROBUSTREP_INCEPTION", raising=False)
    monkeypatch.setenv(dl.INCEPTION_URL_ENV, f"{base}/pt_inception.pth")
    monkeypatch.setattr(dl, "INCEPTION_SHA256", SHA)  # the published prefix fits only the real file
    path = inception_path(None)
    assert path == tmp_path / "cache" / dl.INCEPTION_FILE and path.read_bytes() == PAYLOAD
    assert srv.seen == ["/pt_inception.pth"]
    monkeypatch.setenv("ROBUSTREP_OFFLINE", "1")
    assert inception_path(None) == path  # the cached copy needs no network


def test_dataset_download_offline_names_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUSTREP_OFFLINE", "1")
    with pytest.raises(dl.DownloadError, match="cifar-10-batches-py/ under"):
        dl.download_dataset("cifar10", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_download_offline_uses_a_dataset_already_there(tmp_path, monkeypatch):
    """--download with the offline switch refused data that was there: it looks first."""
    import torchvision.datasets as tvd
    monkeypatch.setenv("ROBUSTREP_OFFLINE", "1")
    calls = []

    class Present:
        def __init__(self, root, download=False, train=True):
            calls.append((root, download, train))

    monkeypatch.setattr(tvd, "CIFAR10", Present)
    dl.download_dataset("cifar10", tmp_path)
    assert calls == [(str(tmp_path), False, True), (str(tmp_path), False, False)]


def test_a_failed_dataset_download_leaves_no_empty_folder(tmp_path, monkeypatch):
    import urllib.error

    import torchvision.datasets as tvd
    monkeypatch.delenv("ROBUSTREP_OFFLINE", raising=False)

    def fake(partial: bool):
        def unreachable(root, download=False, train=True):
            if partial:  # a part of the archive arrived: that folder is kept for a retry
                (Path(root) / "part").write_bytes(b"x")
            raise urllib.error.URLError("Name or service not known")
        return unreachable

    monkeypatch.setattr(tvd, "CIFAR10", fake(partial=False))
    with pytest.raises(dl.DownloadError, match="could not fetch it into"):
        dl.download_dataset("cifar10", tmp_path / "new" / "data")
    assert list(tmp_path.iterdir()) == []  # was: new/data left behind, empty
    monkeypatch.setattr(tvd, "CIFAR10", fake(partial=True))
    with pytest.raises(dl.DownloadError):
        dl.download_dataset("cifar10", tmp_path / "data")
    assert (tmp_path / "data" / "part").is_file()


def test_dataset_download_goes_through_torchvision(tmp_path, monkeypatch):
    import torchvision.datasets as tvd
    monkeypatch.delenv("ROBUSTREP_OFFLINE", raising=False)
    calls = []

    class FakeSVHN:
        def __init__(self, root, download=False, split="train"):
            calls.append((root, download, split))

    monkeypatch.setattr(tvd, "SVHN", FakeSVHN)
    dl.download_dataset("svhn", tmp_path / "data")
    assert calls == [(str(tmp_path / "data"), True, "train"), (str(tmp_path / "data"), True,
                                                               "test")]


@pytest.mark.parametrize("program", ["classify", "gan"])
def test_download_option_offline_is_one_line_before_work(program, tmp_path, capsys):
    from robustrep.tasks.cli import main
    assert main([program, "train", "--dataset", "cifar10", "--data-root", str(tmp_path / "d"),
                 "--download", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ROBUSTREP_OFFLINE=1" in err and "cifar-10" in err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("program", ["classify", "gan"])
def test_a_dry_run_refuses_a_download_the_run_would_refuse(program, capsys):
    # was: --dry-run --download on the built-in digits exited 0; the run itself exited 2
    from robustrep.tasks.cli import main
    assert main([program, "train", "--download", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--download works for cifar10, cifar100, svhn; this run's " \
        "dataset is 'digits'" in err


def _cifar10_archive(tmp_path):
    """A CIFAR-10 python archive of 4 + 2 images in the released layout, and its files' MD5s."""
    import io
    import pickle
    import tarfile

    import numpy as np
    rng = np.random.default_rng(0)
    files = {f"data_batch_{i}": 4 for i in range(1, 6)} | {"test_batch": 2}
    blobs = {name: pickle.dumps({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                                 "labels": [int(v) for v in rng.integers(0, 10, n)]})
             for name, n in files.items()}
    blobs["batches.meta"] = pickle.dumps({"label_names": [f"c{i}" for i in range(10)]})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, blob in blobs.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    md5 = {name: hashlib.md5(blob).hexdigest() for name, blob in blobs.items()}
    return buf.getvalue(), md5


def test_dataset_download_from_a_test_made_archive(server, tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    from robustrep.data import create_dataset
    srv, base = server
    archive, md5 = _cifar10_archive(tmp_path)
    srv.files["/cifar-10-python.tar.gz"] = archive
    monkeypatch.setattr(tvd.CIFAR10, "url", f"{base}/cifar-10-python.tar.gz")
    monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", hashlib.md5(archive).hexdigest())
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]]
                                                    for i in range(1, 6)])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                              "md5": md5["batches.meta"]})
    root = tmp_path / "data"
    dl.download_dataset("cifar10", root)
    assert "/cifar-10-python.tar.gz" in srv.seen
    train = create_dataset("cifar10", root=str(root), train=True, size=32)
    test = create_dataset("cifar10", root=str(root), train=False, size=32)
    assert (len(train), len(test)) == (20, 2)  # robustrep reads what torchvision fetched
    srv.seen.clear()
    dl.download_dataset("cifar10", root)  # present and intact: no second transfer
    assert srv.seen == []


def _patch_cifar10(monkeypatch, url, archive, md5, archive_md5=None):
    import torchvision.datasets as tvd
    monkeypatch.setattr(tvd.CIFAR10, "url", url)
    monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", archive_md5 or hashlib.md5(archive).hexdigest())
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]]
                                                    for i in range(1, 6)])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                              "md5": md5["batches.meta"]})


def test_a_cut_dataset_transfer_and_a_wrong_md5_are_told_apart(server, tmp_path, monkeypatch):
    """Both read "torchvision could not fetch it into D: File not found or corrupted"."""
    srv, base = server
    archive, md5 = _cifar10_archive(tmp_path)
    srv.files["/cut"] = srv.files["/cifar-10-python.tar.gz"] = archive
    _patch_cifar10(monkeypatch, f"{base}/cut", archive, md5)
    with pytest.raises(dl.DownloadError) as err:
        dl.download_dataset("cifar10", tmp_path / "cut")
    assert "the transfer was cut: " in str(err.value) and "ends early" in str(err.value)
    _patch_cifar10(monkeypatch, f"{base}/cifar-10-python.tar.gz", archive, md5, "0" * 32)
    with pytest.raises(dl.DownloadError) as err:
        dl.download_dataset("cifar10", tmp_path / "other")
    msg = str(err.value)
    assert "arrived whole but its MD5" in msg and f"is not torchvision's {'0' * 32}" in msg, msg
