"""One exception tree (schemas/errors.py): every public exception class of the product derives from
`TidegateError`, keeps its built-in base, and is named in the tree at the top of schemas/errors.py."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

from tidegate.schemas import errors
from tidegate.schemas.errors import TidegateError

HOMES = ("schemas", "streams", "qualitygate", "agents", "connectors", "readside", "gateway", "bridge", "cli")


def public_exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for home in HOMES:
        package = importlib.import_module(f"tidegate.{home}")
        names = [package.__name__, *(m.name for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}."))]
        for name in names:
            module = importlib.import_module(name)
            found.extend(
                value for attribute, value in vars(module).items()
                if inspect.isclass(value) and issubclass(value, BaseException)
                and value.__module__ == name and not attribute.startswith("_")
            )
    return found


# Outside the tree on purpose, each named in the docstring of schemas/errors.py with the reason.
OUTSIDE = {"tidegate.connectors.runtime.program.ProgramStartError"}  # a stdlib-only module
EXCEPTIONS = [cls for cls in public_exceptions() if f"{cls.__module__}.{cls.__name__}" not in OUTSIDE]


def test_the_product_has_the_exceptions_this_test_is_about() -> None:
    names = {cls.__name__ for cls in EXCEPTIONS}
    assert {"FileError", "DecodeError", "CriteriaError", "ApiError", "CliError", "SliError"} <= names


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_every_public_exception_is_in_the_tree(cls: type[BaseException]) -> None:
    assert issubclass(cls, TidegateError), f"{cls.__module__}.{cls.__name__} does not derive from TidegateError"
    doc = errors.__doc__ or ""
    assert re.search(rf"\b{cls.__name__}\b", doc), f"{cls.__name__} is not named in the tree of schemas/errors.py"


def test_what_stays_outside_the_tree_is_named_there_and_really_outside() -> None:
    from tidegate.connectors.runtime.program import ProgramStartError

    assert not issubclass(ProgramStartError, TidegateError)
    assert "ProgramStartError" in (errors.__doc__ or "")


def test_except_clauses_written_for_the_builtin_bases_still_catch() -> None:
    from tidegate.connectors.helm.driver import HelmError
    from tidegate.qualitygate.criteria import parse_criteria
    from tidegate.streams.codec import decode

    for builtin in (ValueError, TidegateError):
        with pytest.raises(builtin):
            decode(b"not a CloudEvent")  # DecodeError
        with pytest.raises(builtin):
            parse_criteria("<= ten percent")  # CriteriaError
    assert issubclass(HelmError, RuntimeError) and issubclass(HelmError, TidegateError)
