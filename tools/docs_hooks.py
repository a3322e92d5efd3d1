"""MkDocs hooks for the documentation site (mkdocs.yml: ``hooks``).

The figures the examples write (``examples/results/*.png``) are published
as ``assets/results/NAME.png``, so the guides show the files the examples
produced, not copies that could go stale.
"""

from pathlib import Path

from mkdocs.structure.files import File

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "examples" / "results"


def on_files(files, config):
    for figure in sorted(RESULTS.glob("*.png")):
        files.append(
            File.generated(
                config,
                f"assets/results/{figure.name}",
                abs_src_path=str(figure),
            )
        )
    return files
