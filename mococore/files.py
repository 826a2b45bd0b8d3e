"""Files written one way: to a temporary name beside the target, flushed to disk, then renamed over it, so a
killed writer (or a lost power supply) never leaves a half file under the real name."""
import json
import os
import tempfile

from mococore.errors import UserError


def replace_atomically(writes):
    """writes: {path: write}. Each write(tmp) fills a temporary file beside its path; once every one is written
    and on disk, each is renamed over its path, so no path is replaced unless all were written. On any failure
    (Ctrl-C included) the temporary files are removed and the failure is raised as it came."""
    tmps = {}
    try:
        for path, write in writes.items():
            d = os.path.dirname(os.path.abspath(path))
            os.makedirs(d, exist_ok=True)
            fd, tmps[path] = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.basename(path))
            os.close(fd)  # the suffix keeps the extension, which np.savez and savefig read the format from
            write(tmps[path])
            settle(tmps[path])
        for path, tmp in tmps.items():
            os.replace(tmp, path)
    finally:
        for tmp in tmps.values():
            if os.path.exists(tmp):
                os.remove(tmp)


def settle(tmp):
    """The permissions open() would have given (mkstemp makes the file private), and the bytes on disk before
    the rename makes them the real file (else a crash can leave an empty file under the real name)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, write):
    """write(tmp_path), then rename tmp_path to path; UserError naming the path when it cannot be written."""
    try:
        replace_atomically({path: write})
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e})") from None


def text_writer(text):
    """The write function, for atomic_write or replace_atomically, that writes this string."""
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            f.write(text)

    return write


def atomic_text(path, text):
    atomic_write(path, text_writer(text))


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
