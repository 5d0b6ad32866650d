"""A host of its own for a test: a network namespace joined to this machine by veth pairs.

Each :meth:`NetnsHost.link` is one cable (a veth pair on a /30 of its own): the namespace's end
is ``.2``, this machine's end ``.1``.  :meth:`Link.cut` takes the namespace's end down, as a
failed NIC or a pulled cable would: nothing is closed or refused, packets just stop, so open
TCP connections hang until a timeout notices (a real partition, unlike a proxy's ``cut``);
:meth:`Link.heal` brings it back, and the stalled connections carry on.  A process started
with :meth:`NetnsHost.command` runs inside (``ip netns exec``; the same PID).

Needs root and iproute2: :func:`netns_unavailable` says why not, for a skip.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from types import TracebackType

__all__ = ["Link", "NetnsHost", "netns_unavailable"]


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


def netns_unavailable() -> str | None:
    """None when this machine can make namespaces with veth pairs, else the reason."""
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    if os.geteuid() != 0:
        return "network namespaces need root"
    try:
        with NetnsHost() as host:
            host.link()
    except OSError as exc:
        return f"cannot make a network namespace with a veth pair here: {exc}"
    return None


@dataclass
class Link:
    """One veth pair: ``host_ip`` on this machine, ``ns_ip`` in the namespace."""

    namespace: str
    host_end: str
    ns_end: str
    host_ip: str
    ns_ip: str

    def cut(self) -> None:
        _check(_ip("-n", self.namespace, "link", "set", self.ns_end, "down"))

    def heal(self) -> None:
        _check(_ip("-n", self.namespace, "link", "set", self.ns_end, "up"))


def _check(done: subprocess.CompletedProcess[str]) -> None:
    if done.returncode != 0:
        raise OSError(f"ip {' '.join(done.args[1:])}: {done.stderr.strip()}")


def _free_subnet() -> str:
    """``10.X.Y.Z`` (Z a multiple of 4) whose /30 no interface of this machine uses."""
    used = _ip("-o", "-4", "addr", "show").stdout
    while True:
        base = (
            f"10.{random.randint(200, 254)}.{random.randint(0, 255)}.{random.randrange(0, 256, 4)}"
        )
        prefix = base.rsplit(".", 1)[0] + "."
        last = int(base.rsplit(".", 1)[1])
        if not any(f" {prefix}{last + i}/" in used for i in range(4)):
            return base


class NetnsHost:
    """``with NetnsHost() as h: link = h.link(); Popen(h.command("prog", ...))``."""

    def __init__(self) -> None:
        self.name = f"cp{uuid.uuid4().hex[:8]}"
        self.links: list[Link] = []
        self._made = False

    def __enter__(self) -> NetnsHost:
        _check(_ip("netns", "add", self.name))
        self._made = True
        try:
            _check(_ip("-n", self.name, "link", "set", "lo", "up"))
        except OSError:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def link(self) -> Link:
        """A new cable between this machine and the namespace (interface names fit in 15)."""
        i = len(self.links)
        host_end, ns_end = f"{self.name}h{i}", f"{self.name}n{i}"
        _check(_ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end))
        base = _free_subnet()
        prefix, last = base.rsplit(".", 1)
        link = Link(
            self.name, host_end, ns_end, f"{prefix}.{int(last) + 1}", f"{prefix}.{int(last) + 2}"
        )
        self.links.append(link)
        _check(_ip("link", "set", ns_end, "netns", self.name))
        _check(_ip("addr", "add", f"{link.host_ip}/30", "dev", host_end))
        _check(_ip("link", "set", host_end, "up"))
        _check(_ip("-n", self.name, "addr", "add", f"{link.ns_ip}/30", "dev", ns_end))
        _check(_ip("-n", self.name, "link", "set", ns_end, "up"))
        return link

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def close(self) -> None:
        """Remove the cables and the namespace (end the processes inside first)."""
        for link in self.links:
            _ip("link", "del", link.host_end)  # takes its peer with it
        self.links.clear()
        if self._made:
            _ip("netns", "del", self.name)
            self._made = False
