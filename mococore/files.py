"""Files written one way: to a temporary name beside the target, then renamed over it, so a killed
writer never leaves a half file under the real name."""
import json
import os
import tempfile

from mococore.errors import UserError


def atomic_write(path, write):
    """write(tmp_path), then rename tmp_path to path; UserError naming the path when it cannot be written."""
    d = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.basename(path))
        os.close(fd)
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the output is an ordinary file
        os.replace(tmp, path)
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        if tmp and os.path.exists(tmp):
            os.remove(tmp)


def atomic_text(path, text):
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            f.write(text)

    atomic_write(path, write)


def atomic_json(path, obj, **kwargs):
    atomic_text(path, json.dumps(obj, indent=1, **kwargs))


def read_json(path):
    """(object, None) for a readable JSON file; (None, why) for a missing, truncated or corrupt one."""
    if not os.path.isfile(path):
        return None, "missing"
    try:
        with open(path) as f:
            return json.load(f), None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return None, f"unreadable ({type(e).__name__}: {str(e).splitlines()[0][:120]})"


def lock_folder(out, who):
    """An exclusive flock on OUT/.lock for this process's life (the kernel drops it when the process dies):
    one run per output folder. Returns the lock's file descriptor; UserError naming the lock when another
    process holds it, or the folder when it cannot be written."""
    import fcntl

    try:
        os.makedirs(out, exist_ok=True)
        fd = os.open(os.path.join(out, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise UserError(f"{out}: cannot write the output folder ({e.strerror}); choose a writable one") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise UserError(f"{os.path.join(out, '.lock')}: another {who} is using this folder (it holds this lock); "
                        "wait for it to end or choose another output folder") from None
    return fd
