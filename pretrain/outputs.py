"""The files a run writes under --out, each failure (a full disk, a quota, a removed folder) stopped
with the file named and the last good checkpoint kept: exit 2, as every bad input.

Python's logging would print a traceback for a failed log.txt write and go on; TensorBoard writes
its events in a background thread (tensorboard's event_file_writer._AsyncWriter) whose error is
printed there as a traceback and raised again at the next call from the training loop.
"""
import logging
import os
import shutil
import sys
import threading

from mocodata.validate import DataError


def write_failed(path, e, ckpt):
    """The DataError for a failed write of `path` (OSError, or torch's RuntimeError for a short write)."""
    reason = getattr(e, "strerror", None)
    if not reason:  # torch's zip writer: "[enforce fail at inline_container.cc] unexpected pos ..."
        free = free_bytes(path)
        reason = f"the write stopped short{f', {free / 2**20:.1f} MiB free on its file system' if free is not None else ''}"
    kept = (f"the last good checkpoint {ckpt} is kept" if os.path.exists(ckpt)
            else "no checkpoint was written yet")
    return DataError(path, f"cannot write ({reason}); {kept}: free space (or fix the folder) and run the same "
                           "command again to continue")


def free_bytes(path):
    try:
        return shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    except OSError:
        return None


class JsonLines:
    """log.jsonl, one record a line, each flushed at once so that a full disk is found at its line."""

    def __init__(self, path, ckpt):
        self.path, self.ckpt = path, ckpt
        try:
            self.f = open(path, "a")
        except OSError as e:
            raise write_failed(path, e, ckpt) from None

    def write(self, line):
        try:
            self.f.write(line)
            self.f.flush()
        except OSError as e:
            raise write_failed(self.path, e, self.ckpt) from None

    def close(self):
        try:
            self.f.close()
        except OSError:  # its last line already failed, and said so
            pass


class LogFile(logging.FileHandler):
    """log.txt; a failed write stops the run naming it (logging.Handler.handleError would print a
    traceback and go on)."""

    def __init__(self, path, ckpt):
        self.ckpt = ckpt
        try:
            super().__init__(path)
        except OSError as e:
            raise write_failed(path, e, ckpt) from None

    def handleError(self, record):
        e = sys.exc_info()[1]
        if isinstance(e, OSError):
            raise write_failed(self.baseFilename, e, self.ckpt) from None
        super().handleError(record)


class Board:
    """TensorBoard's SummaryWriter in OUT/tb, its background thread's write errors named here."""

    def __init__(self, logdir, ckpt):
        from torch.utils.tensorboard import SummaryWriter

        self.path, self.ckpt = logdir, ckpt
        quiet_writer_thread()
        try:
            self.w = SummaryWriter(logdir)
        except OSError as e:
            raise write_failed(logdir, e, ckpt) from None

    def add_scalar(self, tag, value, step):
        try:
            self.w.add_scalar(tag, value, step)
        except OSError as e:
            raise write_failed(self.path, e, self.ckpt) from None

    def close(self):
        try:
            self.w.flush()  # raises the thread's error; SummaryWriter.close alone would drop it
            self.w.close()
        except OSError as e:
            raise write_failed(self.path, e, self.ckpt) from None


def quiet_writer_thread():
    """TensorBoard's writer thread keeps its OSError for the next add_scalar/close, which names the
    folder; its own traceback print is dropped (other threads' errors print as before)."""
    previous = threading.excepthook
    if getattr(previous, "quiet_writer_thread", False):
        return

    def hook(args):
        if not (isinstance(args.exc_value, OSError) and type(args.thread).__name__ == "_AsyncWriterThread"):
            previous(args)

    hook.quiet_writer_thread = True
    threading.excepthook = hook
