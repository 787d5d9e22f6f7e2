"""podkit_common.gotemplate: podman's --format (Go templates, tables, json).

The unit tests pin behaviour observed with podman 4.3.1; the oracle tests render the
same templates over podman's own `images --format json` rows and compare with what
podman prints for them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from podkit_common.gotemplate import (
    TemplateError,
    go_sprintf,
    go_str,
    header_name,
    render_one,
    render_rows,
    tabwrite,
)

ROWS = [
    {"ID": "dedede6df80a", "Repository": "127.0.0.1:5000/busybox", "Tag": "latest",
     "Names": ["127.0.0.1:5000/busybox:latest", "localhost/foo/bar:v1"], "Labels": None,
     "Size": 2141770, "Containers": 0},
    {"ID": "c9e38df2a8d6", "Repository": "localhost/x", "Tag": "oci",
     "Names": ["localhost/x:oci"], "Labels": {"b": "2", "a": "1"}, "Size": 5,
     "Containers": 3},
]


@pytest.mark.parametrize(("field", "header"), [
    ("CreatedAt", "CREATED AT"), ("ID", "ID"), ("RepoDigests", "REPO DIGESTS"),
    ("ImageID", "IMAGE ID"), ("IPAddress", "IP ADDRESS"), ("Size", "SIZE"),
    ("CreatedSince", "CREATED SINCE"),
])
def test_headers_split_camel_case_and_upper_case(field: str, header: str) -> None:
    assert header_name(field) == header


def test_table_has_aligned_header_and_podman_overrides() -> None:
    out = render_rows("table {{.ID}}\t{{.Tag}} {{.Size}}", ROWS,
                      headers={"ID": "IMAGE ID", "Tag": "TAG", "Size": "SIZE"})
    assert out == ("IMAGE ID      TAG         SIZE\n"
                   "dedede6df80a  latest      2141770\n"
                   "c9e38df2a8d6  oci         5\n")


def test_noheading_and_a_field_outside_the_headers() -> None:
    assert render_rows("table {{.Tag}}", ROWS, noheading=True) == "latest\noci\n"
    # podman 4.3 heads a column it has no header for with "<no value>"
    out = render_rows("table {{.Tag}}\t{{.Size}}", ROWS, headers={"Tag": "TAG"})
    assert out.splitlines()[0] == "TAG         <no value>"


def test_plain_template_has_no_header_and_keeps_tabs() -> None:
    assert render_rows("{{.ID}}\\t{{.Tag}}|", ROWS) == "dedede6df80a\tlatest|\nc9e38df2a8d6\toci|\n"
    assert render_rows("{{.ID}}\\n", ROWS) == "dedede6df80a\nc9e38df2a8d6\n"


def test_table_alone_is_the_default() -> None:
    out = render_rows("table", ROWS, default="table {{.Tag}}\t{{.ID}}")
    assert out.splitlines()[0] == "TAG         ID"
    assert render_rows(None, ROWS, default="table {{.Tag}}") == "TAG\nlatest\noci\n"


def test_json_is_an_indented_array() -> None:
    out = render_rows("json", ROWS[:1])
    assert out.startswith('[\n    {\n        "ID": "dedede6df80a",')
    assert json.loads(out) == ROWS[:1]
    assert render_rows("json", []) == "[]\n"
    assert render_rows("{{ json . }}", ROWS) == render_rows("json", ROWS)  # as podman


def test_values_print_like_go_fmt() -> None:
    out = render_rows("{{.Names}} {{.Labels}} {{json .Names}} {{len .Names}} "
                      "{{index .Names 0}} {{upper .Tag}} {{lower \"AB\"}}", ROWS)
    first, second = out.splitlines()
    assert first == ('[127.0.0.1:5000/busybox:latest localhost/foo/bar:v1] map[] '
                     '["127.0.0.1:5000/busybox:latest","localhost/foo/bar:v1"] 2 '
                     '127.0.0.1:5000/busybox:latest LATEST ab')
    assert second.split()[1] == "map[a:1" and second.split()[2] == "b:2]"


def test_control_structures_and_variables() -> None:
    tpl = ('{{range $i, $n := .Names}}{{if $i}},{{end}}{{$n}}{{end}};'
           '{{if .Labels}}L{{else if .Containers}}C{{else}}none{{end}};'
           '{{with .Labels}}{{.a}}{{else}}-{{end}};{{.Tag | upper}};'
           '{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}')
    first, second = render_rows(tpl, ROWS).splitlines()
    assert first == "127.0.0.1:5000/busybox:latest,localhost/foo/bar:v1;none;-;LATEST;"
    assert second == "localhost/x:oci;L;1;OCI;a=1 b=2 "


def test_pipelines_comparisons_and_printf() -> None:
    tpl = ('{{join .Names ","}} {{if eq .Tag "oci"}}yes{{else}}no{{end}} '
           '{{if and (gt .Containers 1) (ne .Tag "x")}}busy{{end}} '
           '{{printf "%-8s|%5d|%q|%v" .Tag .Size .Tag .Containers}}')
    lines = render_rows(tpl, ROWS).splitlines()
    assert lines[0] == ('127.0.0.1:5000/busybox:latest,localhost/foo/bar:v1 no  '
                        'latest  |2141770|"latest"|0')
    assert lines[1] == 'localhost/x:oci yes busy oci     |    5|"oci"|3'


def test_printf_bad_verbs_like_go() -> None:
    assert go_sprintf("%d", "2 MB") == "%!d(string=2 MB)"
    assert go_sprintf("%s %s", "a") == "a %!s(MISSING)"
    assert go_sprintf("%s", "a", 1) == "a%!(EXTRA int=1)"
    assert go_sprintf("%05d|%x|%t|%.2f", 42, 255, True, 1.5) == "00042|ff|true|1.50"


def test_trim_markers_and_comments() -> None:
    assert render_one("a  {{- /* note */ -}}  {{- .X -}}  b", {"X": 1}) == "a1b\n"


def test_go_values() -> None:
    assert go_str(None) == "<nil>"
    assert go_str(True) == "true"
    assert go_str(1e6) == "1e+06"
    assert go_str({"b": [1, 2], "a": "x"}) == "map[a:x b:[1 2]]"


def test_inspect_style_nested_fields_and_maps() -> None:
    obj = {"State": {"Status": "running", "Pid": 42}, "Config": {"Labels": {"k": "v"}},
           "network_interface": "pk0"}
    assert render_one("{{.State.Status}} {{.State.Pid}}", obj) == "running 42\n"
    assert render_one('{{index .Config.Labels "k"}}{{.Config.Labels.nope}}', obj) == \
        "v<no value>\n"
    assert render_one("{{.NetworkInterface}}", obj) == "pk0\n"  # Go name, JSON key
    assert render_one("{{json .State}}", obj) == '{"Status":"running","Pid":42}\n'
    assert render_one("{{with .State}}{{.Pid}} {{$.network_interface}}{{end}}", obj) == \
        "42 pk0\n"


def test_unknown_field_is_podmans_error() -> None:
    with pytest.raises(TemplateError) as err:
        render_rows("{{.Foo}}", ROWS, name="images", type_name="images.imageReporter")
    assert str(err.value) == ('template: images:1:13: executing "images" at <.Foo>: '
                              "can't evaluate field Foo in type images.imageReporter")
    with pytest.raises(TemplateError, match="can't evaluate field X in type string"):
        render_one("{{.State.Status.X}}", {"State": {"Status": "up"}})
    with pytest.raises(TemplateError, match="unclosed action"):
        render_one("{{.A", {})
    with pytest.raises(TemplateError, match='function "nope" not defined'):
        render_one("{{nope .A}}", {"A": 1})


def test_tabwriter_blocks_like_go() -> None:
    # a line with fewer cells ends the column block above it (Go's elastic tabstops)
    assert tabwrite("a\tb\tc\nlonger-than-twelve\tx\tc\nz\n") == (
        "a                   b           c\n"
        "longer-than-twelve  x           c\n"
        "z\n")


def test_import_is_cheap() -> None:
    code = "import sys, podkit_common.gotemplate; print(sorted(m for m in ('typer', 'json', " \
           "'jsonschema', 'decimal') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------ podman as the oracle

ORACLE_TEMPLATES = [
    "{{.Names}} {{.Labels}} {{.Containers}}",
    '{{json .Names}}|{{join .RepoDigests ","}}|{{len .Names}}|{{index .Names 0}}',
    "{{range .Names}}<{{.}}>{{end}} {{if .Labels}}L{{else}}noL{{end}} {{upper .Digest}}",
    '{{printf "%-10.10s|%5d|%s" .Digest .Containers .Digest}}',
    "table {{.Digest}}\t{{.Containers}} {{.SharedSize}}",
    "table {{.Containers}}",
]


@pytest.mark.registry
def test_templates_render_like_podman(podman, images) -> None:  # type: ignore[no-untyped-def]
    ref = images.ref("busybox:latest").removeprefix("docker://")
    podman.pull(ref)
    podman.run("tag", ref, "localhost/extra/name:v1")
    podman.pull(images.ref("busybox:oci").removeprefix("docker://"))
    rows = podman.json("images", "--format", "json")
    headers = {k: header_name(k) for k in rows[0]}
    for tpl in ORACLE_TEMPLATES:
        expected = podman.run("images", "--format", tpl).stdout
        assert render_rows(tpl, rows, headers=headers) == expected, tpl
    expected = podman.run("images", "--format", "table {{.Containers}}", "--noheading").stdout
    assert render_rows("table {{.Containers}}", rows, noheading=True) == expected
    expected = podman.run("images", "--format", "{{.Nope}}", check=False)
    assert expected.returncode == 125
    with pytest.raises(TemplateError) as err:
        render_rows("{{.Nope}}", rows, name="images", type_name="images.imageReporter")
    assert str(err.value) in expected.stderr


@pytest.mark.registry
def test_inspect_format_renders_like_podman(podman, images) -> None:  # type: ignore[no-untyped-def]
    ref = images.ref("busybox:oci").removeprefix("docker://")
    podman.pull(ref)
    obj = podman.json("image", "inspect", ref)[0]
    for tpl in ["{{.Id}} {{.Architecture}}/{{.Os}} {{.Size}}",
                "{{.Config.Cmd}} {{json .Config.Cmd}} {{.RootFS.Type}} {{len .RootFS.Layers}}",
                "{{range .RepoTags}}{{.}} {{end}}|{{.Config.Labels}}",
                '{{index .RootFS.Layers 0}}|{{.Config.Env}}']:
        expected = podman.run("image", "inspect", "--format", tpl, ref).stdout
        assert render_one(tpl, obj) == expected, tpl


# ------------------------------------------------------------------ podman's units

def test_humanize_like_go_units() -> None:
    from podkit_common.humanize import go_time, human_duration, human_size, time_ago

    assert human_size(2141770) == "2.14 MB"
    assert human_size(10240) == "10.2 kB"
    assert human_size(999) == "999 B"
    assert human_size(2152561, 4, "") == "2.153MB"  # podman image tree
    assert [human_duration(s) for s in (0, 1, 59, 60, 150, 3600, 7200, 3 * 86400,
                                        20 * 86400, 90 * 86400, 3 * 365 * 86400)] == [
        "Less than a second", "1 second", "59 seconds", "About a minute", "2 minutes",
        "About an hour", "2 hours", "3 days", "2 weeks", "3 months", "3 years"]
    assert time_ago("2023-11-14T22:13:20Z", now=1700000000 + 3 * 365 * 86400 + 5) == \
        "3 years ago"
    assert go_time("2023-11-14T22:13:20Z") == "2023-11-14 22:13:20 +0000 UTC"
    assert go_time("2023-11-14T23:13:20.5+01:00") == "2023-11-14 22:13:20.5 +0000 UTC"


def test_image_reference_filter_and_layer_ids() -> None:
    from podkit_pod._image_list import _ref_match, storage_layer_ids

    name = "127.0.0.1:5000/busybox:latest"
    assert _ref_match(name, "busybox")
    assert _ref_match(name, "busybox:latest")
    assert not _ref_match(name, "busybox:oci")
    assert _ref_match(name, "*busy*")
    assert not _ref_match(name, "box")
    record = {"layers": [{"diff_id": "sha256:" + "0e09dde046f98058ece7cdb025ff55a3f8c140d7c9"
                                                 "8135b49399b9bca2efedf0"},
                         {"diff_id": "sha256:" + "809ad4db75901bd17e44dab11810293d915bb4a4e8"
                                                 "15b7b24068c59ab8fcb852"}]}
    # c/storage's ids, as `podman image tree` showed them for the same layers
    assert [i[:12] for i in storage_layer_ids(record)] == ["0e09dde046f9", "a89f70b71570"]
