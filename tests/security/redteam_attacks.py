"""The red team's escape attempts against run_python (run by tests/security/redteam.py).

Each code is formatted with the host's values ({SECRET_FILE}, {PORT_TCP}, {VICTIM_PID}, {NR_bpf}...;
literal braces are doubled) and prints ESCAPED only when the step that would break out succeeded.
`unsafe` is what HORIZON_SANDBOX_UNSAFE's mode (no namespaces, the hook disarmed) is expected to
let through when the worker is root, as in CI: "escapes", "held" (the rlimits, the clean
environment or the wall-time kill still hold), or "varies" (depends on the host's kernel settings).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Attack:
    name: str
    code: str
    unsafe: str = "escapes"
    disarm: bool = True  # replace the audit hook by a no-op first: test the kernel alone
    host_check: Callable[[dict[str, Any]], str] | None = None


def _created(path: str) -> Callable[[dict[str, Any]], str]:
    def check(values: dict[str, Any]) -> str:
        target = path.format(**values)
        if os.path.lexists(target):
            os.remove(target)
            return f"{target} was created on the host"
        return ""

    return check


def _removed(pattern: str) -> Callable[[dict[str, Any]], str]:
    """Clean-up only: the attempt's own output says whether it got through."""

    def check(values: dict[str, Any]) -> str:
        for path in glob.glob(pattern.format(**values)):
            os.remove(path)
        return ""

    return check


# syscall() is variadic: every integer goes as a long, or the upper halves of its registers are garbage.
CT = (
    "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\n"
    "def sc(*args):\n    return libc.syscall(*[ctypes.c_long(a) if isinstance(a, int) else a for a in args])\n"
)


def _call(setup: str, expr: str, what: str) -> str:
    """Code that makes one C call and says ESCAPED when it succeeded (>= 0), or the errno it got."""
    return (
        CT + setup + "r = " + expr + "\nif r >= 0:\n    print('ESCAPED: " + what + "', r)\n"
        "else:\n    print('refused:', os.strerror(ctypes.get_errno()))\n"
    )


READ = "data = open({path!r}, 'rb').read()\nprint('ESCAPED: read', len(data), 'bytes', data[:60])\n"
SURVIVOR = (
    CT + "import time\n"
    "r, w = os.pipe()\n"
    "{fork}"
    "    libc.prctl(15, b'{MARKER}', 0, 0, 0)\n"
    "    os.write(w, b'x')\n"
    "    time.sleep(30)\n"
    "    os._exit(0)\n"
    "os.read(r, 1)\n"
    "print('child started')\n"
)
SINGLE_FORK = "if os.fork() == 0:\n    os.setsid()\n"
DOUBLE_FORK = "if os.fork() == 0:\n    os.setsid()\n    if os.fork() != 0:\n        os._exit(0)\n"


ATTACKS: list[Attack] = [
    # --- reading outside the workspace -----------------------------------------------------------
    Attack("read /etc/passwd", READ.format(path="/etc/passwd")),
    Attack("read /etc/shadow", READ.format(path="/etc/shadow")),
    Attack("read a file of the repository (manage.py)", READ.format(path="{REPO}/manage.py")),
    Attack("read a world-readable file in another directory of /tmp", READ.format(path="{SECRET_FILE}")),
    Attack(
        "read the worker's environment: /proc/<ppid>/environ",
        "import os\ndata = open('/proc/%d/environ' % os.getppid(), 'rb').read()\nprint('ESCAPED', data)\n",
    ),
    Attack("read the worker's environment by pid: /proc/<worker>/environ", READ.format(path="/proc/{WORKER_PID}/environ")),
    Attack("read the worker's memory map: /proc/<worker>/maps", READ.format(path="/proc/{WORKER_PID}/maps")),
    Attack(
        "read the worker's open files: /proc/<worker>/fd", "import os\nprint('ESCAPED', os.listdir('/proc/{WORKER_PID}/fd'))\n"
    ),
    Attack("read the host's mounts: /proc/self/mountinfo", READ.format(path="/proc/self/mountinfo")),
    Attack("read /proc/1/environ (the host's init)", READ.format(path="/proc/1/environ"), unsafe="varies"),
    Attack(
        "list / for the host's directories",
        "import os\nfound = set(os.listdir('/')) & {{'home', 'var', 'proc', 'boot', 'srv', 'opt', 'work'}}\n"
        "if found:\n    print('ESCAPED', sorted(found))\n",
    ),
    Attack("list another directory of /tmp", "import os\nprint('ESCAPED', os.listdir('{HOST_DIR}'))\n"),
    Attack(
        "stat a file of the repository", "import os\nif os.path.exists('{REPO}/manage.py'):\n    print('ESCAPED: it exists')\n"
    ),
    Attack(
        "read through a directory descriptor (openat)",
        "import os\nfd = os.open('/etc', os.O_RDONLY | os.O_DIRECTORY)\n"
        "print('ESCAPED', os.read(os.open('passwd', os.O_RDONLY, dir_fd=fd), 60))\n",
    ),
    Attack(
        "read through a symlink in the workspace",
        "import os\nos.symlink('{SECRET_FILE}', 'link')\nprint('ESCAPED', open('link').read())\n",
    ),
    Attack(
        "read through a hard link in the workspace",
        "import os\nos.link('{SECRET_FILE}', 'hard')\nprint('ESCAPED', open('hard').read())\n",
    ),
    Attack(
        "map a file outside with mmap",
        "import mmap, os\nfd = os.open('{SECRET_FILE}', os.O_RDONLY)\n"
        "print('ESCAPED', mmap.mmap(fd, 0, prot=mmap.PROT_READ)[:60])\n",
    ),
    # --- writing outside the workspace -----------------------------------------------------------
    Attack(
        "write into /etc",
        "open('/etc/horizon-redteam-{MARKER}', 'w').write('x')\nprint('ESCAPED: wrote /etc')\n",
        host_check=_created("/etc/horizon-redteam-{MARKER}"),
    ),
    Attack(
        "write into another directory of /tmp",
        "open('{HOST_DIR}/pwned', 'w').write('x')\nprint('ESCAPED')\n",
        host_check=_created("{HOST_DIR}/pwned"),
    ),
    Attack(
        "write into the repository",
        "open('{REPO}/horizon-redteam-{MARKER}', 'w').write('x')\nprint('ESCAPED')\n",
        host_check=_created("{REPO}/horizon-redteam-{MARKER}"),
    ),
    Attack(
        "write into the interpreter's standard library",
        "import os\np = os.path.join(os.path.dirname(os.__file__), 'horizon_redteam_{MARKER}.py')\n"
        "open(p, 'w').write('x')\nos.remove(p)\nprint('ESCAPED: wrote', p)\n",
    ),
    Attack(
        "write to /dev (a new device file)",
        "open('/dev/horizon-redteam-{MARKER}', 'w').write('x')\nprint('ESCAPED')\n",
        host_check=_created("/dev/horizon-redteam-{MARKER}"),
    ),
    Attack(
        "write to /dev/shm",
        "open('/dev/shm/horizon-redteam-{MARKER}', 'w').write('x')\nprint('ESCAPED')\n",
        host_check=_created("/dev/shm/horizon-redteam-{MARKER}"),
    ),
    Attack(
        "open /proc/sysrq-trigger for writing (not written)",
        "f = open('/proc/sysrq-trigger', 'a')\nf.close()\nprint('ESCAPED')\n",
        unsafe="varies",
    ),
    # --- the network ------------------------------------------------------------------------------
    Attack(
        "TCP over IPv4 to a port of the worker's host", "import socket\nsocket.create_connection(('127.0.0.1', {PORT_TCP}), 2)\n"
    ),
    Attack(
        "TCP over IPv6 to a port of the worker's host",
        "import socket\nsocket.create_connection(('::1', {PORT_TCP6}), 2)\n",
        unsafe="varies",  # needs IPv6 on the host's loopback
    ),
    Attack(
        "UDP to a port of the worker's host",
        "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "for _ in range(5):\n    s.sendto(b'x', ('127.0.0.1', {PORT_UDP}))\n    time.sleep(0.05)\n",
    ),
    Attack("a unix socket of the host (by path)", "import socket\nsocket.socket(socket.AF_UNIX).connect('{UNIX_PATH}')\n"),
    Attack(
        "a unix socket of the host (abstract name)", "import socket\nsocket.socket(socket.AF_UNIX).connect('\\0{ABSTRACT}')\n"
    ),
    Attack(
        "a netlink socket",
        "import socket\nsocket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)\nprint('ESCAPED: netlink socket')\n",
    ),
    Attack(
        "a packet socket", "import socket\nsocket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)\nprint('ESCAPED: packet socket')\n"
    ),
    Attack(
        "a raw IP socket",
        "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\nprint('ESCAPED: raw socket')\n",
    ),
    Attack(
        "name resolution",
        "import socket\nprint('ESCAPED', socket.getaddrinfo('example.com', 80)[:1])\n",
        unsafe="varies",  # needs the host's DNS
    ),
    # --- processes --------------------------------------------------------------------------------
    Attack(
        "start a shell",
        "import subprocess\nprint('ESCAPED', subprocess.run(['/bin/sh', '-c', 'id'], capture_output=True).stdout)\n",
    ),
    Attack("exec a system binary", "import os\nos.execv('/bin/echo', ['echo', 'ESCAPED: exec'])\n"),
    Attack("libc system() through ctypes", CT + "r = libc.system(b'echo ESCAPED-by-system')\nprint('system() returned', r)\n"),
    Attack("a child that outlives the call (fork + setsid)", SURVIVOR.replace("{fork}", SINGLE_FORK)),
    Attack("a grandchild that outlives the call (double fork)", SURVIVOR.replace("{fork}", DOUBLE_FORK)),
    Attack("a signal to a process outside", "import os, signal\nos.kill({VICTIM_PID}, signal.SIGKILL)\n"),
    Attack("a signal to the worker", "import os, signal\nos.kill({WORKER_PID}, signal.SIGUSR1)\n"),
    Attack("ptrace a process outside", _call("", "libc.ptrace(16, {VICTIM_PID}, 0, 0)", "attached")),
    Attack("ptrace itself (PTRACE_TRACEME)", _call("", "libc.ptrace(0, 0, 0, 0)", "traced")),
    Attack(
        "process_vm_readv (the call itself, on its own memory)",
        _call(
            "buf = ctypes.create_string_buffer(8)\niov = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 8)\n",
            "sc({NR_process_vm_readv}, os.getpid(), iov, 1, iov, 1, 0)",
            "permitted",
        ),
    ),
    # --- the kernel's larger surfaces ---------------------------------------------------------------
    Attack(
        "mount a filesystem",
        _call("os.mkdir('m')\n", "libc.mount(b'none', b'm', b'tmpfs', 0, None)", "mounted")
        + "if r == 0:\n    libc.umount2(b'm', 2)\n",
    ),
    Attack("unshare a new user namespace", _call("", "libc.unshare(0x10000000)", "unshared")),
    Attack(
        "setns back into the host's mount namespace",
        _call("fd = os.open('/proc/1/ns/mnt', os.O_RDONLY)\n", "libc.setns(fd, 0)", "setns"),
        unsafe="varies",  # /proc/1 may belong to another user namespace (a container's, a VM's init)
    ),
    Attack("chroot", _call("", "libc.chroot(b'.')", "chroot")),
    Attack(
        "keyctl: read the session keyring",
        _call("", "sc({NR_keyctl}, 0, -3, 1)", "keyring"),
    ),
    Attack(
        "bpf: create a map",
        _call("attr = (ctypes.c_uint32 * 30)(1, 4, 4, 1)\n", "sc({NR_bpf}, 0, attr, ctypes.sizeof(attr))", "bpf map"),
    ),
    Attack(
        "perf_event_open",
        _call(
            "attr = (ctypes.c_uint32 * 32)(1, 128, 0, 0)\n",
            "sc({NR_perf_event_open}, attr, 0, -1, -1, 0)",
            "perf event",
        ),
        unsafe="varies",
    ),
    Attack(
        "io_uring_setup",
        _call("params = (ctypes.c_uint32 * 30)()\n", "sc({NR_io_uring_setup}, 4, params)", "io_uring"),
        unsafe="varies",
    ),
    Attack(
        "map /dev/mem",
        "import mmap, os\nfd = os.open('/dev/mem', os.O_RDONLY)\n"
        "print('ESCAPED', len(mmap.mmap(fd, 4096, prot=mmap.PROT_READ)))\n",
        unsafe="varies",
    ),
    # --- the in-process guard, rewritten by the one-liners (no disarm) ----------------------
    Attack(
        "guard: import __main__ as g; g.READ_DIRS=('/',)",
        "import __main__ as g; g.READ_DIRS=('/',)\n" + READ.format(path="/etc/passwd"),
        disarm=False,
    ),
    Attack(
        "guard: g._PROCESS_EVENTS=set()",
        "import __main__ as g; g._PROCESS_EVENTS=set()\nimport subprocess\n"
        "print('ESCAPED', subprocess.run(['id'], capture_output=True).stdout)\n",
        disarm=False,
    ),
    Attack(
        "guard: g.BLOCK_NET=False",
        "import __main__ as g; g.BLOCK_NET=False\nimport socket\nsocket.create_connection(('127.0.0.1', {PORT_TCP}), 2)\n",
        disarm=False,
    ),
    Attack(
        "guard: g._readable=lambda p: True",
        "import __main__ as g; g._readable=lambda p: True\nimport os\n"
        "print('ESCAPED', open('/proc/%d/environ' % os.getppid(), 'rb').read())\n",
        disarm=False,
    ),
    # --- the environment --------------------------------------------------------------------------
    Attack(
        "the worker's DATABASE_URL and OPENAI_API_KEY in the environment",
        "import os\nfor k in ('DATABASE_URL', 'OPENAI_API_KEY'):\n"
        "    if k in os.environ:\n        print('ESCAPED', k, os.environ[k])\n",
        unsafe="held",
    ),
    # --- resources --------------------------------------------------------------------------------
    Attack(
        "a fork bomb (bounded at 400 forks)",
        "import os, time\nn = 0\ntry:\n    for _ in range(400):\n        if os.fork() == 0:\n            time.sleep(20)\n"
        "            os._exit(0)\n        n += 1\nexcept OSError as e:\n    print('stopped after', n, e)\n"
        "if n > 64:\n    print('ESCAPED: forked', n)\n",
        unsafe="escapes",  # as root: RLIMIT_NPROC does not bind root
    ),
    Attack(
        "a memory bomb (2 GiB)",
        "b = bytearray(2 * 1024 * 1024 * 1024)\nprint('ESCAPED: allocated', len(b))\n",
        unsafe="held",
    ),
    Attack(
        "fill the disk through the workspace (1 GiB)",
        "import os\nchunk = b'x' * (1024 * 1024)\nfor i in range(64):\n    with open('fill%d' % i, 'wb') as f:\n"
        "        for _ in range(16):\n            f.write(chunk)\nprint('ESCAPED: wrote 1 GiB')\n",
        unsafe="held",
    ),
    Attack(
        "fill the disk through /tmp (256 MiB)",
        "import os\nchunk = b'x' * (1024 * 1024)\nfor i in range(16):\n"
        "    with open('/tmp/horizon-redteam-{MARKER}-%d' % i, 'wb') as f:\n"
        "        for _ in range(16):\n            f.write(chunk)\n"
        "print('ESCAPED: wrote 256 MiB')\n",
        host_check=_removed("/tmp/horizon-redteam-{MARKER}-*"),
    ),
    Attack("an infinite loop", "while True:\n    pass\n", unsafe="held"),
    Attack("an endless sleep", "import time\ntime.sleep(3600)\nprint('ESCAPED: woke up')\n", unsafe="held"),
]
