"""The packet filter of a namespace, with counters: nftables and legacy iptables.

Backends, both read inside the namespace:

* nftables: `nft -j list ruleset` gives the structure and the counters, and
  `nft -a list ruleset` the text of each rule (matched by handle).  Rules
  that iptables-nft made (Docker's, on most hosts today) live here too; nft
  warns "table ip nat is managed by iptables-nft", and those tables are
  marked `iptables-nft`.
* legacy iptables (x_tables): present when /proc/net/ip_tables_names (or
  ip6_tables_names) lists tables in that namespace; read with
  `iptables-legacy-save -c` / `ip6tables-legacy-save -c`.

pyroute2 has no nftables ruleset reader (its nftsocket speaks the raw
expressions only), so the tools themselves are the reader; they run through
`nsenter --net=/proc/self/fd/N` on the namespace handle, never a shell.

Records: one per chain (`kind` "chain": hook, policy, policy counters) and
one per rule (`kind` "rule": `rule` text, `packets`, `bytes`, `target`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .errors import NetnsShellError, NotFoundError

if TYPE_CHECKING:
    from .namespace import NetNamespace

__all__ = ["FirewallError", "list_firewall", "run_in_namespace"]

Record = dict[str, Any]
_TIMEOUT = 20
_HANDLE = re.compile(r"\s+# handle (\d+)$")
_MANAGED = re.compile(r"table (\S+) (\S+) is managed by iptables-nft")
_COUNTER_TEXT = re.compile(r"counter packets \d+ bytes \d+")  # the columns show them
_VERDICTS = ("accept", "drop", "return", "continue", "queue", "reject")


class FirewallError(NetnsShellError):
    """A firewall tool failed."""


def run_in_namespace(ns: NetNamespace, argv: list[str]) -> subprocess.CompletedProcess:
    """Run a host program inside `ns` and capture its output (text); no shell involved."""
    if shutil.which(argv[0]) is None:
        raise NotFoundError(f"{argv[0]} is not installed on this host")
    fd = ns.fd
    return subprocess.run(
        ["nsenter", f"--net=/proc/self/fd/{fd}", "--", *argv],
        pass_fds=(fd,),
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=_TIMEOUT,
        check=False,
    )


# ----------------------------------------------------------------- nftables
def _nft_texts(text: str) -> dict[tuple[str, str, str, int], str]:
    """(family, table, chain, handle) -> the rule as `nft -a list ruleset` writes it."""
    texts: dict[tuple[str, str, str, int], str] = {}
    family = table = chain = ""
    for line in text.splitlines():
        words = line.split()
        if line.startswith("table ") and len(words) >= 3:
            family, table = words[1], words[2]
        elif line.startswith("\tchain ") and len(words) >= 2:
            chain = words[1]
        elif line.startswith("\t\t"):
            found = _HANDLE.search(line)
            if found:
                text = _COUNTER_TEXT.sub("counter", line[: found.start()].strip())
                texts[(family, table, chain, int(found.group(1)))] = text
    return texts


def _verdict(expr: list) -> str | None:
    for item in expr:
        if not isinstance(item, dict):
            continue
        for key, value in item.items():
            if key in ("jump", "goto") and isinstance(value, dict):
                return f"{key} {value.get('target')}"
            if key in _VERDICTS or key in ("dnat", "snat", "masquerade", "redirect"):
                return key
            if key == "xt" and isinstance(value, dict) and value.get("type") == "target":
                return str(value.get("name"))
    return None


def _nft_records(ns: NetNamespace) -> Iterator[Record]:
    structure = run_in_namespace(ns, ["nft", "-j", "list", "ruleset"])
    if structure.returncode != 0:
        raise FirewallError(f"nft -j list ruleset: {structure.stderr.strip()}")
    listing = run_in_namespace(ns, ["nft", "-a", "list", "ruleset"])
    texts = _nft_texts(listing.stdout)
    managed = {m.groups() for m in _MANAGED.finditer(listing.stderr + listing.stdout)}
    items = json.loads(structure.stdout or '{"nftables": []}').get("nftables", [])
    for item in items:
        if "chain" in item:
            c = item["chain"]
            rec: Record = {
                "kind": "chain",
                "backend": _backend(managed, c),
                "family": c.get("family"),
                "table": c.get("table"),
                "chain": c.get("name"),
                "handle": c.get("handle"),
            }
            for key in ("type", "hook", "prio", "policy"):
                if key in c:
                    rec[key] = c[key]
            yield rec
        elif "rule" in item:
            r = item["rule"]
            expr = r.get("expr", [])
            counter = next(
                (e["counter"] for e in expr if isinstance(e, dict) and "counter" in e), None
            )
            key = (r.get("family"), r.get("table"), r.get("chain"), r.get("handle"))
            rec = {
                "kind": "rule",
                "backend": _backend(managed, r),
                "family": r.get("family"),
                "table": r.get("table"),
                "chain": r.get("chain"),
                "handle": r.get("handle"),
                "rule": texts.get(key),
                "target": _verdict(expr),
            }
            if isinstance(counter, dict):
                rec["packets"], rec["bytes"] = counter.get("packets"), counter.get("bytes")
            if "comment" in r:
                rec["comment"] = r["comment"]
            rec["expr"] = expr
            yield rec


def _backend(managed: set[tuple[str, str]], item: dict) -> str:
    return "iptables-nft" if (item.get("family"), item.get("table")) in managed else "nftables"


# ---------------------------------------------------------- legacy iptables
def _legacy_tables(ns: NetNamespace) -> dict[str, list[str]]:
    """{'ip': [...], 'ip6': [...]}: the x_tables tables loaded in the namespace."""

    def read() -> dict[str, list[str]]:
        found = {}
        for family, name in (("ip", "ip_tables_names"), ("ip6", "ip6_tables_names")):
            try:
                with open(f"/proc/thread-self/net/{name}", encoding="ascii") as fh:
                    found[family] = fh.read().split()
            except OSError:
                found[family] = []
        return found

    return ns.run(read)


_COUNTS = re.compile(r"^\[(\d+):(\d+)\]\s+")


def parse_save(text: str, family: str) -> Iterator[Record]:
    """`iptables-save -c` output as chain and rule records."""
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith(":"):
            parts = line[1:].split()
            rec: Record = {
                "kind": "chain",
                "backend": "iptables-legacy",
                "family": family,
                "table": table,
                "chain": parts[0] if parts else "",
            }
            if len(parts) > 1 and parts[1] != "-":
                rec["policy"] = parts[1].lower()
            if len(parts) > 2:
                found = re.match(r"\[(\d+):(\d+)\]", parts[2])
                if found:
                    rec["packets"], rec["bytes"] = int(found.group(1)), int(found.group(2))
            yield rec
        else:
            counts = _COUNTS.match(line)
            rest = line[counts.end() :] if counts else line
            if not rest.startswith("-A "):
                continue
            words = rest.split()
            jump = next((words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-j", "-g")), None)
            rec = {
                "kind": "rule",
                "backend": "iptables-legacy",
                "family": family,
                "table": table,
                "chain": words[1] if len(words) > 1 else "",
                "rule": rest,
                "target": jump,
            }
            if counts:
                rec["packets"], rec["bytes"] = int(counts.group(1)), int(counts.group(2))
            yield rec


def _legacy_records(ns: NetNamespace, tables: dict[str, list[str]]) -> Iterator[Record]:
    for family, tool in (("ip", "iptables-legacy-save"), ("ip6", "ip6tables-legacy-save")):
        if not tables.get(family):
            continue
        done = run_in_namespace(ns, [tool, "-c"])
        if done.returncode != 0:
            raise FirewallError(f"{tool} -c: {done.stderr.strip()}")
        yield from parse_save(done.stdout, family)


def list_firewall(
    ns: NetNamespace, *, table: str | None = None, chain: str | None = None
) -> tuple[list[Record], list[str]]:
    """(records, backends used): the namespace's rules with counters, filtered."""
    records: list[Record] = []
    backends: list[str] = []
    if shutil.which("nft") is not None:
        records += _nft_records(ns)
        backends += sorted({r["backend"] for r in records}) or ["nftables (empty ruleset)"]
    legacy = _legacy_tables(ns)
    if any(legacy.values()):
        if shutil.which("iptables-legacy-save") is None:
            backends.append("iptables-legacy (tables present, iptables-legacy-save not installed)")
        else:
            records += _legacy_records(ns, legacy)
            backends.append("iptables-legacy")
    if not backends:
        raise NotFoundError("neither nft nor iptables-legacy-save is installed on this host")
    # each chain's rules right under the chain, chains in the order the tools list them
    first: dict[tuple, int] = {}
    for index, r in enumerate(records):
        first.setdefault((r["backend"], r["family"], r["table"], r["chain"]), index)
    records.sort(key=lambda r: first[(r["backend"], r["family"], r["table"], r["chain"])])
    if table is not None:
        records = [r for r in records if r["table"] == table]
    if chain is not None:
        records = [r for r in records if r["chain"] == chain]
    return records, backends
