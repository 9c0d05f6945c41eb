"""Shared fixtures: tiny models and seeded generators, CPU-only and fast."""

import os
import sys

import pytest
import torch
from torch import nn

torch.set_num_threads(1)
# No test may reach the network: downloads (FID Inception, datasets, the Hugging Face hub) read
# only the cache unless a test points them at its own 127.0.0.1 server and lifts this.
os.environ.setdefault("ROBUSTREP_OFFLINE", "1")


@pytest.fixture
def plugins_forgotten():
    """What a test's ``--plugin`` modules registered (methods, network families) is forgotten
    afterwards, and the modules with it, as a new process would start: the process's registries
    are left as they were (other tests list them, and loading a plugin twice must register it
    once)."""
    from robustrep import nets, registry
    from robustrep.tasks.common import plugins
    loaded, paths, sys_path = list(plugins._LOADED), list(plugins._PATHS), list(sys.path)
    methods = set(registry._REGISTRY)
    networks = {role: set(table) for role, table in nets._REGISTRY.items()}
    yield
    for name in set(registry._REGISTRY) - methods:  # not the built-ins, registered on first use
        if not registry._REGISTRY[name].module.startswith("robustrep."):
            del registry._REGISTRY[name]
            registry._LIVE.pop(name, None)
    for role, table in nets._REGISTRY.items():
        for name in set(table) - networks[role]:
            if not table[name].__module__.startswith("robustrep."):
                del table[name]
    for name in [m for m in sys.modules if m.startswith(("robustrep_plugin_", "robustrep_ep_"))]:
        del sys.modules[name]
    plugins._LOADED[:] = loaded  # and what a child process would be told to load
    plugins._PATHS[:] = paths
    sys.path[:] = sys_path


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """Feature networks and statistics go to the test's folder, never the user's cache."""
    monkeypatch.setenv("ROBUSTREP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ROBUSTREP_INCEPTION", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


class TinyTrunk(nn.Module):
    """A batch-permutation-equivariant trunk with BatchNorm (as a DCGAN D's conv stack)."""

    def __init__(self, channels=3, width=8):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, 2, 1), nn.BatchNorm2d(width), nn.LeakyReLU(0.2),
            nn.Conv2d(width, width, 3, 2, 1), nn.LeakyReLU(0.2), nn.Flatten())

    def forward(self, x):
        return self.net(x)


@pytest.fixture
def tiny_split():
    from robustrep.split import FeatureSplit
    torch.manual_seed(0)
    return FeatureSplit(TinyTrunk(), nn.Linear(8 * 2 * 2, 1))


def _meta_cannot_draw() -> str | None:
    """Why the meta device cannot stand in for an accelerator's random draws, or None.

    Probes the kernels the regularizers draw with (Beta through ``aten::_standard_gamma``,
    partners, masks and noise): torch 2.11 has no meta kernel for ``_standard_gamma``.
    """
    x = torch.ones(2, device="meta")
    try:
        torch._standard_gamma(x.double())
        torch.randperm(3, device="meta"), torch.rand_like(x), torch.randn_like(x)
    except (NotImplementedError, RuntimeError) as err:
        return str(err).splitlines()[0]
    return None


@pytest.fixture(scope="session")
def draw_device() -> torch.device:
    """A device other than the CPU for tests that everything is drawn where the inputs are.

    CUDA when there is one; else the meta device (shapes and devices without data) where the
    installed torch can draw on it; else the test is skipped, with the reason.
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    reason = _meta_cannot_draw()
    if reason is not None:
        pytest.skip(f"no CUDA, and this torch cannot draw on the meta device: {reason}")
    return torch.device("meta")


# Another process holding a run folder's lock as robustrep does (an flock on RUN/.lock holding
# "pid P on HOST"), in plain Python: importing robustrep would cost the child a second or more.
_LOCK_HOLDER = """
import fcntl, os, socket, sys, time
os.makedirs(sys.argv[1], exist_ok=True)
fd = os.open(os.path.join(sys.argv[1], ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.ftruncate(fd, 0)
os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\\n".encode())
print("locked", flush=True)
time.sleep(300)
"""


@pytest.fixture
def error_line(capsys):
    """``error_line()``: what the command under test wrote to stderr, asserted to be one line,
    without its newline (a user error is one line)."""
    def read() -> str:
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        return err.strip()
    return read


@pytest.fixture
def lock_holder():
    """``hold(folder)`` starts a process that takes ``folder``'s run lock and keeps it until
    killed (the test kills it; any left are killed at the end)."""
    import subprocess
    started = []

    def hold(folder):
        proc = subprocess.Popen([sys.executable, "-c", _LOCK_HOLDER, str(folder)],
                                stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield hold
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


# --- toys of the GAN-side attacks (test_dat.py, test_asgan.py import them: `from .conftest`) ---

B = 8


def images(low=-1.0, high=1.0, seed=1):
    """B seeded 3x2x2 images, uniform in [low, high] (by default [-1, 1], the GAN scale)."""
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(B, 3, 2, 2, generator=g)


def linear_d(weight=0.5):
    """D(x) = weight * sum(x): its input gradient is ``weight`` at every pixel."""
    d = nn.Sequential(nn.Flatten(), nn.Linear(12, 1))
    nn.init.constant_(d[1].weight, weight)
    nn.init.zeros_(d[1].bias)
    return d
