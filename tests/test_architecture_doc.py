"""The repository explains itself: every fact the code cites is in docs/architecture.md."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _numbered_facts() -> set[int]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Facts the design rests on", 1)[1]
    return {int(n) for n in re.findall(r"^(\d+)\. ", section, flags=re.M)}


def test_every_cited_fact_exists_and_nothing_cites_a_document_outside_the_repository():
    facts = _numbered_facts()
    assert facts == set(range(1, len(facts) + 1)) and len(facts) >= 16
    files = subprocess.run(
        ["git", "ls-files", "*.py", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    cited, stale = set(), []
    for name in files:
        text = (ROOT / name).read_text(errors="replace")
        if re.search(r"DESIGN\s+facts?\b", text):
            stale.append(name)
        for first, last in re.findall(
            r"architecture\.md\]?\(?[^)\s]*\)?\s+facts?\s+(\d+)(?:-(\d+))?", text
        ):
            cited.update(range(int(first), int(last or first) + 1))
    assert not stale, f"cite architecture.md, not DESIGN: {stale}"
    assert cited and cited <= facts, sorted(cited - facts)
