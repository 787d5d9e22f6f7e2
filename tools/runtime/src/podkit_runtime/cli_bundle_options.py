"""`pod-runtime bundle`'s container options, declared once: `pod run` and `pod create`
(podkit_pod.cli_run) take the very same ones, with podman's names and defaults.

Only the signature of :func:`_declaration` is used; :func:`podkit_common.cli.composed`
splices it into each command's own.
"""

from __future__ import annotations

import typer


def _declaration(
    env: list[str] | None = typer.Option(None, "--env", "-e", help="KEY=VALUE"),
    workdir: str | None = typer.Option(None, "--workdir", "-w"),
    user: str | None = typer.Option(None, "--user", "-u", help="name|uid[:gid]"),
    entrypoint: str | None = typer.Option(None, "--entrypoint"),
    hostname: str | None = typer.Option(None, "--hostname"),
    tty: bool = typer.Option(False, "--tty", "-t"),
    env_file: list[str] | None = typer.Option(None, "--env-file", metavar="FILE"),
    group_add: list[str] | None = typer.Option(None, "--group-add"),
    init: bool = typer.Option(False, "--init", help="catatonit as pid 1"),
    init_path: str | None = typer.Option(None, "--init-path", metavar="PATH"),
    shm_size: str | None = typer.Option(None, "--shm-size"),
    volume: list[str] | None = typer.Option(
        None, "--volume", "-v", help="SRC:DST[:OPTS] or NAME:DST"
    ),
    mount: list[str] | None = typer.Option(None, "--mount", help="type=...,..."),
    tmpfs: list[str] | None = typer.Option(None, "--tmpfs", help="DST[:OPTS]"),
    image_volume: str = typer.Option("bind", "--image-volume", help="bind|tmpfs|ignore"),
    read_only: bool = typer.Option(False, "--read-only"),
    read_only_tmpfs: str = typer.Option("true", "--read-only-tmpfs"),
    pid: str | None = typer.Option(None, "--pid", help="host|private|container:ID|ns:PATH"),
    ipc: str | None = typer.Option(None, "--ipc"),
    uts: str | None = typer.Option(None, "--uts"),
    cgroupns: str | None = typer.Option(None, "--cgroupns"),
    cap_add: list[str] | None = typer.Option(None, "--cap-add"),
    cap_drop: list[str] | None = typer.Option(None, "--cap-drop"),
    privileged: bool = typer.Option(False, "--privileged"),
    security_opt: list[str] | None = typer.Option(None, "--security-opt"),
    memory: str | None = typer.Option(None, "--memory", "-m"),
    memory_swap: str | None = typer.Option(None, "--memory-swap"),
    memory_reservation: str | None = typer.Option(None, "--memory-reservation"),
    cpus: str | None = typer.Option(None, "--cpus"),
    cpu_shares: str | None = typer.Option(None, "--cpu-shares", "-c"),
    cpu_period: str | None = typer.Option(None, "--cpu-period"),
    cpu_quota: str | None = typer.Option(None, "--cpu-quota"),
    cpuset_cpus: str | None = typer.Option(None, "--cpuset-cpus"),
    cpuset_mems: str | None = typer.Option(None, "--cpuset-mems"),
    pids_limit: str | None = typer.Option(None, "--pids-limit"),
    blkio_weight: str | None = typer.Option(None, "--blkio-weight"),
    oom_score_adj: str | None = typer.Option(None, "--oom-score-adj"),
    ulimit: list[str] | None = typer.Option(None, "--ulimit", help="NAME=SOFT[:HARD]"),
    sysctl: list[str] | None = typer.Option(None, "--sysctl"),
    device: list[str] | None = typer.Option(None, "--device", help="HOST[:CTR[:PERMS]]"),
    cgroup_parent: str | None = typer.Option(None, "--cgroup-parent"),
    hooks_dir: list[str] | None = typer.Option(None, "--hooks-dir"),
    label: list[str] | None = typer.Option(None, "--label", "-l"),
    annotation: list[str] | None = typer.Option(None, "--annotation"),
    pod: str | None = typer.Option(None, "--pod", help="join this pod (pod pod create)"),
) -> None:
    raise NotImplementedError  # only the signature is used


DECLARATION = _declaration
