"""The package's public surface: pinned, documented, and lazy."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import podkit_image_pull

PUBLIC = {
    "BlobStore", "BlobStream", "Challenge", "Digest", "DigestHasher", "ImageReference",
    "ImageSource", "inspect", "inspect_raw", "list_tags",
    "Policy", "load_policy", "parse_policy",
    "Credentials", "RegistriesConf", "load_registries_conf", "lookup_credentials",
    "Platform", "RegistryClient", "RetryPolicy", "__version__", "digest_of", "host_platform",
    "parse_challenge", "parse_digest", "parse_platform", "parse_reference", "pull",
    "select_platform",
    "archive_images",
}


def test_all_is_pinned():
    assert set(podkit_image_pull.__all__) == PUBLIC


@pytest.mark.parametrize("name", sorted(PUBLIC - {"__version__"}))
def test_every_public_name_resolves_and_is_documented(name):
    obj = getattr(podkit_image_pull, name)
    assert obj.__module__.startswith("podkit_image_pull._")
    assert inspect.getdoc(obj), f"{name} has no docstring"


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError):
        podkit_image_pull.no_such_thing  # noqa: B018


def test_library_never_imports_typer():
    code = ("import sys, podkit_image_pull as p\n"
            "for name in p.__all__: getattr(p, name)\n"
            "assert 'typer' not in sys.modules, 'typer imported by the library'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
