"""Atomic writes, locks and progress output."""

from __future__ import annotations

import io
import multiprocessing
import os
import time

import pytest

from podkit_common import atomic, errors, jsonio
from podkit_common.locks import FileLock, object_lock
from podkit_common.progress import Progress


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path):
    target = tmp_path / "rec.json"
    atomic.write_json(target, {"v": 1})
    atomic.write_json(target, {"v": 2})
    assert atomic.read_json(target) == {"v": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["rec.json"]


def test_atomic_write_failure_keeps_old_content(tmp_path, monkeypatch):
    target = tmp_path / "rec.json"
    atomic.write_json(target, {"v": 1})

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", boom)
    with pytest.raises(OSError):
        atomic.write_json(target, {"v": 2})
    assert atomic.read_json(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["rec.json"]


def _hold(path, seconds):
    with FileLock(path):
        time.sleep(seconds)


def test_lock_times_out_while_another_process_holds_it(tmp_path):
    path = tmp_path / "locks" / "x.lock"
    holder = multiprocessing.get_context("fork").Process(target=_hold, args=(path, 2))
    holder.start()
    try:
        deadline = time.monotonic() + 5
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        with pytest.raises(errors.Timeout), FileLock(path, timeout=0.2):
            pass
    finally:
        holder.join()
    with object_lock(tmp_path / "locks", "x", "y", timeout=1):
        pass


@pytest.mark.parametrize("timeout", [None, 10.0], ids=["blocking", "polling"])
def test_a_lock_file_unlinked_by_its_holder_stays_one_lock(tmp_path, timeout):
    """A waiter on the file its holder unlinked must not share the lock with a newcomer
    that made the file again: it checks the name and locks the new file instead."""
    import threading

    path = tmp_path / "x.lock"
    holder = FileLock(path)
    holder.acquire()
    waiter, got = FileLock(path, timeout=timeout), threading.Event()

    def wait() -> None:
        waiter.acquire()
        got.set()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    try:
        time.sleep(0.2)                 # the waiter has opened the old file and waits on it
        holder.unlink()
        assert not path.exists()
        with FileLock(path, timeout=1):  # a newcomer makes the file again and holds it
            holder.release()
            assert not got.wait(0.5), "the waiter holds a lock on a file nobody else uses"
        assert got.wait(5)
        assert os.fstat(waiter._fd).st_ino == os.stat(path).st_ino
    finally:
        holder.release()
        thread.join(10)
        waiter.release()


def test_lock_is_released_when_the_holder_dies(tmp_path):
    path = tmp_path / "x.lock"
    p = multiprocessing.get_context("fork").Process(target=_hold, args=(path, 30))
    p.start()
    time.sleep(0.3)
    p.kill()
    p.join()
    with FileLock(path, timeout=2):
        pass


def test_progress_json_lines_validate():
    from podkit_common.schemas import SchemaSet

    out = io.StringIO()
    prog = Progress("pod-image-pull", "json", stream=out, interval=0)
    task = prog.task("blob sha256:abc", 10)
    task.advance(4)
    task.finish()
    events = [jsonio.loads(line) for line in out.getvalue().splitlines()]
    assert events[-1]["progress"]["done"] is True
    for e in events:
        SchemaSet([]).validate(e, "urn:podkit:common:progress")


def test_progress_none_and_auto_on_a_pipe_are_silent():
    out = io.StringIO()
    prog = Progress("t", "auto", stream=out)
    prog.task("x", 3).finish()
    assert out.getvalue() == ""


def test_progress_bar_draws_on_one_line():
    out = io.StringIO()
    prog = Progress("t", "bar", stream=out, interval=0)
    task = prog.task("blob", 100)
    task.advance(50)
    task.finish()
    text = out.getvalue()
    assert "\r" in text and "50%" in text and text.endswith("\n")


def test_a_lock_whose_object_is_gone_takes_its_file_along(tmp_path):
    """``keep_while``: a late comer (conmon's exit command after `run --rm`, a second
    rm) that locks a removed object made the file again and left it for good."""
    obj = tmp_path / "objects" / "a"
    lock = object_lock(tmp_path / "locks", "thing", "a", keep_while=(obj,))
    with lock:
        assert lock.path.exists()
    assert not lock.path.exists()           # the object never was: nothing stays
    obj.mkdir(parents=True)
    with lock:
        pass
    assert lock.path.exists()               # the object is there: its lock file stays
    with lock:
        obj.rmdir()                         # removed under the lock
    assert not lock.path.exists()
    with object_lock(tmp_path / "locks", "thing", "a", shared=True, keep_while=(obj,)):
        pass
    assert lock.path.exists()               # a shared holder never unlinks


def test_the_stages_locks_of_gone_objects_leave_no_file(tmp_path):
    from podkit_common.roots import Roots
    from podkit_netsetup._networks import NetworkStore
    from podkit_runtime import _pod_record, _state
    from podkit_runtime._pod_members import hosts_lock
    from podkit_storage._layout import StoreLayout

    roots = Roots(tmp_path / "root", tmp_path / "runroot")
    gone = "0" * 64
    with _state.lock(roots, gone), _pod_record.lock(roots, gone), hosts_lock(roots, gone), \
            StoreLayout(roots).container_lock(gone), NetworkStore(roots).lock("gone"):
        assert len(os.listdir(tmp_path / "root" / "locks")) == 4
    assert os.listdir(tmp_path / "root" / "locks") == []
    assert not (NetworkStore(roots).state / "gone.lock").exists()
