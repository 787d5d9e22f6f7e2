"""`pod kube generate|play|down`: the YAML validates against the Kubernetes schemas
(kubernetes_validate, strict), generate -> play -> generate is stable, hand-written YAML
with a ConfigMap and a PersistentVolumeClaim runs, fields we do not support are
reported on stderr, and podman's own `kube generate` of the same pod has the same
kinds and fields. The pure halves (quantities, field coverage, the play plan) are tested
without root; the rest against real runc, conmon, overlayfs and the test registry
(--network none pods: the bridge and a published port are in tests/e2e/test_kube_e2e.py).
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from podkit_common import errors, jsonio
from podkit_common.roots import Roots
from podkit_common.schemas import SchemaSet
from podkit_pod import _kube_generate as G
from podkit_pod import _kube_model as M
from podkit_pod._kube_play import PLAY_LABEL, PlayOptions, plan_play
from tests.testbed.env import mounts_under
from tests.testbed.shell import sh

SCHEMAS = SchemaSet(["podkit_pod"])
K8S_VERSION = "1.30"
REAL = [pytest.mark.root, pytest.mark.overlay, pytest.mark.runc, pytest.mark.registry]


def real(fn: Any) -> Any:
    for mark in REAL:
        fn = mark(fn)
    return fn


def validate_k8s(text: str) -> list[dict[str, Any]]:
    """Every document of the YAML against the Kubernetes schema, unknown fields refused."""
    import kubernetes_validate

    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    return docs


# -- pure: quantities, field coverage, objects, the play plan -----------------------------------


@pytest.mark.parametrize("limit,text", [(64 * 2**20, "64Mi"), (2**30, "1Gi"),
                                        (1000, "1000"), (3 * 2**10, "3Ki")])
def test_memory_limits_are_written_and_read_as_kubernetes_quantities(limit, text):
    assert M.memory_quantity(limit) == text
    assert M.parse_memory(text, "memory") == limit
    assert M.parse_memory("129M", "memory") == 129_000_000


def test_cpu_limits_are_millicores_or_whole_cpus():
    assert M.cpu_quantity(50000, 100000) == "500m"
    assert M.cpu_quantity(200000, 100000) == "2"
    assert M.parse_cpu("500m", "cpu") == "0.5" and M.parse_cpu(2, "cpu") == "2"
    with pytest.raises(errors.InvalidDocument):
        M.parse_cpu("lots", "cpu")


def test_host_paths_get_podmans_volume_names():
    assert M.host_volume_names(["/tmp/data", "/srv/www", "/tmp/data/"]) == [
        "tmp-data-host-0", "srv-www-host-0", "tmp-data-host-1"]


def facts(name: str, **over: Any) -> dict[str, Any]:
    """A container's facts as _kube_generate.container_facts gathers them."""
    base: dict[str, Any] = {
        "id": "c" * 64, "name": name, "image": "127.0.0.1:5000/busybox:latest",
        "created": "2026-01-02T03:04:05.123Z",
        "image_config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": "/"},
        "process": {"args": ["sh"], "env": ["PATH=/bin", "TERM=xterm", "container=podkit",
                                            "HOSTNAME=web", "HOME=/root"], "cwd": "/",
                    "user": {"uid": 0, "gid": 0},
                    "capabilities": {"bounding": list(_default_caps())}},
        "read_only": False, "resources": {}, "mounts": [], "named_volumes": [],
        "volumes_dir": "/r/volumes", "bundles_dir": "/rr/bundles", "user_given": False,
        "tty": False, "auto_remove": False, "restart": "no", "hostname": "web", "ports": [],
        "labels": {}, "privileged": False}
    base.update(over)
    return base


def _default_caps() -> list[str]:
    from podkit_runtime._spec import DEFAULT_CAPABILITIES

    return DEFAULT_CAPABILITIES


def web_pod() -> dict[str, Any]:
    caps = [c for c in _default_caps() if c != "CAP_CHOWN"] + ["CAP_NET_ADMIN"]
    srv = facts("web-srv", process={
        "args": ["httpd", "-f", "-p", "80"], "cwd": "/www", "user": {"uid": 1000, "gid": 100},
        "env": ["PATH=/bin", "TERM=xterm", "container=podkit", "MODE=prod", "HOME=/root"],
        "capabilities": {"bounding": caps}},
        user_given=True, read_only=True,
        resources={"memory": {"limit": 64 * 2**20}, "cpu": {"quota": 50000, "period": 100000}},
        mounts=[{"type": "bind", "source": "/srv/site", "destination": "/www",
                 "options": ["rbind", "ro"], "host_type": "Directory"},
                {"type": "bind", "source": "/r/volumes/data/_data", "destination": "/data",
                 "options": ["rbind"]},
                {"type": "bind", "source": "/rr/bundles/x/hosts", "destination": "/etc/hosts"},
                {"type": "tmpfs", "source": "tmpfs", "destination": "/tmp"},
                {"type": "tmpfs", "source": "tmpfs", "destination": "/cache"}])
    return {"id": "p" * 64, "name": "web", "created": "2026-01-02T03:04:05Z", "labels": {},
            "hostname": "web", "host_network": False, "containers": [srv, facts("cli")],
            "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1",
                       "protocol": "tcp"}]}


def test_generated_objects_validate_and_carry_each_setting():
    docs = G.objects([web_pod()], service=True)
    text = G.render(docs)
    assert text.startswith("# Save the output of this file")
    service, pod = validate_k8s(text)
    assert service["kind"] == "Service" and service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"][0]["port"] == 80
    [srv, cli] = pod["spec"]["containers"]
    assert srv["name"] == "srv"  # kube play's <pod>-<container>, written back
    assert srv["command"] == ["httpd", "-f", "-p", "80"] and "args" not in srv
    assert srv["env"] == [{"name": "MODE", "value": "prod"}]
    assert srv["workingDir"] == "/www"
    assert srv["ports"] == [{"containerPort": 80, "hostIP": "127.0.0.1", "hostPort": 8080,
                             "protocol": "TCP"}]
    assert srv["resources"] == {"limits": {"cpu": "500m", "memory": "64Mi"}}
    assert srv["securityContext"] == {
        "capabilities": {"add": ["CAP_NET_ADMIN"], "drop": ["CAP_CHOWN"]},
        "readOnlyRootFilesystem": True, "runAsUser": 1000, "runAsGroup": 100}
    mounts = {m["mountPath"]: m for m in srv["volumeMounts"]}
    assert set(mounts) == {"/www", "/data", "/cache"}  # /tmp comes with --read-only
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[mounts["/www"]["name"]] == {
        "name": "srv-site-host-0", "hostPath": {"path": "/srv/site", "type": "Directory"}}
    assert mounts["/www"]["readOnly"] is True
    assert volumes["data-pvc"]["persistentVolumeClaim"] == {"claimName": "data"}
    assert volumes[mounts["/cache"]["name"]]["emptyDir"] == {"medium": "Memory"}
    assert cli == {"name": "cli", "image": "127.0.0.1:5000/busybox:latest"}
    assert pod["metadata"]["labels"] == {"app": "web"}
    assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["hostname"] == "web"
    [deployment] = validate_k8s(G.render(G.objects([web_pod()], kind="deployment")))
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["template"]["spec"] == pod["spec"]


def test_a_generated_pod_plans_back_to_the_same_settings():
    [pod] = G.objects([web_pod()])
    plan = plan_play([pod], PlayOptions(network="none"))
    assert plan.notes == []
    [pp] = plan.pods
    assert pp.values["publish"] == ["127.0.0.1:8080:80/tcp"]
    srv = pp.containers[0].params
    assert srv["name"] == "web-srv" and srv["pod"] == "web"
    assert jsonio.loads(srv["entrypoint"]) == ["httpd", "-f", "-p", "80"]
    assert srv["command"] == [] and srv["env"] == ["MODE=prod"] and srv["workdir"] == "/www"
    assert srv["memory"] == str(64 * 2**20) and srv["cpus"] == "0.5"
    assert srv["cap_add"] == ["CAP_NET_ADMIN"] and srv["cap_drop"] == ["CAP_CHOWN"]
    assert srv["user"] == "1000:100" and srv["read_only"] is True
    assert "/srv/site:/www:ro" in srv["volume"] and "data:/data" in srv["volume"]
    assert srv["tmpfs"] == ["/cache"] and srv["restart"] == "no"


def test_play_options_and_pod_fields_reach_the_plan():
    service, pod = G.objects([web_pod()], service=True)
    plan = plan_play([service, pod], PlayOptions(network="front"))
    assert plan.notes == ["Service web: spec: a Service is not run locally; hostPort "
                          "publishes the ports"]
    assert plan.pods[0].values["network"] == "front"
    assert plan.pods[0].values["hostname"] == "web"
    assert plan.pods[0].values["label"] == ["app=web"]
    host = {**pod, "spec": {**pod["spec"], "hostNetwork": True}}
    [hosted] = plan_play([host], PlayOptions(network="front")).pods
    assert hosted.values["network"] == "host" and hosted.values["publish"] == []
    always = {**pod, "spec": {k: v for k, v in pod["spec"].items() if k != "restartPolicy"}}
    [p] = plan_play([always], PlayOptions()).pods
    assert {c.params["restart"] for c in p.containers} == {"always"}  # Kubernetes' default


HAND_WRITTEN = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {GREETING: hello, COLOR: blue}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: NAME-data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata:
  name: NAME
  labels: {tier: demo}
spec:
  restartPolicy: Never
  nodeSelector: {disk: ssd}
  containers:
  - name: main
    image: IMAGE
    command: [sh, -c]
    args: ["echo $GREETING-$COLOR-$CFG_COLOR > /data/out; trap 'exit 0' TERM; sleep 300 & wait"]
    env:
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: settings, key: GREETING}}
    envFrom:
    - prefix: CFG_
      configMapRef: {name: settings}
    volumeMounts:
    - {name: store, mountPath: /data}
    livenessProbe:
      exec: {command: ["true"]}
  volumes:
  - name: store
    persistentVolumeClaim: {claimName: NAME-data}
"""


def test_the_plan_reports_every_field_it_does_not_use():
    docs = M.load_documents(HAND_WRITTEN.replace("IMAGE", "busybox"), "hand.yaml")
    plan = plan_play(docs, PlayOptions())
    assert "Pod NAME: unsupported field spec.nodeSelector (ignored)" in plan.notes
    assert ("Pod NAME: unsupported field spec.containers[0].livenessProbe (ignored)"
            in plan.notes)
    assert any(n.startswith("PersistentVolumeClaim NAME-data: spec.resources") for n in
               plan.notes)
    assert plan.volumes == ["NAME-data"]
    env = plan.pods[0].containers[0].params["env"]
    assert env == ["CFG_GREETING=hello", "CFG_COLOR=blue", "GREETING=hello"]


def test_the_plan_refuses_what_it_cannot_run():
    docs = M.load_documents(HAND_WRITTEN.replace("name: settings, key", "name: nope, key"),
                            "x.yaml")
    with pytest.raises(errors.NotFound, match="nope"):
        plan_play(docs, PlayOptions())
    with pytest.raises(errors.InvalidDocument, match="not valid YAML"):
        M.load_documents("a: [", "bad.yaml")
    with pytest.raises(errors.InvalidDocument, match="no kind"):
        M.load_documents("- 1\n", "bad.yaml")
    for bad in ({"containers": "web"}, {"containers": [{"name": "c", "image": "i",
                                                        "ports": [{"containerPort": "x",
                                                                   "hostPort": 80}]}]},
                {"containers": [{"name": "c", "image": "i"}], "volumes": ["v"]},
                {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Sometimes"}):
        doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": bad}
        with pytest.raises(errors.InvalidDocument):
            plan_play([doc], PlayOptions())
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"replicas": 3, "template": {"spec": {"containers": [
                      {"name": "c", "image": "i"}]}}}}
    plan = plan_play([deployment], PlayOptions())
    assert [p.name for p in plan.pods] == ["d-pod"]
    assert any("replicas is 3" in n for n in plan.notes)


# -- real pods ------------------------------------------------------------------------------------


@pytest.fixture
def env(podkit_env: dict[str, str]) -> dict[str, str]:
    for tool in ("conmon", "catatonit"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}: apt-get install {tool}")
    return podkit_env


def pod(env, *args: str, check: bool = True, input: str | None = None
        ) -> subprocess.CompletedProcess[bytes]:
    proc = sh("pod " + " ".join(shlex.quote(a) for a in args), env=env, input=input)
    if check:
        assert proc.returncode == 0, (args, proc.stderr.decode())
    return proc


def out(env, *args: str) -> str:
    return pod(env, *args).stdout.decode()


def roots(env) -> Roots:
    return Roots(Path(env["PODKIT_ROOT"]), Path(env["PODKIT_RUNROOT"]))


def make_web_pod(env, img: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "index.html").write_text("hi\n")
    pod(env, "pod", "create", "--name", "web", "--label", "tier=demo")
    pod(env, "create", "--tls-verify=false", "--pod", "web", "--name", "srv", "-e", "MODE=prod",
        "-w", "/www", "-v", f"{site}:/www:ro", "-v", "data:/data", "--cap-add", "NET_ADMIN",
        "--cap-drop", "CHOWN", "-m", "64m", "--cpus", "0.5", img, "httpd", "-f", "-p", "80")
    pod(env, "create", "--pod", "web", "--name", "cli", "--read-only", "-u", "1000:1000", img,
        "sleep", "300")


def without_times(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "creationTimestamp" not in line)


@real
def test_generate_validates_and_generate_play_generate_is_stable(env, images, tmp_path):
    from podkit_pod._kube_facts import gather
    from podkit_pod._kube_play import play

    img = images.ref("busybox:latest").removeprefix("docker://")
    make_web_pod(env, img, tmp_path)
    # podman's older spelling, into a file (and never over one)
    target = tmp_path / "web.yaml"
    pod(env, "generate", "kube", "-f", str(target), "web")
    first = target.read_text()
    [doc] = validate_k8s(first)
    assert [c["name"] for c in doc["spec"]["containers"]] == ["srv", "cli"]  # no infra
    assert doc["metadata"]["labels"] == {"tier": "demo", "app": "web"}
    again = pod(env, "kube", "generate", "-f", str(target), "web", check=False)
    assert again.returncode == 125 and b"file exists" in again.stderr
    facts = gather(roots(env), ["web"])  # the library under the command, in-process
    for service, kind in ((True, "pod"), (False, "deployment"), (True, "deployment")):
        validate_k8s(G.render(G.objects(facts, service=service, kind=kind)))
    # containers alone make a pod named after the first; pods and containers do not mix
    [alone] = validate_k8s(G.generate(roots(env), ["srv", "cli"]))
    assert alone["metadata"]["name"] == "srv-pod"
    with pytest.raises(errors.UsageError, match="not both"):
        gather(roots(env), ["web", "srv"])

    pod(env, "pod", "rm", "-f", "-t", "0", "web")
    played = pod(env, "kube", "play", "--start=false", str(target))
    assert "kube play:" not in played.stderr.decode()  # nothing of our YAML goes unused
    lines = played.stdout.decode().splitlines()
    assert lines[0] == "Pod:" and lines[2] == "Containers:" and len(lines) == 6
    [played_pod] = gather(roots(env), ["web"])
    assert [c["name"] for c in played_pod["containers"]] == ["web-srv", "web-cli"]
    assert without_times(out(env, "kube", "generate", "web")) == without_times(first)

    # a second play of the same YAML is podman's conflict; --replace makes it again
    with pytest.raises(errors.Conflict, match="already exists"):
        play(roots(env), first, PlayOptions(start=False, network="none"))
    pod(env, "kube", "play", "--replace", "--start=false", "-", input=first)
    assert without_times(G.generate(roots(env), ["web"])) == without_times(first)
    down = out(env, "play", "kube", "--down", str(target)).splitlines()  # podman 4.3's too
    assert down[0] == "Pods stopped:" and down[2] == "Pods removed:"
    assert out(env, "ps", "-a", "-q") == ""
    missing = pod(env, "kube", "down", str(target), check=False)
    assert missing.returncode == 125 and b"no pod with name" in missing.stderr


@real
def test_play_of_hand_written_yaml_with_a_configmap_and_a_claim(env, images, tmp_path):
    from podkit_pod._kube_down import down
    from podkit_pod._kube_play import play

    img = images.ref("busybox:latest").removeprefix("docker://")
    text = HAND_WRITTEN.replace("NAME", "hand").replace("IMAGE", img)
    (tmp_path / "hand.yaml").write_text(text)
    proc = pod(env, "kube", "play", "--tls-verify=false", str(tmp_path / "hand.yaml"))
    err = proc.stderr.decode()
    assert "kube play: Pod hand: unsupported field spec.nodeSelector (ignored)" in err
    assert "spec.containers[0].livenessProbe (ignored)" in err
    assert proc.stdout.decode().startswith("Volume:\nhand-data\nPod:\n")
    vol = jsonio.loads(out(env, "volume", "inspect", "hand-data"))[0]
    assert vol["Labels"] == {PLAY_LABEL: "true"}
    written = Path(vol["Mountpoint"]) / "out"
    cid = proc.stdout.decode().splitlines()[-2]
    out(env, "wait", "--condition", "running", cid)
    for _ in range(200):  # the container writes it as it starts (a bound, not a timing)
        if written.exists() and written.read_text():
            break
        time.sleep(0.05)
    assert written.read_text() == "hello--blue\n"  # COLOR only as CFG_COLOR
    assert out(env, "inspect", "--format", "{{.Name}}", cid).strip() == "hand-main"

    report = down(roots(env), text)
    SCHEMAS.validate(report, "urn:podkit:pod:kube-down")
    assert report["volumes"] == ["hand-data"] and [p["name"] for p in report["pods"]] == ["hand"]
    assert pod(env, "volume", "exists", "hand-data", check=False).returncode == 1
    # the library's report, through a volume that was there before: play keeps it
    pod(env, "volume", "create", "hand-data")
    report = play(roots(env), text, PlayOptions(start=False, network="none",
                                                pull_options={"tls_verify": False}))
    SCHEMAS.validate(report, "urn:podkit:pod:kube-play")
    assert report["volumes"] == [{"name": "hand-data", "changed": False}]
    assert any("nodeSelector" in n for n in report["notes"])
    assert down(roots(env), text)["volumes"] == []  # not play's: left alone
    assert pod(env, "volume", "exists", "hand-data", check=False).returncode == 0


@real
def test_same_kinds_and_fields_as_podmans_kube_generate(env, images, podman, tmp_path):
    img = images.ref("busybox:latest").removeprefix("docker://")
    podman.pull(img)
    srv_args = ["-e", "MODE=prod", "-w", "/www", "-v", "data:/data", "--cap-add", "NET_ADMIN",
                "-m", "64m", "--cpus", "0.5", img, "httpd", "-f", "-p", "80"]
    podman.run("pod", "create", "--name", "web", "--network", "none")
    podman.run("create", "--pod", "web", "--name", "srv", *srv_args)
    podman.run("create", "--pod", "web", "--name", "cli", img, "sleep", "300")
    theirs = validate_k8s(podman.run("kube", "generate", "web").stdout)
    pod(env, "pod", "create", "--name", "web")
    pod(env, "create", "--tls-verify=false", "--pod", "web", "--name", "srv", *srv_args)
    pod(env, "create", "--pod", "web", "--name", "cli", img, "sleep", "300")
    ours = validate_k8s(out(env, "kube", "generate", "web"))
    assert [d["kind"] for d in ours] == [d["kind"] for d in theirs] == ["Pod"]
    [o], [t] = ours, theirs
    assert set(o["metadata"]) == set(t["metadata"])
    assert o["metadata"]["labels"] == t["metadata"]["labels"]
    podman_only = {"automountServiceAccountToken", "enableServiceLinks"}  # no local meaning
    assert set(o["spec"]) == set(t["spec"]) - podman_only
    assert o["spec"]["volumes"] == t["spec"]["volumes"]
    assert o["spec"]["restartPolicy"] == t["spec"]["restartPolicy"]

    def filled(c: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in c.items() if v not in ({}, [], None)
                and not (k == "securityContext" and v == {"capabilities": {}})}

    for mine, podmans in zip(o["spec"]["containers"], t["spec"]["containers"], strict=True):
        assert filled(mine) == filled(podmans), (mine, podmans)
    # --service: podman's Service first, the same spec (no ports published here)
    theirs = validate_k8s(podman.run("kube", "generate", "-s", "web").stdout)
    ours = validate_k8s(out(env, "kube", "generate", "-s", "web"))
    assert [d["kind"] for d in ours] == [d["kind"] for d in theirs] == ["Service", "Pod"]
    assert ours[0]["spec"] == theirs[0]["spec"]


@real
def test_a_pod_that_fails_to_play_is_removed_whole(env, images):
    from podkit_pod._kube_play import play
    from podkit_runtime._pod_reports import pod_exists

    img = images.ref("busybox:latest").removeprefix("docker://")
    text = f"""\
apiVersion: v1
kind: Pod
metadata: {{name: bad}}
spec:
  restartPolicy: Never
  containers:
  - {{name: ok, image: "{img}", command: [sleep, "100"]}}
  - {{name: tiny, image: "{img}", command: [sleep, "100"], resources: {{limits: {{memory: 1Ki}}}}}}
"""
    with pytest.raises(errors.PodkitError):  # runc refuses a limit below the usage
        play(roots(env), text, PlayOptions(network="none", pull_options={"tls_verify": False}))
    assert not pod_exists(roots(env), "bad")
    assert out(env, "ps", "-a", "-q") == ""
    assert mounts_under(Path(env["PODKIT_RUNROOT"])) == []  # no rootfs left mounted


def _junk():
    from hypothesis import strategies as st

    leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["name", "image", "containers", "volumes", "ports", "env", "hostPort",
                         "containerPort", "volumeMounts", "hostPath", "path", "command",
                         "securityContext", "resources", "limits", "memory", "x"]),
        inner, max_size=4), max_leaves=12)


def test_any_shape_of_yaml_is_planned_or_refused_cleanly():
    """Whatever the spec holds, planning ends in a plan or a podkit error (a clean
    message and exit code), never a traceback."""
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(spec=_junk(), meta=_junk())
    def check(spec, meta):
        doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": meta},
               "spec": spec}
        with contextlib.suppress(errors.PodkitError):
            plan_play([doc], PlayOptions())

    check()
