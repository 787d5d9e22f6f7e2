"""The shared contract: JSON in and out, the error envelope, exit codes, roots, schemas."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from podkit_common import errors, jsonio
from podkit_common.cli import _rewrite_argv, normalize_bool_flags
from podkit_common.roots import resolve_roots
from podkit_common.schemas import SchemaSet

STAGES = ["pod-image-pull", "pod-storage", "pod-runtime", "pod-netsetup", "pod"]


def test_read_document_rejects_malformed_json():
    with pytest.raises(errors.InvalidDocument, match="not valid JSON"):
        jsonio.read_document("-", stream=io.BytesIO(b'{"image": '))


@pytest.mark.parametrize("data", [b"", b"  \n", b"[1, 2]", b'"text"'])
def test_read_document_wants_one_object(data):
    with pytest.raises(errors.InvalidDocument):
        jsonio.read_document("-", stream=io.BytesIO(data))


def test_write_lines_one_document_per_line():
    out = io.BytesIO()
    assert jsonio.write_lines([{"a": 1}, {"b": 2}], out) == 2
    assert out.getvalue() == b'{"a":1}\n{"b":2}\n'


def test_exit_codes_are_distinct_per_error_type():
    classes = [errors.UsageError, errors.InvalidDocument, errors.NotFound, errors.Conflict,
               errors.VerificationFailed, errors.RemoteError, errors.AuthenticationFailed,
               errors.UnsafeContent, errors.RuntimeFailure, errors.ResourceExhausted,
               errors.PermissionDenied, errors.NotImplementedYet, errors.Timeout]
    codes = [c.exit_code for c in classes]
    assert len(set(codes)) == len(codes)
    assert not set(codes) & {0, 1, 125, 126, 127, 130}


def test_envelope_shape_validates():
    env = errors.envelope("pod-storage", errors.NotFound("no such image"))
    SchemaSet([]).validate(env, "urn:podkit:common:error")
    internal = errors.envelope("pod", ValueError("boom"))
    assert internal["error"]["type"] == "InternalError"


def test_os_errors_map_to_what_a_user_can_act_on():
    import errno

    exc = errors.from_os_error(OSError(errno.ENOSPC, "No space left on device", "/x"), "write")
    assert isinstance(exc, errors.ResourceExhausted)
    assert "write: /x" in exc.message


def test_roots_precedence(monkeypatch):
    env = {"PODKIT_ROOT": "/e/root", "PODKIT_RUNROOT": "/e/run"}
    assert str(resolve_roots(env=env).root) == "/e/root"
    assert str(resolve_roots("/flag", None, env=env).root) == "/flag"
    assert str(resolve_roots(env={}).runroot) == "/run/podkit"


@pytest.mark.parametrize(("argv", "expected"), [
    (["create", "--root", "/r", "--name", "x"], ["--root", "/r", "create", "--name", "x"]),
    (["--root=/r", "images"], ["--root=/r", "images"]),
    (["bundle", "--", "sh", "--root", "x"], ["bundle", "--", "sh", "--root", "x"]),
    (["run", "img", "sh", "--quiet"], ["run", "img", "sh", "--quiet"]),
    (["docker://x/y:1", "--quiet"], ["--quiet", "pull", "docker://x/y:1"]),
])
def test_global_options_move_in_front_of_the_subcommand(argv, expected):
    commands = {"create", "images", "bundle", "run", "pull"}
    got = _rewrite_argv(argv, commands, "pull", {"run", "bundle"})
    assert got == expected


def test_podman_bool_spelling():
    assert normalize_bool_flags(["--tls-verify=false", "x"], ["tls-verify"]) == \
        ["--no-tls-verify", "x"]
    assert normalize_bool_flags(["--", "--tls-verify=false"], ["tls-verify"]) == \
        ["--", "--tls-verify=false"]


def test_every_schema_has_an_urn_and_resolves_locally():
    packages = ["podkit_image_pull", "podkit_storage", "podkit_runtime", "podkit_netsetup",
                "podkit_pod"]
    schemas = SchemaSet(packages)
    assert schemas.schemas
    from jsonschema import Draft202012Validator

    for sid, schema in schemas.schemas.items():
        assert sid.startswith("urn:podkit:")
        Draft202012Validator.check_schema(schema)
        schemas.errors({}, sid)  # resolves every $ref without network


@pytest.mark.parametrize("tool", STAGES)
def test_each_executable_answers_help_and_version(tool):
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith(f"{tool} version ")
    out = subprocess.run([tool, "--help"], capture_output=True, text=True, check=True)
    assert "Usage:" in out.stdout


@pytest.mark.parametrize(("tool", "args"), [
    ("pod-storage", ["import"]), ("pod-storage", ["create"]), ("pod-runtime", ["bundle"]),
    ("pod-runtime", ["run"]), ("pod-netsetup", ["attach"]),
])
@pytest.mark.parametrize("payload", [b"{not json", b"", b"[]", b'{"image": 3}'])
def test_malformed_input_gives_the_envelope_and_exit_3(tool, args, payload, tmp_path):
    env = {"PATH": f"{sys.prefix}/bin:/usr/bin:/bin", "PODKIT_ROOT": str(tmp_path / "r"),
           "PODKIT_RUNROOT": str(tmp_path / "rr")}
    proc = subprocess.run([tool, *args], input=payload, capture_output=True, env=env)
    assert proc.returncode == errors.InvalidDocument.exit_code, proc.stderr
    assert proc.stdout == b""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and b"Traceback" not in proc.stderr
    env_doc = jsonio.loads(lines[0])
    SchemaSet([]).validate(env_doc, "urn:podkit:common:error")
    assert env_doc["error"]["tool"] == tool
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_usage_error_is_an_envelope_with_exit_2():
    proc = subprocess.run(["pod-storage", "create", "--bogus"], capture_output=True)
    assert proc.returncode == 2
    assert jsonio.loads(proc.stderr.splitlines()[-1])["error"]["type"] == "UsageError"


def test_schema_subcommand_prints_the_tools_schemas():
    proc = subprocess.run(["pod-storage", "schema"], capture_output=True, check=True)
    schemas = jsonio.loads(proc.stdout)
    assert "urn:podkit:storage:container" in schemas
    one = subprocess.run(["pod-storage", "schema", "container"], capture_output=True, check=True)
    assert jsonio.loads(one.stdout)["$id"] == "urn:podkit:storage:container"
