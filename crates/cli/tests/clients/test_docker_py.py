"""docker-py (PyPI `docker`) against berth's Engine API: scenarios in the spirit of
docker-py's own integration tests, through both its high-level models and the low-level
APIClient. Run by crates/cli/tests/api_clients.rs with DOCKER_HOST pointing at a
`berth system service` on a temporary root that has a `busybox:latest` image."""

import io
import os
import tarfile
import time
import uuid

import docker
import pytest


@pytest.fixture(scope="module")
def client():
    c = docker.from_env(version="auto", timeout=60)
    yield c
    c.close()


@pytest.fixture(scope="module")
def api():
    # APIClient does not read DOCKER_HOST (from_env does).
    c = docker.APIClient(base_url=os.environ["DOCKER_HOST"], version="auto", timeout=60)
    yield c
    c.close()


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_ping_version_info(client):
    assert client.ping() is True
    v = client.version()
    assert v["ApiVersion"] == "1.44"
    assert v["Os"] == "linux"
    info = client.info()
    assert info["Swarm"]["LocalNodeState"] == "inactive"
    assert "Containers" in info


def test_run_returns_output_and_removes(client):
    before = {c.id for c in client.containers.list(all=True)}
    out = client.containers.run("busybox", ["sh", "-c", "echo hello; echo err >&2"],
                                remove=True, network_mode="none")
    assert out == b"hello\n"
    assert {c.id for c in client.containers.list(all=True)} == before


def test_run_failure_raises_container_error(client):
    with pytest.raises(docker.errors.ContainerError) as e:
        client.containers.run("busybox", ["sh", "-c", "exit 3"], remove=True,
                              network_mode="none")
    assert e.value.exit_status == 3


def test_missing_image_is_image_not_found(client):
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("no-such-image:never")
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("no-such-container")


def test_detached_lifecycle(client):
    n = name("lc")
    c = client.containers.run("busybox", ["sh", "-c", "echo up; sleep 300"], detach=True,
                              name=n, network_mode="none", labels={"berth.test": "py"})
    try:
        c.reload()
        assert c.status == "running"
        assert c.name == n
        assert c.labels["berth.test"] == "py"
        found = client.containers.list(filters={"label": "berth.test=py", "name": n})
        assert [x.id for x in found] == [c.id]
        deadline = time.time() + 30
        while b"up" not in c.logs() and time.time() < deadline:
            time.sleep(0.1)
        assert c.logs() == b"up\n"
        c.pause()
        c.reload()
        assert c.status == "paused"
        c.unpause()
        top = c.top()
        assert "sleep 300" in " ".join(" ".join(p) for p in top["Processes"])
        c.stop(timeout=1)
        assert c.wait()["StatusCode"] in (137, 143)
        c.reload()
        assert c.status == "exited"
    finally:
        c.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(n)


def test_remove_running_is_a_conflict(client):
    c = client.containers.run("busybox", ["sleep", "300"], detach=True, network_mode="none")
    try:
        with pytest.raises(docker.errors.APIError) as e:
            c.remove()
        assert e.value.status_code == 409
    finally:
        c.remove(force=True)


def test_exec_run(client):
    c = client.containers.run("busybox", ["sleep", "300"], detach=True, network_mode="none")
    try:
        code, out = c.exec_run(["sh", "-c", "echo hi"])
        assert (code, out) == (0, b"hi\n")
        code, _ = c.exec_run(["sh", "-c", "exit 4"])
        assert code == 4
        code, out = c.exec_run("env", environment={"FOO": "bar"}, workdir="/tmp")
        assert b"FOO=bar" in out
    finally:
        c.remove(force=True)


def test_images_list_tag_remove(client):
    img = client.images.get("busybox")
    assert "busybox:latest" in img.tags
    t = name("py-tag")
    assert img.tag(t, "v1")
    assert f"{t}:v1" in client.images.get(img.id).tags
    assert any(f"{t}:v1" in i.tags for i in client.images.list())
    client.images.remove(f"{t}:v1")
    assert f"{t}:v1" not in client.images.get(img.id).tags
    assert len(img.history()) >= 1


def test_build_and_cache(client):
    df = b"FROM busybox\nRUN echo built > /built\nLABEL berth.test=build\nCMD [\"cat\", \"/built\"]\n"
    t = name("py-build")
    image, logs = client.images.build(fileobj=io.BytesIO(df), tag=t, rm=True)
    assert image.labels.get("berth.test") == "build"
    assert any("Successfully built" in (l.get("stream") or "") for l in logs)
    image2, logs2 = client.images.build(fileobj=io.BytesIO(df), tag=t, rm=True)
    assert image2.id == image.id
    assert any("Using cache" in (l.get("stream") or "") for l in logs2)
    out = client.containers.run(t, remove=True, network_mode="none")
    assert out == b"built\n"
    client.images.remove(t)


def test_networks_and_name_resolution(client):
    net = client.networks.create(name("pynet"), labels={"berth.test": "net"})
    a = b = None
    try:
        assert net.attrs["Labels"]["berth.test"] == "net"
        a = client.containers.run("busybox", ["sleep", "300"], detach=True, network=net.name,
                                  name=name("srv"))
        b = client.containers.run("busybox", ["sleep", "300"], detach=True, network=net.name)
        code, out = b.exec_run(["ping", "-c", "1", "-W", "5", a.name])
        assert code == 0, out
        net.reload()
        assert a.id in {c.id for c in net.containers}
    finally:
        for c in (a, b):
            if c is not None:
                c.remove(force=True)
        net.remove()


def test_volumes(client):
    v = client.volumes.create(name("pyvol"), labels={"berth.test": "vol"})
    try:
        assert v.attrs["Labels"]["berth.test"] == "vol"
        client.containers.run("busybox", ["sh", "-c", "echo kept > /data/f"], remove=True,
                              network_mode="none", volumes={v.name: {"bind": "/data", "mode": "rw"}})
        out = client.containers.run("busybox", ["cat", "/data/f"], remove=True,
                                    network_mode="none",
                                    volumes={v.name: {"bind": "/data", "mode": "ro"}})
        assert out == b"kept\n"
        assert v.name in [x.name for x in client.volumes.list(filters={"label": "berth.test=vol"})]
    finally:
        v.remove()


def test_events_see_the_lifecycle(client):
    since = int(time.time()) - 1
    c = client.containers.run("busybox", ["true"], detach=True, network_mode="none")
    c.wait()
    c.remove()
    until = int(time.time()) + 1
    seen = [e["Action"] for e in client.events(since=since, until=until, decode=True,
                                                 filters={"container": c.id})]
    for action in ("create", "start", "die", "destroy"):
        assert action in seen, seen


def test_low_level_create_attach_wait(api):
    c = api.create_container("busybox", ["sh", "-c", "cat; echo done"], stdin_open=True,
                             host_config=api.create_host_config(network_mode="none"))
    cid = c["Id"]
    try:
        sock = api.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        api.start(cid)
        raw = sock._sock
        raw.sendall(b"piped\n")
        raw.shutdown(1)
        got = b""
        while True:
            chunk = raw.recv(4096)
            if not chunk:
                break
            got += chunk
        sock.close()
        # stdcopy frames: [stream, 0, 0, 0, len u32 BE] payload
        text = b""
        while len(got) >= 8:
            n = int.from_bytes(got[4:8], "big")
            text += got[8:8 + n]
            got = got[8 + n:]
        assert text == b"piped\ndone\n"
        assert api.wait(cid)["StatusCode"] == 0
        assert api.inspect_container(cid)["State"]["Status"] == "exited"
        assert api.logs(cid) == b"piped\ndone\n"
    finally:
        api.remove_container(cid, force=True)


def test_low_level_errors(api):
    with pytest.raises(docker.errors.APIError) as e:
        api.start("no-such-container")
    assert e.value.status_code == 404
    with pytest.raises(docker.errors.APIError) as e:
        api.create_container("busybox", ["true"], name="bad name!")
    assert e.value.status_code == 400


def test_archive_put_and_get(client):
    c = client.containers.run("busybox", ["sleep", "300"], detach=True, network_mode="none")
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            data = b"from the host\n"
            info = tarfile.TarInfo("hello.txt")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        assert c.put_archive("/tmp", buf.getvalue())
        code, out = c.exec_run(["cat", "/tmp/hello.txt"])
        assert out == b"from the host\n"
        stream, stat = c.get_archive("/tmp/hello.txt")
        assert stat["name"] == "hello.txt"
        tar = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
        assert tar.extractfile("hello.txt").read() == b"from the host\n"
    finally:
        c.remove(force=True)
