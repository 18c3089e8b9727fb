"""Every ```python block of README.md and docs/*.md is valid Python (the README's and the
guide's also run, on every backend, in tests/test_demo_and_examples.py); the layers of
docs/architecture.md's diagram are the package's folders, top to bottom."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_python_blocks_parse(document):
    text = document.read_text()
    blocks = BLOCK.findall(text)
    assert len(blocks) == text.count("```python")  # every opened block is closed
    for i, block in enumerate(blocks):
        try:
            ast.parse(block)
        except SyntaxError as exc:
            pytest.fail(f"{document.name} block {i + 1}: {exc}")


def test_architecture_page_names_the_layers_in_order():
    text = (ROOT / "docs" / "architecture.md").read_text()
    diagram = re.search(r"^```text\n(.*?)^```", text, re.M | re.S)
    assert diagram is not None
    layers = re.findall(r"^(\w+)/ ", diagram.group(1), re.M)
    assert layers == ["model", "query", "write", "backend"]
    for layer in ("model", "query", "backend"):  # write/ is the engine's package to come
        assert (ROOT / "activerecord" / layer / "__init__.py").is_file(), layer
