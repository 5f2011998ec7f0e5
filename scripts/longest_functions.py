"""Print the longest functions under src/ (lines from `def` to the last line of the body).

The house review measures function size with this, so the figure in a note can be rerun:
`python scripts/longest_functions.py [N]`.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def function_lengths(root: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                found.append((length, f"{path.relative_to(root)}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    for length, where in function_lengths(Path(__file__).resolve().parent.parent / "src")[:count]:
        print(f"{length:5d}  {where}")


if __name__ == "__main__":
    main()
