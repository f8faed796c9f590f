"""Which netfilter rule decides a packet's fate in a namespace (for `trace`).

The rules are read with their counters as `iptables-save -c` prints them (the
iptables-nft tables Docker and Kubernetes use, and the legacy x_tables when a
namespace has any; netns_shell.firewall reads them).  A chain is walked in
order as the kernel would for one packet of a new flow: each rule matches
(`yes`), does not (`no`) or cannot be decided from the rule text (`maybe`: a
match this module does not evaluate).  The first rule that matches for sure
and ends the walk (ACCEPT, DROP, REJECT) decides; jumps into user chains are
followed; the policy applies at the end.  Undecidable DROP/REJECT rules whose
counters are not zero are reported as suspects, not as the verdict: counters
only say that the rule matched something before.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..firewall import parse_save, run_in_namespace

if TYPE_CHECKING:
    from ..namespace import NetNamespace

__all__ = ["HOOKS", "Packet", "RuleSet", "Verdict", "load_rules"]

Record = dict[str, Any]

#: (table, chain) walked for a packet at each point of its way through a namespace
HOOKS = {
    "output": (("raw", "OUTPUT"), ("mangle", "OUTPUT"), ("filter", "OUTPUT")),
    "input": (
        ("raw", "PREROUTING"),
        ("mangle", "PREROUTING"),
        ("mangle", "INPUT"),
        ("filter", "INPUT"),
    ),
    "forward": (
        ("raw", "PREROUTING"),
        ("mangle", "PREROUTING"),
        ("mangle", "FORWARD"),
        ("filter", "FORWARD"),
    ),
}
_STOPS = {"ACCEPT", "DROP", "REJECT"}
_IGNORED = {"-m", "--comment", "-c"}


@dataclass(frozen=True)
class Packet:
    """The fields of the packet that rules match on."""

    src: str | None
    dst: str
    proto: str = "icmp"
    sport: int | None = None
    dport: int | None = None
    mark: int = 0


@dataclass
class Verdict:
    """What the chains of one hook decided: `accept`, `drop`, `reject`."""

    verdict: str
    rule: Record | None = None  # the deciding rule (None: a chain policy or nothing)
    chain: str = ""
    suspects: list[Record] = field(default_factory=list)

    @property
    def drops(self) -> bool:
        return self.verdict in ("drop", "reject")

    def evidence(self) -> str:
        if self.rule is not None:
            counters = f" [{self.rule.get('packets', 0)} pkts, {self.rule.get('bytes', 0)} B]"
            return f"{self.rule['table']} {self.rule['rule']}{counters}"
        return f"{self.chain} policy {self.verdict.upper()}"


class RuleSet:
    """The rules of one namespace, by (table, chain), in order."""

    def __init__(self, records: list[Record]):
        self.chains: dict[tuple[str, str], list[Record]] = {}
        self.policies: dict[tuple[str, str], Record] = {}
        for r in records:
            key = (r["table"], r["chain"])
            if r["kind"] == "chain":
                self.policies.setdefault(key, r)
            else:
                self.chains.setdefault(key, []).append(r)

    def decide(self, hook: str, packet: Packet, *, iif: str | None, oif: str | None) -> Verdict:
        """The verdict of the chains of `hook` for `packet` (accept when no chain objects)."""
        suspects: list[Record] = []
        for table, chain in HOOKS[hook]:
            if (table, chain) not in self.policies and (table, chain) not in self.chains:
                continue
            verdict, rule = self._walk(table, chain, packet, iif, oif, suspects, 0)
            if verdict in ("DROP", "REJECT"):
                return Verdict(verdict.lower(), rule, f"{table} {chain}", suspects)
            if verdict is None:  # fell off the end: the policy
                policy = self.policies.get((table, chain), {}).get("policy", "accept")
                if policy.upper() == "DROP":
                    return Verdict("drop", None, f"{table} {chain}", suspects)
        return Verdict("accept", None, "", suspects)

    def _walk(
        self,
        table: str,
        chain: str,
        packet: Packet,
        iif: str | None,
        oif: str | None,
        suspects: list[Record],
        depth: int,
    ) -> tuple[str | None, Record | None]:
        """(target, rule) of the rule that ends the walk; (None, None) at the chain's end."""
        if depth > 16:
            return None, None
        for rule in self.chains.get((table, chain), ()):
            words = _words(rule["rule"])
            target = rule.get("target")
            result = _matches(words, packet, iif, oif)
            if result == "no" or target is None:
                continue
            if result == "maybe":
                if target in ("DROP", "REJECT") and rule.get("packets"):
                    suspects.append(rule)
                continue
            if target in _STOPS:
                return target, rule
            if target == "RETURN":
                return "RETURN", rule
            if (table, target) in self.chains or (table, target) in self.policies:
                verdict, decider = self._walk(table, target, packet, iif, oif, suspects, depth + 1)
                if verdict in _STOPS:
                    return verdict, decider
                if "-g" in words:  # goto: a RETURN ends the calling chain too
                    return None, None
        return None, None


def load_rules(ns: NetNamespace) -> tuple[RuleSet | None, str]:
    """(rules, note): the namespace's IPv4 rules with counters; None and why when unreadable."""
    records: list[Record] = []
    notes = []
    for tool in ("iptables-save", "iptables-legacy-save"):
        if tool == "iptables-legacy-save" and not _has_legacy_tables(ns):
            continue
        try:
            done = run_in_namespace(ns, [tool, "-c"])
        except Exception as exc:  # not installed: the rules cannot be read
            notes.append(f"{tool}: {exc}")
            continue
        if done.returncode != 0:
            notes.append(f"{tool} -c: {done.stderr.strip()[:200]}")
            continue
        records += parse_save(done.stdout, "ip")
    if not records and notes:
        return None, "; ".join(notes)
    return RuleSet(records), "; ".join(notes)


def _has_legacy_tables(ns: NetNamespace) -> bool:
    def read() -> bool:
        try:
            with open("/proc/thread-self/net/ip_tables_names") as fh:
                return bool(fh.read().strip())
        except OSError:
            return False

    return ns.run(read)


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _matches(words: list[str], packet: Packet, iif: str | None, oif: str | None) -> str:
    """'yes', 'no' or 'maybe' for one `-A CHAIN ...` rule."""
    result = "yes"
    i = 2  # after -A CHAIN
    negate = False
    while i < len(words):
        word = words[i]
        value = words[i + 1] if i + 1 < len(words) else ""
        if word == "!":
            negate = True
            i += 1
            continue
        if word in ("-j", "-g"):
            i += 2
            while i < len(words) and not words[i].startswith("-"):
                i += 1  # the target's own options (REJECT --reject-with ...)
            continue
        answer, used = _one(word, value, words, i, packet, iif, oif)
        if answer is not None:
            if negate and answer in ("yes", "no"):
                answer = "no" if answer == "yes" else "yes"
            if answer == "no":
                return "no"
            if answer == "maybe":
                result = "maybe"
        negate = False
        i += used
    return result


def _one(
    word: str,
    value: str,
    words: list[str],
    i: int,
    packet: Packet,
    iif: str | None,
    oif: str | None,
) -> tuple[str | None, int]:
    """(answer, words used) for one option; answer None for options that do not match."""
    if word in ("-s", "--source"):
        return _address(packet.src, value), 2
    if word in ("-d", "--destination"):
        return _address(packet.dst, value), 2
    if word in ("-p", "--protocol"):
        return ("yes" if value in (packet.proto, "all") else "no"), 2
    if word in ("-i", "--in-interface"):
        return _interface(iif, value), 2
    if word in ("-o", "--out-interface"):
        return _interface(oif, value), 2
    if word in ("--dport", "--destination-port"):
        return _port(packet.dport, value), 2
    if word in ("--sport", "--source-port"):
        return _port(packet.sport, value), 2
    if word in ("--dports", "--sports"):
        port = packet.dport if word == "--dports" else packet.sport
        if port is None:
            return "maybe", 2
        ranges = [_port(port, part) for part in value.split(",")]
        return ("yes" if "yes" in ranges else "no"), 2
    if word in ("--ctstate", "--state"):
        return ("yes" if "NEW" in value.split(",") else "no"), 2
    if word == "--mark":
        mark, _, mask = value.partition("/")
        try:
            wanted, bits = int(mark, 0), int(mask, 0) if mask else 0xFFFFFFFF
        except ValueError:
            return "maybe", 2
        return ("yes" if packet.mark & bits == wanted else "no"), 2
    if word == "--icmp-type":
        return (
            "yes"
            if packet.proto == "icmp" and value in ("8", "echo-request", "any")
            else "no"
            if packet.proto == "icmp"
            else "maybe"
        ), 2
    if word in ("-m", "--match"):
        return None, 2
    if word == "--comment":
        return None, 2
    if word.startswith("-"):
        # an option this module does not evaluate: its value words follow it
        used = 1
        while i + used < len(words) and not words[i + used].startswith("-"):
            used += 1
        return "maybe", used
    return None, 1


def _address(address: str | None, spec: str) -> str:
    if address is None:
        return "maybe"
    try:
        return "yes" if ipaddress.ip_address(address) in ipaddress.ip_network(spec, False) else "no"
    except ValueError:
        return "maybe"


def _interface(name: str | None, spec: str) -> str:
    if name is None:
        return "maybe"
    if spec.endswith("+"):
        return "yes" if name.startswith(spec[:-1]) else "no"
    return "yes" if name == spec else "no"


def _port(port: int | None, spec: str) -> str:
    if port is None:
        return "maybe"
    low, _, high = spec.partition(":")
    try:
        first = int(low) if low else 0
        last = int(high) if high else (65535 if ":" in spec else first)
    except ValueError:
        return "maybe"
    return "yes" if first <= port <= last else "no"
