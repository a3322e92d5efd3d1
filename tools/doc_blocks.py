"""Print the ```python blocks of a Markdown page as one script.

    python tools/doc_blocks.py README.md > quickstart.py

The blocks are joined in order (the way the docs tests run them, in one
namespace); other fences (```text, ```bash) are left out.
"""

import re
import sys
import textwrap

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
    re.M | re.S,
)


def python_blocks(text: str) -> list[str]:
    return [textwrap.dedent(m.group("code")) for m in FENCE.finditer(text)]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as page:
        blocks = python_blocks(page.read())
    print("\n".join(blocks), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
