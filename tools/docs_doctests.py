"""A griffe extension for the API reference: doctests shown as code.

keras_tt's docstrings follow Keras's layout, where the ``>>>`` examples
after ``Example:`` are not indented under the section. Rendered as
Markdown, such lines would be a paragraph (and their outputs, such as
``[(1, 3, 4, 12)]``, would read as link references). This extension wraps
every run of ``>>>`` / ``...`` lines and their outputs (up to the next
blank line) in a ``pycon`` fence before the docstring is parsed.

Used by mkdocs.yml (``extensions: [tools/docs_doctests.py:DoctestFences]``).
"""

import griffe

FENCE = "```"


def fence_doctests(text: str) -> str:
    """``text`` with each doctest block inside a ```pycon fence."""
    lines = text.splitlines()
    out = []
    in_fence = False
    in_doctest = False
    indent = ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(FENCE) and not in_doctest:
            in_fence = not in_fence
            out.append(line)
            continue
        if in_doctest:
            if not stripped:
                out.append(indent + FENCE)
                in_doctest = False
            out.append(line)
            continue
        if not in_fence and stripped.startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + FENCE + "pycon")
            out.append(line)
            in_doctest = True
            continue
        out.append(line)
    if in_doctest:
        out.append(indent + FENCE)
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fence the doctest examples of every docstring griffe loads."""

    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
