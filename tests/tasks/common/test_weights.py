"""Pretrained weights from the Hugging Face cache, hf-hub: names and local timm folders, offline."""

import hashlib
import http.server
import json
import threading

import pytest
import timm
import torch
from safetensors.torch import save_file

from robustrep.tasks.common.classifier import create_classifier
from robustrep.tasks.common.errors import CheckpointError

REV = "0123456789abcdef0123456789abcdef01234567"


def _fill_cache(hf_home, repo: str, model: torch.nn.Module, config: dict | None = None):
    """Write ``model``'s weights (and a config.json) the way huggingface_hub caches a repo."""
    folder = hf_home / "hub" / ("models--" + repo.replace("/", "--"))
    snap = folder / "snapshots" / REV
    snap.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(REV)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(snap / "model.safetensors"))
    if config is not None:
        (snap / "config.json").write_text(json.dumps(config))
    return snap


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("ROBUSTREP_OFFLINE", raising=False)  # conftest's; this test names the hub's
    return tmp_path / "hf"


def _source(seed=3):
    torch.manual_seed(seed)
    return timm.create_model("resnet10t", num_classes=1000)


def _trunk(state):
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def test_pretrained_loads_exactly_the_cached_weights(offline_hub):
    hub_id = timm.models.get_pretrained_cfg("resnet10t").hf_hub_id  # timm/resnet10t.c3_in1k
    source = _source()
    _fill_cache(offline_hub, hub_id, source)
    clf = create_classifier("resnet10t", 10, in_chans=3, pretrained=True)
    got, want = clf.model.state_dict(), source.state_dict()
    for key, value in _trunk(want).items():
        assert torch.equal(got[key], value), key
    assert clf.model.fc.weight.shape == (10, clf.model.num_features)  # head re-initialised
    assert clf.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])  # pretrained_cfg


def test_pretrained_absent_offline_is_one_line_naming_model_and_cache(offline_hub):
    with pytest.raises(CheckpointError) as err:
        create_classifier("resnet10t", 10, pretrained=True)
    msg = str(err.value)
    assert "\n" not in msg and "'resnet10t'" in msg
    assert str(offline_hub / "hub") in msg and "HF_HUB_OFFLINE=1" in msg


def test_robustrep_offline_also_reads_only_the_cache(offline_hub, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("ROBUSTREP_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="ROBUSTREP_OFFLINE=1"):
        create_classifier("resnet10t", 10, pretrained=True)


def test_hf_hub_name_reads_config_and_weights_from_the_cache(offline_hub):
    torch.manual_seed(4)
    source = timm.create_model("test_resnet", num_classes=5)
    cfg = {"architecture": "test_resnet", "num_classes": 5,
           "pretrained_cfg": {"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6],
                              "classifier": "fc", "first_conv": "conv1.0"}}
    _fill_cache(offline_hub, "someone/tiny", source, cfg)
    clf = create_classifier("hf-hub:someone/tiny", 3, pretrained=True)
    assert clf.mean.flatten().tolist() == pytest.approx([0.1, 0.2, 0.3])
    for key, value in _trunk(source.state_dict()).items():
        assert torch.equal(clf.model.state_dict()[key], value), key
    # keep_head: a finished model evaluated as it is
    same = create_classifier("hf-hub:someone/tiny", 5, pretrained=True, keep_head=True)
    assert torch.equal(same.model.fc.weight, source.fc.weight)


def test_local_timm_folder(tmp_path):
    torch.manual_seed(5)
    source = timm.create_model("test_resnet", num_classes=4)
    folder = tmp_path / "exported"
    # timm's own export (config.json + weights); timm.models exports it from timm 1.0.12 on
    from timm.models import _hub
    if not _hub._has_hf_hub:  # e.g. timm 1.0.10 with huggingface_hub 1.x and later
        pytest.skip(f"timm {timm.__version__} cannot use the installed huggingface_hub, "
                    f"which its save_for_hf needs")
    _hub.save_for_hf(source, folder)
    clf = create_classifier(str(folder), 4, pretrained=True, keep_head=True)
    for key, value in source.state_dict().items():
        assert torch.equal(clf.model.state_dict()[key], value), key
    with pytest.raises(CheckpointError, match="not a timm model folder"):
        create_classifier(str(tmp_path), 4, pretrained=True)
    with pytest.raises(CheckpointError, match="no such folder"):
        create_classifier(str(tmp_path / "missing"), 4, pretrained=True)


def test_classify_train_pretrained_offline_loads_the_cache(offline_hub, tmp_path):
    from robustrep.tasks.cli import main
    source = _source(7)
    _fill_cache(offline_hub, "timm/resnet10t.c3_in1k", source)
    out = tmp_path / "run"
    # lr 1e-30, no momentum/decay: the one step leaves the conv weights as loaded
    assert main(["classify", "train", "--model", "resnet10t", "--pretrained", "--steps", "1",
                 "--batch-size", "4", "--lr", "1e-30", "--momentum", "0", "--weight-decay",
                 "0", "--eval-every", "0", "--quiet", "--out", str(out)]) == 0
    state = torch.load(out / "checkpoints" / "latest.pt", weights_only=True)["model"]
    assert torch.equal(state["model.layer1.0.conv1.weight"], source.layer1[0].conv1.weight)
    # digits are grey: timm sums the RGB input conv over its channels
    assert torch.allclose(state["model.conv1.0.weight"],
                          source.conv1[0].weight.sum(1, keepdim=True), atol=1e-6)
    config = json.loads((out / "config.json").read_text())
    assert config["pretrained"] is True and config["mean"] == [0.449]  # ImageNet mean, averaged


def test_classify_train_pretrained_absent_exits_2(offline_hub, tmp_path, capsys):
    from robustrep.tasks.cli import main
    code = main(["classify", "train", "--model", "resnet10t", "--pretrained", "--steps", "1",
                 "--quiet", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "'resnet10t'" in err and str(offline_hub / "hub") in err
    assert not (tmp_path / "run").exists()


def test_pretrained_and_pretrained_file_together_are_refused(capsys):
    from robustrep.tasks.cli import main
    assert main(["classify", "train", "--pretrained", "--pretrained-file", "w.pth",
                 "--dry-run"]) == 2
    assert "not both" in capsys.readouterr().err


class _HubHandler(http.server.BaseHTTPRequestHandler):
    """The two answers ``hf_hub_download`` needs from the hub: HEAD (commit, ETag, size) and GET
    of ``/{org}/{name}/resolve/{revision}/{file}``; a file the repository lacks is the hub's 404."""

    def _answer(self, body_too: bool):
        self.server.seen.append((self.command, self.path))
        body = self.server.files.get(self.path.split("/resolve/")[-1].split("/", 1)[-1])
        if self.server.mode == "404":  # a server's plain 404, no hub's error code
            self.send_error(404)
            return
        if body is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        if self.server.mode != "no hub":  # a web server of files, set as HF_ENDPOINT
            self.send_header("X-Repo-Commit", REV)
        self.send_header("ETag", '"%s"' % hashlib.sha256(body).hexdigest())
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body_too:
            self.wfile.write(body)

    def do_HEAD(self):  # noqa: N802 - http.server's names
        self._answer(False)

    def do_GET(self):  # noqa: N802
        self._answer(True)

    def log_message(self, *args):
        pass


@pytest.fixture
def hub_server(tmp_path, monkeypatch):
    """A hub on 127.0.0.1, set as huggingface_hub sets ``HF_ENDPOINT`` when it is imported; the
    offline switches lifted for this test only."""
    from huggingface_hub import constants
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HubHandler)
    srv.seen, srv.files, srv.daemon_threads, srv.mode = [], {}, True, None
    srv.cache = tmp_path / "hf" / "hub"
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", base)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        base + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("ROBUSTREP_OFFLINE", raising=False)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_pretrained_downloads_from_the_hub_into_its_cache(hub_server, tmp_path, monkeypatch):
    source = _source(8)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    hub_server.files["model.safetensors"] = path.read_bytes()
    clf = create_classifier("resnet10t", 10, pretrained=True)
    for key, value in _trunk(source.state_dict()).items():
        assert torch.equal(clf.model.state_dict()[key], value), key
    assert ("GET", "/timm/resnet10t.c3_in1k/resolve/main/model.safetensors") in hub_server.seen
    # the file now sits in the hub's cache: offline, the same weights, no request
    asked = len(hub_server.seen)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = create_classifier("resnet10t", 10, pretrained=True)
    assert torch.equal(again.model.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    assert len(hub_server.seen) == asked


def test_a_hub_download_is_said_before_the_hub_is_asked(hub_server, capsys):
    """huggingface_hub's retry lines are off: a hub that did not answer was minutes of silence."""
    hub_server.files["model.safetensors"] = _weights_bytes(_source(8))
    create_classifier("resnet10t", 10, pretrained=True)
    err = capsys.readouterr().err
    base = f"http://127.0.0.1:{hub_server.server_address[1]}"
    assert err.count("note: fetching model.safetensors or pytorch_model.bin of hf-hub:timm/"
                     f"resnet10t.c3_in1k from the Hugging Face hub (HF_ENDPOINT {base}) into "
                     f"{hub_server.cache}\n") == 1, err
    create_classifier("resnet10t", 10, pretrained=True)  # cached now: nothing to say
    assert "fetching" not in capsys.readouterr().err


def _weights_bytes(model) -> bytes:
    from safetensors.torch import save
    return save({k: v.contiguous() for k, v in model.state_dict().items()})


@pytest.mark.parametrize("mode, said", [
    ("404", "answered 404 Not Found; check HF_ENDPOINT and the name, or place the file"),
    ("no hub", "answered without the hub's X-Repo-Commit header: it is not a Hugging Face hub; "
               "check HF_ENDPOINT"),
])
def test_a_hub_failure_is_said_as_it_happened(hub_server, mode, said):
    """Every failure read "could not reach the Hugging Face hub", a 404 and a server that is no
    hub too; huggingface_hub keeps what happened as the cause of its error."""
    hub_server.mode = mode
    hub_server.files["model.safetensors"] = b"weights"
    with pytest.raises(CheckpointError) as err:
        create_classifier("resnet10t", 10, pretrained=True)
    msg = str(err.value)
    assert msg.startswith("model 'resnet10t': model.safetensors of hf-hub:timm/resnet10t.c3_in1k "
                          "is not in the cache "), msg
    assert said in msg and "could not reach" not in msg and "\n" not in msg, msg


@pytest.mark.parametrize("cause, said", [
    (ConnectionRefusedError(111, "Connection refused"), "could not reach the Hugging Face hub at "),
    (type("HfHubHTTPError", (Exception,), {"response": type("R", (), {
        "status_code": 500, "reason_phrase": "Internal Server Error"})})("server error"),
     "answered 500 Internal Server Error; try again later"),
])
def test_a_hub_that_does_not_answer_or_fails_is_named(hub_server, monkeypatch, cause, said):
    """(huggingface_hub retries these for ~23 s: its error is raised here directly.)"""
    from huggingface_hub.errors import LocalEntryNotFoundError

    def failing(*args, **kwargs):
        raise LocalEntryNotFoundError("cannot find the requested files") from cause

    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", failing)
    with pytest.raises(CheckpointError) as err:
        create_classifier("resnet10t", 10, pretrained=True)
    assert said in str(err.value), str(err.value)


def test_a_damaged_file_of_the_hub_cache_names_the_entry_to_delete(offline_hub):
    """A cut download in the hub's cache was "not a readable .safetensors file; use another
    file", with no other file to use: deleting its cache entry has it fetched again."""
    hub_id = timm.models.get_pretrained_cfg("resnet10t").hf_hub_id
    snap = _fill_cache(offline_hub, hub_id, _source())
    weights = snap / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError) as err:
        create_classifier("resnet10t", 10, pretrained=True)
    entry = offline_hub / "hub" / ("models--" + hub_id.replace("/", "--"))
    assert str(err.value).endswith(f"it is in the Hugging Face cache: delete {entry} to have it "
                                   f"fetched again"), str(err.value)


def test_a_hub_repository_without_weights_is_named(hub_server):
    hub_server.files["config.json"] = json.dumps({"architecture": "test_resnet"}).encode()
    with pytest.raises(CheckpointError, match="has none of model.safetensors, pytorch_model.bin"):
        create_classifier("hf-hub:someone/empty", 3, pretrained=True)
    asked = {path.rsplit("/", 1)[-1] for method, path in hub_server.seen if method == "HEAD"}
    assert {"model.safetensors", "pytorch_model.bin"} <= asked  # the hub said no to both


def test_an_unreachable_hub_is_named_as_such(hub_server, monkeypatch, caplog):
    """huggingface_hub raises LocalEntryNotFoundError (a kind of EntryNotFoundError) when it gets
    no answer; that is no network, not a repository without the file. (Its own retries take
    ~23 s per file, so the failure is raised here directly.)"""
    from huggingface_hub.errors import LocalEntryNotFoundError

    def no_answer(*args, **kwargs):
        from huggingface_hub.utils import logging as hub_logging
        # as its http_backoff says each retry (ten lines on stderr before the one that counts)
        hub_logging.get_logger("huggingface_hub.utils._http").warning("Retrying in 1s [1/5].")
        raise LocalEntryNotFoundError("cannot find the requested files in the local cache")

    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_answer)
    with pytest.raises(CheckpointError) as err:
        create_classifier("resnet10t", 10, pretrained=True)
    msg = str(err.value)
    assert "could not reach the Hugging Face hub" in msg and "has none of" not in msg
    assert "\n" not in msg and "HF_HUB_OFFLINE=1" in msg
    assert not [r for r in caplog.records if "Retrying" in r.getMessage()]


@pytest.mark.parametrize("command", [["classify", "train", "--preset", "smoke", "--dry-run"],
                                     ["classify", "eval", "--pretrained"],
                                     ["ood", "score", "--pretrained"]])
def test_a_pretrained_tag_timm_does_not_know_is_one_line_naming_its_tags(command, offline_hub,
                                                                        capsys):
    """timm.is_model accepts any tag after a known architecture, and get_pretrained_cfg then
    raised RuntimeError("Invalid pretrained tag"): a traceback in every program."""
    from robustrep.tasks.cli import main
    assert main([*command, "--model", "resnet10t.c3_in1kk"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert ("model 'resnet10t.c3_in1kk': timm has no pretrained tag 'c3_in1kk' for resnet10t "
            "(its tags: resnet10t.c3_in1k)") in err


@pytest.mark.parametrize("repo", ["", "a/b/c", "timm/x y"])
def test_a_hub_name_that_is_no_repository_id_names_the_model(repo, offline_hub):
    """huggingface_hub's own line named no model and advised a `repo_type` argument."""
    with pytest.raises(CheckpointError) as err:
        create_classifier(f"hf-hub:{repo}", 3, pretrained=True)
    assert str(err.value) == (f"model 'hf-hub:{repo}': {repo!r} is not a Hugging Face repository "
                              f"id; give hf-hub:ORG/NAME[@REVISION], each name of letters, "
                              f"digits, '-', '_' and '.'")


def test_a_hub_cache_that_cannot_be_written_says_where_to_move_it(hub_server, tmp_path,
                                                                 monkeypatch):
    """An HF_HOME the user cannot write (a file here: ENOTDIR; read-only: EACCES) was named
    with the system's error alone; the cache is moved with HF_HOME, which no option sets."""
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "file"))
    hub_server.files["model.safetensors"] = b"weights"
    with pytest.raises(CheckpointError) as err:
        create_classifier("resnet10t", 10, pretrained=True)
    msg = str(err.value)
    assert msg.startswith(f"model 'resnet10t': could not download model.safetensors of "
                          f"hf-hub:timm/resnet10t.c3_in1k into {tmp_path}/file/hub: "), msg
    assert msg.endswith("; set HF_HOME (or HF_HUB_CACHE) to a folder you can write to"), msg
