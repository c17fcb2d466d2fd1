"""What the repository cites lives in the repository: every ``docs/*.md`` page (and section anchor) cited exists,
and nothing points at notes outside it (the shared reference notes, ``../shared`` or their "§" sections)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {".git", ".venv", ".venv-sagemaker", ".venv-forge", "build", "dist", "node_modules", "__pycache__"}
SKIPPED_DIRS |= {".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", "novaflow-runs"}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".txt", ".cfg", ".ini", ".sh", ".json", ".html", ""}
OUTSIDE_NOTES = re.compile(
    r"\.\./shared|shared/reference|nova-contract\.md|metrics-reference\.md|local-aws-moto\.md|prefect-notes\.md|§"
)
SPECS_OUTSIDE_DOCS = re.compile(r"(?<![\w/])service-specs\.md")  # docs/service-specs.md is ours; a bare name is not
DOC_CITATION = re.compile(r"docs/([\w.-]+\.md)(#[\w-]+)?")
RELATIVE_LINK = re.compile(r"\]\(([\w.-]+\.md)(#[\w-]+)?\)")


def _files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in path.relative_to(ROOT).parts):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES and path != Path(__file__).resolve():
            found.append(path)
    return found


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return ""


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation other than ``-`` and ``_`` dropped, spaces to hyphens."""
    anchors = set()
    for line in _text(page).splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add("#" + re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_every_cited_docs_page_and_anchor_exists() -> None:
    missing = []
    for path in _files():
        text = _text(path)
        cited = [(ROOT / "docs" / name, anchor) for name, anchor in DOC_CITATION.findall(text)]
        if path.parent == ROOT / "docs":
            cited += [(path.parent / name, anchor) for name, anchor in RELATIVE_LINK.findall(text)]
        for page, anchor in cited:
            if not page.is_file():
                missing.append(f"{path.relative_to(ROOT)} cites {page.relative_to(ROOT)}, which does not exist")
            elif anchor and anchor not in _anchors(page):
                missing.append(f"{path.relative_to(ROOT)} cites {page.relative_to(ROOT)}{anchor}: no such section")
    assert missing == []


def test_no_file_cites_notes_outside_the_repository() -> None:
    offending = []
    for path in _files():
        for number, line in enumerate(_text(path).splitlines(), 1):
            if OUTSIDE_NOTES.search(line) or (path.parent != ROOT / "docs" and SPECS_OUTSIDE_DOCS.search(line)):
                offending.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert offending == []


def test_the_anchor_rule_matches_headings_the_code_cites() -> None:
    assert "#steering-statuses-motos-state-manager" in _anchors(ROOT / "docs" / "embedded-aws.md")
    assert "#the-normalizer-behind-qem-and-f1_score_quasi" in _anchors(ROOT / "docs" / "gen-qa-metrics.md")
