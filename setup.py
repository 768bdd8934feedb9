"""Tidegate's homes are top-level folders of this repository, installed under one import name.

`streams/` is imported as `tidegate.streams`, `gateway/` as `tidegate.gateway`, and so on, so that
installing Tidegate adds exactly one top-level package (`tidegate`, a namespace) to site-packages.
Everything else about the package is in pyproject.toml.
"""

from setuptools import find_packages, setup

# Every folder that is part of the installed product; the Dockerfile copies the same list.
HOMES = ("schemas", "streams", "agents", "qualitygate", "connectors", "gateway", "bridge", "cli", "readside")

setup(
    package_dir={f"tidegate.{home}": home for home in HOMES},
    packages=[f"tidegate.{home}{sub}" for home in HOMES for sub in ["", *(f".{p}" for p in find_packages(home))]],
)
