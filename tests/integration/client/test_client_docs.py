"""The examples in docs/hook.md run as written (each starts its own emulator)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "hook.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_doc_has_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_hook_doc_example_runs(index: int, tmp_path: Path) -> None:
    code = BLOCKS[index]
    if "@dag" in code:
        compile(code, f"docs/hook.md[{index}]", "exec")  # a DAG file: it must at least be valid Python
        return
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Acme Billing GmbH" in result.stdout
