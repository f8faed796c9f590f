"""The netlink numbers are named once, and named right.

Every constant of netns_shell.netlink.constants that the kernel's uapi
headers define (linux-libc-dev: /usr/include/linux) must carry the header's
value: enums are evaluated the way the C compiler numbers them.  Decoders read
attributes by those names: no netlink module keeps its own numbers or struct
layouts.  The plugins' dumps go through the core socket (checked on the real
kernel's generic netlink controller).
"""

from __future__ import annotations

import errno
import glob
import os
import re
from pathlib import Path

import pytest

from netns_shell.netlink import constants
from netns_shell.netlink.core import NetlinkSocket

ROOT = Path(__file__).resolve().parent.parent
HEADERS = [
    *glob.glob("/usr/include/linux/*.h"),
    *glob.glob("/usr/include/linux/netfilter/*.h"),
]
_ENUM = re.compile(r"\benum\b[^{;]*\{(.*?)\}", re.S)
_DEFINE = re.compile(
    r"^#define\s+([A-Z][A-Z0-9_]*)\s+(\(?-?(?:0x[0-9a-fA-F]+|\d+)[uUlL]*\)?)\s*(?:/[*/].*)?$", re.M
)


def _int(text: str) -> int:
    text = text.strip("()").rstrip("uUlL")
    return int(text, 8) if re.fullmatch(r"0[0-7]+", text) else int(text, 0)


def _header_values() -> dict[str, int]:
    """NAME -> value of every enum member and numeric #define in the uapi headers."""
    values: dict[str, int] = {}
    for path in HEADERS:
        text = re.sub(r"/\*.*?\*/", "", Path(path).read_text(errors="replace"), flags=re.S)
        for name, number in _DEFINE.findall(text):
            values.setdefault(name, _int(number))
        for body in _ENUM.findall(text):
            body = re.sub(r"^\s*#.*$", "", body, flags=re.M)
            current = -1
            for item in body.split(","):
                item = item.strip()
                if not item:
                    continue
                name, _, value = (part.strip() for part in item.partition("="))
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    break
                if value:
                    try:
                        current = _int(value)
                    except ValueError:
                        if value not in values:
                            break  # an expression we do not evaluate: stop at this enum
                        current = values[value]
                else:
                    current += 1
                values.setdefault(name, current)
    return values


@pytest.mark.skipif(not HEADERS, reason="no kernel uapi headers (apt-get install linux-libc-dev)")
def test_every_named_number_has_the_kernel_headers_value():
    kernel = _header_values()
    ours = {
        name: value
        for name, value in vars(constants).items()
        if name.isupper() and isinstance(value, int)
    }
    checked = {name: value for name, value in ours.items() if name in kernel}
    # most of them are in the headers (the rest are kernel-internal, e.g. SO_RCVBUFFORCE
    # lives in asm-generic/socket.h, which this check does not read)
    assert len(checked) > 0.8 * len(ours), sorted(set(ours) - set(kernel))
    wrong = {
        name: (value, kernel[name]) for name, value in checked.items() if kernel[name] != value
    }
    assert not wrong, f"(ours, kernel's): {wrong}"
    for name in ("IFLA_VXLAN_PORT", "IFLA_BR_MULTI_BOOLOPT", "NDA_FLAGS_EXT", "RTA_NH_ID"):
        assert name in checked


def test_no_netlink_module_keeps_its_own_numbers_or_layouts():
    """Bare attribute numbers (`25 in a`, `a[15]`) and struct layouts live in constants.py."""
    offenders = []
    files = [
        *(ROOT / "netns_shell" / "netlink").glob("*.py"),
        ROOT / "plugins" / "sockets.py",
        ROOT / "plugins" / "ipvs.py",
    ]
    bare = re.compile(r"\b\d+ in (a|spans|attrs)\b|\b(a|spans|attrs)(\[|\.get\()\d+\b")
    layout = re.compile(r"struct\.(Struct|unpack_from|pack)\(\s*[\"']")
    for path in files:
        if path.name == "constants.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if bare.search(line) or layout.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    # two layouts whose size is only known at run time stay where they are used
    allowed = ("parse_stats64", 'f"={count}Q"')
    offenders = [o for o in offenders if not any(a in o for a in allowed)]
    assert not offenders, "\n".join(offenders)


def test_each_link_kind_has_a_named_decoder():
    from netns_shell.netlink import linkkinds

    assert set(linkkinds.KIND_DECODERS) == {"vxlan", "bridge", "vlan"}
    assert set(linkkinds.SLAVE_KIND_DECODERS) == {"bridge"}
    for decoder in (*linkkinds.KIND_DECODERS.values(), *linkkinds.SLAVE_KIND_DECODERS.values()):
        assert decoder(b"", 0, 0, {}) == {} if decoder.__code__.co_argcount == 4 else True


def test_the_ipvs_plugin_asks_the_controller_through_the_core_socket():
    """The generic netlink part of the ipvs plugin, on the real kernel (any kernel has nlctrl)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ipvs_plugin_t", ROOT / "plugins" / "ipvs.py")
    assert spec is not None and spec.loader is not None
    ipvs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ipvs)
    with NetlinkSocket(None, constants.NETLINK_GENERIC, strict=False) as sock:
        assert ipvs._family_id(sock, b"nlctrl") == constants.GENL_ID_CTRL
        with pytest.raises(Exception) as caught:
            ipvs._family_id(sock, f"nosuch{os.getpid()}".encode())
        assert getattr(caught.value, "errno", None) == errno.ENOENT
        assert ipvs._error(errno.ENOENT, opening=True).args[0].startswith("ipvs: no IPVS here")
