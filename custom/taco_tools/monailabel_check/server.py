"""The MONAI Label server on loopback: its environment, start and stop, waiting for the model, inference requests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from taco_tools.monailabel_check.common import BUNDLE, CheckFailed, log

__all__ = ["free_port", "infer", "server_environment", "start_server", "stop_server", "wait_for_model"]


TORCHVISION_STUB = {
    "__init__.py": '"""Stub: the installed torch has no matching CPU torchvision; only ``import torchvision.utils`` '
                   'works."""\n__version__ = "0.0.0+stub"\n',
    "utils.py": "".join(f"\n\ndef {name}(*args, **kwargs):\n    raise RuntimeError(\"torchvision stub "
                        f"(taco_tools.monailabel_check): {name} is not available\")\n"
                        for name in ("make_grid", "save_image")).lstrip(),
}
"""``monailabel.transform.post`` imports ``torchvision.utils`` (``make_grid``/``save_image``, used only by its
2-D debug-dump transform and DeepEdit handlers). No CPU torchvision exists for every CPU torch, so when it
does not import, this stub, which raises on use, goes first on the server's ``PYTHONPATH``."""


def server_environment(work: Path, bin_dir: Path) -> dict[str, str]:
    """The server's environment: the venv first on ``PATH``, and the torchvision stub if torchvision does not import."""
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "MONAILABEL_PYEXE": sys.executable}
    if subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True).returncode != 0:
        stub = work / "shim" / "torchvision"
        stub.mkdir(parents=True, exist_ok=True)
        for name, text in TORCHVISION_STUB.items():
            (stub / name).write_text(text)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(stub.parent), os.environ.get("PYTHONPATH")]))
        log(f"torchvision does not import in {sys.prefix}: using a stub torchvision.utils for the server")
    return env


def start_server(work: Path, bin_dir: Path, app: Path, studies: Path, port: int) -> subprocess.Popen:
    """Start ``monailabel start_server`` on 127.0.0.1 in its own session (so that its process group can be
    stopped), logging to ``<work>/server.log``.

    ``zoo_source`` anything but ``monaihosting`` makes the app use the local bundle folder without asking
    the network for the model zoo's bundle list.
    """
    with open(work / "server.log", "wb") as server_log:
        return subprocess.Popen(
            [str(bin_dir / "monailabel"), "start_server", "--app", str(app), "--studies", str(studies),
             "--conf", "models", BUNDLE, "--conf", "zoo_source", "github", "--host", "127.0.0.1", "--port", str(port)],
            cwd=work, env=server_environment(work, bin_dir), stdout=server_log, stderr=subprocess.STDOUT,
            start_new_session=True)


def stop_server(server: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the server's process group, SIGKILL it after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        if server.poll() is not None:
            return
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(wait)
        except subprocess.TimeoutExpired:
            pass


def server_log_tail(work: Path, lines: int = 60) -> str:
    path = work / "server.log"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""


def wait_for_model(url: str, server: subprocess.Popen, work: Path, timeout: float) -> dict[str, Any]:
    """Poll ``<url>/info/`` until it lists the bundle; the ``/info/`` answer.

    Raises:
        CheckFailed: the server exited, or did not list the bundle within ``timeout`` seconds (log tail included).
    """
    start = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(f"{url}/info/", timeout=10) as response:
                info = json.load(response)
            if BUNDLE in info.get("models", {}):
                return info
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if server.poll() is not None:
            raise CheckFailed(f"server exited before listing {BUNDLE}:\n{server_log_tail(work)}")
        if time.monotonic() - start > timeout:
            raise CheckFailed(f"server did not list {BUNDLE} within {timeout} s:\n{server_log_tail(work)}")
        time.sleep(2)


def infer(url: str, case: str, out: Path, timeout: float) -> float:
    """``POST <url>/infer/<bundle>?image=<case>&output=image`` (the body is the label file) into ``out``.

    Returns:
        The request's duration in seconds.

    Raises:
        CheckFailed: the answer is not HTTP 200 (its start included).
    """
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="params"\r\n\r\n{{}}\r\n'
            f"--{boundary}--\r\n").encode()
    request = urllib.request.Request(f"{url}/infer/{BUNDLE}?image={case}&output=image", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            out.write_bytes(response.read())
    except urllib.error.HTTPError as error:
        raise CheckFailed(f"POST /infer/{BUNDLE}?image={case} returned HTTP {error.code}: "
                          f"{error.read()[:2000].decode(errors='replace')}") from error
    except (urllib.error.URLError, OSError) as error:
        raise CheckFailed(f"POST /infer/{BUNDLE}?image={case} failed: {error}") from error
    return time.monotonic() - start


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
