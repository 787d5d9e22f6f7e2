"""The containers seccomp.json profile turned into the OCI ``linux.seccomp`` section.

The conversion (:func:`convert_profile`, pure) follows c/common's pkg/seccomp
``setupSeccomp``: the architectures are the archMap entry of the native arch and its
sub-arches; each syscall block is kept only if its ``excludes`` do not match (an arch
equal to the native one, a capability in the bounding set, a kernel at least
``minKernel``) and its ``includes`` all do; ``name``/``names``, action, errnoRet and
args are copied, without the profile's comments. The result depends only on the
profile and the bounding set, so :func:`load_seccomp` caches it under the runroot
keyed by the profile's digest and those capabilities: the bundle step parses the
60 kB profile once, not once per container.
"""

from __future__ import annotations

import os
from pathlib import Path

from podkit_common import errors

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: Where golang-github-containers-common puts the profile podman uses.
DEFAULT_PROFILES = ("/usr/share/containers/seccomp.json", "/etc/containers/seccomp.json")
MAX_PROFILE = 4 << 20
CACHE_FORMAT = "2"  # bump when the conversion changes: old entries are ignored

#: Go's GOARCH name of this machine (what profiles' "arches" say) and its SCMP_ARCH.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "s390x": "s390x", "ppc64le": "ppc64le",
           "i686": "386", "armv7l": "arm"}
_NATIVE_TO_SECCOMP = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64",
                      "s390x": "SCMP_ARCH_S390X", "ppc64le": "SCMP_ARCH_PPC64LE"}


def cache_key(data: bytes) -> str:
    """The sha256 hex digest naming a cache entry (without hashlib: podkit_common.hashing)."""
    from podkit_common.hashing import sha256_hex

    return sha256_hex(data)


def native_arch() -> str:
    machine = os.uname().machine  # platform.machine(), without importing platform
    return _GOARCH.get(machine, machine)


def _kernel_tuple(text: str) -> tuple[int, ...]:
    nums = []
    for part in text.split("-")[0].split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        nums.append(int(digits or 0))
    return tuple(nums)


def _errno(name: Any, number: Any) -> int | None:
    """An errno given by name ("EPERM", which wins, as in c/common) or number."""
    import errno

    if isinstance(name, str) and name:
        value = getattr(errno, name, None)
        if not isinstance(value, int):
            raise errors.InvalidDocument(f"unknown errno {name!r} in the seccomp profile",
                                         hint="use a name such as EPERM or ENOSYS")
        return value
    return number if isinstance(number, int) else None


def convert_profile(profile: dict[str, Any], bounding: list[str] | tuple[str, ...], *,
                    arch: str, kernel: str) -> dict[str, Any] | None:
    """The OCI linux.seccomp section for ``profile`` (None when the profile disables
    seccomp: no default action and no syscalls)."""
    if not isinstance(profile, dict):
        raise errors.InvalidDocument("seccomp profile is not a JSON object",
                                     hint="give a containers seccomp.json profile")
    syscalls = profile.get("syscalls") or []
    if not profile.get("defaultAction") and not syscalls:
        return None
    if profile.get("architectures") and profile.get("archMap"):
        raise errors.InvalidDocument(
            "'architectures' and 'archMap' were specified in the seccomp profile, use "
            "either 'architectures' or 'archMap'", hint="fix the seccomp profile")
    out: dict[str, Any] = {"defaultAction": profile.get("defaultAction", "")}
    arches = list(profile.get("architectures") or [])
    native = _NATIVE_TO_SECCOMP.get(arch)
    for entry in profile.get("archMap") or []:
        if native and entry.get("architecture") == native:
            arches += [native, *(entry.get("subArchitectures") or [])]
            break
    if arches:
        out["architectures"] = arches
    default_errno = _errno(profile.get("defaultErrno"), profile.get("defaultErrnoRet"))
    if default_errno is not None:
        out["defaultErrnoRet"] = default_errno
    if profile.get("flags"):
        out["flags"] = list(profile["flags"])
    caps = set(bounding)
    kver = _kernel_tuple(kernel)
    rules = []
    for call in syscalls:
        exc = call.get("excludes") or {}
        inc = call.get("includes") or {}
        if arch in (exc.get("arches") or []):
            continue
        if any(c in caps for c in exc.get("caps") or []):
            continue
        if exc.get("minKernel") and kver >= _kernel_tuple(exc["minKernel"]):
            continue
        if inc.get("arches") and arch not in inc["arches"]:
            continue
        if any(c not in caps for c in inc.get("caps") or []):
            continue
        if inc.get("minKernel") and kver < _kernel_tuple(inc["minKernel"]):
            continue
        if call.get("name") and call.get("names"):
            raise errors.InvalidDocument(
                "'name' and 'names' were specified in the seccomp profile, use either "
                "'name' or 'names'", hint="fix the seccomp profile")
        names = [call["name"]] if call.get("name") else list(call.get("names") or [])
        if not names:
            continue
        rule: dict[str, Any] = {"names": names, "action": call.get("action", "")}
        errno_ret = _errno(call.get("errno"), call.get("errnoRet"))
        if errno_ret is not None:
            rule["errnoRet"] = errno_ret
        args = []
        for a in call.get("args") or []:
            arg = {"index": a.get("index", 0), "value": a.get("value", 0), "op": a.get("op")}
            if a.get("valueTwo"):
                arg["valueTwo"] = a["valueTwo"]
            args.append(arg)
        if args:
            rule["args"] = args
        rules.append(rule)
    out["syscalls"] = rules
    return out


def default_profile_path() -> Path | None:
    """The system's containers seccomp.json, if installed (later paths win like podman's
    /etc override of /usr/share)."""
    found = None
    for candidate in DEFAULT_PROFILES:
        if Path(candidate).is_file():
            found = Path(candidate)
    return found


def load_seccomp(path: Path, bounding: list[str], cache_dir: Path | None) -> dict[str, Any] | None:
    """The converted section for the profile at ``path`` (cached under ``cache_dir``)."""
    from podkit_common import atomic
    from podkit_common.jsonio import dumps, loads

    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_PROFILE + 1)
    except FileNotFoundError:
        raise errors.NotFound(f"seccomp profile {path} does not exist",
                              hint="give --security-opt seccomp=PATH of a JSON profile, "
                                   "or seccomp=unconfined") from None
    except OSError as e:
        raise errors.NotFound(f"read seccomp profile {path}: {e.strerror}",
                              hint="check the path") from None
    if len(data) > MAX_PROFILE:
        raise errors.ResourceExhausted(f"seccomp profile {path} is larger than 4 MiB",
                                       hint="is this really a seccomp profile?")
    arch, kernel = native_arch(), os.uname().release
    key = cache_key(b"\0".join([CACHE_FORMAT.encode(), data, arch.encode(), kernel.encode(),
                                ",".join(sorted(bounding)).encode()]))
    cached = cache_dir / f"{key}.json" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        try:
            return loads(cached.read_bytes(), what=str(cached))["seccomp"]
        except (errors.InvalidDocument, KeyError, TypeError):
            pass  # a damaged cache entry: convert again and overwrite it
    profile = loads(data, what=f"seccomp profile {path}")
    section = convert_profile(profile, bounding, arch=arch, kernel=kernel)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(cached, dumps({"seccomp": section}), durable=False)
    return section
