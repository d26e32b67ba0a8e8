"""iptables rules for bridge networks: NAT, isolation, internal networks, published ports.

The rules live only in chains of our own, named with a per-daemon tag
(``PYDOCKER-FWD-<tag>`` ...), so they never collide with a real dockerd or another
pydockerd on the same host. Their whole content is *declared*: every change re-renders
all of them from the service's state and loads them with one ``iptables-restore
--noflush`` (declaring a chain flushes it), which makes reconciliation after a crash
the same operation as any update. Only the jumps from the built-in chains are added one
by one, once, and removed at a clean stop together with the chains.

The administrators' chain ``DOCKER-USER`` (filter table) follows dockerd's convention: it
is created if missing, never flushed or deleted, and ``FORWARD`` jumps to it *first*
(re-asserted at every start), so rules put there are evaluated before the engine's and
survive daemon restarts. When dockerd runs on the same host the chain and the jump are
shared: both engines only ever move that one jump back to the top.

Like dockerd we run the host's ``iptables`` by absolute path, whatever backend
(nf_tables or legacy) the distribution selected: mixing backends would let the other
backend's FORWARD DROP policy win over our ACCEPTs.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import SystemError_

IPTABLES_CANDIDATES = ("/usr/sbin/iptables", "/sbin/iptables", "/usr/bin/iptables")
IP6TABLES_CANDIDATES = ("/usr/sbin/ip6tables", "/sbin/ip6tables", "/usr/bin/ip6tables")
USER_CHAIN = "DOCKER-USER"
USER_JUMP = f"-A FORWARD -j {USER_CHAIN}"


@dataclass(frozen=True, slots=True)
class BridgeRules:
    """What one bridge network needs from the firewall."""

    bridge: str
    subnet: str  # "10.213.0.0/24"
    internal: bool = False
    masquerade: bool = True
    icc: bool = True


@dataclass(frozen=True, slots=True)
class PortRule:
    """A published port: DNAT ``host_ip:host_port`` to ``container_ip:container_port``."""

    proto: str  # tcp / udp
    host_ip: str  # "" or "0.0.0.0" = every address
    host_port: int
    container_ip: str
    container_port: int
    bridge: str


def daemon_tag(data_root: Path | str) -> str:
    """8 hex digits identifying one daemon's rules (derived from its data root)."""
    return hashlib.sha256(str(data_root).encode()).hexdigest()[:8]


def find_iptables(family: int = 4) -> str | None:
    """``iptables`` (family 4) or ``ip6tables`` (family 6) by absolute path."""
    for path in IPTABLES_CANDIDATES if family == 4 else IP6TABLES_CANDIDATES:
        if Path(path).exists():
            return path
    return shutil.which("iptables" if family == 4 else "ip6tables")


class Chains:
    """The names of one daemon's chains."""

    def __init__(self, tag: str, family: int = 4) -> None:
        self.family = family
        self.forward = f"PYDOCKER-FWD-{tag}"
        self.iso1 = f"PYDOCKER-ISO1-{tag}"
        self.iso2 = f"PYDOCKER-ISO2-{tag}"
        self.post = f"PYDOCKER-POST-{tag}"
        self.dnat = f"PYDOCKER-DNAT-{tag}"

    def jumps(self) -> list[tuple[str, str, list[str]]]:
        """(table, built-in chain, rule spec) of every jump into our chains."""
        return [
            ("filter", "FORWARD", ["-j", self.forward]),
            ("nat", "POSTROUTING", ["-j", self.post]),
            ("nat", "PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", self.dnat]),
            ("nat", "OUTPUT", ["!", "-d", "127.0.0.0/8" if self.family == 4 else "::1/128",
                               "-m", "addrtype", "--dst-type", "LOCAL", "-j", self.dnat]),
        ]


def render_rules(chains: Chains, bridges: Sequence[BridgeRules], ports: Iterable[PortRule]) -> str:
    """The ``iptables-restore`` input that sets every one of our chains' content."""
    ports = list(ports)
    filt = [
        "*filter",
        f":{chains.forward} - [0:0]",
        f":{chains.iso1} - [0:0]",
        f":{chains.iso2} - [0:0]",
        f"-A {chains.forward} -j {chains.iso1}",
    ]
    for b in bridges:
        if b.internal:
            filt.append(f"-A {chains.iso1} ! -s {b.subnet} -o {b.bridge} -j DROP")
            filt.append(f"-A {chains.iso1} ! -d {b.subnet} -i {b.bridge} -j DROP")
        filt.append(f"-A {chains.iso1} -i {b.bridge} ! -o {b.bridge} -j {chains.iso2}")
        filt.append(f"-A {chains.iso2} -o {b.bridge} -j DROP")
        if not b.internal:
            filt.append(f"-A {chains.forward} -o {b.bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
            for p in ports:
                if p.bridge == b.bridge:
                    filt.append(
                        f"-A {chains.forward} -d {p.container_ip}/32 ! -i {b.bridge} -o {b.bridge} "
                        f"-p {p.proto} -m {p.proto} --dport {p.container_port} -j ACCEPT"
                    )
            filt.append(f"-A {chains.forward} -i {b.bridge} ! -o {b.bridge} -j ACCEPT")
        filt.append(f"-A {chains.forward} -i {b.bridge} -o {b.bridge} -j {'ACCEPT' if b.icc else 'DROP'}")
    filt.append("COMMIT")
    nat = ["*nat", f":{chains.post} - [0:0]", f":{chains.dnat} - [0:0]"]
    for b in bridges:
        if b.masquerade and not b.internal:
            nat.append(f"-A {chains.post} -s {b.subnet} ! -o {b.bridge} -j MASQUERADE")
        nat.append(f"-A {chains.dnat} -i {b.bridge} -j RETURN")
    for p in ports:
        nat.append(
            f"-A {chains.post} -s {p.container_ip}/32 -d {p.container_ip}/32 "
            f"-p {p.proto} -m {p.proto} --dport {p.container_port} -j MASQUERADE"
        )
        dest = "" if p.host_ip in ("", "0.0.0.0") else f"-d {p.host_ip}/32 "
        nat.append(
            f"-A {chains.dnat} {dest}! -i {p.bridge} -p {p.proto} -m {p.proto} --dport {p.host_port} "
            f"-j DNAT --to-destination {p.container_ip}:{p.container_port}"
        )
    nat.append("COMMIT")
    return "\n".join(filt + nat) + "\n"


class Firewall:
    """One daemon's iptables state. Methods serialise on a lock; each is one or a few
    short ``iptables`` invocations."""

    def __init__(self, tag: str, iptables: str | None = None, family: int = 4) -> None:
        """``family`` 6 drives ``ip6tables`` (same chain names, in the IPv6 tables)."""
        self.chains = Chains(tag, family)
        self._iptables = iptables if iptables is not None else find_iptables(family)
        self._lock = asyncio.Lock()
        self._variant = ""
        self._last: str | None = None

    @property
    def available(self) -> bool:
        return self._iptables is not None

    @property
    def backend(self) -> str:
        """The value of ``/info``'s ``FirewallBackend.Driver`` (dockerd 28 says
        "iptables" for both the nf_tables and the legacy flavour)."""
        return "iptables"

    @property
    def variant(self) -> str:
        """``nf_tables`` or ``legacy`` (from ``iptables --version``), once set up."""
        return self._variant

    async def _exec(self, argv: list[str], stdin: bytes | None, check: bool) -> tuple[int, str]:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise SystemError_(f"iptables failed: {' '.join(argv)}: {exc.strerror or exc}") from exc
        out, err = await proc.communicate(stdin)
        code = proc.returncode if proc.returncode is not None else -1
        if check and code != 0:
            raise SystemError_(f"iptables failed: {' '.join(argv)}: {err.decode(errors='replace').strip()}")
        return code, out.decode(errors="replace")

    async def _run(self, *args: str, check: bool = True) -> tuple[int, str]:
        assert self._iptables is not None
        return await self._exec([self._iptables, *args], None, check)

    async def _restore(self, text: str) -> None:
        assert self._iptables is not None
        await self._exec([self._iptables + "-restore", "-w", "--noflush"], text.encode(), True)

    async def setup(self) -> None:
        """Create our chains (empty) and the jumps into them; idempotent."""
        if not self.available:
            return
        async with self._lock:
            _, version = await self._run("--version", check=False)
            self._variant = "nf_tables" if "nf_tables" in version else "legacy"
            await self._restore(render_rules(self.chains, [], []))
            for table, chain, spec in self.chains.jumps():
                code, _ = await self._run("-w", "-t", table, "-C", chain, *spec, check=False)
                if code != 0:
                    await self._run("-w", "-t", table, "-I", chain, "1", *spec)
            await self._ensure_user_chain()
            self._last = None

    async def _ensure_user_chain(self) -> None:
        """``DOCKER-USER`` exists (its rules untouched) and is ``FORWARD``'s first rule."""
        code, _ = await self._run("-w", "-t", "filter", "-S", USER_CHAIN, check=False)
        if code != 0:
            await self._run("-w", "-t", "filter", "-N", USER_CHAIN, check=False)
        _, out = await self._run("-w", "-t", "filter", "-S", "FORWARD", check=False)
        rules = [line for line in out.splitlines() if line.startswith("-A FORWARD")]
        if rules and rules[0] == USER_JUMP:
            return
        while (await self._run("-w", "-t", "filter", "-D", "FORWARD", "-j", USER_CHAIN, check=False))[0] == 0:
            pass
        await self._run("-w", "-t", "filter", "-I", "FORWARD", "1", "-j", USER_CHAIN)

    async def sync(self, bridges: Sequence[BridgeRules], ports: Iterable[PortRule]) -> None:
        """Make our chains contain exactly the rules for ``bridges`` and ``ports``."""
        if not self.available:
            return
        text = render_rules(self.chains, bridges, ports)
        async with self._lock:
            if text == self._last:
                return
            await self._restore(text)
            self._last = text

    async def teardown(self) -> None:
        """Remove the jumps and our chains (clean stop); ``DOCKER-USER`` and its jump stay."""
        if not self.available:
            return
        async with self._lock:
            for table, chain, spec in self.chains.jumps():
                while (await self._run("-w", "-t", table, "-D", chain, *spec, check=False))[0] == 0:
                    pass
            for table, names in (
                ("filter", (self.chains.forward, self.chains.iso1, self.chains.iso2)),
                ("nat", (self.chains.post, self.chains.dnat)),
            ):
                for name in names:
                    await self._run("-w", "-t", table, "-F", name, check=False)
                for name in names:
                    await self._run("-w", "-t", table, "-X", name, check=False)
            self._last = None

    async def dump(self, table: str) -> list[str]:
        """Our rules in ``iptables -S`` form (for tests and diagnostics)."""
        if not self.available:
            return []
        _, out = await self._run("-w", "-t", table, "-S", check=False)
        names = {self.chains.forward, self.chains.iso1, self.chains.iso2, self.chains.post, self.chains.dnat}
        return [line for line in out.splitlines() if any(n in line for n in names)]


__all__ = ["USER_CHAIN", "BridgeRules", "PortRule", "daemon_tag", "find_iptables", "Chains", "render_rules", "Firewall"]
