"""The I/O half of the process and mount options, done at bundle time.

:func:`prepare` reads what the pure config builder cannot (env files, the container's
/etc/group, the host's catatonit, bind sources, named volumes), makes mount points and
the working directory safely inside the rootfs, and returns plain data for
``build_config``: updated options, the user with ``--group-add``, and the resolved
user mounts. :func:`place_mounts` then points every mount of the finished config at a
symlink-free destination inside the rootfs.

Whatever it acquired (volumes) is listed in ``Prepared.volumes`` so that a failed
bundle can release it again (:func:`undo`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from podkit_common import atomic, errors
from podkit_common.records import field, record, replace
from podkit_common.roots import Roots
from podkit_runtime import _mounts, _process_opts, _rootfs_paths, _shm, _volumes
from podkit_runtime._spec import BundleOptions, User
from podkit_runtime._users import _rows, read_rootfs_file

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a cold start
if TYPE_CHECKING:
    from typing import Any

#: Mounts under these are made by runc in its own fresh filesystems, not in the rootfs.
_KERNEL_PREFIXES = ("/proc", "/sys", "/dev")


@record
class Prepared:
    opts: BundleOptions
    user: User
    mounts: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    created_volumes: list[str] = field(default_factory=list)


def _under_kernel_fs(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in _KERNEL_PREFIXES)


def prepare(roots: Roots, rootfs: str, container_id: str, image_config: dict[str, Any],
            opts: BundleOptions, user: User) -> Prepared:
    """Resolve env files, groups, init, workdir and user mounts for one bundle."""
    _rootfs_paths.refuse_symlinked_kernel_paths(rootfs)
    specs = _mounts.parse_all(opts.volumes, opts.mounts, opts.tmpfs)
    specs += _mounts.image_volume_specs((image_config.get("Volumes") or {}).keys(),
                                        [s.destination for s in specs], opts.image_volume)
    if opts.shm_size is not None:
        _mounts.merge_mounts([], [], shm_size=opts.shm_size)  # validate before any I/O
    changes: dict[str, Any] = {}
    if opts.env_files:
        changes["env"] = tuple(_process_opts.read_env_files(opts.env_files)) + opts.env
    if opts.init:
        changes["init_path"] = _process_opts.find_init(opts.init_path)
    added: list[int] = []
    if opts.group_add:
        groups = _rows(read_rootfs_file(rootfs, "etc/group"))
        added = _process_opts.group_ids(opts.group_add, groups)
    # podman's order: the primary gid (only when a user was asked for, by --user or the
    # image's User), --group-add, then the user's groups from /etc/group.
    primary = [user.gid] if (opts.user or image_config.get("User")) else []
    gids = list(dict.fromkeys([*primary, *added, *user.additional_gids]))
    user = replace(user, additional_gids=tuple(gids))
    workdir = opts.workdir or image_config.get("WorkingDir") or "/"
    if not workdir.startswith("/"):
        raise errors.UsageError(f"--workdir {workdir!r} must be an absolute path")
    if workdir != "/":
        made = _rootfs_paths.resolve(rootfs, workdir)
        if not made.exists:
            _rootfs_paths.ensure(rootfs, workdir, "dir", owner=(user.uid, user.gid))
        elif not made.is_dir:
            raise errors.UsageError(f"workdir {workdir} is not a directory in the container")
    prepared = Prepared(opts=replace(opts, **changes), user=user)
    try:
        for spec in specs:
            prepared.mounts.append(_resolve_mount(roots, rootfs, container_id, spec, prepared))
    except BaseException:
        undo(roots, container_id, prepared)
        raise
    return prepared


def _resolve_mount(roots: Roots, rootfs: str, container_id: str, spec: _mounts.MountSpec,
                   prepared: Prepared) -> dict[str, Any]:
    if spec.kind == "tmpfs":
        return _mounts.oci_mount(spec, None)
    if spec.kind == "bind":
        assert spec.source is not None
        source = os.path.abspath(spec.source)
        try:
            os.stat(source)
        except FileNotFoundError:
            raise errors.NotFound(f"statfs {source}: no such file or directory",
                                  hint="create the host path first, or fix the -v/--mount "
                                       "source") from None
        except OSError as exc:
            raise errors.from_os_error(exc, f"statfs {source}") from None
        return _mounts.oci_mount(spec, source)
    existed = spec.source is not None and _volumes.volume_exists(roots, spec.source)
    rec = _volumes.acquire_volume(roots, spec.source, container_id)
    name = rec["Name"]
    prepared.volumes.append(name)
    if not existed:
        prepared.created_volumes.append(name)
    if rec.get("NeedsCopyUp"):
        # First use, like podman: the volume belongs to the container's user, unless the
        # image has a directory there, whose owner, mode and content it takes.
        source = None
        if spec.copy_up and not _under_kernel_fs(spec.destination):
            where = _rootfs_paths.resolve(rootfs, spec.destination)
            if where.exists and where.is_dir:
                source = where.host_path
        _volumes.initialise_volume(roots, name, owner=(prepared.user.uid, prepared.user.gid),
                                   source=source)
    return _mounts.oci_mount(spec, rec["Mountpoint"])


def undo(roots: Roots, container_id: str, prepared: Prepared) -> None:
    """Release what :func:`prepare` acquired, deleting the volumes it made."""
    _volumes.release_volumes(roots, prepared.volumes, container_id)
    for name in prepared.created_volumes:
        with contextlib.suppress(errors.PodkitError):
            _volumes.remove_volume(roots, name)


def place_mounts(rootfs: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config with every mount destination outside /proc, /sys and /dev resolved to
    its symlink-free path in the rootfs, and the mount point made there."""
    mounts = []
    for m in config.get("mounts", []):
        dest = m["destination"]
        if not _under_kernel_fs(dest):
            kind = "dir"
            if m.get("type") == "bind" and not os.path.isdir(m["source"]):
                kind = "file"
            dest = _rootfs_paths.ensure(rootfs, dest, kind).path
        mounts.append({**m, "destination": dest})
    return {**config, "mounts": mounts}


VOLUMES_FILE = "volumes.json"


def start_bundle_dir(bdir: Path) -> Path:
    """A fresh temporary sibling of ``bdir`` to build the bundle in; leftovers of
    killed bundlers next to it are removed first."""
    bdir.parent.mkdir(parents=True, exist_ok=True)
    for entry in os.listdir(bdir.parent):
        if entry.startswith(atomic.TMP_PREFIX) and atomic.abandoned(entry):
            import shutil

            _shm.unmount_shm(str(bdir.parent / entry / _shm.SHM_DIR))
            shutil.rmtree(bdir.parent / entry, ignore_errors=True)
    work = atomic.temp_path_for(bdir)
    work.mkdir(mode=0o700)  # private: config.json, the attach socket, ctl fifos
    return work


def finish_bundle_dir(roots: Roots, container_id: str, work: Path, bdir: Path,
                      prepared: Prepared) -> None:
    """Record the volumes and rename ``work`` to ``bdir``, replacing an older bundle
    (whose volumes no longer used are released)."""
    atomic.write_json(work / VOLUMES_FILE, {"volumes": prepared.volumes}, durable=False)
    old_volumes = _bundle_volumes(bdir)
    if bdir.exists():
        import shutil

        trash = atomic.temp_path_for(bdir)
        os.rename(bdir, trash)
        os.rename(work, bdir)
        _shm.unmount_shm(str(trash / _shm.SHM_DIR))
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(work, bdir)
    stale = [v for v in old_volumes if v not in prepared.volumes]
    _volumes.release_volumes(roots, stale, container_id, remove_anonymous=True)


def abandon_bundle_dir(roots: Roots, container_id: str, work: Path,
                       prepared: Prepared | None) -> None:
    import shutil

    _shm.unmount_shm(str(work / _shm.SHM_DIR))
    shutil.rmtree(work, ignore_errors=True)
    if prepared is not None:
        undo(roots, container_id, prepared)


def _bundle_volumes(bdir: Path) -> list[str]:
    try:
        rec = atomic.read_json(bdir / VOLUMES_FILE)
    except (OSError, errors.PodkitError):
        return []
    vols = rec.get("volumes") if isinstance(rec, dict) else None
    return [v for v in vols or [] if isinstance(v, str)]


def release_bundle_volumes(roots: Roots, container_id: str, bdir: Path, *,
                           remove_anonymous: bool) -> list[str]:
    """Unmount the bundle's /dev/shm and drop the container from the users of its
    bundle's volumes."""
    _shm.unmount_shm(str(bdir / _shm.SHM_DIR))
    return _volumes.release_volumes(roots, _bundle_volumes(bdir), container_id,
                                    remove_anonymous=remove_anonymous)


def add_shm(prepared: Prepared, work: Path, bdir: Path) -> None:
    """podman's per-container /dev/shm (``_shm``), mounted in ``work`` and named by its
    final place in ``bdir``; not when a user mount provides /dev/shm or the IPC
    namespace is not the container's own shareable one."""
    if any(m["destination"] == "/dev/shm" for m in prepared.mounts):
        return
    ipc = getattr(prepared.opts, "ipc", None) or ""
    if ipc not in ("", "shareable"):
        return
    opts = prepared.opts
    size = (_mounts.parse_size(opts.shm_size, "--shm-size") if opts.shm_size
            else _shm.DEFAULT_SHM_BYTES)
    _shm.mount_shm(str(work / _shm.SHM_DIR), size)
    prepared.mounts.append(_shm.shm_mount(str(bdir / _shm.SHM_DIR)))
