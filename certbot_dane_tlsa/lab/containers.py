"""A real container runtime for tests: podman serving the Docker API to the real docker CLI.

There is no Docker engine on the test machines and no image registry, so containers run the
host's own root file system as an overlay (``--rootfs /:O``). That is enough to test what the
product does with containers: ``docker exec NAME postfix -c DIR reload`` through a real Docker API
socket, including the errors docker prints when the container is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from certbot_dane_tlsa.lab.ports import free_port, release
from certbot_dane_tlsa.lab.postfix import (
    PostfixError,
    check_starttls,
    configure,
    make_data_dir,
    unregister_config_dir,
    wait_for_port,
)

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0
# conmon keeps an exec session for this many seconds after the command ends so that a Docker API
# client can still inspect its exit code. 0 breaks `docker exec` ("no exec session with ID"),
# podman's default of 300 leaves conmon processes behind for five minutes.
EXEC_EXIT_DELAY = 2

_CONTAINERS_CONF = f"""\
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
exit_command_delay = {EXEC_EXIT_DELAY}
"""


class ContainerError(RuntimeError):
    """podman or docker failed; the message carries the command's own output."""


def _conmon_pids(container_id: str) -> list[int]:
    """PIDs of conmon processes that serve one container (its own and its exec sessions)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state == "Z" or not args or not args[0].endswith(b"conmon"):
            continue
        if container_id.encode() in args:
            pids.append(int(entry.name))
    return pids


class PodmanDocker:
    """One ``podman system service`` on a private socket, plus the containers started through it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.containers_conf = workdir / "containers.conf"
        self.socket_path = workdir / "podman.sock"
        self.docker_config = workdir / "docker-config"
        self.log_path = workdir / "podman-service.log"
        self.docker_env: dict[str, str] = {
            "DOCKER_HOST": f"unix://{self.socket_path}",
            "CONTAINERS_CONF": str(self.containers_conf),
            # Keeps the docker CLI away from ~/.docker; podman reads it too (for registry auth)
            # and fails if the directory has no config.json.
            "DOCKER_CONFIG": str(self.docker_config),
        }
        self._service: subprocess.Popen[bytes] | None = None
        self._containers: dict[str, str] = {}  # name -> full container ID

    @property
    def service_pid(self) -> int | None:
        return None if self._service is None else self._service.pid

    @property
    def container_names(self) -> list[str]:
        return list(self._containers)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.docker_env)
        return env

    def podman_argv(self, *args: str) -> list[str]:
        return ["podman", "--runtime", "runc", *args]

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(self.podman_argv(*args), check=check)

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The real docker CLI, talking to podman's socket."""
        return self._run(["docker", *args], check=check)

    def _run(self, argv: list[str], *, check: bool) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            check=False,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise ContainerError(
                f"{' '.join(argv[:3])} ... exited {result.returncode}:\n"
                f"{result.stdout.strip()}\n{result.stderr.strip()}"
            )
        return result

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.containers_conf.write_text(_CONTAINERS_CONF)
        self.docker_config.mkdir(exist_ok=True)
        (self.docker_config / "config.json").write_text("{}\n")
        with self.log_path.open("ab") as log:
            self._service = subprocess.Popen(
                self.podman_argv("system", "service", "--time=0", f"unix://{self.socket_path}"),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            assert self._service is not None
            if self._service.poll() is not None:
                raise ContainerError(
                    f"podman system service exited {self._service.returncode}:\n"
                    f"{self.log_path.read_text(errors='replace')[-3000:]}"
                )
            if self.socket_path.exists():
                result = self.docker("version", "--format", "{{.Server.Version}}", check=False)
                if result.returncode == 0:
                    return
                last = result.stderr.strip()
            time.sleep(0.1)
        raise ContainerError(f"docker CLI could not reach podman at {self.socket_path}: {last}")

    def run_container(
        self, name: str, *cmd: str, volumes: Sequence[tuple[Path, Path]] = ()
    ) -> None:
        """Starts NAME from the host's root file system (no image), on the host network."""
        volume_args = [arg for host, inside in volumes for arg in ("-v", f"{host}:{inside}")]
        # --rootfs is a flag: "/:O" is the positional "image", so every option goes before it.
        result = self.podman(
            "run", "-d", "--name", name, "--network", "host", *volume_args,
            "--rootfs", "/:O", *cmd,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            # A failed start can leave a "Created" container under our name behind; a name that
            # was already taken belongs to someone else and stays.
            if "already in use" not in result.stderr:
                self.podman("rm", "-f", "-t", "0", name, check=False)
            raise ContainerError(
                f"podman run {name} exited {result.returncode}:\n{result.stderr.strip()}"
            )
        self._containers[name] = result.stdout.strip().splitlines()[-1]

    def remove_container(self, name: str) -> None:
        container_id = self._containers.pop(name, None)
        self.podman("rm", "-f", "-t", "0", name, check=False)
        if container_id:
            self._reap_conmon(container_id)

    def _reap_conmon(self, container_id: str) -> None:
        # Exec-session conmons would linger EXEC_EXIT_DELAY seconds only to clean up sessions
        # of a container that is gone now; give them a moment, then end this container's
        # stragglers by PID.
        deadline = time.monotonic() + 0.5
        while (pids := _conmon_pids(container_id)) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        try:
            for name in list(self._containers):
                self.remove_container(name)
        finally:
            service, self._service = self._service, None
            if service is not None and service.poll() is None:
                service.send_signal(signal.SIGTERM)
                try:
                    service.wait(timeout=_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    service.kill()
                    service.wait(timeout=_STOP_TIMEOUT)


class PostfixContainer:
    """Postfix inside a podman container, managed only through ``docker exec``.

    The workdir is mounted at the same path inside, so the config directory, queue, maillog and
    the key files the test swaps are shared with the host. The host's /etc/postfix/main.cf must
    list the config directory *before* the container starts: the container sees a snapshot of
    the host's root file system as its overlay lower layer.
    """

    def __init__(
        self,
        podman: PodmanDocker,
        workdir: Path,
        *,
        name: str,
        hostname: str,
        key: Path,
        fullchain: Path,
        port: int | None = None,
        address: str = "127.0.0.1",
        volumes: Sequence[tuple[Path, Path]] = (),
    ) -> None:
        self.podman = podman
        self.workdir = workdir
        self.name = name
        self.hostname = hostname
        self.key = key
        self.fullchain = fullchain
        self.address = address
        self._own_port = port is None
        self.port = port if port is not None else free_port(address)
        self.volumes = [(workdir, workdir), *volumes]
        self.config_dir = workdir / "conf"
        self.maillog = workdir / "maillog"
        self.data_dir: Path | None = None
        self._registered = False
        self._running = False

    def postfix_argv(self, *args: str) -> list[str]:
        """Postfix's own argv inside the container."""
        return ["postfix", "-c", str(self.config_dir), *args]

    def docker_exec_argv(self, *args: str) -> list[str]:
        """What the product runs from the host: ``docker exec NAME postfix -c DIR ...``."""
        return ["docker", "exec", self.name, *self.postfix_argv(*args)]

    def _postfix(self, *args: str) -> None:
        # -t: Postfix prints its fatal errors only when stderr is a terminal.
        result = self.podman.docker("exec", "-t", self.name, *self.postfix_argv(*args), check=False)
        if result.returncode != 0:
            raise PostfixError(
                f"docker exec {self.name} postfix {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = make_data_dir()
        try:
            configure(self, self.data_dir)
            self._registered = True
            volumes = [*self.volumes, (self.data_dir, self.data_dir)]
            self.podman.run_container(self.name, "sleep", "infinity", volumes=volumes)
            self._running = True
            self._postfix("start")
            wait_for_port(self.address, self.port)
            check_starttls(self.address, self.port, self.maillog)
        except BaseException:
            self.stop()
            raise

    def reload(self) -> None:
        self._postfix("reload")

    def stop(self) -> None:
        try:
            if self._running:
                # Removing the container ends every process in it, master included.
                self.podman.remove_container(self.name)
        finally:
            self._running = False
            if self._registered:
                unregister_config_dir(self.config_dir)
                self._registered = False
            if self._own_port:
                release(self.address, self.port)
                self._own_port = False
            if self.data_dir is not None:
                shutil.rmtree(self.data_dir, ignore_errors=True)
                self.data_dir = None
