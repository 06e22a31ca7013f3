"""Fixtures for the Strand interop suite.

Every test gets its own broker process (``strand broker``) on a free loopback
port with a private log directory under pytest's ``tmp_path``.  The broker's
stderr goes to a file next to its log directory and is attached to the report
of any failing test.  Whatever a test does, the processes it started are
stopped (by PID) at teardown; a broker that does not exit with status 0 after
SIGTERM turns the teardown into an error.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / "target" / "release" / "strand"

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0
LOG_TAIL_LINES = 200

# Every broker process started in this session, so that even an interpreter
# exit that skips fixture teardown does not leave one running.
_ALL_BROKERS: list["Broker"] = []

_BROKERS_KEY = pytest.StashKey[list]()


def _kill_leftovers() -> None:
    for broker in _ALL_BROKERS:
        proc = broker.proc
        if proc is not None and proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass


atexit.register(_kill_leftovers)


# ---------------------------------------------------------------------------
# Session checks: the suite fails (never skips) when a tool is missing.
# ---------------------------------------------------------------------------

def strand_bin() -> Path:
    return Path(os.environ.get("STRAND_BIN") or DEFAULT_BIN)


def pytest_configure(config: pytest.Config) -> None:
    missing = []
    if shutil.which("kcat") is None:
        missing.append("kcat (Debian package 'kcat'; scripts/test.sh installs it)")
    for module, package in (("confluent_kafka", "confluent-kafka"),
                            ("kafka", "kafka-python"), ("aiokafka", "aiokafka")):
        try:
            with warnings.catch_warnings():
                # kafka-python 3.0 loads its schemas with a deprecated
                # importlib.resources call; keep that noise out of the output.
                warnings.simplefilter("ignore", DeprecationWarning)
                importlib.import_module(module)
        except Exception as exc:  # ImportError or a broken native extension
            missing.append(f"Python package {package} ({exc})")
    if shutil.which("node") is None:
        missing.append("node (Debian package 'nodejs'; scripts/test.sh installs it)")
    kafkajs = Path(__file__).resolve().parent / "js" / "node_modules" / "kafkajs"
    if not kafkajs.is_dir():
        missing.append("KafkaJS (npm ci --prefix tests/interop/js; scripts/test.sh runs it)")
    binary = strand_bin()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        missing.append(f"broker binary {binary} (build it with "
                       f"'cargo build --release -p strand' or set STRAND_BIN)")
    if missing:
        raise pytest.UsageError(
            "interop suite prerequisites missing:\n  - " + "\n  - ".join(missing)
            + "\nRun ./scripts/test.sh, which installs them.")


# ---------------------------------------------------------------------------
# Broker process helper
# ---------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


class BrokerError(AssertionError):
    pass


class Broker:
    """One ``strand broker`` process with a fixed port and log directory.

    ``restart()`` reuses both, so data written by an earlier run must be
    visible to the next one.
    """

    def __init__(self, workdir: Path, overrides: dict | None = None,
                 config_text: str | None = None, name: str = "broker",
                 binary: Path | None = None):
        self.name = name
        self.binary = Path(binary or strand_bin())
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_dir = self.workdir / "data"
        self.log_dir.mkdir(exist_ok=True)
        self.port = free_port()
        self.overrides: dict[str, str] = {
            k: str(v) for k, v in (overrides or {}).items()}
        self.config_path: Path | None = None
        if config_text is not None:
            self.config_path = self.workdir / "server.properties"
            self.config_path.write_text(config_text)
        self.proc: subprocess.Popen | None = None
        self.generation = 0
        self.stderr_paths: list[Path] = []
        self.exit_codes: list[int] = []
        _ALL_BROKERS.append(self)

    # -- properties ---------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    # -- lifecycle ----------------------------------------------------------
    def command(self) -> list[str]:
        cmd = [str(self.binary), "broker"]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        settings = {
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "log.dirs": str(self.log_dir),
        }
        settings.update(self.overrides)
        for key, value in settings.items():
            cmd += ["--override", f"{key}={value}"]
        return cmd

    def start(self) -> "Broker":
        if self.running:
            raise BrokerError(f"{self.name} is already running (pid {self.pid})")
        self.generation += 1
        stderr_path = self.workdir / f"stderr.{self.generation}.log"
        self.stderr_paths.append(stderr_path)
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")  # stderr goes to a file
        with open(stderr_path, "wb") as err:
            err.write(("$ " + " ".join(self.command()) + "\n").encode())
            err.flush()
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=err,
                stderr=err, cwd=self.workdir, env=env)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.exit_codes.append(code)
                self.proc = None
                raise BrokerError(
                    f"{self.name} exited with status {code} before accepting "
                    f"connections on {self.bootstrap}\n{self.log_tail()}")
            if port_accepts(self.port):
                return
            time.sleep(0.05)
        self._sigkill()
        raise BrokerError(
            f"{self.name} did not accept connections on {self.bootstrap} "
            f"within {READY_TIMEOUT_S:.0f}s\n{self.log_tail()}")

    def _sigkill(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - kernel trouble
            code = None
        self.exit_codes.append(code)
        self.proc = None
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> None:
        """Clean shutdown: send ``sig`` and require exit status 0."""
        if self.proc is None:
            raise BrokerError(f"{self.name} is not running")
        if self.proc.poll() is not None:
            code = self.proc.returncode
            self.exit_codes.append(code)
            self.proc = None
            raise BrokerError(
                f"{self.name} had already exited with status {code} before "
                f"stop()\n{self.log_tail()}")
        os.kill(self.proc.pid, sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._sigkill()
            raise BrokerError(
                f"{self.name} did not exit within {timeout:.0f}s of "
                f"{signal.Signals(sig).name}\n{self.log_tail()}")
        self.exit_codes.append(code)
        self.proc = None
        if code != 0:
            raise BrokerError(
                f"{self.name} exited with status {code} after "
                f"{signal.Signals(sig).name} (expected 0)\n{self.log_tail()}")

    def kill9(self) -> None:
        """Crash the broker: SIGKILL, no chance to flush anything."""
        if not self.running:
            raise BrokerError(f"{self.name} is not running\n{self.log_tail()}")
        code = self._sigkill()
        assert code == -signal.SIGKILL, code

    def restart(self, extra_overrides: dict | None = None) -> "Broker":
        """Stop (cleanly) if running, then start again on the same port and
        log directory.  ``extra_overrides`` are merged into the overrides and
        kept for later restarts."""
        if self.running:
            self.stop()
        if extra_overrides:
            self.overrides.update({k: str(v) for k, v in extra_overrides.items()})
        return self.start()

    def close(self) -> None:
        """Teardown: make sure the process is gone; complain if a clean
        shutdown was not clean."""
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            code = self.proc.returncode
            self.exit_codes.append(code)
            self.proc = None
            raise BrokerError(
                f"{self.name} died during the test (exit status {code})\n"
                f"{self.log_tail()}")
        self.stop()

    # -- diagnostics --------------------------------------------------------
    def log_text(self) -> str:
        parts = []
        for path in self.stderr_paths:
            try:
                data = path.read_bytes().decode("utf-8", "replace")
            except OSError as exc:
                data = f"<cannot read {path}: {exc}>"
            parts.append(f"--- {path.name} ---\n{data}")
        return "\n".join(parts)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        out = []
        for path in self.stderr_paths:
            try:
                text = path.read_bytes().decode("utf-8", "replace").splitlines()
            except OSError as exc:
                text = [f"<cannot read {path}: {exc}>"]
            skipped = max(0, len(text) - lines)
            out.append(f"--- {self.name} {path.name} "
                       f"({'last %d of %d lines' % (lines, len(text)) if skipped else 'all'}) ---")
            out.extend(text[-lines:])
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"<Broker {self.name} {self.bootstrap} pid={self.pid}>"


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------

@pytest.fixture
def broker_factory(request, tmp_path):
    """``start(overrides=None, config_text=None, name=None) -> Broker``.

    Brokers started through the factory are stopped at teardown.
    """
    started: list[Broker] = []
    request.node.stash[_BROKERS_KEY] = started

    def start(overrides: dict | None = None, config_text: str | None = None,
              name: str | None = None) -> Broker:
        name = name or f"broker{len(started) + 1}"
        broker = Broker(tmp_path / name, overrides=overrides,
                        config_text=config_text, name=name)
        started.append(broker)
        broker.start()
        return broker

    yield start

    errors = []
    for broker in started:
        try:
            broker.close()
        except BaseException as exc:  # keep stopping the others
            errors.append(f"{broker.name}: {exc}")
    if errors:
        raise BrokerError("broker shutdown at teardown failed:\n" + "\n".join(errors))


@pytest.fixture
def broker(broker_factory) -> Broker:
    """A broker with default settings."""
    return broker_factory()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for b in item.stash.get(_BROKERS_KEY, []):
            report.sections.append(
                (f"strand stderr: {b.name} ({b.bootstrap}, phase {report.when})",
                 b.log_tail()))
