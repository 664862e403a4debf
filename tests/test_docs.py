"""Every setting rtm reads is documented (a setting nobody can find does not exist)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_SUFFIXES = {".py", ".js", ".css", ".sh", ".md", ".html", ".cfg", ".xml", ".png", ".json"}


def test_every_rtm_variable_is_documented() -> None:
    code = "\n".join(p.read_text() for p in (ROOT / "server").rglob("*.py"))
    names = set(re.findall(r"\bRTM_[A-Z0-9_]*[A-Z0-9]\b", code))
    docs = (ROOT / "README.md").read_text() + "".join(
        p.read_text() for p in (ROOT / "docs").glob("*.md")
    )
    documented = set(re.findall(r"\bRTM_[A-Z0-9_]*[A-Z0-9]\b", docs))
    missing = sorted(n for n in names - documented)
    assert not missing, f"undocumented settings: {missing}"


def test_readme_shows_the_two_commands_first() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "make run" in first_block and "make test" in first_block


def test_readme_images_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert images and all((ROOT / image).is_file() for image in images)


def test_every_source_path_the_docs_and_comments_name_exists() -> None:
    # Files move (docs/*.md named 30 modules that the layout change renamed, and lab/run.sh
    # tested for one to pick its trunk source): a path that leads nowhere sends the next
    # engineer, or a script, looking for code that is elsewhere.
    kinds = ("*.md", "*.py", "*.js", "*.css", "*.sh", "*.cfg", "*.html", "Makefile")
    docs = [
        path
        for folder in ("docs", "server", "tests", "web", "bench", "lab")
        for kind in kinds
        for path in (ROOT / folder).rglob(kind)
    ] + [ROOT / "README.md", ROOT / "Makefile"]
    named = {
        (doc.relative_to(ROOT), path)
        for doc in docs
        for path in re.findall(r"\b(?:server|tests|web|bench|lab)/[\w/.-]*\w", doc.read_text())
    }
    missing = sorted(
        f"{doc}: {path}"
        for doc, path in named
        # Source files only: lab/run/, lab/kamailio.sqlite and the like are made at run time.
        if Path(path).suffix in SOURCE_SUFFIXES
        and not (ROOT / path).exists()
        and not any(ROOT.glob(path))
    )
    assert named and not missing, missing
