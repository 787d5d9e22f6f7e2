"""runc/conmon checked against known-vulnerable releases (podkit_runtime._versions):
the table and dpkg's version order as units, the cache and the one-line warning with
fake binaries, and `pod run` / `pod info` with the host's real runc and conmon."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from podkit_common.roots import Roots
from podkit_runtime._versions import ACK_ENV, cache_path, check_at_start, describe
from podkit_runtime._vulnerabilities import assess, debian_compare, upstream_version
from tests.pod.test_cli_containers import bare, ok, pod


def cves(findings) -> set[str]:
    return {f.cve for f in findings}


@pytest.mark.parametrize(("a", "b", "sign"), [
    ("1.1.5+ds1-1+deb12u1", "1.1.5+ds1-1", 1),
    ("1.1.5+ds1-1+deb12u1", "1.1.5+ds1-1+deb12u2", -1),
    ("1.0.0~rc93+ds1-5", "1.0.0+ds1-1", -1),
    ("1:0.9", "2.0", 1),
    ("1.1.12+ds1-1", "1.1.5+ds1-1+deb12u1", 1),
    ("2.1.6+ds1-1", "2.1.6+ds1-1", 0),
])
def test_debian_version_order_is_dpkgs(a: str, b: str, sign: int) -> None:
    got = debian_compare(a, b)
    assert (got > 0) - (got < 0) == sign
    if shutil.which("dpkg"):  # the real dpkg agrees
        op = {1: "gt", -1: "lt", 0: "eq"}[sign]
        assert subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0


def test_upstream_versions_put_release_candidates_first() -> None:
    assert upstream_version("1.0.0-rc92") < upstream_version("1.0.0-rc95") \
        < upstream_version("1.0.0") < upstream_version("1.1.5+ds1")
    assert upstream_version("1.4.0-rc.3") < upstream_version("1.4.0")
    assert upstream_version("nonsense") is None


def test_the_table_names_what_a_release_is_open_to() -> None:
    old = cves(assess("runc", "1.1.5+ds1"))
    assert "CVE-2024-21626" in old and "CVE-2023-27561" not in old
    assert "CVE-2024-21626" not in cves(assess("runc", "1.1.12"))
    assert "CVE-2021-30465" in cves(assess("runc", "1.0.0-rc92"))
    assert "CVE-2019-5736" in cves(assess("runc", "1.0.0-rc6"))
    # the 2025 mount races: fixed per branch in 1.2.8 and 1.3.3
    assert {f.fixed for f in assess("runc", "1.3.1") if f.cve == "CVE-2025-31133"} == {"1.3.3"}
    assert assess("runc", "1.3.3") == [] and assess("runc", "1.4.0") == []
    assert assess("runc", "1.2.8") == []
    assert cves(assess("conmon", "2.0.30")) == {"CVE-2022-1708"}
    assert assess("conmon", "2.1.6") == []
    assert assess("runc", "") == []


def test_a_patched_debian_build_is_not_reported() -> None:
    # Debian 12 carries the CVE-2024-21626 fix in 1.1.5+ds1-1+deb12u1 (changelog.Debian)
    assert "CVE-2024-21626" in cves(assess("runc", "1.1.5+ds1", "1.1.5+ds1-1"))
    assert "CVE-2024-21626" not in cves(assess("runc", "1.1.5+ds1", "1.1.5+ds1-1+deb12u1"))
    # a later Debian revision naming a CVE in its changelog carries that fix
    log = "runc (1.1.5+ds1-1+deb12u2) bookworm-security\n  * CVE-2025-31133: ...\n"
    found = cves(assess("runc", "1.1.5+ds1", "1.1.5+ds1-1+deb12u2", log))
    assert "CVE-2025-31133" not in found and "CVE-2025-52565" in found


@pytest.mark.skipif(shutil.which("dpkg-query") is None or shutil.which("runc") is None,
                    reason="needs a Debian host with runc")
def test_this_hosts_runc_is_read_from_dpkg_and_its_changelog() -> None:
    runc = shutil.which("runc")
    report = describe("runc", runc)
    package = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "runc"],
                             capture_output=True, text=True).stdout
    assert report["package"] == package and report["version"]
    listed = {v["cve"] for v in report["vulnerabilities"]}
    log = Path("/usr/share/doc/runc/changelog.Debian.gz")
    if log.exists():
        import gzip

        text = gzip.decompress(log.read_bytes()).decode()
        assert not any(cve in text for cve in listed)  # nothing the package fixed
        if "CVE-2024-21626" in text:
            assert "CVE-2024-21626" not in listed


def fake_binary(path: Path, name: str, version: str, counter: Path) -> Path:
    path.write_text(f"#!/bin/sh\necho x >> {counter}\n"
                    f'[ "$1" = --version ] && echo "{name} version {version}"\nexit 0\n')
    path.chmod(0o755)
    return path


def test_warns_once_and_execs_only_when_the_binary_changes(tmp_path: Path) -> None:
    roots = Roots(tmp_path / "root", tmp_path / "run")
    counter = tmp_path / "execs"
    runc = fake_binary(tmp_path / "runc", "runc", "1.1.4", counter)
    conmon = fake_binary(tmp_path / "conmon", "conmon", "2.1.6", counter)
    said: list[str] = []
    report = check_at_start(roots, str(runc), str(conmon), said.append, env={})
    assert "CVE-2024-21626" in {v["cve"] for v in report["runc"]["vulnerabilities"]}
    assert len(said) == 1 and said[0].startswith("WARNING: runc 1.1.4 at ")
    assert "CVE-2024-21626 (critical)" in said[0] and "upgrade to runc" in said[0]
    assert "\n" not in said[0]
    execs = len(counter.read_text().splitlines())
    assert execs >= 2  # each --version (dpkg-query knows neither file)
    assert oct(cache_path(roots).parent.stat().st_mode & 0o777) == "0o700"
    for _ in range(3):  # the hot path: a stat per binary, no exec, no second warning
        check_at_start(roots, str(runc), str(conmon), said.append, env={})
    assert len(said) == 1 and len(counter.read_text().splitlines()) == execs
    # a new runc (size and mtime change) is looked at again, and warned about again
    fake_binary(runc, "runc", "1.1.4 ", counter)
    os.utime(runc, ns=(1, 1))
    check_at_start(roots, str(runc), str(conmon), said.append, env={})
    assert len(said) == 2 and len(counter.read_text().splitlines()) > execs


def test_acknowledged_findings_are_not_warned_about(tmp_path: Path) -> None:
    roots = Roots(tmp_path / "root", tmp_path / "run")
    runc = fake_binary(tmp_path / "runc", "runc", "1.1.11", tmp_path / "n")
    conmon = fake_binary(tmp_path / "conmon", "conmon", "2.1.6", tmp_path / "n")
    said: list[str] = []
    check_at_start(roots, str(runc), str(conmon), said.append, env={ACK_ENV: "all"})
    assert said == []
    other = Roots(tmp_path / "root2", tmp_path / "run2")
    check_at_start(other, str(runc), str(conmon), said.append,
                   env={ACK_ENV: "cve-2024-21626"})
    assert len(said) == 1 and "CVE-2024-21626" not in said[0] and "CVE-2024-45310" in said[0]


def test_a_missing_binary_or_a_broken_cache_never_stops_a_start(tmp_path: Path) -> None:
    roots = Roots(tmp_path / "root", tmp_path / "run")
    cache_path(roots).parent.mkdir(parents=True)
    cache_path(roots).write_text("{not json")
    said: list[str] = []
    report = check_at_start(roots, str(tmp_path / "none"), str(tmp_path / "none2"),
                            said.append, env={})
    assert said == [] and report["runc"]["vulnerabilities"] == []


# -- the real thing: pod run and pod info with the host's runc ---------------------------

@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.runc
@pytest.mark.registry
def test_pod_run_warns_once_per_runroot_and_pod_info_lists_it(podkit_env, images,
                                                               tmp_path: Path) -> None:
    if shutil.which("conmon") is None:
        pytest.skip("needs conmon: apt-get install conmon")
    env = {k: v for k, v in podkit_env.items() if k != ACK_ENV}
    real = shutil.which("runc")
    wrapper = tmp_path / "old-runc"  # says 1.1.4 (open to CVE-2024-21626), runs the real one
    wrapper.write_text(f'#!/bin/sh\nif [ "$1" = --version ]; then\n'
                       f'  echo "runc version 1.1.4"; exit 0\nfi\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    env["PODKIT_RUNC"] = str(wrapper)
    ref = bare(images)
    first = pod(env, "run", "--rm", "--tls-verify=false", ref, "true")
    assert first.returncode == 0, first.stderr
    warnings = [line for line in first.stderr.splitlines() if line.startswith("WARNING: runc")]
    assert len(warnings) == 1 and "CVE-2024-21626" in warnings[0], first.stderr
    again = pod(env, "run", "--rm", ref, "true")
    assert again.returncode == 0 and "WARNING" not in again.stderr, again.stderr
    doc = json.loads(ok(pod(env, "info", "--format", "json")))
    listed = {v["cve"] for v in doc["host"]["ociRuntime"]["vulnerabilities"]}
    # info looks at the runc on PATH: the host's own (patched for CVE-2024-21626 on Debian 12)
    assert doc["host"]["ociRuntime"]["path"] == real
    if "deb12u" in doc["host"]["ociRuntime"]["package"]:
        assert "CVE-2024-21626" not in listed
    assert doc["host"]["conmon"]["vulnerabilities"] == []
