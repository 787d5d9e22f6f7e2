"""podkit_common.spawn: starting conmon and runc without subprocess.

Real processes (/bin/sh), no mocks: the fds a child holds, where they sit, its signal
dispositions, working directory and process group; capturing both streams of a chatty
child without deadlock; exit codes, timeouts and start failures.
"""

from __future__ import annotations

import os
import signal
import sys

import pytest

from podkit_common import errors
from podkit_common import spawn as _spawn

SH = "/bin/sh"
#: the shell's own fds (ls is its child: its own directory fd is not the shell's)
LIST_FDS = "ls -1 /proc/$$/fd"


def _lines(data: bytes) -> list[str]:
    return data.decode().split()


def _status_mask(pid_status: str, key: str) -> int:
    for line in pid_status.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no {key} in status")


def _spawned_output(tmp_path, *, script: str, **kwargs) -> tuple[int, str]:
    out = tmp_path / "out"
    with open(out, "wb") as f:
        pid = _spawn.spawn([SH, "-c", script], env={"PATH": "/usr/bin:/bin"},
                           stdout=f.fileno(), **kwargs)
        code = _spawn.wait(pid, timeout=30)
    return code, out.read_text()


def test_spawn_hands_over_exactly_stdio_and_the_given_fds_at_3_and_up(tmp_path):
    # bait: an inheritable fd far up and a non-inheritable one, neither for the child
    bait = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(bait, True)
    high = os.dup2(bait, 57)
    hidden = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    try:
        # given in an order that puts one source on another's target
        code, text = _spawned_output(
            tmp_path, fds=(w2, w1),
            script=f"{LIST_FDS}; echo first >&3; echo second >&4")
        assert code == 0
        assert text.split() == ["0", "1", "2", "3", "4"]
        os.close(w1)
        os.close(w2)
        w1 = w2 = -1
        assert os.read(r2, 100) == b"first\n"  # fds[0] at 3
        assert os.read(r1, 100) == b"second\n"  # fds[1] at 4
    finally:
        for fd in (bait, high, hidden, r1, r2, w1, w2):
            if fd >= 0:
                os.close(fd)


def test_spawn_without_stdio_gives_dev_null(tmp_path):
    code, text = _spawned_output(tmp_path, script="readlink /proc/$$/fd/0 /proc/$$/fd/2")
    assert code == 0
    assert text.split() == ["/dev/null", "/dev/null"]


def test_spawn_restores_signals_python_ignores_and_glibcs_own(tmp_path):
    # Python ignores SIGPIPE (and SIGXFSZ); glibc's posix_spawn would leave its
    # internal signals 32 and 33 ignored: none of that may reach conmon (and the
    # container through it).
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
    code, text = _spawned_output(tmp_path, script="cat /proc/$$/status")
    assert code == 0
    ignored = _status_mask(text, "SigIgn")
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, 32, 33):
        assert not ignored & (1 << (sig - 1)), sig


def test_spawn_in_a_directory_and_its_own_process_group(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    code, text = _spawned_output(
        tmp_path, cwd=str(work), process_group=True,
        script='pwd; echo $$; cut -d" " -f5 /proc/$$/stat')
    assert code == 0
    cwd, pid, pgid = text.split()
    assert cwd == str(work)
    assert pid == pgid  # its own group, led by itself
    assert int(pgid) != os.getpgid(0)


def test_spawn_failures_are_oserrors_naming_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError) as missing:
        _spawn.spawn([str(tmp_path / "no-such-program")], env={})
    assert missing.value.filename == str(tmp_path / "no-such-program")
    with pytest.raises(FileNotFoundError) as no_dir:
        _spawn.spawn([SH, "-c", "true"], env={}, cwd=str(tmp_path / "gone"))
    assert no_dir.value.filename == str(tmp_path / "gone")
    plain = tmp_path / "plain"
    plain.write_text("not a program")
    with pytest.raises(PermissionError):
        _spawn.spawn([str(plain)], env={})


def test_a_failure_is_reported_whatever_fds_the_caller_holds():
    # In a process holding nothing beyond 0-2, the child's error pipe would land on a
    # target fd (3, 4) or a temporary one; it must survive the shuffle to report.
    code = """
import os
from podkit_common import spawn as _spawn
os.closerange(3, 256)
for fds in ((), (1,), (1, 2), (2, 1, 0)):
    try:
        _spawn.spawn(["/no/such/program"], env={}, fds=fds)
    except FileNotFoundError:
        print("raised")
"""
    done = _spawn.run([sys.executable, "-c", code], env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [b"raised"] * 4


def test_run_captures_both_streams_of_a_chatty_child_without_deadlock():
    # 1 MiB on each stream, stderr first: a reader of one pipe only would stall it
    script = "head -c 1048576 /dev/zero >&2; head -c 1048576 /dev/zero; exit 7"
    done = _spawn.run([SH, "-c", script], env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.returncode == 7
    assert len(done.stdout) == len(done.stderr) == 1 << 20


def test_run_separates_streams_and_gives_dev_null_as_stdin():
    done = _spawn.run([SH, "-c", "echo out; echo err >&2; cat; ls -1 /proc/$$/fd"],
                      env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0
    assert done.stdout.split() == [b"out", b"0", b"1", b"2"]
    assert done.stderr == b"err\n"


def test_a_bare_name_is_looked_up_on_the_childs_path(tmp_path):
    program = tmp_path / "bin" / "say-hi"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\necho hi\n")
    program.chmod(0o755)
    env = {"PATH": f"{program.parent}:/usr/bin:/bin"}
    assert _spawn.run(["say-hi"], env=env).stdout == b"hi\n"
    out = tmp_path / "out"
    with open(out, "wb") as f:
        assert _spawn.wait(_spawn.spawn(["say-hi"], env=env, stdout=f.fileno())) == 0
    assert out.read_bytes() == b"hi\n"
    with pytest.raises(FileNotFoundError):
        _spawn.run(["say-hi"], env={"PATH": "/usr/bin:/bin"})


def test_run_reports_a_signal_as_a_negative_code():
    done = _spawn.run([SH, "-c", "kill -KILL $$"], env={})
    assert done.returncode == -signal.SIGKILL


def test_run_kills_a_child_that_overruns_its_timeout():
    with pytest.raises(errors.Timeout):
        _spawn.run([SH, "-c", "echo $$; exec sleep 30"], env={"PATH": "/usr/bin:/bin"},
                   timeout=0.3)


def test_wait_times_out_and_leaves_the_child_to_the_caller():
    pid = _spawn.spawn(["/bin/sleep", "30"], env={})
    try:
        with pytest.raises(errors.Timeout):
            _spawn.wait(pid, timeout=0.2)
    finally:
        os.kill(pid, signal.SIGKILL)
    assert _spawn.wait(pid) == -signal.SIGKILL


def test_which_finds_programs_on_path(monkeypatch, tmp_path):
    program = tmp_path / "bin" / "tool"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    (tmp_path / "bin" / "dir-named-tool").mkdir()
    monkeypatch.setenv("PATH", f"{tmp_path / 'empty'}:{program.parent}")
    assert _spawn.which("tool") == str(program)
    assert _spawn.which("dir-named-tool") is None
    assert _spawn.which("no-such-tool") is None


def test_importing_it_loads_no_subprocess():
    code = ("import sys; import podkit_common.spawn; "
            "print(sorted(m for m in ('subprocess', 'signal', 'selectors', 'socket') "
            "if m in sys.modules))")
    done = _spawn.run([sys.executable, "-c", code], env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == b"[]"


def test_run_feeds_input_larger_than_a_pipe_while_draining_the_output():
    """A CNI plugin reads its config on stdin and answers on stdout: both pipes served at
    once, so a big input and a big output cannot stall each other."""
    data = bytes(range(256)) * 2048  # 512 KiB: far more than a pipe holds
    done = _spawn.run([SH, "-c", "cat; echo done >&2"], env={"PATH": "/usr/bin:/bin"},
                      input=data, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, data, b"done\n")


def test_run_with_input_a_program_does_not_read_is_not_an_error():
    done = _spawn.run([SH, "-c", "exit 3"], env={"PATH": "/usr/bin:/bin"},
                      input=b"x" * 300_000, timeout=60)
    assert done.returncode == 3
    empty = _spawn.run([SH, "-c", "wc -c"], env={"PATH": "/usr/bin:/bin"}, input=b"",
                       timeout=60)
    assert empty.stdout.strip() == b"0"
