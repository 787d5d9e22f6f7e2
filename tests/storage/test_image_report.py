"""The pure halves of `images` and `tag`: podman's table, sizes, ages and name rules."""

from __future__ import annotations

import re

import pytest

from podkit_common import errors
from podkit_storage._image_report import human_age, human_size, images_table, split_name
from podkit_storage._image_tags import normalize_name

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(("n", "text"), [(0, "0 B"), (999, "999 B"), (4_412_000, "4.41 MB"),
                                         (1_500_000_000, "1.5 GB")])
def test_sizes_read_like_podmans(n, text):
    assert human_size(n) == text


@pytest.mark.parametrize(("created", "text"), [
    ("2023-11-14T22:13:00Z", "Less than a minute ago"),
    ("2023-11-14T21:13:20Z", "1 hour ago"),
    ("2023-11-11T22:13:20.123456789Z", "3 days ago"),
    ("2022-11-14T22:13:20Z", "1 year ago"),
    (None, "<none>"),
])
def test_ages_read_like_podmans(created, text):
    assert human_age(created, NOW) == text


@pytest.mark.parametrize(("name", "parts"), [
    ("127.0.0.1:5000/busybox:latest", ("127.0.0.1:5000/busybox", "latest")),
    ("localhost:5000/a/b", ("localhost:5000/a/b", "<none>")),
    ("quay.io/a/b@sha256:" + "0" * 64, ("quay.io/a/b", "<none>")),
])
def test_names_split_into_repository_and_tag(name, parts):
    assert split_name(name) == parts


def test_the_table_has_one_line_per_name_and_none_for_dangling():
    rows = [{"id": "a" * 64, "names": ["localhost/x:1", "localhost/y:2"],
             "created": "2023-11-14T21:13:20Z", "size": 4_412_000},
            {"id": "b" * 64, "names": [], "created": None, "size": 0}]
    header, *lines = images_table(rows, NOW).splitlines()
    assert re.split(r"\s{2,}", header) == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    cells = [re.split(r"\s{2,}", line.strip()) for line in lines]
    assert cells == [["localhost/x", "1", "a" * 12, "1 hour ago", "4.41 MB"],
                     ["localhost/y", "2", "a" * 12, "1 hour ago", "4.41 MB"],
                     ["<none>", "<none>", "b" * 12, "<none>", "0 B"]]


@pytest.mark.parametrize(("name", "norm"), [
    ("busybox", "localhost/busybox:latest"),
    ("team/app:1", "localhost/team/app:1"),
    ("docker://example.org:5000/app", "example.org:5000/app:latest"),
    ("localhost/app:dev", "localhost/app:dev"),
])
def test_tag_names_are_normalised_like_podmans(name, norm):
    assert normalize_name(name) == norm


@pytest.mark.parametrize("bad", ["", "UPPER/case", "a b", "x:", "../x"])
def test_invalid_names_are_usage_errors(bad):
    with pytest.raises(errors.UsageError):
        normalize_name(bad)
