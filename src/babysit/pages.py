"""The documents that ship with babysit (docs/ in the repository, babysit/docs in a wheel): the
finding codes (findings.md, one `## code` section each) and the lectures digest (lectures.md)."""
from __future__ import annotations

import re
from pathlib import Path

from babysit.errors import UnknownName

_HERE = Path(__file__).resolve().parent
# a wheel carries them inside the package; a checkout (an editable install) has them at its root
DOCS = next((d for d in (_HERE / "docs", _HERE.parents[1] / "docs") if (d / "findings.md").is_file()), _HERE / "docs")


def finding_pages() -> dict[str, str]:
    """code -> its section of findings.md (the heading line included)."""
    text = (DOCS / "findings.md").read_text()
    return {m.group(1): m.group(0).strip() for m in re.finditer(r"^## (\S+)\n.*?(?=^## |\Z)", text, re.M | re.S)}


def explain(code: str) -> str:
    pages = finding_pages()
    if code not in pages:
        raise UnknownName(f"unknown finding code {code!r}; valid: {', '.join(pages)}")
    return pages[code]
