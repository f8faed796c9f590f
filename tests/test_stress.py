"""Isolation under load: thousands of commands alternating between two namespaces.

While completion state is rebuilt on background threads after every
command (as the REPL does) and a capture runs on its own thread, every
`links` result must come from the namespace the command was run in, and no
thread may be left in another namespace.
NETNS_SHELL_STRESS_COMMANDS sets how many commands run (default 2000).
"""

from __future__ import annotations

import io
import json
import os
import threading
import time

from netns_shell import api
from netns_shell.commands import build_registry
from netns_shell.completion import StateRefresher
from netns_shell.render import Console
from netns_shell.session import Session

COMMANDS = int(os.environ.get("NETNS_SHELL_STRESS_COMMANDS", "2000"))


def test_every_result_comes_from_the_namespace_it_claims(fresh_lab, tmp_path):
    a, b = fresh_lab.members[0], fresh_lab.members[1]
    expected = {fresh_lab.path("c1"): a.mac, fresh_lab.path("c2"): b.mac}
    console = Console(stdout=io.StringIO(), stderr=io.StringIO(), json=True)
    session = Session(registry=build_registry(), console=console)
    refresher = StateRefresher(session)
    capture_result: dict = {}
    stopper = threading.Event()

    def capture_until_stopped() -> None:
        from netns_shell.capture import StopRequest, open_dumper, open_live, write_packets

        with api.open_namespace(fresh_lab.path("c1")) as ns:
            source = open_live(ns, "eth0")
            dumper = open_dumper(source.handle, str(tmp_path / "s.pcap"))
            request = StopRequest()
            events = write_packets(source, dumper, request, duration=600)
            try:
                for event in events:
                    if stopper.is_set():
                        request.stop()
                    capture_result["last"] = event
            finally:
                dumper.close()
                source.close()

    capturer = threading.Thread(target=capture_until_stopped, daemon=True)
    capturer.start()
    home = os.stat("/proc/thread-self/ns/net").st_ino
    wrong = checked = 0
    started = time.monotonic()
    try:
        paths = list(expected)
        for i in range(COMMANDS // 2):
            path = paths[i % 2]
            console.stdout.seek(0)
            console.stdout.truncate()
            session.execute(f"use {path}; links eth0")
            refresher.refresh()  # as the REPL does after each command: a builder thread
            (links,) = [json.loads(line) for line in console.stdout.getvalue().splitlines()]
            checked += 1
            if links[0]["address"] != expected[path]:
                wrong += 1
            assert os.stat("/proc/thread-self/ns/net").st_ino == home
    finally:
        stopper.set()
        capturer.join(timeout=30)
        refresher.refresh(wait=True)
        session.close()
    elapsed = time.monotonic() - started
    print(
        f"\n{checked * 2} commands ({checked} namespace switches) in {elapsed:.1f} s, "
        f"{wrong} from the wrong namespace"
    )
    assert wrong == 0
    assert capture_result.get("last") is not None  # the capture ran alongside
    assert refresher.state.interfaces  # and completion state was rebuilt meanwhile
    for tid in os.listdir("/proc/self/task"):  # no thread left elsewhere
        try:
            assert os.stat(f"/proc/self/task/{tid}/ns/net").st_ino == home
        except FileNotFoundError:
            continue  # a worker that just ended
