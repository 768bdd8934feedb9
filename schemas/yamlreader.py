"""Tidegate's one YAML reader: bounded, YAML 1.2 scalars, positions kept.

    data = load_yaml(text, "config.yaml")          # the data of the first document (None: none)
    docs = load_yaml_all(text, "manifest.yaml", yaml11=True)   # every document; YAML 1.1 as Helm reads
    document = read_document(text, "slo.yaml")     # the node tree too, for `schemas.files`

Every file model loader (`schemas.files.load_text`) reads through here, and so do the commands that
read a user's YAML without a file model (`tidegate evaluate`'s SLO, the CLI's config file): this
module imports only PyYAML and `schemas.errors`, so a command that needs one model need not import
all of them.

- Scalars are resolved as YAML 1.2 does: only true/false are booleans, and no dates or base-60 or
  octal numbers (a number with a leading zero, like 0755, stays text: YAML 1.1 and 1.2 disagree on
  it). Keptn (Go, YAML 1.1) read an unquoted `off` as false; Tidegate reads the text, and the file
  loader warns where such a word ends up as text (`Document.yaml11_words`).
- Only the first document is used, as Keptn did; `Document.notes` says when more were ignored, and
  names keys defined twice (the later one wins).
- Every text is read in bounded time and memory: at most `MAX_FILE_BYTES`, nested at most
  `MAX_DEPTH` levels, and at most `MAX_NODES` values once aliases are expanded (a 400-byte "billion
  laughs" document of nested `*alias` lists would otherwise grow x8 per level). One pass over the
  parser's events counts them before any tree is built; over a limit is a `YamlLimitError` naming the
  line. libyaml reads when it is installed (about ten times faster); a syntax error is read again by
  the pure-Python reader, whose messages the hints below know. Errors are `FileError`s
  (`YamlSyntaxError`, `YamlLimitError`) with the line and column in their `problems`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from tidegate.schemas.errors import FileProblem, Location, Severity, YamlLimitError, YamlSyntaxError

MAX_FILE_BYTES = 1024 * 1024
"""Largest file read (UTF-8 bytes); Keptn's files are a few kB."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists."""
MAX_NODES = 20_000
"""Most values (scalars, lists, mappings) a document may have once its aliases are expanded."""


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars (see the module docstring for why)."""


_Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("float", r"^(?:[-+]?(?:(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)"
              r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+0123456789."),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("merge", r"^(?:<<)$", "<"),
):
    _Yaml12Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))

_Loaders = tuple[type[yaml.SafeLoader] | type[yaml.CSafeLoader], ...]
_LOADERS: _Loaders = (_Yaml12Loader,)
if yaml.__with_libyaml__:  # libyaml reads ~10x faster; the pure-Python reader stays for its error messages

    class _Yaml12CLoader(yaml.CSafeLoader):
        """The same reader on libyaml."""

    _Yaml12CLoader.yaml_implicit_resolvers = _Yaml12Loader.yaml_implicit_resolvers
    _LOADERS = (_Yaml12CLoader, _Yaml12Loader)

# YAML 1.1 scalars, as Go's yaml.v2 (so Helm and Kubernetes) read them, for files handed on to those tools.
_LOADERS_11: _Loaders = (yaml.CSafeLoader, yaml.SafeLoader) if yaml.__with_libyaml__ else (yaml.SafeLoader,)


_Place = tuple[int | None, int | None]
"""1-based (line, column), as a FileProblem has them."""


class _LimitPassed(Exception):
    def __init__(self, place: _Place, message: str) -> None:
        super().__init__(message)
        self.place = place
        self.message = message


def _check_limits(loader: yaml.SafeLoader | yaml.CSafeLoader) -> None:
    """Walk the event stream once (no tree is built) and refuse a document nested deeper than
    MAX_DEPTH or standing for more than MAX_NODES values once its aliases are expanded.

    Each value counts 1 plus what it contains; an alias counts the whole size of the node its anchor
    names, which is what a reader of the data walks through. Raises _LimitPassed, or the parser's
    own YAMLError for a syntax error."""
    anchors: dict[str, int] = {}
    open_anchors: set[str] = set()
    stack: list[list[Any]] = []  # per open collection: [its size so far, its anchor]
    total = 0
    while loader.check_event():
        event = loader.get_event()
        if event is None:
            break
        # Scalars first: most events of a file are scalars.
        if isinstance(event, yaml.ScalarEvent):
            size = 1
            if event.anchor is not None:
                anchors[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise _LimitPassed(_place(event), f"the document nests deeper than {MAX_DEPTH} levels")
            stack.append([1, event.anchor])
            if event.anchor is not None:
                open_anchors.add(event.anchor)
            size = 1
        elif isinstance(event, yaml.CollectionEndEvent):
            ended, anchor = stack.pop()
            if anchor is not None:
                open_anchors.discard(anchor)
                anchors[anchor] = ended
            if stack:
                stack[-1][0] += ended
            continue
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor in open_anchors:
                raise _LimitPassed(_place(event), "an alias refers to the list or mapping that contains it; "
                                                  "repeat the values instead")
            size = anchors.get(event.anchor or "", 1)  # an undefined alias is the composer's error
        elif isinstance(event, yaml.DocumentStartEvent):
            anchors.clear()
            continue
        else:
            continue
        total += size
        if total > MAX_NODES:
            raise _LimitPassed(_place(event), f"the document has more than {MAX_NODES} values"
                               + (" once its aliases (*name) are expanded; write fewer or shallower aliases"
                                  if isinstance(event, yaml.AliasEvent) else "; split it into smaller files"))
        if stack and not isinstance(event, yaml.CollectionStartEvent):
            stack[-1][0] += size


def _place(event: yaml.Event) -> _Place:
    """Where an event starts, 1-based (worked out only for a limit that is passed)."""
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (None, None)


# YAML 1.1 booleans that YAML 1.2 (and so Tidegate) reads as text.
_YAML11_BOOLEAN_WORDS = re.compile(r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$")
_STR_TAG = "tag:yaml.org,2002:str"


class Document(NamedTuple):
    """The first YAML document of a file: its node tree (for positions) and its data, with the notes
    and YAML 1.1 words the reader adds to while it scans the tree. (A NamedTuple, as
    schemas.files.KindInfo: no generated methods to compile at start.)"""

    root: yaml.Node
    data: Any
    notes: list[FileProblem]
    yaml11_words: list[tuple[Location, str]]

    def locate(self, loc: Location, *, missing: bool = False) -> tuple[str, int, int]:
        """The readable field path and 1-based (line, column) of a location in the document.

        Location parts that are not in the YAML (pydantic's union tags, fields a converter added)
        are skipped; for a missing field the path names it and the place is its parent's.
        """
        node: yaml.Node | None = self.root
        mark = self.root.start_mark
        parts: list[str | int] = []
        for i, part in enumerate(loc):
            child = _child_node(node, part)
            if child is not None:
                key_node, node = child
                mark = _mark_of(key_node, node)
                parts.append(part)
            elif missing and i == len(loc) - 1:
                parts.append(part)
        return format_field_path(parts), mark.line + 1, mark.column + 1


def _child_node(node: yaml.Node | None, part: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                return key_node, value_node
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return None, node.value[part]
    return None


def _mark_of(key_node: yaml.Node | None, value_node: yaml.Node) -> yaml.Mark:
    # Point at a scalar value itself (where the mistake is), else at the key or list item.
    if isinstance(value_node, yaml.ScalarNode) and value_node.value != "":
        return value_node.start_mark
    return key_node.start_mark if key_node is not None else value_node.start_mark


def format_field_path(parts: list[str | int]) -> str:
    """A location as users read it: `spec.stages[1].name`, `data["a b"]`."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][\w-]*", part):
            text += f".{part}" if text else part
        else:
            text += f'["{part}"]'
    return text


def read_document(text: str, path: str, *, yaml11: bool = False) -> Document | None:
    """The first document of `text` with its node tree (None: there is none), within the limits;
    raises YamlLimitError or YamlSyntaxError naming `path`. `yaml11`: YAML 1.1 scalars (see load_yaml)."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise too_large(path)
    loaders = _LOADERS_11 if yaml11 else _LOADERS
    for loader_class in loaders:
        try:
            return _parse_with(loader_class, text, path)
        except YamlSyntaxError:
            if loader_class is loaders[-1]:
                raise
            # libyaml words its errors differently: the pure-Python reader says where and why in the
            # words _SYNTAX_HINTS knows (and a bomb before the error was already refused)
    raise AssertionError("unreachable: the pure-Python reader is the last one")


_LoaderClass = type[yaml.SafeLoader] | type[yaml.CSafeLoader]


def _within_limits(loader_class: _LoaderClass, text: str, path: str) -> None:
    """Raises YamlLimitError or YamlSyntaxError unless every document of `text` is within the limits
    (the count of values runs over all of them)."""
    loader = loader_class(text)
    try:
        _check_limits(loader)
    except _LimitPassed as passed:
        raise YamlLimitError(path, [FileProblem(path, *passed.place, "", passed.message)]) from None
    except yaml.YAMLError as error:
        raise _syntax_error(error, path) from None
    finally:
        loader.dispose()


def _syntax_error(error: yaml.YAMLError, path: str) -> YamlSyntaxError:
    if isinstance(error, yaml.MarkedYAMLError):
        return YamlSyntaxError(path, [_syntax_problem(error, path)])
    return YamlSyntaxError(path, [FileProblem(path, None, None, "", f"invalid YAML: {error}")])


def _parse_with(loader_class: _LoaderClass, text: str, path: str) -> Document | None:
    _within_limits(loader_class, text, path)
    loader = loader_class(text)
    try:
        root = loader.get_node() if loader.check_node() else None
        if root is None:
            return None
        data = loader.construct_document(root)
        extra_documents = 0
        while loader.check_node():
            if loader.get_node() is not None:
                extra_documents += 1
    except yaml.YAMLError as error:
        raise _syntax_error(error, path) from None
    finally:
        loader.dispose()
    document = Document(root, data, [], [])
    if extra_documents:
        document.notes.append(FileProblem(
            path, None, None, "",
            f"only the first YAML document is read; the {extra_documents} after the first `---` are ignored",
            Severity.WARNING,
        ))
    _scan_nodes(document, root, (), path)
    return document


def too_large(path: str) -> YamlLimitError:
    """The error for a file over MAX_FILE_BYTES (a caller may check the size before reading it)."""
    return YamlLimitError(path, [FileProblem(
        path, None, None, "", f"the file is larger than {MAX_FILE_BYTES} bytes, the most Tidegate reads; "
        "split it or remove what is not needed",
    )])


_SYNTAX_HINTS = {
    "mapping values are not allowed here": "a value contains ': ' or a ':' is missing on a line before; "
    "quote the value or fix the key",
    "found character '\\t' that cannot start any token": "YAML does not allow tabs for indentation; use spaces",
    "could not find expected ':'": "a key is missing its ':'",
    "expected <block end>, but found '<block mapping start>'": "this line is indented differently from "
    "the lines around it",
    "found undefined alias": "a '*' starts an alias; quote the value if it is text",
}


def _syntax_problem(error: yaml.MarkedYAMLError, path: str) -> FileProblem:
    mark = error.problem_mark or error.context_mark
    problem = error.problem or error.context or "invalid YAML"
    hint = next((h for known, h in _SYNTAX_HINTS.items() if problem.startswith(known)), "")
    message = f"invalid YAML: {problem}" + (f" ({hint})" if hint else "")
    if mark is None:
        return FileProblem(path, None, None, "", message)
    return FileProblem(path, mark.line + 1, mark.column + 1, "", message)


def _scan_nodes(document: Document, node: yaml.Node, loc: Location, path: str) -> None:
    """Report duplicate keys (the later one silently wins) and remember YAML 1.1 boolean words."""
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = key_node.value
            if key in first_line and key != "<<":
                document.notes.append(FileProblem(
                    path, key_node.start_mark.line + 1, key_node.start_mark.column + 1, format_field_path([*loc, key]),
                    f"'{key}' is defined twice (first on line {first_line[key]}); only this later one is used",
                    Severity.WARNING,
                ))
            first_line.setdefault(key, key_node.start_mark.line + 1)
            _scan_nodes(document, value_node, (*loc, key), path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _scan_nodes(document, item, (*loc, index), path)
    elif (isinstance(node, yaml.ScalarNode) and not node.style and node.tag == _STR_TAG  # plain: None, libyaml ""
          and _YAML11_BOOLEAN_WORDS.match(node.value)):
        document.yaml11_words.append((loc, node.value))


def load_yaml(text: str, path: str | Path = "<text>", *, yaml11: bool = False) -> Any:
    """The data of the first YAML document, read as `schemas.files.load_text` reads it (YAML 1.2
    scalars, the same size, nesting and alias limits), for files that are not of a Keptn kind; None
    for no document, as yaml.safe_load. Raises a FileError (`YamlSyntaxError`, `YamlLimitError`).

    `yaml11=True` resolves scalars as YAML 1.1 (yaml.safe_load's `on`/`off`/`yes`/`no` booleans,
    `0755` octal, dates), within the same limits: for files Tidegate rewrites and hands on to tools that
    read YAML 1.1 (a chart's values.yaml and rendered manifests, read by Helm and Kubernetes), so that
    rewriting them does not change what those tools read."""
    document = read_document(text, str(path), yaml11=yaml11)
    return None if document is None else document.data


def load_yaml_all(text: str, path: str | Path = "<text>", *, yaml11: bool = False) -> list[Any]:
    """The data of every YAML document of `text` (a stream such as rendered Kubernetes manifests),
    within the same limits as `load_yaml`, counted over the whole text; empty documents are skipped.
    Raises a FileError (`YamlSyntaxError`, `YamlLimitError`). `yaml11` as for load_yaml."""
    where = str(path)
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise too_large(where)
    loaders = _LOADERS_11 if yaml11 else _LOADERS
    for loader_class in loaders:
        try:
            _within_limits(loader_class, text, where)
        except YamlSyntaxError:
            if loader_class is loaders[-1]:
                raise
            continue  # the pure-Python reader words the error (as read_document)
        loader = loader_class(text)
        documents: list[Any] = []
        try:
            while loader.check_node():
                node = loader.get_node()
                data = loader.construct_document(node) if node is not None else None
                if data is not None:
                    documents.append(data)
            return documents
        except yaml.YAMLError as error:
            raise _syntax_error(error, where) from None
        finally:
            loader.dispose()
    raise AssertionError("unreachable: the pure-Python reader is the last one")
