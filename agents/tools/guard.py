"""run_python's in-process guard: an audit hook installed before the agent's code runs. Defence in depth only.

It lives in the same interpreter as the code it watches, so the code can rewrite its state (the
module globals below; `import __main__` is this script): nothing relies on it. The kernel keeps the
code in (agents/tools/jail.py). What the guard adds: the kernel limits (setrlimit, before the code
runs, which the code cannot raise again), a readable refusal for the common mistakes (a socket, a
subprocess, a write outside the workspace) instead of a bare errno, and under the unsafe mode (no
namespaces) the only barrier there is, which a one-liner removes (docs/security.md says which).
"""

GUARD = r"""
import json, os, resource, sys
_CONFIG = json.loads(sys.argv[1])
# The kernel's limits first: the code cannot raise a hard limit again.
for _name, _value in _CONFIG["limits"].items():
    resource.setrlimit(getattr(resource, _name), tuple(_value))
ROOT = os.path.realpath(os.getcwd())
BLOCK_NET = _CONFIG["block_net"]
# What the code may read besides its workspace: the interpreter's library directories, and devices.
READ_DIRS = tuple(_CONFIG["read_dirs"])
READ_FILES = ("/dev/null", "/dev/urandom")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
MAGIC = "*?["

def _real(path):
    # Relative paths resolve against the real working directory (os.chdir is confined too).
    return os.path.realpath(os.fsdecode(path))

def _within(real, root):
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)

def _inside(path):
    try:
        return _within(_real(path), ROOT)
    except Exception:
        return False

def _is_devnull(path):
    try:
        return _real(path) == "/dev/null"
    except Exception:
        return False

def _readable(path):
    try:
        real = _real(path)
    except Exception:
        return False
    if real == "/proc" or real.startswith("/proc/"):
        return False  # other processes' environments and command lines, the worker's own included
    return _within(real, ROOT) or real in READ_FILES or any(_within(real, d) for d in READ_DIRS)

def _refuse(what):
    raise PermissionError("sandbox: " + what)

_PATH_EVENTS = {"os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.utime", "os.truncate",
                "os.chdir", "shutil.rmtree", "shutil.copyfile", "shutil.copytree", "shutil.move"}
_LIST_EVENTS = {"os.listdir", "os.scandir"}
_PROCESS_EVENTS = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                   "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg", "ctypes.dlopen", "ctypes.dlsym",
                   "ctypes.cdata", "ctypes.call_function"}
_NET_EVENTS = {"socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
               "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"}

def _hook(event, args):
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None, 0))[:3]
        if path is None or isinstance(path, int):
            return
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & WRITE_FLAGS)
        if writing and not (_inside(path) or _is_devnull(path)):
            _refuse("writing outside the workspace is refused: %s" % (os.fsdecode(path),))
        if not writing and not _readable(path):
            _refuse("reading outside the workspace is refused: %s" % (os.fsdecode(path),))
    elif event in _LIST_EVENTS:
        path = args[0] if args else None
        if path is None or isinstance(path, int):
            return  # the working directory, or a directory opened (and checked) already
        if not _readable(path):
            _refuse("listing outside the workspace is refused: %s" % (os.fsdecode(path),))
    elif event in ("glob.glob", "glob.glob/2"):
        # glob swallows a refused scandir and answers []; refuse the pattern itself, by the
        # directory before its first wildcard.
        pattern = os.fsdecode(args[0])
        if len(args) > 2 and args[2] is not None:
            pattern = os.path.join(os.fsdecode(args[2]), pattern)
        cut = min([pattern.find(c) for c in MAGIC if c in pattern] or [len(pattern)])
        base = os.path.dirname(pattern[:cut]) or "."
        if not _readable(base):
            _refuse("listing outside the workspace is refused: %s" % (pattern,))
    elif event in _PATH_EVENTS:
        if args and not (event == "os.chdir" and isinstance(args[0], int)) and not _inside(args[0]):
            _refuse("%s outside the workspace is refused: %s" % (event, os.fsdecode(args[0])))
        if event in ("shutil.copyfile", "shutil.copytree", "shutil.move") and len(args) > 1 and not _inside(args[1]):
            _refuse("%s outside the workspace is refused: %s" % (event, os.fsdecode(args[1])))
    elif event == "os.rename":
        if not (_inside(args[0]) and _inside(args[1])):
            _refuse("renaming across the workspace boundary is refused")
    elif event in ("os.symlink", "os.link"):
        _refuse("links are refused in the workspace")
    elif event in _PROCESS_EVENTS:
        _refuse("%s is refused (no new processes, no ctypes)" % (event,))
    elif BLOCK_NET and event in _NET_EVENTS:
        _refuse("network access is refused")

# The code is read before the hook is in place: it lives beside the workspace, not in it.
with open(_CONFIG["main"], encoding="utf-8") as _f:
    _source = _f.read()
del _f
sys.addaudithook(_hook)
sys.argv = ["main.py"]
exec(compile(_source, "main.py", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
"""
