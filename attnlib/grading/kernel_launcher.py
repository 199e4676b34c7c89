"""Start a Jupyter kernel that cannot write where grades live: ``python kernel_launcher.py SCRATCH -- CMD...``.

nbgrader's Execute step runs the submitted notebook in a kernel, with the grader's rights: an answer
cell there could start a process that outlives nbgrader and rewrites ``gradebook.db`` or
``autograded/`` afterwards.  This launcher confines itself with Landlock (Linux 5.13+; irreversible,
inherited by every child, a detached one included) and then becomes the kernel (``execvp``): from then
on the kernel and anything it starts may read and execute files anywhere, but write only inside
``SCRATCH`` (a private temporary folder made for this kernel), ``/dev/null`` and the kernel's own
connection file, and (Linux 6.12+) signal no process outside itself and its children.  IPython's
folder, the temporary folder and matplotlib's cache point into ``SCRATCH``.  Where the kernel has no
Landlock, the kernel starts unconfined and a warning says so.

Run with ``python -I -S`` from :class:`attnlib.grading.nbgrader_step.ConfinedKernelManager`: standard
library only, so that nothing on the course's paths is imported before the confinement.
"""

import ctypes
import os
import sys

UNCONFINED = ("attnlib: this kernel has no Landlock (Linux 5.13+): nbgrader's Execute kernel runs the "
              "submission with your rights and can write the gradebook; grade without --execute or on a "
              "newer kernel")


def confine(writable_dirs, writable_files) -> int:
    """Landlock: read and execute anywhere, write only in ``writable_dirs`` and ``writable_files``.

    Returns the Landlock ABI used; 0 when the kernel has none (nothing is confined then).
    """
    if not sys.platform.startswith("linux"):
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    create, add, restrict = 444, 445, 446  # the same numbers on every architecture
    abi = syscall(create, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi <= 0:
        return 0
    execute, write_file, read_file, read_dir = 1 << 0, 1 << 1, 1 << 2, 1 << 3
    refer = 1 << 13 if abi >= 2 else 0
    truncate = 1 << 14 if abi >= 3 else 0
    ioctl_dev = 1 << 15 if abi >= 5 else 0
    every = (1 << 13) - 1 | refer | truncate | ioctl_dev  # every filesystem right of this ABI: all handled
    # network: not restricted (the kernel talks to nbgrader over TCP); signals and abstract unix sockets (ABI 6+):
    # only within this kernel's own processes, so that it cannot stop nbgrader, classroom or another student's run
    scoped = 3 if abi >= 6 else 0
    attr = (ctypes.c_uint64 * 3)(every, 0, scoped)
    ruleset = syscall(create, ctypes.byref(attr), ctypes.c_size_t(24 if abi >= 6 else 16 if abi >= 4 else 8),
                      ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")

    class Beneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    rules = [("/", execute | read_file | read_dir | ioctl_dev)]
    rules += [(d, every) for d in writable_dirs]
    rules += [(f, write_file | read_file | truncate | ioctl_dev) for f in writable_files]
    for path, access in rules:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
        try:
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


def connection_files(cmd) -> list[str]:
    """The ``-f FILE`` / ``--f=FILE`` connection file of a kernel command line."""
    found = []
    for i, arg in enumerate(cmd):
        if arg == "-f" and i + 1 < len(cmd):
            found.append(cmd[i + 1])
        elif arg.startswith(("--f=", "-f=")):
            found.append(arg.split("=", 1)[1])
    return found


def main(argv) -> None:
    if len(argv) < 3 or argv[1] != "--":
        raise SystemExit("usage: kernel_launcher.py SCRATCH -- KERNEL COMMAND...")
    scratch, cmd = os.path.realpath(argv[0]), argv[2:]
    for name, sub in (("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "matplotlib"), ("TMPDIR", "tmp")):
        os.makedirs(os.path.join(scratch, sub), exist_ok=True)
        os.environ[name] = os.path.join(scratch, sub)
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    abi = confine([scratch], ["/dev/null", *connection_files(cmd)])
    if not abi:
        print(UNCONFINED, file=sys.stderr)
    os.environ["ATTNLIB_KERNEL_LANDLOCK"] = str(abi)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
