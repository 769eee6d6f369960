"""README.md and docs/*.md: every generated section equals what its command writes from the committed
results, and every relative link points to a file (and heading) that exists."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cnnzoo._readme import PAGES, read_section

ROOT = Path(__file__).resolve().parents[1]
PAGES_MD = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _regenerate(name: str, page: str) -> str:
    """The section as `cnnzoo results|compare|experiments --readme PAGE` writes it (paths as in the repository)."""
    if name == "results":
        from cnnzoo.training.results import readme_section
        return readme_section("results/train", page)
    if name == "experiments":
        from cnnzoo.experiments.report import readme_section
        return readme_section("docs/experiments", page)
    from cnnzoo.compare.report import readme_section
    res = json.loads((ROOT / "results/compare-full/results.json").read_text())
    return readme_section(res, res["models"], res["verdicts"], Path("results/compare-full"), Path(page))


@pytest.mark.parametrize("name", sorted(PAGES))
def test_generated_sections_are_fresh(name, monkeypatch):
    monkeypatch.chdir(ROOT)   # the commands ran from the repository root, with these relative paths
    page = PAGES[name]
    assert read_section(page, name) == _regenerate(name, page).strip(), (
        f"the {name} section of {page} is stale: rerun its command (the section's first line names it)")


def test_each_section_lives_on_one_page():
    for name, page in PAGES.items():
        holders = [p.relative_to(ROOT).as_posix() for p in PAGES_MD if f"<!-- cnnzoo-{name}:begin -->" in p.read_text()]
        assert holders == [page], f"section {name} should be only on {page}, found on {holders}"


def slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _prose(path.read_text()).splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            s = slug(m.group(1))
            out.add(s if s not in seen else f"{s}-{seen[s]}")
            seen[s] = seen.get(s, 0) + 1
    return out


def _prose(text: str) -> str:
    """Markdown without fenced code blocks (their lines are neither headings nor links)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def links(path: Path) -> list[str]:
    text = re.sub(r"`[^`\n]*`", "", _prose(path.read_text()))   # no inline code either
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES_MD, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_links_point_to_existing_files_and_headings(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):           # https:, mailto:: not checked (no network)
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.relative_to(ROOT)})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


def test_the_link_checker_catches_a_missing_file_and_anchor(tmp_path):
    (tmp_path / "a.md").write_text("# Title: One\n\n[ok](b.md#the-b-page) [bad](c.md) [no anchor](b.md#nope)\n"
                                   "```\n[in code](missing.md)\n```\n")
    (tmp_path / "b.md").write_text("# The *B* page\n")
    assert links(tmp_path / "a.md") == ["b.md#the-b-page", "c.md", "b.md#nope"]
    assert anchors(tmp_path / "b.md") == {"the-b-page"} and anchors(tmp_path / "a.md") == {"title-one"}


def test_a_page_without_the_markers_is_refused_and_left_as_it_is(tmp_path, capsys):
    from cnnzoo._readme import SectionError, update_section
    from cnnzoo.cli import main

    page = tmp_path / "README.md"
    page.write_text("# moved\n\nThe results table now lives in docs/training.md.\n")
    with pytest.raises(SectionError, match="docs/training.md"):
        update_section(page, "results", "table")
    assert main(["experiments", str(ROOT / "docs/experiments"), "--readme", str(page)]) == 2
    err = capsys.readouterr().err
    assert "no experiments section" in err and err.count("\n") == 1
    assert page.read_text() == "# moved\n\nThe results table now lives in docs/training.md.\n"
    with pytest.raises(SectionError, match="cannot read"):
        update_section(tmp_path / "missing.md", "results", "table")


def test_compare_refuses_a_page_without_its_markers_before_any_work(tmp_path):
    from cnnzoo._readme import SectionError
    from cnnzoo.compare import compare

    page = tmp_path / "page.md"
    page.write_text("# no markers\n")
    with pytest.raises(SectionError, match="no compare section"):
        compare(["lenet5"], out=tmp_path / "cmp", readme=page, data_dir=str(tmp_path / "no-data"))
    assert not (tmp_path / "cmp" / "models").exists()
