import subprocess
import sys
import time
from pathlib import Path

import pytest

from taco_tools.monailabel_check import CheckFailed
from taco_tools.monailabel_check.server import free_port, stop_server, wait_for_model


def test_wait_for_model_fails_when_the_server_exits(tmp_path):
    (tmp_path / "server.log").write_text("Traceback: the app did not load\n")
    server = subprocess.Popen([sys.executable, "-c", "pass"])
    server.wait()
    with pytest.raises(CheckFailed, match="server exited before listing(.|\n)*the app did not load"):
        wait_for_model(f"http://127.0.0.1:{free_port()}", server, tmp_path, timeout=60)


SERVER_WITH_A_WORKER = """
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(worker.pid, flush=True)
time.sleep(120)
"""


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped by its parent, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_stop_server_ends_the_process_group():
    """The server's worker processes end with it (a MONAI Label server runs uvicorn workers): signalling only the
    server's own process would leave the worker running."""
    server = subprocess.Popen([sys.executable, "-c", SERVER_WITH_A_WORKER], start_new_session=True,
                              stdout=subprocess.PIPE, text=True)
    worker = int(server.stdout.readline())
    assert alive(worker)
    stop_server(server, grace=5)
    assert server.poll() is not None
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(worker), "the server's worker outlived it"
