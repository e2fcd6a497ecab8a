"""Packaging for fastreid-dmf (a fast-reid plugin).

fastreid itself is installed separately with ``--no-deps`` (see README), so it
is not listed in ``install_requires``.
"""
from setuptools import find_packages, setup

setup(
    name="fastreid-dmf",
    version="0.1.0",
    description="DMF/MMET multimodal pre-training for generalizable person Re-ID, as a fast-reid plugin",
    packages=find_packages(include=["fastreid_dmf", "fastreid_dmf.*"]),
    # The real VTestReID set ships inside the package (the default root of the VTestReID dataset).
    package_data={"fastreid_dmf": ["data/bundled/vtest_reid/README.txt", "data/bundled/vtest_reid/*/*.jpg"]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.0",
        "torchvision>=0.15",
        "timm>=1.0",
        "transformers>=4.40",
        "numpy>=2.0",
        "pillow",
        "yacs",
        "termcolor",
        "tabulate",
        "opencv-python-headless<5",
        "scikit-learn",
        "tensorboard",
        "matplotlib",
        "tqdm",
    ],
    extras_require={"faiss": ["faiss-cpu"], "test": ["pytest", "ruff"]},
)
