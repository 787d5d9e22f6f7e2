"""containers.conf's two settings podkit uses are cached by content hash in the runroot:
a bundle does not parse the system file (and import tomllib) each time."""

from __future__ import annotations

import pytest

from podkit_common import errors, jsonio
from podkit_runtime._hostfacts import containers_conf_defaults

CONF = b'[containers]\ndefault_capabilities = ["chown", "CAP_KILL"]\n' \
       b'default_sysctls = ["net.ipv4.ping_group_range=0 0"]\n'


@pytest.fixture
def conf(tmp_path, monkeypatch):
    path = tmp_path / "containers.conf"
    path.write_bytes(CONF)
    monkeypatch.setenv("CONTAINERS_CONF", str(path))
    return path


def test_settings_are_read_and_cached_by_content(conf, tmp_path) -> None:
    cache = tmp_path / "cache"
    want = (("CAP_CHOWN", "CAP_KILL"), ("net.ipv4.ping_group_range=0 0",))
    assert containers_conf_defaults() == want
    assert containers_conf_defaults(cache) == want
    [entry] = cache.iterdir()
    assert jsonio.loads(entry.read_bytes()) == {"caps": list(want[0]), "sysctls": list(want[1])}
    # the cache answers for the same content...
    entry.write_bytes(jsonio.dumps({"caps": ["CAP_SETUID"], "sysctls": None}))
    assert containers_conf_defaults(cache) == (("CAP_SETUID",), ())
    # ...and new content is parsed afresh
    conf.write_bytes(b"[containers]\ndefault_sysctls = []\n")
    assert containers_conf_defaults(cache) == (None, ())
    assert len(list(cache.iterdir())) == 2


def test_a_damaged_cache_entry_is_parsed_again(conf, tmp_path) -> None:
    cache = tmp_path / "cache"
    containers_conf_defaults(cache)
    [entry] = cache.iterdir()
    entry.write_bytes(b"{not json")
    assert containers_conf_defaults(cache)[0] == ("CAP_CHOWN", "CAP_KILL")
    assert jsonio.loads(entry.read_bytes())["caps"] == ["CAP_CHOWN", "CAP_KILL"]


def test_a_broken_file_is_an_error_and_is_not_cached(conf, tmp_path) -> None:
    cache = tmp_path / "cache"
    conf.write_bytes(b"[containers\n")
    with pytest.raises(errors.InvalidDocument, match=r"read containers\.conf"):
        containers_conf_defaults(cache)
    assert not cache.exists() or not list(cache.iterdir())


def test_a_missing_file_sets_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CONTAINERS_CONF", str(tmp_path / "absent.conf"))
    assert containers_conf_defaults(tmp_path / "cache") == (None, ())
