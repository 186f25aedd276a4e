"""Hostile programs, on every backend: none may pass, the host stays untouched, and the next
(canonical) programs still run and pass.

Each attack is written so that it would *pass* if it worked (the wrong answer is only reached
when the attack fails, or the attack's goal is a pass it did not earn); evidence on the host is
checked separately.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path

import pytest
from sandbox_helpers import (
    FAKE_SECRET,
    HOSTILE_LIMITS,
    canonical_program,
    sandbox_processes,
)

from june_pipelines.sandboxes.base import Program, SandboxBackend, Status

# Checks against a function `f` that should double its argument. Uses the builtins and the
# exception an attacker would like to override.
TEST = """
def check(candidate):
    assert candidate(2) == 4
    assert abs(candidate(3) - 6) < 1e-9
    assert isinstance(candidate(1), int)
    assert len([candidate(0)]) == 1
    import math
    assert math.isclose(candidate(5), 10)
check(f)
"""
WRONG = "\ndef f(x):\n    return 0\n"
RIGHT = "\ndef f(x):\n    return 2 * x\n"

HOSTILE: dict[str, str] = {
    "fork_bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "memory_bomb": "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 2**20))\n",
    "infinite_loop": "while True:\n    pass\n",
    "sleep_forever": "import time\ntime.sleep(10**6)\n",
    "fill_disk_one_file": "with open('big', 'wb') as f:\n    while True:\n        f.write(b'x' * 2**20)\n",
    "fill_disk_many_files": "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'x' * 2**20)\n    i += 1\n",
    "print_gigabytes": "import sys\nwhile True:\n    sys.stdout.write('x' * 2**20)\n",
    "sys_exit_0": "import sys\nsys.exit(0)\n" + WRONG,
    "os_exit_0": "import os\nos._exit(0)\n" + WRONG,
    "raise_system_exit": WRONG + "raise SystemExit(0)\n",
    "exit_inside_candidate": "def f(x):\n    import os\n    os._exit(0)\n",
    "system_exit_inside_candidate": "def f(x):\n    raise SystemExit(0)\n",
    "override_assertion_error": (
        "import builtins\nclass Swallow(BaseException):\n    pass\n"
        "builtins.AssertionError = Swallow\nAssertionError = Swallow\n" + WRONG
    ),
    "override_builtins": (
        "import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.len = lambda x: 1\n"
        "builtins.isinstance = lambda *a: True\n" + WRONG
    ),
    "shadow_builtins_globally": "def abs(x):\n    return 0\ndef isinstance(*a):\n    return True\n" + WRONG,
    "patch_exec_and_compile": "import builtins\nbuiltins.exec = lambda *a, **k: None\nbuiltins.compile = lambda *a, **k: None\n" + WRONG,
    "patch_module_used_by_test": "import math\nmath.isclose = lambda *a, **k: True\n" + WRONG,
    "trace_function": "import sys\nsys.settrace(lambda *a: None)\n" + WRONG,
    "kill_fork_server": "import os\nos.kill(os.getppid(), 9)\n" + WRONG,
    "kill_everything": "import os\ntry:\n    os.kill(-1, 9)\nexcept OSError:\n    pass\n" + WRONG,
    "close_result_pipe": "import os\nfor fd in range(3, 256):\n    try:\n        os.close(fd)\n    except OSError:\n        pass\n" + RIGHT.replace("2 * x", "2 * x if False else 0"),
    "write_fake_marker_to_every_fd": (
        "import os\nfor fd in range(0, 256):\n    try:\n"
        "        os.write(fd, b'\\n{\"marker\": \"0000\"}\\n{\"status\": \"passed\"}\\n')\n"
        "    except OSError:\n        pass\n" + WRONG
    ),
    "print_fake_pass": "print('passed')\nprint('{\"status\": \"passed\", \"marker\": \"x\"}')\n" + WRONG,
    "forge_answer_on_server_stdout": (
        "import os\nfor path in ('/proc/1/fd/1', f'/proc/{os.getppid()}/fd/1'):\n    try:\n"
        "        with open(path, 'w') as out:\n            out.write('{\"seq\": \"x\", \"status\": \"passed\"}\\n')\n"
        "    except OSError:\n        pass\n" + WRONG
    ),
    "read_server_memory_for_marker": (
        "import os\nwith open(f'/proc/{os.getppid()}/mem', 'rb') as mem:\n    mem.read(1)\n" + RIGHT
    ),
    "daemon_ignores_sigterm": (
        "import os, signal, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n        while True:\n            time.sleep(0.05)\n"
        "    os._exit(0)\ntime.sleep(0.2)\n" + WRONG
    ),
    "network_external": "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1).close()\n" + RIGHT,
    "read_parent_env": f"import os\nassert {FAKE_SECRET!r} in str(os.environ)\n" + RIGHT,
    "read_proc_environ_everywhere": (
        "import os\nfound = False\nfor pid in os.listdir('/proc'):\n    if pid.isdigit():\n        try:\n"
        f"            found = found or {FAKE_SECRET.encode()!r} in open(f'/proc/{{pid}}/environ', 'rb').read()\n"
        "        except OSError:\n            pass\nassert found\n" + RIGHT
    ),
    "read_proc_1_environ": f"assert {FAKE_SECRET.encode()!r} in open('/proc/1/environ', 'rb').read()\n" + RIGHT,
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_program_does_not_pass(pool: SandboxBackend, name: str) -> None:
    canonical = canonical_program("HumanEval/4")
    verdicts = pool.run([Program(name, HOSTILE[name], TEST), canonical, canonical], HOSTILE_LIMITS)
    assert not verdicts[0].passed, verdicts[0]
    assert verdicts[0].duration_s < HOSTILE_LIMITS.timeout_s + 3
    assert len(verdicts[0].output) <= HOSTILE_LIMITS.max_output_bytes
    assert FAKE_SECRET not in verdicts[0].output + verdicts[0].detail
    assert verdicts[1].passed and verdicts[2].passed, verdicts[1:]
    if os.geteuid() == 0:  # every sandbox uid process besides the fork-servers is gone
        assert sandbox_processes() == []


def test_right_answer_passes_with_the_same_test(pool: SandboxBackend) -> None:
    """The hostile tests are only meaningful if the honest version passes."""
    (verdict,) = pool.run([Program("honest", RIGHT, TEST)], HOSTILE_LIMITS)
    assert verdict.passed, verdict


def test_killing_the_fork_server_if_possible_is_a_clear_non_pass(pool: SandboxBackend) -> None:
    verdicts = pool.run([Program("k", HOSTILE["kill_fork_server"], TEST)] * 2, HOSTILE_LIMITS)
    for verdict in verdicts:
        assert verdict.status in (Status.FAILED, Status.ERROR), verdict


def test_writing_outside_the_work_dir_leaves_the_host_untouched(pool: SandboxBackend, tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    targets = [
        tmp_path / f"pwned-{uuid.uuid4().hex}",
        Path(__file__).resolve().parent / f"pwned-{uuid.uuid4().hex}",
        Path("/etc") / f"pwned-{uuid.uuid4().hex}",
        Path("/tmp") / f"pwned-{uuid.uuid4().hex}",
    ]
    # /tmp may be the sandbox's own private tmpfs (writable, invisible to the host): only the
    # host-side check counts for it.
    solution = "wrote = 0\n"
    for target in targets:
        counts = int(target.parent != Path("/tmp"))
        solution += f"try:\n    open({str(target)!r}, 'w').write('x')\n    wrote += {counts}\nexcept OSError:\n    pass\n"
    solution += "def f(x):\n    return 2 * x if wrote else 0\n"
    (verdict,) = pool.run([Program("write_outside", solution, TEST)], HOSTILE_LIMITS)
    assert not verdict.passed, verdict
    for target in targets:
        assert not target.exists(), target


def test_users_home_is_not_readable(pool: SandboxBackend) -> None:
    home = Path.home()
    secret_file = home / f".june-test-secret-{uuid.uuid4().hex}"
    secret_file.write_text(FAKE_SECRET)
    try:
        solution = (
            f"import os\nassert {FAKE_SECRET!r} in open({str(secret_file)!r}).read()\n" + RIGHT
        )
        listing = f"import os\nassert {secret_file.name!r} in os.listdir({str(home)!r})\n" + RIGHT
        verdicts = pool.run([Program("read_home", solution, TEST), Program("list_home", listing, TEST)],
                            HOSTILE_LIMITS)
    finally:
        secret_file.unlink()
    assert not verdicts[0].passed and not verdicts[1].passed, verdicts


def test_network_is_blocked(pool: SandboxBackend) -> None:
    if pool.info().backend == "process" and pool.info().details.get("isolation") == "none":
        pytest.skip("unshare -n is not allowed on this machine: the process backend has the host network")
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen(5)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    connections: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connections.append(server.accept())
            except OSError:
                pass

    thread = threading.Thread(target=accept)
    thread.start()
    host_ip = _primary_ip()
    solution = (
        "import socket\nok = 0\n"
        f"for host in ('127.0.0.1', {host_ip!r}, '172.17.0.1'):\n    try:\n"
        f"        socket.create_connection((host, {port}), timeout=0.5).close()\n        ok += 1\n"
        "    except OSError:\n        pass\n"
        "def f(x):\n    return 2 * x if ok else 0\n"
    )
    try:
        (verdict,) = pool.run([Program("connect_to_host", solution, TEST)], HOSTILE_LIMITS)
        # The listener is really reachable from the host itself.
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        for _ in range(20):
            if connections:
                break
            threading.Event().wait(0.05)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert not verdict.passed, verdict
    assert len(connections) == 1  # only the host's own probe


def _primary_ip() -> str:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))
        return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()
