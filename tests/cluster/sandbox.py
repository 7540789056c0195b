"""A stand-in for a node, to run a rendered pod's container as a local program.

The node is a mount and network namespace of its own (util-linux `unshare`, root only): its own
loopback, where every port the pods' configuration names is free; an /etc/hosts naming the
namespace's Services (and any host a test stands in for); the test's CA in its trust store; and
each volume of the pods at its mountPath, written from the API as the kubelet would (ConfigMaps,
Secrets, a ServiceAccount token from the TokenRequest API, the cluster's CA, emptyDirs). The host
is untouched: /etc, /usr, /srv and /run are overlays whose changes stay in the test's folder.

Programs are started in the node by `nsenter`; the test reaches the node's ports, and the node the
host's API server, through relays between the two network namespaces (`Relay`). The volumes and the
environment are the operator runner's (operators.py), which reads them from the API as the kubelet does.
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .controlplane import Process, _die_with_parent
from .operators import bind_mount_lines

CLONE_NEWNET = 0x40000000
OVERLAID = ("/etc", "/usr", "/srv", "/run")  # where a mountPath may need a folder the host does not have
_libc = ctypes.CDLL(None, use_errno=True)


def unavailable() -> str | None:
    """Why this machine cannot make the node (None when it can)."""
    if os.geteuid() != 0:
        return "the hub's node needs root (mount and network namespaces)"
    for tool in ("unshare", "nsenter", "ip", "mount"):
        if not shutil.which(tool):
            return f"{tool} (util-linux/iproute2) is not on PATH"
    return None


@contextmanager
def network_of(pid: int | None):
    """Run the enclosed code's new sockets in the network namespace of `pid` (None: this one)."""
    if pid is None:
        yield
        return
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if _libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into the network of {pid}")
        yield
    finally:
        _libc.setns(here, CLONE_NEWNET)
        os.close(here)
        os.close(there)


class Relay:
    """A TCP relay: listens on `listen` in one network namespace, connects to `target` in another."""

    def __init__(self, listen: tuple[int | None, str, int], target: tuple[int | None, str, int]):
        self.target = target
        pid, host, port = listen
        with network_of(pid):
            self.server = socket.create_server((host, port), reuse_port=False)
        self.port = self.server.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            ready, _, _ = select.select([self.server], [], [], 0.5)
            if not ready or self.closed:
                continue
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        pid, host, port = self.target
        try:
            with network_of(pid):
                upstream = socket.create_connection((host, port), timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self.closed = True
        self.server.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@dataclass
class Node:
    """The namespaces, held by a sleeping process; `start` runs a program in them."""

    folder: Path
    holder: Process | None = None
    processes: list[Process] = field(default_factory=list)
    relays: list[Relay] = field(default_factory=list)

    @property
    def pid(self) -> int:
        assert self.holder is not None
        return self.holder.popen.pid

    def boot(self, mounts: list[tuple[Path, str, bool]], hosts: dict[str, str], ca: Path | None = None) -> None:
        """Make the namespaces: loopback up, overlays, /etc/hosts, the CA trusted, each (folder,
        mountPath, read only) of `mounts` bound as the operator runner binds them."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lines = ["set -e", "ip link set lo up"]
        for top in OVERLAID:
            upper, work = self.folder / "overlay" / top.strip("/") / "upper", self.folder / "overlay" / top.strip("/") / "work"
            upper.mkdir(parents=True)
            work.mkdir(parents=True)
            lines.append(f"mount -t overlay overlay -o lowerdir={top},upperdir={upper},workdir={work} {top}")
        text = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n" + "".join(f"{ip} {name}\n" for name, ip in sorted(hosts.items()))
        (self.folder / "hosts").write_text(text)
        lines.append(f"cat {self.folder / 'hosts'} > /etc/hosts")
        if ca is not None:
            lines.append(f"cat {ca} >> /etc/ssl/certs/ca-certificates.crt")
        lines += [*bind_mount_lines(mounts), "echo node-ready", "exec sleep 86400"]
        script = self.folder / "boot.sh"
        script.write_text("\n".join(lines) + "\n")
        log = self.folder / "node.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(["unshare", "--mount", "--net", "--propagation", "private", "/bin/sh", str(script)],
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        self.holder = Process("node", popen, log)
        deadline = time.monotonic() + 30
        while "node-ready" not in log.read_text():
            if not self.holder.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the node did not boot:\n{self.holder.tail()}")
            time.sleep(0.1)

    def start(self, name: str, args: list[str], env: dict[str, str], workdir: str | None = None) -> Process:
        """Run a program in the node (its mounts, its network), logging to <folder>/<name>.log."""
        log = self.folder / f"{name}.log"
        command = ["nsenter", "-t", str(self.pid), "--mount", "--net"] + ([f"--wdns={workdir}"] if workdir else []) + ["--", *args]
        with open(log, "wb") as out:
            popen = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def relay_in(self, port: int, target: tuple[str, int]) -> Relay:
        """The node's 127.0.0.1:port reaches the host's target (the API server, the test's own servers)."""
        relay = Relay((self.pid, "127.0.0.1", port), (None, *target))
        self.relays.append(relay)
        return relay

    def relay_out(self, port: int) -> Relay:
        """A port on the host's 127.0.0.1 that reaches the node's 127.0.0.1:port."""
        relay = Relay((None, "127.0.0.1", 0), (self.pid, "127.0.0.1", port))
        self.relays.append(relay)
        return relay

    def stop(self) -> None:
        for relay in self.relays:
            relay.close()
        for process in reversed(self.processes):
            process.stop()
        if self.holder is not None:
            # What the programs started in their own sessions (the hub's services) is in the node too.
            network = os.readlink(f"/proc/{self.pid}/ns/net") if self.holder.alive() else None
            for pid in (int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != self.pid):
                try:
                    if network and os.readlink(f"/proc/{pid}/ns/net") == network:
                        os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.holder.stop()
