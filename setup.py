"""Installation script for keras_tt."""

import re
from pathlib import Path

from setuptools import find_packages
from setuptools import setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"',
    (HERE / "keras_tt" / "__init__.py").read_text(),
    re.M,
).group(1)

setup(
    name="keras-tt",
    version=VERSION,
    description=(
        "Tensor-Train (TT-matrix) layers for Keras 3: compress fully-connected "
        "layers, convert trained models, export to TFLite/LiteRT."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["keras_tt", "keras_tt.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.0",
        "numpy>=1.26",
    ],
    extras_require={
        "export": ["ai-edge-litert>=2.3"],
        "examples": ["matplotlib>=3.7"],
        "test": [
            "pytest>=8",
            "hypothesis>=6.100",
            "ai-edge-litert>=2.3",
            "matplotlib>=3.7",
            "ruff>=0.6",
        ],
        # Other Keras backends (CPU builds).
        "backends": ["jax>=0.4.30", "torch==2.13.0"],
        # tf_keras layers and tensorflow-model-optimization.
        "tfmot": ["tf_keras>=2.16", "tensorflow-model-optimization>=0.8"],
        # Whole-architecture tests: keras_hub backbones built from configs.
        "zoo": ["keras-hub>=0.20"],
    },
    entry_points={"console_scripts": ["keras-tt=keras_tt.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
