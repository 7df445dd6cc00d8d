"""Fill README's generated blocks with the current content of the files they name.

README.md (and any Markdown page under docs/) includes a generated file between
two markers, so that GitHub shows the numbers without a docs build::

    <!-- fragment: reports/default/key_numbers.md -->
    ...the content of reports/default/key_numbers.md...
    <!-- end fragment -->

``python -m biasvar.tools.fragments`` replaces every such block's content by the
file's current content (a path relative to the repository root);
``--check`` changes nothing and exits 1 naming each block that differs (a report
rerun with new numbers, not yet synced). ``make fragments`` runs the former. The
docs pages include the same files with ``--8<-- "PATH"`` at build time, so they
need no sync. A block whose file is missing, or a marker without its end, is one
``error:`` line and exit 2. No stage depends on this module.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from biasvar.core.errors import InputError

BEGIN = "<!-- fragment: {path} -->"
END = "<!-- end fragment -->"
# A block: the begin marker on a line of its own, the content, the end marker. The
# content may be empty; it never holds a marker (non-greedy up to the first end).
_BLOCK = re.compile(r"^<!-- fragment: (?P<path>\S+?) -->\n(?P<body>.*?)^<!-- end fragment -->$",
                    re.MULTILINE | re.DOTALL)
_BEGIN_ANY = re.compile(r"^<!-- fragment: (\S+?) -->$", re.MULTILINE)
# Fenced code (``` or ~~~ at the start of a line) may show the markers as an example.
_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    """One generated block of a Markdown file: the file it includes and where it is."""

    page: Path  # the Markdown file holding the block
    path: str  # the included file, relative to the repository root
    line: int  # line of the begin marker (1-based)
    body: str  # the content between the markers now
    start: int  # offsets of the content in the page's text
    end: int


def pages(root: str | Path) -> list[Path]:
    """The Markdown files that may hold blocks: README.md and every ``docs/**/*.md``."""
    root = Path(root)
    found = [root / "README.md"] if (root / "README.md").is_file() else []
    if (root / "docs").is_dir():
        found += sorted((root / "docs").rglob("*.md"))
    return found


def blocks(page: str | Path, text: str | None = None) -> list[Block]:
    """Every block of ``page`` (its ``text`` if given); ``InputError`` naming the page and
    line of a begin marker that has no end marker."""
    page = Path(page)
    text = page.read_text(encoding="utf-8") if text is None else text
    # markers inside fenced code are examples: blank them out (same offsets) before matching
    masked = _FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m[0]), text)
    found = [Block(page, m["path"], text.count("\n", 0, m.start()) + 1,
                   text[m.start("body"):m.end("body")], m.start("body"), m.end("body"))
             for m in _BLOCK.finditer(masked)]
    starts = {b.start for b in found}
    for m in _BEGIN_ANY.finditer(masked):
        if m.end() + 1 not in starts:
            line = text.count("\n", 0, m.start()) + 1
            raise InputError(f"{page}:{line}: fragment block of {m[1]} has no "
                             f"'{END}' line after it")
    return found


def content(root: str | Path, block: Block) -> str:
    """What ``block`` should hold: the included file's text, ending in one newline."""
    src = Path(root) / block.path
    if not src.is_file():
        raise InputError(f"{block.page}:{block.line}: fragment {block.path} does not exist "
                         f"(run the stage or command that generates it)")
    text = src.read_text(encoding="utf-8")
    return text if text.endswith("\n") or not text else text + "\n"


def fill(root: str | Path, page: str | Path) -> tuple[str, list[Block]]:
    """The text of ``page`` with every block filled from its file, and the blocks that
    changed."""
    page = Path(page)
    text = page.read_text(encoding="utf-8")
    stale, out, at = [], [], 0
    for b in blocks(page, text):
        want = content(root, b)
        if want != b.body:
            stale.append(b)
        out += [text[at:b.start], want]
        at = b.end
    return "".join(out) + text[at:], stale


def stale(root: str | Path = ".") -> list[Block]:
    """Every block under ``root`` (README.md, docs/) whose content differs from its file."""
    return [b for page in pages(root) for b in fill(root, page)[1]]


def sync(root: str | Path = ".") -> list[Block]:
    """Fill every block under ``root``; rewrite (atomically) only the pages that changed.
    Returns the blocks that were stale."""
    from biasvar.core.io import atomic_path

    changed = []
    for page in pages(root):
        text, blocks_changed = fill(root, page)
        if blocks_changed:
            with atomic_path(page) as tmp:
                Path(tmp).write_text(text, encoding="utf-8")
            changed += blocks_changed
    return changed


USAGE = "python -m biasvar.tools.fragments [--check] [--root DIR]"


def main(argv: list[str] | None = None) -> int:
    """Fill the blocks (or, with ``--check``, exit 1 naming each stale one)."""
    from biasvar.tools.cli import CliParser

    ap = CliParser(prog="python -m biasvar.tools.fragments",
                   description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="change nothing; exit 1 if a block differs from its file")
    ap.add_argument("--root", default=".", help="the repository root (default: .)")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    if not Path(args.root).is_dir():
        ap.error(f"--root {args.root}: not a folder")
    if args.check:
        found = stale(args.root)
        for b in found:
            print(f"{b.page}:{b.line}: the block of {b.path} differs from the file; run "
                  f"python -m biasvar.tools.fragments (make fragments)", file=sys.stderr)
        return 1 if found else 0
    for b in sync(args.root):
        print(f"{b.page}:{b.line}: filled from {b.path}")
    return 0


if __name__ == "__main__":
    from biasvar.tools.cli import run_cli

    raise SystemExit(run_cli(main))
