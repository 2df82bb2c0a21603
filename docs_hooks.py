"""mkdocs hooks (mkdocs.yml's ``hooks``): BENCHMARKS.md, which lives at the repository root,
becomes the site's benchmarks.md, and the pages' links to it follow.

The Markdown files keep links that work on GitHub (``../BENCHMARKS.md#...`` from docs/,
``docs/cvae_mnist.png`` from the root); only the site's copies are rewritten, so that
``mkdocs build --strict`` checks every link and anchor of the site.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent
#: Files at the repository root, outside docs_dir, and the site pages that stand for them.
ROOT_PAGES = {"BENCHMARKS.md": "benchmarks.md", "README.md": "index.md"}
#: A Markdown link's target: ](target) or ](target#anchor), possibly across a line break.
LINK = re.compile(r"\]\(\s*([^)\s#]+)(#[^)\s]*)?\s*\)")


def on_files(files, config):
    """Add BENCHMARKS.md to the site as benchmarks.md, its links to docs/ made relative."""
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    text = LINK.sub(lambda m: _from_root(m, "benchmarks.md"), text)
    files.append(File.generated(config, "benchmarks.md", content=text))
    return files


def on_page_markdown(markdown, page, config, files):
    """Point links to the root's BENCHMARKS.md (or README.md) at their site pages."""
    return LINK.sub(lambda m: _to_site(m, page.file.src_uri), markdown)


def _to_site(match: re.Match, src_uri: str) -> str:
    target, anchor = match.group(1), match.group(2) or ""
    if "://" in target:
        return match.group(0)
    here = posixpath.dirname(src_uri)
    resolved = posixpath.normpath(posixpath.join("docs", here, target))
    if resolved not in ROOT_PAGES:
        return match.group(0)
    site_page = posixpath.relpath(ROOT_PAGES[resolved], here or ".")
    return f"]({site_page}{anchor})"


def _from_root(match: re.Match, src_uri: str) -> str:
    """A link written relative to the repository root, rewritten relative to ``src_uri``."""
    target, anchor = match.group(1), match.group(2) or ""
    if "://" in target or not target.startswith("docs/"):
        return match.group(0)
    here = posixpath.dirname(src_uri)
    return f"]({posixpath.relpath(target.removeprefix('docs/'), here or '.')}{anchor})"
