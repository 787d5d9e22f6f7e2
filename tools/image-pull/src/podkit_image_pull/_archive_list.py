"""What an archive file holds, for loading all of it (``podman load``, ``pod load``).

``archive_images(PATH)`` tells a docker-archive (``manifest.json``) from an oci-archive
(``oci-layout`` + ``index.json``) by its members, as podman load does, and returns one
entry per image: the reference that pulls exactly that image and the names it carries::

    [{"reference": "docker-archive:/abs/x.tar:@0", "transport": "docker-archive",
      "names": ["docker.io/library/busybox:latest", ...]}, ...]

docker-archive images are picked by ``@INDEX`` (an image may have no or several
RepoTags); oci-archive images by their ref name (the only image needs none). Nothing is
stored: each reference is then pulled, and verified, like any other.
"""

from __future__ import annotations

from typing import Any

from podkit_common.errors import NotFound, UsageError, VerificationFailed


def archive_images(path: str) -> list[dict[str, Any]]:
    """The images of the docker-archive or oci-archive at ``path`` (see the module doc)."""
    from podkit_image_pull._archive_reference import local_name, parse_archive_reference
    from podkit_image_pull._tarindex import TarIndex

    ref = parse_archive_reference("docker-archive", path, path)
    tar = TarIndex(ref.path, f"archive {ref.path}")
    try:
        members = set(tar.members)
    finally:
        tar.close()
    if "manifest.json" in members:
        return _docker_images(ref.path)
    if "index.json" in members and "oci-layout" in members:
        from podkit_image_pull._layout import open_layout

        source = open_layout(parse_archive_reference("oci-archive", ref.path, ref.path))
        try:
            names = source.ref_names
        finally:
            source.close()
        if len(names) == 1:
            named = local_name(names[0])
            return [{"reference": f"oci-archive:{ref.path}", "transport": "oci-archive",
                     "names": [named.name] if named else []}]
        if not names:
            raise NotFound(f"OCI archive {ref.path}: index.json lists no image")
        if not all(names) or len(set(names)) != len(names):
            raise UsageError(f"OCI archive {ref.path} holds {len(names)} images and not "
                             "every one has its own ref name, so they cannot be told apart",
                             hint="pull them one by one: oci-archive:PATH:REF")
        out = []
        for name in names:
            named = local_name(name)
            out.append({"reference": f"oci-archive:{ref.path}:{name}",
                        "transport": "oci-archive", "names": [named.name] if named else []})
        return out
    raise VerificationFailed(f"{ref.path} is neither a docker-archive (no manifest.json) nor "
                             "an oci-archive (no oci-layout and index.json)",
                             hint="podman save and pod-storage save write either")


def _docker_images(path: str) -> list[dict[str, Any]]:
    from podkit_image_pull._archive import DockerArchiveSource
    from podkit_image_pull._archive_reference import parse_archive_reference, repo_tag_name

    source = DockerArchiveSource.open(parse_archive_reference("docker-archive", path, path))
    try:
        images = source.images
    finally:
        source.close()
    if not images:
        raise NotFound(f"docker archive {path}: manifest.json lists no image")
    out = []
    for image in images:
        names = []
        for tag in image.repo_tags:
            named = repo_tag_name(tag)
            if named is not None and named.name not in names:
                names.append(named.name)
        out.append({"reference": f"docker-archive:{path}:@{image.position}",
                    "transport": "docker-archive", "names": names})
    return out
