"""run_python's seccomp filter: a classic-BPF program, built here with struct, that bwrap loads (--seccomp FD).

The filter is the last layer inside the namespaces. It answers EPERM (the code sees a PermissionError,
nothing is killed) to the system calls that reach the kernel's larger attack surfaces or could undo
the namespaces: ptrace and the cross-process memory calls, every mount call, keyrings, bpf,
perf_event_open, namespaces (unshare, setns, clone with a CLONE_NEW* flag), io_uring (whose
operations seccomp cannot see), modules, kexec, reboot, swap, clocks, userfaultfd, file handles,
TIOCSTI; and sockets of any family but AF_UNIX, AF_INET and AF_INET6, and raw ones of those two (no
netlink, no packet sockets). clone3 answers ENOSYS: its flags live in memory a filter cannot read,
and glibc falls back to clone, whose flags it can.

A system call of another architecture (an i386 int 0x80 from an x86_64 process, or x32's
numbers) is refused whole: the numbers below mean something else there. Each table was checked
against libseccomp's (tests/security/test_seccomp.py).
"""

from __future__ import annotations

import errno
import platform
import struct

# linux/audit.h
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000

# fmt: off
_COMMON = (
    "ptrace", "process_vm_readv", "process_vm_writev",  # other processes' memory
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "open_tree",
    "mount_setattr",  # the filesystem tree
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",  # large kernel surfaces
    "io_uring_setup", "io_uring_enter", "io_uring_register",  # operations seccomp cannot see
    "unshare", "setns",  # namespaces
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff",
    "acct", "settimeofday", "clock_settime", "syslog", "quotactl", "lookup_dcookie", "personality", "fanotify_init",
    "open_by_handle_at", "name_to_handle_at",  # file handles reach past the mount namespace
)
# fmt: on

# fmt: off
SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "mount": 165, "umount2": 166, "pivot_root": 155,
        "chroot": 161, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "open_tree": 428,
        "mount_setattr": 442, "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321, "perf_event_open": 298,
        "unshare": 272, "setns": 308, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
        "delete_module": 176, "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163, "open_by_handle_at": 304,
        "name_to_handle_at": 303, "userfaultfd": 323, "settimeofday": 164, "clock_settime": 227, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "syslog": 103, "quotactl": 179, "lookup_dcookie": 212,
        "personality": 135, "fanotify_init": 300, "iopl": 172, "ioperm": 173, "uselib": 134, "clone": 56, "clone3": 435,
        "socket": 41, "ioctl": 16,
    },
    "aarch64": {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "mount": 40, "umount2": 39, "pivot_root": 41,
        "chroot": 51, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "open_tree": 428,
        "mount_setattr": 442, "keyctl": 219, "add_key": 217, "request_key": 218, "bpf": 280, "perf_event_open": 241,
        "unshare": 97, "setns": 268, "kexec_load": 104, "kexec_file_load": 294, "init_module": 105, "finit_module": 273,
        "delete_module": 106, "reboot": 142, "swapon": 224, "swapoff": 225, "acct": 89, "open_by_handle_at": 265,
        "name_to_handle_at": 264, "userfaultfd": 282, "settimeofday": 170, "clock_settime": 112, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "syslog": 116, "quotactl": 60, "lookup_dcookie": 18,
        "personality": 92, "fanotify_init": 262, "clone": 220, "clone3": 435, "socket": 198, "ioctl": 29,
    },
}
# fmt: on
_X86_ONLY = ("iopl", "ioperm", "uselib")

# Every CLONE_NEW* flag (sched.h): a clone that asks for any namespace is refused.
CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
SOCK_RAW, SOCK_TYPE_MASK = 3, 0xF
TIOCSTI = 0x5412

# linux/filter.h and linux/seccomp.h
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JSET_K = 0x45
_JGE_K = 0x35
_AND_K = 0x54
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_NR, _ARCH, _ARG0, _ARG1 = 0, 4, 16, 24  # offsets in struct seccomp_data (low 32 bits of each argument)


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> tuple[int, int, int, int]:
    return (code, jt, jf, k)


def _errno(value: int) -> tuple[int, int, int, int]:
    return _op(_RET_K, _RET_ERRNO | value)


def supported(machine: str | None = None) -> bool:
    return (machine or platform.machine()) in SYSCALLS


def program(machine: str | None = None) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions, for this machine's architecture."""
    arch = machine or platform.machine()
    table = SYSCALLS[arch]
    denied = [table[name] for name in _COMMON] + ([table[name] for name in _X86_ONLY] if arch == "x86_64" else [])
    prog = [
        _op(_LD_W_ABS, _ARCH),
        _op(_JEQ_K, AUDIT_ARCH[arch], jt=1),
        _op(_RET_K, _RET_KILL_PROCESS),
        _op(_LD_W_ABS, _NR),
    ]
    if arch == "x86_64":
        prog += [_op(_JGE_K, X32_SYSCALL_BIT, jf=1), _op(_RET_K, _RET_KILL_PROCESS)]
    for nr in denied:  # each: equal -> EPERM, else on to the next test
        prog += [_op(_JEQ_K, nr, jf=1), _errno(errno.EPERM)]
    prog += [_op(_JEQ_K, table["clone3"], jf=1), _errno(errno.ENOSYS)]
    # clone: refused when any namespace flag is set in its first argument.
    prog += [
        _op(_JEQ_K, table["clone"], jf=4),
        _op(_LD_W_ABS, _ARG0),
        _op(_JSET_K, CLONE_NAMESPACES, jf=1),
        _errno(errno.EPERM),
        _op(_RET_K, _RET_ALLOW),
    ]
    # ioctl(fd, TIOCSTI): pushing characters into a terminal's input (there is none, but cheap to shut).
    prog += [
        _op(_JEQ_K, table["ioctl"], jf=4),
        _op(_LD_W_ABS, _ARG1),
        _op(_JEQ_K, TIOCSTI, jf=1),
        _errno(errno.EPERM),
        _op(_RET_K, _RET_ALLOW),
    ]
    # socket(domain, type, ...): AF_UNIX; AF_INET and AF_INET6 but not raw; nothing else.
    prog += [
        _op(_JEQ_K, table["socket"], jf=10),
        _op(_LD_W_ABS, _ARG0),
        _op(_JEQ_K, AF_UNIX, jt=7),
        _op(_JEQ_K, AF_INET, jt=2),
        _op(_JEQ_K, AF_INET6, jt=1),
        _errno(errno.EAFNOSUPPORT),
        _op(_LD_W_ABS, _ARG1),
        _op(_AND_K, SOCK_TYPE_MASK),
        _op(_JEQ_K, SOCK_RAW, jf=1),
        _errno(errno.EPERM),
        _op(_RET_K, _RET_ALLOW),
    ]
    prog.append(_op(_RET_K, _RET_ALLOW))
    return prog


def compiled(machine: str | None = None) -> bytes:
    """The program as the kernel's struct sock_filter array (u16 code, u8 jt, u8 jf, u32 k)."""
    return b"".join(struct.pack("=HBBI", *ins) for ins in program(machine))
