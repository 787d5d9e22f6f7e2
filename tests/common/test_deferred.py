"""podkit_common.deferred: stand-ins for stdlib modules until their first use. Each test
runs a fresh interpreter (the stand-ins are process-wide), with site as the commands
have it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run(code: str, **env: str) -> list[str]:
    prelude = "import sys\nfrom podkit_common import deferred\ndeferred.install()\n"
    out = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True,
                         text=True, env={**os.environ, **env}, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def _real(name: str) -> str:
    return f"type(sys.modules.get({name!r})).__name__ == 'module'"


def test_pathlib_imports_without_loading_what_it_seldom_uses():
    lines = _run("import pathlib\n"
                 "print([m for m in ('re', 'enum', 'fnmatch', 'ntpath', 'urllib.parse', "
                 "'ipaddress') if type(sys.modules.get(m)).__name__ == 'module'])\n"
                 "print(pathlib.Path('/a b').as_uri())\n"
                 f"print({_real('urllib.parse')})\n")
    assert lines == ["[]", "file:///a%20b", "True"]


def test_the_first_use_loads_the_real_module_everywhere():
    lines = _run("import pathlib, re\n"
                 "print(re.fullmatch(r'a+', 'aaa') is not None)\n"
                 f"print({_real('re')}, {_real('enum')})\n"
                 "import re._parser, urllib.parse\n"  # a package's submodule; from-import
                 "from re import _compiler\n"
                 "print(urllib.parse.urlsplit('http://h/p').netloc, _compiler.__name__)\n"
                 "print(sorted(pathlib.Path('/').glob('proc'))[0].name)\n"  # fnmatch, re
                 "print(pathlib.PureWindowsPath('c:/x').drive)\n")  # ntpath
    assert lines == ["True", "True True", "h re._compiler", "proc", "c:"]


def test_threads_racing_to_the_first_use_get_one_module():
    lines = _run("import threading, re\n"
                 "seen = []\n"
                 "ts = [threading.Thread(target=lambda: seen.append(re.compile('x').pattern))"
                 " for _ in range(8)]\n"
                 "[t.start() for t in ts]; [t.join() for t in ts]\n"
                 "print(seen.count('x'), sys.modules['re'].compile is re.compile)\n")
    assert lines == ["8 True"]


@pytest.mark.parametrize("off", ["1", ""])
def test_it_can_be_turned_off(off):
    lines = _run("print(type(sys.modules.get('re')).__name__ == '_StandIn')",
                 PODKIT_NO_DEFERRED=off)
    assert lines == [str(not off)]
