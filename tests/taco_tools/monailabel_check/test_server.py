import subprocess
import sys

import pytest

from taco_tools.monailabel_check import CheckFailed
from taco_tools.monailabel_check.server import free_port, stop_server, wait_for_model


def test_wait_for_model_fails_when_the_server_exits(tmp_path):
    (tmp_path / "server.log").write_text("Traceback: the app did not load\n")
    server = subprocess.Popen([sys.executable, "-c", "pass"])
    server.wait()
    with pytest.raises(CheckFailed, match="server exited before listing(.|\n)*the app did not load"):
        wait_for_model(f"http://127.0.0.1:{free_port()}", server, tmp_path, timeout=60)


def test_stop_server_ends_the_process_group():
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    stop_server(server, grace=5)
    assert server.poll() is not None
