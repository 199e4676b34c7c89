"""Run a learner's answer cell in a fresh process that has numpy and nothing of attnlib.

The grader (this process) starts one child per exercise: ``python -I -S`` (no site-packages,
no user paths, no working-folder imports), a ``sys.path`` holding the standard library and a
folder with only numpy linked in, and an audit hook installed before the learner's code runs that
refuses to open files outside the standard library and numpy, to start processes, to open
sockets, or to import ``ctypes``.  The hook lives in the learner's own process, and numpy can read
and write that process's memory at a raw address (``__array_interface__``), so the hook alone does
not hold: before any learner code runs, the child also confines itself with Landlock (ABI 3 or
later, Linux 6.2+; irreversible, native code included): it may read the standard library and
numpy only (no file of theirs opened for writing), write nowhere but ``/dev/null``, make no TCP
connection, and signal no process outside itself; and with a seccomp filter (x86-64 and ARM64) it
may create no socket of any kind, start no process or program, trace nothing, make no namespace
and map no file shared and writable, and start no thread (adv13 F1: an answer's threads, numpy letting
go of the GIL, starved the submissions graded at the same time; numpy's BLAS is told to use one
thread); nor may it act on any other process of the grading user (their limits, priority,
scheduling, signals) or on files' owners and times,
and it holds no capability.  A grader that cannot start a child, whose own limits were lowered,
or whose kernel cannot confine the child so (no Landlock ABI 3, no seccomp filter) raises
:class:`GraderFault` (never a student's 0; adv11 F1).  A prediction's child (``plain``) has no
numpy at all.  The child executes the answer cell's source in a namespace of
``np``, ``math`` and the exercise's *given* helpers; a helper is a stand-in that sends its
arguments to the grader, which computes it with attnlib and sends the value back (only the
helpers the exercise allows are served, so attnlib's reference for the exercise itself is not in
reach).  The helper does not run in the grader's own process (adv15 F5: ``al.scaled_dot_product_attention`` on
a batch of 4096-token inputs built gigabytes there, and plain ``nbgrader autograde`` grades a whole class in one
process): the grader forks a worker that computes it under the answer's memory limit and is killed at the
answer's deadline, so a helper call that goes past either stops the exercise, and the grader's own memory and
time stay bounded.  The grader calls the learner's function through :class:`Sandbox`: inputs in, values back,
encoded as JSON with arrays as raw bytes (never pickled: nothing the learner sends is executed).
The time limit is enforced from here, on every write to the child and every read from it (adv13 F2: a
child that never read a helper's reply held a blocking write for ever): a child that does not answer in
time is killed.  The child also dies with its grader (``PR_SET_PDEATHSIG``), so no answer outlives the
grading run.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import functools
import inspect
import json
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

from attnlib.checks._labs import PLAIN_RULE

try:  # looked up here, in the grader: the forked helper worker (_HelperWorker) calls it after the fork
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
    _PRCTL.restype = ctypes.c_int
except (OSError, AttributeError):  # not Linux: no parent-death signal
    _PRCTL = None

ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "GOTO_NUM_THREADS")
THREADS = "the grader runs answers on one thread: starting a thread is not allowed"
TIME_LIMIT = 20.0  # seconds for one call of the learner's function (helpers' time included)
MEMORY_LIMIT = 2 * 1024**3  # bytes of address space for the child
HELPER_MEMORY_LIMIT = MEMORY_LIMIT  # bytes of address space a served helper may add, in its worker (adv15 F5)
MESSAGE_LIMIT = 48 * 1024**2  # bytes of one message from the child (a longer one stops it, unread)
ITEM_LIMIT = 2 * 10**6 + 10_000  # commas in one message: its JSON numbers and items (more: refused unread)
DEFAULT = "<default>"  # stands for a parameter's default value in a proxy's signature


# --- values across the boundary -------------------------------------------------------------


def encode(value, callables: list | None = None):
    """A JSON-able form of numbers, strings, arrays, lists, tuples and dicts (TypeError for anything else).

    ``callables``: the list of function arguments of the call being sent (one list per call, so that
    two sandboxes called at once from two threads never share it); a function in ``value`` is
    appended to it and sent as its index.  Without it a function cannot be sent.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else {"__int__": str(value)}
    if isinstance(value, float):
        return {"__float__": repr(value)} if not math.isfinite(value) else value
    if isinstance(value, np.ndarray | np.generic):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biufcU":
            raise TypeError(f"an array of {arr.dtype} cannot be sent (numbers, booleans, strings only)")
        arr = np.array(arr, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        return {"__nd__": [arr.dtype.str, list(arr.shape), base64.b64encode(arr.tobytes()).decode("ascii"),
                           isinstance(value, np.generic)]}
    if isinstance(value, list):
        return [encode(v, callables) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, callables) for v in value]}
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, callables), encode(v, callables)] for k, v in value.items()]}
    if isinstance(value, range):
        return {"__range__": [value.start, value.stop, value.step]}
    if isinstance(value, np.random.Generator):
        return {"__rng__": encode(value.bit_generator.state)}
    if callable(value) and callables is not None:  # a function argument: the child calls back
        callables.append(value)
        return {"__fn__": len(callables) - 1}
    raise TypeError(f"a {type(value).__name__} cannot be sent (numbers, strings, arrays, lists, tuples, dicts)")


def decode(data):
    """The inverse of :func:`encode`; only builds numbers, strings, arrays and containers."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "__nd__" in data:
        dtype, shape, raw, scalar = data["__nd__"]
        dtype = np.dtype(dtype)
        if dtype.kind not in "biufcU" or dtype.hasobject:
            raise ValueError(f"refused an array of {dtype}")
        arr = np.frombuffer(base64.b64decode(raw), dtype=dtype).reshape(tuple(shape)).copy()
        return arr[()] if scalar else arr
    if "__tuple__" in data:
        return tuple(decode(v) for v in data["__tuple__"])
    if "__dict__" in data:
        return {decode(k): decode(v) for k, v in data["__dict__"]}
    if "__float__" in data:
        return float(data["__float__"])
    if "__int__" in data:
        return int(data["__int__"])
    if "__range__" in data:
        value = range(*data["__range__"])
        if len(value) > HELPER_LIMIT:  # the grader would build a list of it in its own time
            raise ValueError(f"refused a range of {len(value)} numbers")
        return value
    if "__rng__" in data:
        rng = np.random.default_rng()
        rng.bit_generator.state = decode(data["__rng__"])
        return rng
    raise ValueError("unknown encoded value")


# --- the child ------------------------------------------------------------------------------

# Runs as ``python -I -S -c CHILD <grader pid> <numpy folder> <allowed roots...>`` (through :data:`BOOT`, from
# its compiled form); reads one request per line.
CHILD = r'''
import sys
def _die_with_grader(grader):
    # SIGKILL when the grader dies (adv13 F2: a child in a session of its own outlived a killed nbgrader).  The
    # signal comes when the thread that started the child ends; a Sandbox is used and closed in one thread.  Set
    # here, first, as the child starts (the grader starts it without a fork of its own large process: vfork)
    import os
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    if os.getppid() != grader:  # the grader died before the line above: nobody would send the signal
        os._exit(1)
_die_with_grader(int(sys.argv.pop(1)))
del _die_with_grader
_PLAIN = sys.argv[1] == "--plain"  # a prediction: plain Python, numpy neither loaded nor readable
sys.path[:] = [p for p in sys.path if p] + ([] if _PLAIN else [sys.argv[1]])
import __future__, ast, base64, builtins, io, json, math, numbers, os, types, traceback
if _PLAIN:
    np = None
else:
    import numpy as np
    import numpy.linalg  # numpy.random and numpy.fft load when first used (a sixth of the child's start-up):
    # the hook lets numpy's own files be read, Landlock too, and neither imports a module the hook refuses
import gc
# "ls:<folder>": the folder may be listed, its files read only where another root allows it (the
# standard library's folders hold site-packages, which must stay unreadable: attnlib may be there)
_LIST_ONLY = tuple(os.path.realpath(p[3:]) for p in sys.argv[2:] if p.startswith("ls:"))
_ALLOWED = tuple(os.path.realpath(p) for p in sys.argv[2:] if not p.startswith("ls:")) + ("/dev/null",)

def _isolate(roots, list_only=()):
    # Landlock (Linux 5.13+): from here on this process and anything it starts may only read the
    # allowed roots, write nowhere, connect nowhere (ABI 4+) and signal no process outside (ABI 6+).
    # Unlike the audit hook this holds against native code too (a learner who rewrites the hook's
    # settings in memory through numpy's __array_interface__, or loads a shared library), and it
    # cannot be undone.  Returns the Landlock ABI used, 0 when the kernel has none.
    if not sys.platform.startswith("linux"):
        return 0
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    create, add, restrict = 444, 445, 446  # the same numbers on every architecture
    abi = syscall(create, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi <= 0:
        return 0
    fs = (1 << 13) - 1 | (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0) | (1 << 15 if abi >= 5 else 0)
    net = 3 if abi >= 4 else 0
    scoped = 3 if abi >= 6 else 0
    attr = (ctypes.c_uint64 * 3)(fs, net, scoped)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = syscall(create, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")

    class Beneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    read_file, read_dir, write_file = 1 << 2, 1 << 3, 1 << 1
    for path in [*roots, *[(p,) for p in list_only]]:
        listing = isinstance(path, tuple)
        path = path[0] if listing else path
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if listing:
                access = read_dir
            else:
                # a file root is read only: with write access an answer opened textwrap.py O_RDWR and
                # rewrote it through a MAP_SHARED mapping (adv11 F1); only /dev/null may be written
                access = read_file | read_dir if os.path.isdir(path) else \
                    read_file | write_file if path == "/dev/null" else read_file
            rule = Beneath(access, fd)
            if syscall(add, ruleset, 1, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
        finally:
            os.close(fd)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS, required by landlock_restrict_self
        raise OSError(ctypes.get_errno(), "prctl")
    if syscall(restrict, ruleset, ctypes.c_uint32(0)) != 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    os.close(ruleset)
    return abi

def _filter_syscalls():
    # seccomp (Linux 3.5+): from here on this process may not create sockets of any kind (Landlock
    # governs TCP only), start processes, threads or programs (fork, vfork, clone, clone3, execve),
    # trace or write other processes, leave its session, make namespaces, or use io_uring
    # (which performs socket operations past this filter).  Nor may it act on other processes of the
    # grading user (adv9 F1): their resource limits (prlimit64 with a pid other than 0 or its own;
    # glibc's getrlimit/setrlimit pass 0), their priority, scheduling, CPU affinity or memory
    # (setpriority, sched_set*, ioprio_set, migrate_pages, move_pages, process_madvise, kcmp), find
    # them by pidfd (pidfd_open, pidfd_send_signal, pidfd_getfd) or signal them (kill, tgkill,
    # rt_sigqueueinfo, rt_tgsigqueueinfo only to itself; tkill never); nor change files' owner or
    # times (the chown and utime families, which Landlock does not govern) or the clock.  It also
    # drops every capability first (a grader running as root would otherwise lend them to the
    # answer).  No thread either (adv13 F1: 200 threads of np.exp, which lets go of the GIL, starved a
    # submission graded at the same time past its time limit): clone is refused whatever its flags, clone3
    # answers ENOSYS so that the C library falls back to clone.  Native code is bound by it too, and it
    # cannot be undone.
    # Returns True when the filter is in place.
    import ctypes, platform
    arches = {"x86_64": (0xC000003E, 56, 435, [41, 53, 57, 58, 59, 322, 101, 112, 109, 272, 308, 425, 426, 427,
                                              310, 311, 321, 298, 323, 165, 246, 320,
                                              141, 142, 144, 203, 314, 251, 256, 279, 440, 312,  # other processes
                                              434, 424, 438, 200,  # pidfd_*, tkill
                                              92, 93, 94, 260, 132, 235, 280, 261,  # chown and utime families
                                              227, 164, 159, 305],  # the clock
                         {302: (0,), 62: (0,), 129: (), 234: (), 297: ()}, 126),
              "aarch64": (0xC00000B7, 220, 435, [198, 199, 221, 281, 117, 157, 154, 97, 268, 425, 426, 427,
                                                270, 271, 280, 241, 282, 40, 104, 294,
                                                140, 118, 119, 122, 274, 30, 238, 239, 440, 272,
                                                434, 424, 438, 130,
                                                55, 54, 88,
                                                112, 170, 171, 266],
                          {261: (0,), 129: (0,), 138: (), 131: (), 240: ()}, 91)}
    if not sys.platform.startswith("linux") or platform.machine() not in arches:
        return False
    arch, clone, clone3, denied, own_only, capset = arches[platform.machine()]
    libc = ctypes.CDLL(None, use_errno=True)
    # no capabilities from here on (effective, permitted, inheritable): chown, utime on others' files,
    # raising a limit, real-time scheduling, setting the clock all need one
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    caps = (ctypes.c_uint32 * 6)()
    libc.syscall.restype = ctypes.c_long
    libc.syscall(capset, ctypes.byref(header), ctypes.byref(caps))
    me = os.getpid()
    allow, kill, eperm, enosys = 0x7FFF0000, 0x80000000, 0x00050000 | 1, 0x00050000 | 38
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, kill), (ld, 0, 0, 0)]
    if platform.machine() == "x86_64":  # x32 system calls (numbers with bit 30 set)
        prog += [(jge, 0, 1, 0x40000000), (ret, 0, 0, eperm)]
    for nr in denied:
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, eperm)]
    for nr, also in own_only.items():
        # the first argument (a pid_t: the kernel reads its low 32 bits, at offset 16 on a little-endian
        # machine) must be this process (or one of ``also``, 0 = itself / its own process group)
        pids = [me, *also]
        block = [(ld, 0, 0, 16)]
        for i, pid in enumerate(pids):
            left = len(pids) - i - 1  # compares still to come after this one
            block.append((jeq, left + 1, 0, pid))  # equal: jump over the rest and the EPERM, to allow
        block += [(ret, 0, 0, eperm), (ret, 0, 0, allow)]
        prog += [(jeq, 0, len(block), nr), *block]
    # no shared writable mapping of a file (adv11 F1: RLIMIT_FSIZE does not cover one, and it writes the
    # file in place): mmap with PROT_WRITE and MAP_SHARED (or MAP_SHARED_VALIDATE) without MAP_ANONYMOUS.
    # Anonymous shared and private mappings stay.  mprotect needs no rule: the kernel refuses to add
    # PROT_WRITE to a shared mapping of a file not opened for writing, and Landlock refuses that open.
    mmap_nr = 9 if platform.machine() == "x86_64" else 222
    prog += [(jeq, 0, 7, mmap_nr), (ld, 0, 0, 32), (jset, 0, 4, 2),  # prot (third argument): PROT_WRITE?
             (ld, 0, 0, 40), (jset, 0, 2, 1), (jset, 1, 0, 0x20),  # flags (fourth): MAP_SHARED, MAP_ANONYMOUS?
             (ret, 0, 0, eperm), (ret, 0, 0, allow)]
    prog += [(jeq, 0, 1, clone3), (ret, 0, 0, enosys)]  # the C library then uses clone, refused below
    prog += [(jeq, 0, 1, clone), (ret, 0, 0, eperm)]  # a process or a thread (CLONE_THREAD) alike
    prog += [(ret, 0, 0, allow)]

    class Instruction(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Instruction))]

    filters = (Instruction * len(prog))(*[Instruction(*i) for i in prog])
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    program = Program(len(prog), filters)
    return libc.prctl(22, 2, ctypes.byref(program), 0, 0) == 0  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER

_ISOLATED = _isolate(_ALLOWED, _LIST_ONLY)  # an error here ends the child before any learner code runs
_FILTERED = _filter_syscalls()
_THREADS = THREADS_MESSAGE  # the grader's THREADS, put in below
def _no_threads():
    # The filter refuses the thread itself (pthread_create fails: Python's "can't start new thread"); these
    # stand-ins say why, and remember that the answer tried (reported with its messages: that exercise scores 0)
    import _thread, threading
    tried = []
    def refuse(*args, **kwargs):
        tried.append(1)
        raise RuntimeError(_THREADS)
    for module in (_thread, threading):
        for name in ("start_new_thread", "start_new", "_start_new_thread", "start_joinable_thread",
                     "_start_joinable_thread"):
            if hasattr(module, name):
                setattr(module, name, refuse)
    return lambda: bool(tried)
_tried_threads = _no_threads()
for _name in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
    del sys.modules[_name]
_out = os.fdopen(os.dup(1), "w")
_in = os.fdopen(os.dup(0), "r")
_null = os.open(os.devnull, os.O_RDWR)
os.dup2(_null, 0); os.dup2(_null, 1)
sys.stdout = io.StringIO(); sys.stdin = io.StringIO()
_BLOCKED = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
            "socket.__new__", "socket.connect", "socket.bind", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata",
            "ctypes.call_function", "os.kill", "os.killpg", "signal.pthread_kill", "sys.remote_exec",
            "os.chdir", "os.chmod", "os.remove", "os.rename", "os.rmdir", "os.mkdir", "shutil.rmtree",
            "os.truncate", "os.link", "os.symlink", "mmap.__new__", "sys.setrecursionlimit",
            "os.startfile", "pty.spawn", "sys._current_frames", "cpython.PyInterpreterState_New",
            "sys.addaudithook", "resource.prlimit", "os.chown", "os.utime", "os.chflags", "os.lchflags",
            "os.setxattr", "os.removexattr", "os.mkfifo", "os.mknod"}
_NO_IMPORT = {"ctypes", "_ctypes", "subprocess", "_posixsubprocess", "socket", "_socket", "multiprocessing",
              "_multiprocessing", "pty", "attnlib"} | ({"numpy"} if _PLAIN else set())
def _install_hook(allowed, blocked, no_import):
    # The hook keeps its settings in this closure and its defaults only: nothing in __main__ refers to
    # them (the names and roots are fresh copies, not str objects an answer can reach and rewrite through
    # numpy), the gc functions that could find it are refused, and an audit hook cannot be removed.  It
    # looks up no module global and no builtin when it runs (adv11 F1: patching os.O_WRONLY and
    # builtins.any switched its write test off): everything it uses is bound here, before any answer runs.
    # It is a second line only: Landlock and the system-call filter hold against native code too.
    copy = "".join
    allowed = tuple(copy(list(r)) for r in allowed)
    prefixes = tuple(copy([r, os.sep]) for r in allowed)
    blocked = frozenset(copy(list(b)) for b in blocked)
    no_import = frozenset(copy(list(n)) for n in no_import)

    # os.path.realpath looks up posixpath's and os's module globals (_joinrealpath, abspath, os.lstat, ...)
    # at every call, and an answer can replace them: this resolver uses only the posix module's C functions
    # and str methods, bound here.  Like realpath (strict=False): a missing component is taken as it is.
    import posix

    def realpath(path, lstat=posix.lstat, readlink=posix.readlink, getcwd=posix.getcwd, error=OSError,
                 kind=0o170000, link=0o120000):
        if not path.startswith("/"):
            path = getcwd() + "/" + path
        todo = path.split("/")[::-1]
        done = []
        hops = 0
        while todo:
            name = todo.pop()
            if name == "" or name == ".":
                continue
            if name == "..":
                if done:
                    done.pop()
                continue
            candidate = "/" + "/".join(done + [name])
            try:
                mode = lstat(candidate).st_mode
            except error:
                mode = 0
            if mode & kind != link:
                done.append(name)
                continue
            hops += 1
            if hops > 40:  # a loop of links: nothing the hook allows
                return ""
            target = readlink(candidate)
            if target.startswith("/"):
                done = []
            todo.extend(target.split("/")[::-1])
        return "/" + "/".join(done)

    def hook(event, args, blocked=blocked, no_import=no_import, allowed=allowed, prefixes=prefixes,
             realpath=realpath, write_flags=os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC,
             denied=PermissionError, missing=ImportError, is_a=isinstance, kind_of=type, text=str, raw=bytes,
             number=int, size=len, firsts=("gc.get_", "ctypes."), modes="wax+"):
        if event in blocked or event.startswith(firsts):
            raise denied(f"not allowed while grading: {event}")
        if event == "import" and args[0].split(".")[0] in no_import:
            raise missing(f"not available while grading: {args[0]}")
        if event == "open":
            path = args[0]
            if is_a(path, number):
                return
            # exactly str or bytes: the kernel opens what __fspath__ gave, which str() of a path-like object
            # or of a str subclass need not repeat (and a second __fspath__ call need not either)
            if kind_of(path) is raw:
                path = path.decode(errors="replace")
            elif kind_of(path) is not text:
                raise denied("not allowed while grading: opening a path given as a " + kind_of(path).__name__)
            real = realpath(path)
            if not (real in allowed or real.startswith(prefixes)):
                raise denied(f"not allowed while grading: opening {path}")
            mode = args[1] if size(args) > 1 and is_a(args[1], text) else "r"
            flags = args[2] if size(args) > 2 and is_a(args[2], number) else 0
            writes = flags & write_flags
            for m in modes:
                if m in mode:
                    writes = True
            if writes:
                raise denied(f"not allowed while grading: writing {path}")

    sys.addaudithook(hook)

def _enc(value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else {"__int__": str(value)}
    if isinstance(value, float):
        return {"__float__": repr(value)} if not math.isfinite(value) else value
    if np is not None and isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biufcU":
            if arr.dtype.kind == "O":
                raise TypeError(f"an array of Python objects ({type(arr.flat[0]).__name__ if arr.size else 'empty'})")
            raise TypeError(f"an array of {arr.dtype}")
        arr = np.array(arr, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        return {"__nd__": [arr.dtype.str, list(arr.shape), base64.b64encode(arr.tobytes()).decode("ascii"),
                           isinstance(value, np.generic)]}
    if isinstance(value, list):  # a list subclass goes as a plain list
        return [_enc(v) for v in value]
    if isinstance(value, tuple):  # a namedtuple such as Result(output, weights) goes as a plain tuple
        return {"__tuple__": [_enc(v) for v in tuple(value)]}
    if type(value) is dict:
        return {"__dict__": [[_enc(k), _enc(v)] for k, v in value.items()]}
    if isinstance(value, range):
        return {"__range__": [value.start, value.stop, value.step]}
    if np is not None and isinstance(value, np.random.Generator):
        return {"__rng__": _enc(value.bit_generator.state)}
    if callable(value):
        return None
    # a Fraction or a Decimal: a number, sent as float (adv14 F3)
    if isinstance(value, numbers.Number) and (isinstance(value, numbers.Real)
                                              or not isinstance(value, numbers.Complex)):
        try:
            return _enc(float(value))
        except (TypeError, ValueError, OverflowError):
            pass
    if np is not None and (hasattr(value, "__array__") or isinstance(value, (list, tuple))):
        return _enc(np.asarray(value))
    raise TypeError(f"a {type(value).__name__}, not numbers or an array")

def _dec(data):
    if isinstance(data, list):
        return [_dec(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "__nd__" in data:
        dtype, shape, raw, scalar = data["__nd__"]
        arr = np.frombuffer(base64.b64decode(raw), dtype=np.dtype(dtype)).reshape(tuple(shape)).copy()
        return arr[()] if scalar else arr
    if "__tuple__" in data:
        return tuple(_dec(v) for v in data["__tuple__"])
    if "__dict__" in data:
        return {_dec(k): _dec(v) for k, v in data["__dict__"]}
    if "__float__" in data:
        return float(data["__float__"])
    if "__int__" in data:
        return int(data["__int__"])
    if "__range__" in data:
        return range(*data["__range__"])
    if "__rng__" in data:
        rng = np.random.default_rng()
        rng.bit_generator.state = _dec(data["__rng__"])
        return rng
    if "__fn__" in data:
        fn = _helper("#" + str(data["__fn__"]))
        fn.__name__ = fn.__qualname__ = "function"
        return fn
    raise ValueError("unknown value")

def _send(message):
    _out.write(json.dumps(message) + "\n")
    _out.flush()

class _HelperError(Exception):
    pass

def _helper_error(text, label):
    # the helper's own error (e.g. "TypeError: ..."), under its own name and naming the helper as the answer
    # called it (adv16 F4: "_HelperError: TypeError: rnn_step() takes 3 positional arguments" named neither)
    kind, sep, rest = text.partition(": ")
    if not (sep and kind.isidentifier()):
        kind, rest = "_HelperError", text
    base = getattr(builtins, kind, None)
    cls = None
    if isinstance(base, type) and issubclass(base, Exception):
        try:
            cls = type(kind, (_HelperError, base), {})  # `except TypeError` catches it, as in the notebook
        except TypeError:
            cls = None
    if cls is None:
        cls = type(kind, (_HelperError,), {})
    return cls(f"{rest} (raised in {label})")

def _helper(path, label=None):
    if label is None:
        label = path
    elif path.startswith("attnlib.grading.aliases."):
        label = (f"{label}, which the grader serves for your function of an earlier exercise, with that "
                 "exercise's signature")
    def helper(*args, **kwargs):
        _send({"op": "helper", "name": path, "args": _enc(list(args)), "kwargs": _enc(kwargs)})
        reply = json.loads(_in.readline())
        if "error" in reply:
            raise _helper_error(reply["error"], label)  # the helper's own message, e.g. a ValueError about shapes
        return _dec(reply["value"])
    helper.__name__ = path.rsplit(".", 1)[-1]
    helper.__qualname__ = path
    return helper

def _namespace(request):
    ns = {"__name__": "__main__", "__builtins__": builtins, "math": math}
    if not _PLAIN:
        ns["np"] = np
    for name, paths in request["helpers"].items():
        if isinstance(paths, str):
            ns[name] = _helper(paths, name)
            continue
        root = types.SimpleNamespace()
        for path, served in paths.items():
            target = root
            *parents, leaf = path.split(".")
            for p in parents:
                if not hasattr(target, p):
                    setattr(target, p, types.SimpleNamespace())
                target = getattr(target, p)
            setattr(target, leaf, _helper(served, f"{name}.{path}"))
        ns[name] = root
    for name, value in request["data"].items():
        ns[name] = _dec(value)
    _stand_in_modules(request["helpers"])
    _stand_in_notebook(ns)
    return ns

class _Nothing:
    # what plotting and the self-checks give back while grading: anything done with it does nothing
    def __call__(self, *args, **kwargs):
        return self
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self
    def __getitem__(self, key):
        return self
    def __iter__(self):
        return iter((self, self))
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return False
    def __repr__(self):
        return "(not available while grading)"

_CELL_MAGICS_RUN = CELL_MAGICS_RUN_TEXT  # the grader's CELL_MAGICS_RUN, put in below
_BODY = "<your answer cell, magic body>"  # its line n is line n + 1 of the cell (the magic's line comes first)
_PRUN_VALUED = "DlsT"  # %prun's options that take a value (IPython: 'D:l:rs:T:q')

def _line_statement(name, line):
    # the statement of `%time stmt` / `%prun stmt`, without the magic's options (adv18 F3)
    words = line.split()
    quiet = False
    while words and words[0].startswith("-"):
        word = words.pop(0)
        if word == "--no-raise-error":
            quiet = True
        elif name == "prun" and word[-1] in _PRUN_VALUED and words:
            words.pop(0)
    return " ".join(words), quiet

class _Shell:
    # get_ipython() for an answer cell written with IPython syntax (turned into calls by the grader):
    # magics and shell lines do nothing, but %%time and its kin run their body, and the line magics %time and
    # %prun their statement, in the answer's namespace as IPython does (%time gives an expression's value back)
    def __init__(self, ns):
        self._ns = ns
    def run_cell_magic(self, name, line, body):
        if name in _CELL_MAGICS_RUN:
            exec(compile(body, _BODY, "exec"), self._ns)
    def run_line_magic(self, name, line, *args, **kwargs):
        if name not in ("time", "prun"):
            return None
        statement, quiet = _line_statement(name, line)
        tree = ast.parse(statement, "<your answer cell>")
        try:
            if name == "time" and len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr):
                return eval(compile(ast.Expression(tree.body[0].value), "<your answer cell>", "eval"), self._ns)
            exec(compile(tree, "<your answer cell>", "exec"), self._ns)
        except Exception:
            if not quiet:
                raise
        return None
    def system(self, *args, **kwargs):
        return None
    def getoutput(self, *args, **kwargs):
        return []
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None

def _stand_in_notebook(ns):
    # what a notebook cell may use besides the answer: the self-checks (attnlib.checks), plotting
    # (matplotlib, attnlib.plotting) and IPython (get_ipython): stand-ins that do nothing
    shell = _Shell(ns)
    ns["get_ipython"] = lambda: shell
    ns["display"] = lambda *args, **kwargs: None  # IPython's built-in display()
    nothing = _Nothing()
    def module(name):
        if name not in sys.modules:
            mod = types.ModuleType(name)
            if name == "attnlib":
                def missing(attr):
                    raise AttributeError(f"not available while grading: attnlib.{attr} (this exercise's answer may "
                                         "use numpy and the helpers the exercise gives)")
            else:
                def missing(attr):
                    if attr.startswith("__"):
                        raise AttributeError(attr)
                    return nothing
            mod.__getattr__ = missing
            sys.modules[name] = mod
        if "." in name:
            parent, leaf = name.rsplit(".", 1)
            setattr(module(parent), leaf, sys.modules[name])
        return sys.modules[name]
    for name in ("attnlib.checks", "attnlib.plotting", "matplotlib.pyplot", "matplotlib.animation",
                 "IPython.display"):
        module(name)
    for name in ("tqdm.auto", "tqdm.notebook", "tqdm.std", "tqdm.autonotebook"):  # adv17 F5: progress bars
        for mod in (module(name), sys.modules["tqdm"]):
            mod.tqdm, mod.trange = _Bar, _trange

class _Bar:
    # tqdm's progress bar while grading: it goes through what it wraps and shows nothing (adv17 F5)
    def __init__(self, iterable=None, *args, **kwargs):
        self._items = iterable
        self.n = 0
    def __iter__(self):
        return iter(() if self._items is None else self._items)
    def __len__(self):
        return len(self._items)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return False
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None

def _trange(*args, **kwargs):
    return _Bar(range(*args))

def _stand_in_modules(helpers):
    # "import attnlib as al" or "from attnlib import recall" in an answer cell (as in the lab's first cell)
    # finds modules that hold exactly this exercise's served helpers, nothing else of attnlib.
    served = []
    for paths in helpers.values():
        served += [paths] if isinstance(paths, str) else list(paths.values())
    served = [p for p in served if p.startswith("attnlib.") and not p.startswith("attnlib.grading.")]
    if not served:
        return

    def module(name):
        if name not in sys.modules:
            mod = types.ModuleType(name)
            def missing(attr, _name=name):
                raise AttributeError(f"not available while grading: {_name}.{attr} (this exercise's answer may "
                                     "use numpy and the helpers the exercise gives)")
            mod.__getattr__ = missing
            sys.modules[name] = mod
            if "." in name:
                parent, leaf = name.rsplit(".", 1)
                setattr(module(parent), leaf, mod)
        return sys.modules[name]

    for path in served:
        parent, leaf = path.rsplit(".", 1)
        setattr(module(parent), leaf, _helper(path, path))

def _describe_error(err):
    try:
        text = str(err)
    except BaseException:
        text = "(its message could not be shown)"
    return {"op": "raised", "type": type(err).__name__, "message": text[:2000],
            "not_implemented": isinstance(err, NotImplementedError)}

def _signature(fn):
    import inspect
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    return [[p.name, int(p.kind), p.default is not p.empty] for p in params]

def _alone(err):
    # an error that comes from running the cell alone, where the notebook's line ran (adv18 F1)
    if isinstance(err, NameError) and not isinstance(err, UnboundLocalError):
        return True
    if isinstance(err, ImportError):
        return True
    try:
        return "while grading" in str(err)
    except BaseException:
        return False

def _error_line(err, statement):
    # the cell's line that raised: inside a %%time body, the body's line (adv18), else the statement's
    line = getattr(statement, "lineno", 0)
    if isinstance(err, SyntaxError) and err.filename == _BODY and err.lineno:
        return err.lineno + 1
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _BODY:
            line = tb.tb_lineno + 1
        tb = tb.tb_next
    return line

def _main():
    # the confinement report is the first message, before the request is read and any line of the answer
    # runs (adv11 F1); the grader takes it from the first message only, so an answer cannot forge it (adv14 F1)
    _send({"op": "confinement", "abi": _ISOLATED, "filtered": bool(_FILTERED)})
    if _ISOLATED < 3 or not _FILTERED:
        return
    request = json.loads(_in.readline())
    ns = _namespace(request)
    if not _PLAIN and "testing" in request["source"]:  # adv17 F7: numpy.testing imports subprocess and socket,
        import numpy.testing                             # refused to an answer: loaded here, before the hook,
        for _name in ("subprocess", "_posixsubprocess", "socket", "_socket"):  # and forgotten again, so that
            sys.modules.pop(_name, None)  # `import subprocess` still fails (the system-call filter refuses a process)
    sys.setrecursionlimit(3000)
    _install_hook(_ALLOWED, _BLOCKED, _NO_IMPORT)
    del globals()["_BLOCKED"], globals()["_NO_IMPORT"]  # the hook holds its own copies
    try:
        tree = ast.parse(request["source"], "<your answer cell>")
    except BaseException as err:
        _send(_describe_error(err) | {"op": "cell raised"})
        return
    # Jupyter stops a cell at its first uncaught exception: so does the grader (adv18 F1), except for an error
    # that comes from running the cell alone (a lab variable the grader does not give, a module or helper it does
    # not serve): in the notebook that line ran, so the statements after it run here too
    first = None  # the first error of a top-level statement
    stopped = False  # the cell stopped at that error (as it does in the notebook)
    flags = 0  # `from __future__ import ...` holds for the statements after it, as in IPython
    skipping = False
    for statement in tree.body:
        if (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
                and statement.value.value == "CELL_BREAK_TEXT"):
            skipping = False
            continue
        if skipping:
            continue
        try:
            if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
                for alias in statement.names:
                    feature = getattr(__future__, alias.name, None)
                    flags |= getattr(feature, "compiler_flag", 0)
            exec(compile(ast.Module([statement], []), "<your answer cell>", "exec", flags=flags,
                         dont_inherit=True), ns)
        except BaseException as err:
            alone = _alone(err)
            if first is None or not alone:
                first = _describe_error(err) | {"line": _error_line(err, statement)}
            if not alone:
                stopped = True
                skipping = True  # up to the next copied cell of this answer, if any (Run All runs each cell)
    fn = ns.get(request["function"])
    if not callable(fn):
        _send(first | {"op": "cell raised", "stopped": stopped} if first else {"op": "missing"})
        return
    ready = {"op": "ready", "signature": _signature(fn), "isolated": _ISOLATED if _FILTERED else 0,
             "threads": _tried_threads(), "stopped": stopped}
    if first is not None:
        ready["cell_error"] = f"{first['type']}: {first['message'][:200]} (line {first['line']})"
    _send(ready)
    while True:
        line = _in.readline()
        if not line:
            return
        call = json.loads(line)
        try:
            args, kwargs = _dec(call["args"]), _dec(call["kwargs"])
            value = fn(*args, **kwargs)
            try:
                message = {"op": "returned", "value": _enc(value), "kind": type(value).__name__,
                           "args_after": _enc(list(args)), "kwargs_after": _enc(kwargs)}
            except TypeError as err:
                message = {"op": "unsendable", "message": str(err), "kind": type(value).__name__}
        except BaseException as err:
            message = _describe_error(err)
        message["threads"] = _tried_threads()
        _send(message)

_main()
'''
CELL_MAGICS_RUN = frozenset({"time", "capture", "prun"})  # their body is the cell's Python, run by the child's
# _Shell (IPython's %%timeit runs its body in a namespace of its own: a def there defines nothing; adv18 F2)
CHILD = CHILD.replace("CELL_MAGICS_RUN_TEXT", repr(CELL_MAGICS_RUN))
CELL_BREAK = "attnlib: the next copied cell of this answer starts here"  # joined copies (nbgrader_step): an error
# stops its own cell only, as in Run All
CHILD = CHILD.replace("CELL_BREAK_TEXT", CELL_BREAK)
CHILD = CHILD.replace("THREADS_MESSAGE  # the grader's THREADS, put in below", repr(THREADS))  # one message


# The child's code is compiled here, once, and handed over compiled (marshal's format, the same interpreter):
# compiling CHILD's source took each child longer than starting Python itself.  The bootstrap leaves no name.
BOOT = ("exec(__import__('marshal').loads(__import__('binascii').a2b_base64(__import__('sys').argv.pop(1))))")
ARG_MAX = 128 * 1024 - 1  # Linux's longest single argument (MAX_ARG_STRLEN, with its NUL)


@functools.lru_cache(maxsize=4)
def _child_command(child: str) -> tuple[str, ...]:
    """``-c`` and the arguments that run ``child`` (CHILD, or a test's variant of it) in the child: its code
    compiled as ``python -c`` would compile it, or its source when the compiled form is too long an argument."""
    import marshal

    code = compile(child, "<string>", "exec", dont_inherit=True, optimize=0)
    blob = base64.b64encode(marshal.dumps(code)).decode("ascii")
    return ("-c", BOOT, blob) if len(blob) < ARG_MAX else ("-c", child)


def _numpy_folder() -> Path:
    """A folder holding only numpy (and its bundled libraries), for the child's ``sys.path``."""
    global _NUMPY_FOLDER
    if _NUMPY_FOLDER is None or not _NUMPY_FOLDER.exists():
        folder = Path(tempfile.mkdtemp(prefix="attn-grading-numpy-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)  # links only: numpy itself stays
        site = Path(np.__file__).resolve().parent.parent
        for name in ("numpy", "numpy.libs"):
            if (site / name).exists():
                (folder / name).symlink_to(site / name)
        _NUMPY_FOLDER = folder
    return _NUMPY_FOLDER


_NUMPY_FOLDER: Path | None = None


PACKAGE_FOLDERS = {"site-packages", "dist-packages"}  # in the standard library's folders, never readable


def _allowed_roots(numpy: bool = True) -> list[str]:
    """:func:`_roots` for this process's numpy folder (worked out once: thousands of paths resolved, per answer)."""
    return list(_roots(str(_numpy_folder()) if numpy else None))


@functools.lru_cache(maxsize=8)
def _roots(numpy_folder: str | None) -> tuple[str, ...]:
    """What the child may read: every entry of the standard library's folders except the installed
    packages in them (a venv's, a Docker image's or conda's site-packages sits inside, and attnlib, its
    reference answers included, may be installed there), numpy unless it runs a prediction, and the
    standard library's folders themselves as ``ls:`` roots (listed, for imports; read through the entries)."""
    site = Path(np.__file__).resolve().parent.parent
    roots = [numpy_folder, str(site / "numpy"), str(site / "numpy.libs")] if numpy_folder else []
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    folders = [sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib")]
    folders += [str(Path(prefix) / "lib" / version) for prefix in (sys.base_prefix, sys.base_exec_prefix)]
    for folder in dict.fromkeys(os.path.realpath(f) for f in folders):
        if not os.path.isdir(folder):
            continue
        roots.append("ls:" + folder)
        roots += [os.path.join(folder, name) for name in sorted(os.listdir(folder)) if name not in PACKAGE_FOLDERS]
    return tuple(dict.fromkeys(r if r.startswith("ls:") else os.path.realpath(r) for r in roots))


def python_source(source: str) -> str:
    """The answer cell as plain Python: IPython's syntax (``%%time``, ``%timeit``, ``!ls``, ``x?``) becomes calls of
    ``get_ipython()``, which the child stubs (magics and shell lines do nothing; ``%%time`` runs its body)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover (IPython comes with Jupyter)
        return source
    try:
        code = TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 (a cell IPython cannot read either: the child reports its SyntaxError)
        return source
    return _magic_body_as_python(code)


def _magic_body_as_python(code: str) -> str:
    """adv17 F4: ``%%time``, ``%%capture``, ``%%prun`` run their body through IPython's own
    transformation (``%timeit``, ``name?``, ``!cmd``, a body indented as a whole): the body in the call of
    ``run_cell_magic`` becomes plain Python the same way, recursively, so the child needs no IPython."""
    import ast

    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return code
    call = tree.body[0].value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr == "run_cell_magic" and len(call.args) == 3
            and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args)
            and call.args[0].value in CELL_MAGICS_RUN):
        return code
    name, line, body = (a.value for a in call.args)
    return f"get_ipython().run_cell_magic({name!r}, {line!r}, {python_source(body)!r})\n"




_FIELDS = {  # what each message from the child must hold (anything else is dropped unread)
    "cell raised": {"type": str, "message": str}, "raised": {"type": str, "message": str},
    "missing": {}, "ready": {"signature": (list, type(None))}, "helper": {"name": str},
    "unsendable": {"message": str}, "returned": {}, "confinement": {"abi": int},
    "unconfined": {"abi": int},  # the report's old name: from an answer, its own malformed message (adv14 F1)
}


def _well_formed(message) -> bool:
    """A message from the child is trusted for nothing: a dict with a known op and fields of the right types."""
    if not isinstance(message, dict) or message.get("op") not in _FIELDS:
        return False
    return all(isinstance(message.get(key), kind) for key, kind in _FIELDS[message["op"]].items())


class Stopped(Exception):
    """The learner's code could not be run to the end (time limit, crash, nothing returned)."""


class LearnerRaised(Exception):
    """Stands for the exception the learner's code raised in the child (same name, same message)."""


def _raised(message: dict) -> Exception:
    if message.get("not_implemented"):
        return NotImplementedError(message["message"])
    cls = type(message["type"], (LearnerRaised,), {})
    return cls(message["message"])


class GraderFault(RuntimeError):
    """The grading machine, not the answer, is at fault: no grade may be given (adv9 F1).

    Raised when an answer's process cannot be started or limited (setting its limits fails when the
    grader's own hard limits were lowered below what it gives each answer)
    or when the grader's own limits, priority, scheduling or CPU affinity are no longer what they
    were when it started.  It is never turned into a student's 0: nbgrader then fails the notebook,
    and ``python -m attnlib.grading.classroom`` reports it NOT GRADED.
    """


_LIMITS = ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC",
           "RLIMIT_STACK", "RLIMIT_MEMLOCK", "RLIMIT_RSS")


def grader_state() -> dict:
    """This process's resource limits, nice value, scheduling policy and CPU affinity (what an answer's
    process could have changed from outside, and every later grading process would inherit)."""
    import resource

    state = {name: resource.getrlimit(getattr(resource, name)) for name in _LIMITS if hasattr(resource, name)}
    if hasattr(os, "getpriority"):
        state["nice"] = os.getpriority(os.PRIO_PROCESS, 0)
    if hasattr(os, "sched_getscheduler"):
        state["scheduling policy"] = os.sched_getscheduler(0)
    if hasattr(os, "sched_getaffinity"):
        state["CPU affinity"] = sorted(os.sched_getaffinity(0))
    return state


def _lower(now, then) -> bool:
    """A limit ``now`` below the limit ``then`` (RLIM_INFINITY, -1, is the largest)."""
    import resource

    def key(v):
        return math.inf if v == resource.RLIM_INFINITY else v

    return any(key(a) < key(b) for a, b in zip(now, then, strict=True))


def check_grader_state(baseline: dict) -> None:
    """Raise :class:`GraderFault` when this process's limits, priority, policy or affinity changed for the
    worse since ``baseline`` (:func:`grader_state` at start), or its hard address-space limit is below
    what each answer's process gets."""
    import resource

    now = grader_state()
    changed = []
    for name, value in now.items():
        then = baseline.get(name)
        if then is None:
            continue
        if name.startswith("RLIMIT_"):
            if _lower(value, then):
                changed.append(f"{name} {then} -> {value}")
        elif name == "nice":
            if value > then:
                changed.append(f"nice {then} -> {value}")
        elif value != then:
            changed.append(f"{name} {then} -> {value}")
    hard_as = now.get("RLIMIT_AS", (resource.RLIM_INFINITY,) * 2)[1]
    if hard_as != resource.RLIM_INFINITY and hard_as < MEMORY_LIMIT:
        changed.append(f"RLIMIT_AS hard limit {hard_as} below the {MEMORY_LIMIT} bytes each answer gets")
    if changed:
        raise GraderFault(
            "the grading process's own limits or scheduling changed since it started (" + "; ".join(changed) +
            "): something (an answer's process, or the machine) acted on it, and every answer graded from here "
            "on could fail for that reason.  Not the answer's fault, and no grade is given: grade again from a "
            "fresh shell, and look at the submission graded just before.")


_BASELINE = grader_state()  # when the grader (nbgrader, classroom, a test) imported this module


def _limit_child(child: int) -> None:
    """The answer's process's limits, set from the grader right after it started and before its request is
    written: the child reads the answer's source only from that request, so no line of the answer runs before.

    (They were set between fork and exec, by ``Popen(preexec_fn=...)``; that forced a ``fork`` of the whole grader,
    hundreds of MB under nbgrader or pytest, for every answer.  Without a ``preexec_fn``, Python starts the child
    with ``vfork``.  The child sets its parent-death signal itself, first thing: see :data:`CHILD`; its session of
    its own comes from ``start_new_session``.)
    """
    import resource

    resource.prlimit(child, resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.prlimit(child, resource.RLIMIT_FSIZE, (0, 0))
    try:  # the first process the system's memory killer takes, before the grader (adv15 F5)
        with open(f"/proc/{child}/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def _one_blas_thread() -> None:
    """Keep this (grading) process's BLAS to one thread before it forks a child (adv12 F2).

    ``Popen(preexec_fn=...)`` forked (the answer's process now starts by vfork, but a helper's worker,
    :class:`_HelperWorker`, is a fork); OpenBLAS stops its worker threads around a fork, so when another grading
    thread was inside a multi-threaded matrix product at that moment, the product waited forever for workers
    that were gone: plain ``nbgrader autograde`` (two grading threads) hung on half the runs of Lab 3.
    With one BLAS thread there are no workers to lose.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")  # each time: something may have raised it since (a few ms)


class _HelperWorker:
    """A fork of the grader that computes the helpers an answer calls, under the answer's limits (adv15 F5).

    A helper's cost grows with what it derives from its arguments (the batch x n_q x n_k weights of attention,
    the vocabulary of ``recall.position_recall`` from the largest token value), which no bound on the arguments
    covers.  So the helper runs here: a copy of the grader made by ``fork`` (it has the grader's attnlib and the
    functions the grader passed to the answer, and nothing of it reaches the answer), whose address space may
    grow by :data:`HELPER_MEMORY_LIMIT` at most, that the grader kills at the answer's deadline, and that dies
    with the thread that made it (``PR_SET_PDEATHSIG``) and first when memory runs short (``oom_score_adj``).
    It reads one request per line (the helper's name and the answer's encoded arguments) and writes one reply
    per line: ``b"R"`` and the reply for the answer (its value, or the helper's error), or ``b"M"`` when the
    helper ran out of its memory.
    """

    def __init__(self, serve: dict, callables: list):
        self.callables = callables  # the list of the call it serves (a later call with functions needs a new one)
        requests_r, requests_w = os.pipe()
        replies_r, replies_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the grader's code
            code = 1
            try:
                _helper_worker(requests_r, replies_w, serve, callables)
                code = 0
            finally:
                os._exit(code)
        os.close(requests_r)
        os.close(replies_w)
        self.pid, self.requests, self.replies = pid, requests_w, replies_r
        os.set_blocking(requests_w, False)
        self.dead = False

    def request(self, name: str, message: dict, deadline: float) -> bool:
        """Send one helper call (the answer's arguments as they came, still encoded); False past the deadline."""
        data = memoryview((json.dumps({"name": name, "args": message.get("args", []),
                                       "kwargs": message.get("kwargs", {})}) + "\n").encode())
        poller = select.poll()
        poller.register(self.requests, select.POLLOUT)
        while data:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for _fd, events in poller.poll(max(1, math.ceil(left * 1000))):
                if events & (select.POLLERR | select.POLLHUP):
                    return False  # the worker is gone: its reply will be missing
                try:
                    data = data[os.write(self.requests, data[:1 << 16]):]
                except BlockingIOError:
                    continue
                except OSError:
                    return False
        return True

    def read(self, deadline: float, *, watch: bool = False) -> bytes | str | None:
        """The worker's next bytes (at most 1 MB; ``b""`` when it is gone), or None at the deadline.

        ``watch`` (while it computes a reply): ``"stuck"`` when it sleeps and has used no processor time for a
        second.  A helper computes, it never waits; a worker that does was forked while another grading thread
        held a lock of the C libraries (numpy's BLAS) and waits for ever: it is made again."""
        poller = select.poll()
        poller.register(self.replies, select.POLLIN)
        seen = self.progress() if watch else None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if poller.poll(max(1, math.ceil(min(left, 1.0 if watch else left) * 1000))):
                try:
                    return os.read(self.replies, 1 << 20)
                except OSError:
                    return b""
            if watch:
                now = self.progress()
                if now is not None and seen is not None and now[0] == "S" and now[1] == seen[1]:
                    return "stuck"
                seen = now

    def progress(self) -> tuple[str, int] | None:
        """The worker's state (``R`` running, ``S`` sleeping, ...) and the processor time it used, in ticks."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return fields[0], int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            return None

    def close(self) -> None:
        if self.dead:
            return
        self.dead = True
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        for fd in (self.requests, self.replies):
            try:
                os.close(fd)
            except OSError:
                pass


def _helper_worker(requests: int, replies: int, serve: dict, callables: list) -> None:
    """The worker's life (in the forked copy of the grader): limits first, then one reply per request."""
    import resource

    # only its two pipes (and 0-2) stay open: a copy of another grading thread's pipe would keep that pipe's
    # reader from seeing the end when its own worker dies
    keep = sorted({0, 1, 2, requests, replies})
    for low, high in zip(keep, [*keep[1:], 1 << 20], strict=True):
        if high > low + 1:
            os.closerange(low + 1, high)
    if _PRCTL is not None:  # SIGKILL when the grading thread that made it ends
        _PRCTL(1, ctypes.c_ulong(signal.SIGKILL), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    try:  # the first process the system's memory killer takes, before the grader
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    with open("/proc/self/statm") as f:  # the grader's address space, shared with the worker; its growth is bounded
        size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = size + HELPER_MEMORY_LIMIT
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    source = os.fdopen(requests, "rb")
    while True:
        line = source.readline()
        if not line:
            return
        try:
            message = json.loads(line)
            name = message["name"]
            if name.startswith("#"):
                fn = callables[int(name[1:])]
            else:
                fn = serve[name]
            try:
                args, kwargs = decode(message["args"]), decode(message["kwargs"])
                too_big = _too_big([*args, *kwargs.values()])
                if too_big:
                    reply = {"error": f"ValueError: {too_big}"}
                else:
                    reply = {"value": encode(fn(*args, **kwargs))}
            except MemoryError:
                raise
            except Exception as err:  # noqa: BLE001 (the helper's complaint goes back to the learner's code)
                reply = {"error": f"{type(err).__name__}: {err}"[:1000]}
            data = b"R" + (json.dumps(reply) + "\n").encode()
            del reply
        except MemoryError:
            data = b"M\n"
        view = memoryview(data)
        while view:
            view = view[os.write(replies, view[:1 << 20]):]
        del data, view


class Sandbox:
    """One learner function, defined by an answer cell's source, running in a fresh child process.

    ``helpers`` maps a name in the cell's namespace either to a served function (``"attnlib.softmax"``)
    or to ``{attribute path: served function}`` (``{"softmax": "attnlib.softmax"}`` makes ``al.softmax``).
    ``data`` maps names to values (arrays, numbers, containers) the cell may read.  ``serve`` maps a
    served name to the grader's function.  Use as a context manager; :meth:`function` is the proxy.
    """

    def __init__(self, source: str, function: str, *, helpers=None, data=None, serve=None,
                 time_limit: float = TIME_LIMIT, plain: bool = False):
        self.source, self.name = source, function
        self.plain = plain  # a prediction: no numpy in the child, data as lists, numbers back
        self.helpers, self.data = dict(helpers or {}), dict(data or {})
        self.serve = dict(serve or {})
        self.time_limit = time_limit
        self.process = None
        self.problem: str | None = None  # why the function cannot be called at all
        self.signature = None
        self.calls = 0
        self.helper_calls: list[str] = []
        self.callables: list = []
        self.callable_names: dict[int, str] = {}  # index in callables -> the parameter it was passed as
        self.worker: _HelperWorker | None = None  # computes the helpers, under the answer's limits (adv15 F5)
        self._buffer = b""  # bytes read from the child, not yet a whole line
        self.isolated = None  # the Landlock ABI the child runs under (0: only the audit hook)
        self.oversized = False  # the child sent a message larger than the grader reads
        self.cell_error: str | None = None  # a top-level statement of the cell failed after the function was defined
        self.cell_stopped = False  # ... and the cell stopped there, as in Jupyter (adv18 F1)
        self.timed_out = False  # the grader killed the child at a deadline (not the system, not the child itself)
        self.threads = False  # the answer tried to start a thread (refused; the exercise scores 0)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self) -> None:
        served = {p for v in self.helpers.values() for p in ([v] if isinstance(v, str) else v.values())}
        unknown = served - set(self.serve)
        if unknown:
            raise ValueError(f"helpers without a served function: {sorted(unknown)}")
        roots = _allowed_roots(numpy=not self.plain)
        # one BLAS thread, set before numpy loads (the child may start no thread: adv13 F1)
        env = {"PATH": "/usr/bin:/bin", **dict.fromkeys(ONE_THREAD, "1"), "LANG": "C.UTF-8"}
        check_grader_state(_BASELINE)  # an earlier answer may have lowered this process's limits
        _one_blas_thread()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", *_child_command(CHILD), str(os.getpid()),
                 "--plain" if self.plain else str(_numpy_folder()), *roots],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                cwd=tempfile.gettempdir(), env=env, start_new_session=True)
            try:
                _limit_child(self.process.pid)  # before the request: no line of the answer runs unlimited
            except BaseException:
                self.close()
                raise
            os.set_blocking(self.process.stdin.fileno(), False)  # every write has a deadline (see _write)
        except Exception as err:  # noqa: BLE001 (whatever failed, it failed before any line of the answer ran)
            raise GraderFault(
                f"the grader could not start the process that runs an answer ({type(err).__name__}: {err}).  This is "
                "a fault of the grading machine (its limits, memory or process table), not the answer: no grade is "
                "given; grade this submission again from a fresh shell.") from err
        data = {k: np.asarray(v).tolist() if self.plain and isinstance(v, np.ndarray | np.generic) else v
                for k, v in self.data.items()}
        request = {"source": python_source(self.source), "function": self.name, "helpers": self.helpers,
                   "data": {k: encode(v) for k, v in data.items()}}
        deadline = time.monotonic() + self.time_limit + 10.0  # the first read includes numpy's import
        self._write(request, deadline)
        message = self._read(deadline)
        # the child's first message, sent before any line of the answer runs: how it is confined (adv14 F1)
        if message is not None and message["op"] == "confinement":
            if message["abi"] < 3 or message.get("filtered") is not True:
                self.close()
                raise GraderFault(
                    f"this machine cannot confine an answer (Landlock ABI {message['abi']}, system-call filter "
                    f"{'on' if message.get('filtered') else 'off'}; grading needs Landlock ABI 3 or later, Linux "
                    "6.2+, and seccomp on x86_64 or aarch64).  Without them an answer can rewrite files the grader "
                    "runs, so no grade is given: grade on a newer kernel.")
            message = self._read(deadline)
        elif message is not None:  # not possible from the child's own code: its first message is the report
            self.problem = "your code wrote to the grader's channel before the grader's first message."
            message = None
        while message is not None and message["op"] == "helper":  # a try-out line in the cell calls a helper
            if not self._serve(message, deadline):  # past the answer's limits: the exercise is over
                message = None
                break
            message = self._read(deadline)
        if message is not None:
            self.threads = self.threads or message.get("threads") is True
        if message is None:
            self.problem = self.problem or self._why_stopped(
                f"your answer cell did not finish within {self.time_limit:g} s.")
        elif message["op"] == "cell raised":
            if message.get("not_implemented"):
                self.problem = f"not implemented yet ({message['message'][:300]})." if message["message"] \
                    else "not implemented yet."
            else:
                self.problem = f"your answer cell raised {message['type']}: {self._explained(message['message'][:300])}"
                line = message.get("line")
                if message.get("stopped") is True and isinstance(line, int) and line > 0:
                    self.problem += (f" (line {line}). A cell stops at its first error, in Jupyter and here: the lines "
                                     f"after line {line} did not run")
                    self.problem += f", so {self.name} was never defined." if re.search(
                        rf"\b{re.escape(self.name)}\b", "\n".join(self.source.splitlines()[line:])) else "."
        elif message["op"] == "missing":
            self.problem = f"your answer cell does not define the function {self.name}."
            if re.match(r"\s*%%timeit\b", self.source) and re.search(rf"\bdef\s+{re.escape(self.name)}\b", self.source):
                self.problem += (f" IPython runs a %%timeit cell's body in a namespace of its own, so the {self.name} "
                                 f"it defines is gone when the cell ends (in your notebook too): define {self.name} in "
                                 "a cell without %%timeit, and time it in another cell.")
        elif message["op"] == "ready":
            self.signature = message["signature"]
            self.isolated = message.get("isolated")
            if isinstance(message.get("cell_error"), str):
                self.cell_error = message["cell_error"][:300]
                self.cell_stopped = message.get("stopped") is True
        else:  # e.g. a forged "confinement" report or "returned" written by the cell itself (adv14 F1)
            self.problem = "your answer cell wrote to the grader's channel (a message the grader did not ask for)."

    def _explained(self, text: str) -> str:
        """The learner's error message, with the rule for predictions when one reached for numpy."""
        if "can't start new thread" in text:  # refused by the filter past the child's stand-ins
            self.threads = True
            return f"{text} ({THREADS})"
        if self.plain and re.search(r"\b(np|numpy)\b", text):
            return f"{text} ({PLAIN_RULE})"
        return text

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
        if self.process is not None:
            for stream in (self.process.stdin, self.process.stdout):
                try:
                    stream.close()
                except (OSError, ValueError):
                    pass

    def _stop_at_deadline(self) -> None:
        self.timed_out = True
        self.close()

    def _why_stopped(self, too_slow: str) -> str:
        """Why the child sent nothing more: too slow (``too_slow``, the grader killed it at a deadline), a
        message too large, killed by the system (out of memory), or it exited or crashed by itself."""
        if self.oversized:
            return ("your code sent the grader a message larger than it reads "
                    f"(over {MESSAGE_LIMIT // 1024**2} MB or {ITEM_LIMIT} items); it was stopped.")
        if self.timed_out:
            return too_slow
        try:  # its end of the pipe closed a moment before it exited: its exit status comes right after
            code = self.process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self.close()  # it closed its output and lives on: it is stopped like a slow one
            return too_slow
        if code == -signal.SIGKILL:  # not sent by the grader (timed_out is False): the system's memory killer
            return (f"your code was stopped by the system, most likely for using more memory than an answer gets "
                    f"({MEMORY_LIMIT // 1024**3} GB).")
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return (f"your code stopped the grading process (it exited or crashed: {name}; running out of the "
                    f"{MEMORY_LIMIT // 1024**3} GB of memory an answer gets is one cause).")
        return "your code stopped the grading process (it exited or crashed)."

    def _write(self, message, deadline: float, raw: bytes | None = None) -> bool:
        """Send one message to the child by ``deadline`` (a monotonic time); False when it could not be sent.

        The child's input is non-blocking and every write waits for room with ``poll`` until the deadline, and
        what the child writes meanwhile is read into the buffer, so that neither pipe can fill up and hold both
        sides (adv13 F2: a child that asked for a helper's reply of megabytes and never read it held a blocking
        write for ever, the time limit never came).  A child that does not take its input in time is killed.
        """
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin.closed or stdout.closed:
            return False
        data = memoryview((json.dumps(message) + "\n").encode() if raw is None else raw)
        out, inp = stdin.fileno(), stdout.fileno()
        poller = select.poll()
        poller.register(out, select.POLLOUT)
        poller.register(inp, select.POLLIN)
        while data:
            left = deadline - time.monotonic()
            if left <= 0:
                self._stop_at_deadline()
                return False
            for fd, events in poller.poll(max(1, math.ceil(left * 1000))):
                if fd == inp:
                    if not self._take(inp):  # the child closed its output (or sent too much): no reader left
                        poller.unregister(inp)
                        if stdout.closed:
                            return False
                elif events & (select.POLLERR | select.POLLHUP):  # the child closed its input
                    return False
                elif events & select.POLLOUT:
                    try:
                        sent = os.write(out, data[:1 << 16])
                    except BlockingIOError:
                        continue
                    except OSError:  # BrokenPipeError: the child is gone
                        return False
                    data = data[sent:]
        return True

    def _take(self, fd: int) -> bool:
        """Read what the child has written into the buffer; False at its end of output or past the size limit."""
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            return True
        except OSError:
            chunk = b""
        if not chunk:
            return False
        self._buffer += chunk
        if len(self._buffer) > MESSAGE_LIMIT:
            self.oversized = True
            self.close()
            self._buffer = b""
            return False
        return True

    def _read(self, deadline: float):
        """The child's next message, or None when it is silent until ``deadline`` (a monotonic time) or gone.

        Reads raw bytes as they come (never a blocking ``readline``: a child that writes half a line
        and waits would otherwise hold the grader past the time limit) into a buffer of at most
        :data:`MESSAGE_LIMIT` bytes (a child that writes without end is stopped).
        """
        if self.process.stdout.closed:
            return None
        fd = self.process.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            if b"\n" in self._buffer:
                line, _, self._buffer = self._buffer.partition(b"\n")
                if line.count(b",") > ITEM_LIMIT:  # refused before json.loads builds its objects in this process
                    self.oversized = True
                    self.close()
                    self._buffer = b""
                    return None
                try:
                    message = json.loads(line)
                except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested without end
                    continue
                if _well_formed(message):
                    return message
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                self._stop_at_deadline()
                return None
            if not poller.poll(max(1, math.ceil(left * 1000))):
                continue
            if not self._take(fd):
                return None

    def call(self, *args, **kwargs):
        """Call the learner's function in the child: its value, or the exception it raised."""
        if self.problem is not None:
            if self.problem.startswith("not implemented yet"):
                raise NotImplementedError(self.problem.removeprefix("not implemented yet").strip(" ().") or "")
            raise Stopped(self.problem)
        if self.process.poll() is not None:
            raise Stopped("your code stopped the grading process (it exited or crashed).")
        self.calls += 1
        self.callables = callables = []  # this call's own list (see encode)
        message = {"op": "call", "args": encode(list(args), callables), "kwargs": encode(kwargs, callables)}
        names = [p[0] for p in self.signature or []]
        given = [*zip(names, args, strict=False), *kwargs.items()]
        self.callable_names = {i: name for name, value in given for i, fn in enumerate(callables) if fn is value}
        deadline = time.monotonic() + self.time_limit  # for the call's every write and read, helpers' included
        self._write(message, deadline)
        while True:
            message = self._read(deadline)
            if message is None:
                self.problem = self._why_stopped(f"your function did not finish within {self.time_limit:g} s "
                                                 "(an endless loop?); it was stopped.")
                self.close()
                raise Stopped(self.problem)
            op = message["op"]
            self.threads = self.threads or message.get("threads") is True
            if op == "helper":
                if not self._serve(message, deadline):  # past the answer's limits: the exercise is over
                    raise Stopped(self.problem)
                continue
            if op == "raised":
                raise _raised({**message, "message": self._explained(message["message"])})
            if op == "unsendable":
                raise Stopped(f"your function returned {message['message']}.")
            if op == "returned":
                changed = _changed_inputs(args, decode(message["args_after"]), kwargs,
                                          decode(message["kwargs_after"]))
                value = decode(message["value"])
                if changed is not None:
                    raise InputChanged(changed)
                return value
            raise Stopped("your code sent something the grader does not understand.")

    def _serve(self, message, deadline: float) -> bool:
        """Compute a helper the answer called, in the worker, and send its reply to the answer by ``deadline``.

        False when the helper went past the answer's memory limit or deadline: the child is then stopped and
        :attr:`problem` says which library call did it (the exercise scores 0)."""
        name = str(message.get("name"))
        fn = self.serve.get(name)
        if name.startswith("#") and name[1:].isdigit() and int(name[1:]) < len(self.callables):
            fn = self.callables[int(name[1:])]
        self.helper_calls.append(str(name))
        if fn is None:
            self._write({"error": f"{name} is not available in this exercise."}, deadline)
            return True
        if self.worker is not None and self.callables and self.worker.callables is not self.callables:
            self.worker.close()  # made for another call: it does not have this call's functions
            self.worker = None
        outcome, chunk = "time", None
        for _attempt in range(3):
            if self.worker is None:
                _one_blas_thread()
                try:
                    self.worker = _HelperWorker(self.serve, self.callables)
                except OSError as err:
                    raise GraderFault(
                        f"the grader could not start the process that computes a helper ({type(err).__name__}: "
                        f"{err}).  This is a fault of the grading machine, not the answer: no grade is given; grade "
                        "this submission again from a fresh shell.") from err
            worker = self.worker
            if not worker.request(name, message, deadline):
                break
            chunk = worker.read(deadline, watch=True)
            if chunk != "stuck":
                break
            worker.close()  # forked while another thread held a lock: made again (see _HelperWorker.read)
            self.worker = None
        else:
            chunk = None
        if isinstance(chunk, bytes):
            outcome, first = "gone", True
            while True:
                if chunk is None:
                    outcome = "time"
                    break
                if not chunk:
                    break
                if first:
                    first = False
                    if chunk[:1] != b"R":
                        outcome = "memory"
                        break
                    chunk = chunk[1:]
                if not self._send(chunk, deadline):  # the answer's process is gone or did not read: it says why
                    worker.close()  # the rest of this reply must not be read as the next one's
                    self.worker = None
                    return True
                if chunk.endswith(b"\n"):
                    return True
                chunk = worker.read(deadline)
        label = self._helper_label(name)
        if outcome == "time":
            self.timed_out = True
            self.problem = (f"a library call from your answer ({label}) did not finish within {self.time_limit:g} s "
                            "(the time limit covers the library calls your code makes); it was stopped.")
        else:
            limit = f"{HELPER_MEMORY_LIMIT / 1024**3:.4g} GB"
            self.problem = (f"a library call from your answer ({label}) used more than the {limit} of memory an "
                            "answer gets; it was stopped." if outcome == "memory" else
                            f"a library call from your answer ({label}) was stopped by the system, most likely for "
                            f"using more than the {limit} of memory an answer gets.")
        self.close()
        return False

    def _helper_label(self, name: str) -> str:
        """How the learner calls the helper ``name``: ``al.softmax``, ``recall.one_hot``, ``the function attend``."""
        if name.startswith("#"):
            param = self.callable_names.get(int(name[1:]))
            return f"the function {param} your function was given" if param else "a function your function was given"
        for alias, paths in self.helpers.items():
            if paths == name:
                return alias
            if isinstance(paths, dict):
                for attr, path in paths.items():
                    if path == name:
                        return f"{alias}.{attr}"
        return name

    def _send(self, data: bytes, deadline: float) -> bool:
        """Like :meth:`_write`, for bytes already encoded (a helper's reply, relayed as it comes)."""
        return self._write(None, deadline, data)

    def function(self):
        """A stand-in for the learner's function: calling it calls the function in the child."""
        def learner_function(*args, **kwargs):
            args = tuple(a for a in args if a is not _DEFAULT)
            kwargs = {k: v for k, v in kwargs.items() if v is not _DEFAULT}
            return self.call(*args, **kwargs)

        learner_function.__name__ = learner_function.__qualname__ = self.name
        if self.signature is not None:
            params = []
            for name, kind, has_default in self.signature:
                params.append(inspect.Parameter(name, inspect._ParameterKind(kind),
                                                default=_DEFAULT if has_default else inspect.Parameter.empty))
            try:
                learner_function.__signature__ = inspect.Signature(params)
            except ValueError:
                pass
        return learner_function


HELPER_LIMIT = 2 * 10**6  # numbers in a helper's argument (and in a range sent back)
SIZE_LIMIT = 4096  # the largest integer argument and the longest axis of an array argument of a helper
# A helper's cost can grow with the square or the cube of a size (al.causal_mask(30000) took 35 s and 2.6 GB;
# a ridge fit of width 12000, minutes), so every size a helper is given stays below what the labs' largest
# inputs need, with room to spare: refused at once, with a message that names the argument.  This is the
# quick answer for one large argument, not the bound: what a helper derives from small arguments (a batch
# times n_q times n_k weights, a vocabulary from the largest token value) is bounded by its worker's memory
# limit and deadline (_HelperWorker; adv15 F5).


def _too_big(values) -> str | None:
    """Why a helper call is refused at once (an argument far larger than the labs need), or None."""
    for value in values:
        if isinstance(value, bool):
            continue
        if isinstance(value, int | np.integer) and abs(int(value)) > SIZE_LIMIT:
            return (f"an integer argument of {int(value)} is larger than this exercise needs "
                    f"(at most {SIZE_LIMIT}).")
        if isinstance(value, np.ndarray) and (value.size > HELPER_LIMIT or max(value.shape, default=0) > SIZE_LIMIT):
            return (f"an array of shape {value.shape} is larger than this exercise needs "
                    f"(at most {SIZE_LIMIT} along an axis, {HELPER_LIMIT} numbers).")
        if isinstance(value, list | tuple):
            inner = _too_big(value)
            if inner:
                return inner
        if isinstance(value, dict):
            inner = _too_big(list(value.values()))
            if inner:
                return inner
    return None


class _Default:
    def __repr__(self):
        return DEFAULT


_DEFAULT = _Default()


class InputChanged(Exception):
    """The learner's function changed one of its inputs in place."""


def _changed_inputs(args, after, kwargs, kwargs_after) -> str | None:
    from attnlib.checks._calls import changed

    for i, (before, now) in enumerate(zip(args, after, strict=False)):
        where = changed(before, now, f"argument {i + 1}")
        if where:
            return where
    for key, before in kwargs.items():
        where = changed(before, kwargs_after.get(key), key)
        if where:
            return where
    return None
