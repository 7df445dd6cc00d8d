"""The configuration reference page, generated from the params models and dvc.yaml.

Every section of ``params.yaml`` is a pydantic model (``biasvar.tools.validate.SECTIONS``)
whose fields state their type and, in their ``description``, what is allowed. This module
turns them into one Markdown page: per section its docstring, then a table of every key
with its type, allowed values, default, the value in ``params.yaml`` and the stages that
declare it in ``dvc.yaml`` (the stages a change reruns directly; DVC reruns the stages
downstream of those through their inputs). The study sections with a ``base`` mapping and
``configs`` overrides are expanded with the model of one config's settings.

The page is generated at build time (``docs/gen/gen_pages.py``), so it cannot drift from
the code; the functions here are pure (models, dicts and text in, text out) so that
``tests/test_docs.py`` checks them without building the site.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import textwrap
import tokenize
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# A dvc.yaml template expression (``${item}``, ``${key}``, ``${data.label_noise}``).
TEMPLATE = re.compile(r"\$\{\s*([^}]*?)\s*\}")
# A key segment that stands for any name: ``<name>`` in this page, ``${key}`` in dvc.yaml.
PLACEHOLDER = "<name>"


# ---------------------------------------------------------------- dvc.yaml
@dataclass(frozen=True)
class Stage:
    """One stage of dvc.yaml as the reference shows it.

    ``name`` is the stage, or its group as ``name@*`` for ``foreach``/``matrix`` stages
    (the instances are named by values of params, so the group is what a reader looks
    up). ``params`` are the keys of ``params.yaml`` the stage declares (``${key}`` left
    as written), ``axes`` the params keys whose values name the instances, ``paths`` the
    params keys its command, dependencies and outputs interpolate (``${source}``,
    ``${import.path}``): a new value points the stage at other files.
    """

    name: str
    params: tuple[str, ...]
    axes: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()


def stages(dvc: Mapping[str, Any]) -> list[Stage]:
    """The stages of a parsed dvc.yaml, in file order."""
    out = []
    for name, body in (dvc.get("stages") or {}).items():
        axes: list[str] = []
        if "foreach" in body:
            axes += _template_keys(body["foreach"])
            body, name = body.get("do") or {}, f"{name}@*"
        elif "matrix" in body:
            for values in body["matrix"].values():
                axes += _template_keys(values)
            name = f"{name}@*"
        texts = [body.get("cmd") or ""] + [d for d in (body.get("deps") or [])
                                           if isinstance(d, str)]
        paths = [k for t in texts if isinstance(t, str) for k in TEMPLATE.findall(t)
                 if k != "item" and not k.startswith(("item.", "key"))]
        out.append(Stage(name, tuple(_params_yaml_keys(body.get("params") or [])),
                         tuple(dict.fromkeys(axes)), tuple(dict.fromkeys(paths))))
    return out


def _template_keys(value: Any) -> list[str]:
    # `foreach: ${data.label_noise}` iterates over a params key; a literal list names none.
    return TEMPLATE.findall(value) if isinstance(value, str) else []


def _params_yaml_keys(entries: Iterable[Any]) -> list[str]:
    """The keys of params.yaml in a stage's ``params:`` list.

    An entry is a key of the default params file, or a mapping ``{file: [keys]}`` for
    another file (only ``params.yaml`` of those is this page's business).
    """
    keys: list[str] = []
    for entry in entries:
        if isinstance(entry, str):
            keys.append(entry)
        elif isinstance(entry, Mapping):
            for file, listed in entry.items():
                if file == "params.yaml":
                    keys += [k for k in (listed or []) if isinstance(k, str)]
    return keys


def _segments(key: str) -> list[str | None]:
    # None for a segment that stands for any name (`${key}` in dvc.yaml, `<name>` here)
    return [None if (TEMPLATE.fullmatch(s) or s == PLACEHOLDER) else s for s in key.split(".")]


def _covers(declared: str, key: str) -> bool:
    """Whether a stage that declares ``declared`` reruns when ``key`` changes.

    DVC compares the declared value: a declared section or mapping covers every key below
    it, and a declared key below ``key`` (``spectral.configs.${key}`` below
    ``spectral.configs.<name>``'s mapping) changes when ``key`` does.
    """
    d, k = _segments(declared), _segments(key)
    n = min(len(d), len(k))
    return all(a is None or b is None or a == b for a, b in zip(d[:n], k[:n], strict=True))


def declared_by(key: str, all_stages: Sequence[Stage]) -> list[str]:
    """The stages (groups as ``name@*``) whose ``params:`` list names ``key``, a parent of
    it or a key below it, in dvc.yaml order. A stage of a ``foreach`` over configs that
    declares only its own config (``spectral.configs.${key}``) is shown as
    ``spectral@<name>``: a change to one config reruns that config's stage only."""
    out = []
    for st in all_stages:
        hits = [d for d in (*st.params, *st.paths) if _covers(d, key)]
        if not hits:
            continue
        own = all(TEMPLATE.search(d) for d in hits) and PLACEHOLDER in key
        out.append(st.name.replace("@*", f"@{PLACEHOLDER}") if own else st.name)
    return out


def instances_of(key: str, all_stages: Sequence[Stage]) -> list[str]:
    """The stage groups whose instances the values of ``key`` name (``foreach``/``matrix``)."""
    return [st.name for st in all_stages
            if any(_covers(axis, key) and len(_segments(axis)) <= len(_segments(key))
                   for axis in st.axes)]


# ---------------------------------------------------------------- types and values
NAMES = {int: "int", float: "float", bool: "bool", str: "str", type(None): "null",
         Any: "any"}


def type_name(annotation: Any) -> str:
    """A reader's name of a field type: ``int``, ``choice of a, b``, ``list of int``,
    ``int or null``, ``mapping of str to any``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return "choice of " + ", ".join(format_value(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin in (tuple, list):
        if len(args) == 2 and args[1] is Ellipsis or origin is list:
            return f"list of {type_name(args[0])}"
        items = {type_name(a) for a in args}
        return (f"list of {len(args)} {items.pop()}" if len(items) == 1
                else "list of " + ", ".join(type_name(a) for a in args))
    if origin in (dict, Mapping):
        return f"mapping of {type_name(args[0])} to {type_name(args[1])}"
    return NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def format_value(value: Any) -> str:
    """``value`` as YAML flow text (``true``, ``null``, ``[4, 8]``, ``{lr: 0.1}``), the way a
    user writes it in params.yaml."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


# ---------------------------------------------------------------- comments
def field_comments(model: type) -> dict[str, str]:
    """The source comments of a model's fields: the comments on a field's own lines
    (``lr: PositiveFloat  # sgd only``), else the comment lines right above it. The models
    state a key's meaning there, next to its type, so the page shows them, not a copy."""
    try:
        source = inspect.getsource(model)
    except (OSError, TypeError):  # a model defined where its source is not on disk
        return {}
    source = textwrap.dedent(source)
    lines = source.splitlines()
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    cls = ast.parse(source).body[0]
    out: dict[str, str] = {}
    for node in getattr(cls, "body", []):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above, line = [], node.lineno - 1
        while line >= 1 and lines[line - 1].strip().startswith("#"):
            above.insert(0, comments.get(line, ""))
            line -= 1
        inline = [comments[n] for n in range(node.lineno, (node.end_lineno or node.lineno) + 1)
                  if n in comments]
        # A field's own comment, else the block right above it (which, above a field that
        # has its own, is about the fields that follow: "Bounds: ...").
        chosen = [c for c in inline if c and not c.startswith("noqa")] or above
        text = " ".join(c for c in chosen if c)
        if text:
            out[node.target.id] = text
    return out


_KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w-]*):(?P<rest>.*)$")


def yaml_comments(text: str) -> dict[str, str]:
    """The trailing comment of each key of a YAML file (``lr: 0.01  # why``) by dotted key.

    params.yaml explains its values in these comments; the reference shows one for a key
    whose model has no comment of its own. A comment on the continuation line of a flow
    list belongs to the key the list started on. Keys inside flow mappings are not read.
    """
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    open_key, depth = None, 0  # a flow list or mapping continued on the next lines
    for line in text.splitlines():
        value, _, comment = _split_comment(line)
        if open_key is not None:
            depth += value.count("[") + value.count("{") - value.count("]") - value.count("}")
            if comment:
                out.setdefault(open_key, comment)
            if depth <= 0:
                open_key = None
            continue
        m = _KEY_LINE.match(value)
        if not m or value.lstrip().startswith(("#", "-")):
            continue
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = ".".join([k for _, k in stack] + [m["key"]])
        rest = m["rest"].strip()
        if comment:
            out[key] = comment
        if not rest:
            stack.append((indent, m["key"]))
        depth = rest.count("[") + rest.count("{") - rest.count("]") - rest.count("}")
        if depth > 0:
            open_key = key
    return out


def _split_comment(line: str) -> tuple[str, str, str]:
    # a '#' starts a comment at the line start or after a space, outside quotes
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), "#", line[i + 1:].strip()
    return line.rstrip(), "", ""


# ---------------------------------------------------------------- rows
@dataclass(frozen=True)
class Row:
    """One key of the reference (``key`` relative to its section, e.g. ``base.width``)."""

    key: str
    type: str
    allowed: str
    default: str
    value: str
    stages: tuple[str, ...]
    instances: tuple[str, ...] = ()
    notes: str = ""
    overrides: tuple[tuple[str, str], ...] = ()  # (config, value) where a config differs


def settings_model(model: type) -> type | None:
    """The model of one config's settings for a study section with ``base``/``configs``
    (the ``Section`` subclass of the same module whose ``SECTION`` is ``<section>.base``)."""
    fields = getattr(model, "model_fields", {})
    if not ("base" in fields and "configs" in fields):
        return None
    module = inspect.getmodule(model)
    for obj in vars(module).values():
        if (isinstance(obj, type) and obj is not model and hasattr(obj, "model_fields")
                and getattr(obj, "SECTION", None) == f"{model.SECTION}.base"):
            return obj
    return None


def _default(field: Any) -> str:
    return "required" if field.is_required() else format_value(field.get_default())


def _value(raw: Any, key: str) -> Any:
    node = raw
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def _shown(value: Any) -> str:
    return "not set" if value is _MISSING else format_value(value)


def section_rows(model: type, params: Mapping[str, Any], all_stages: Sequence[Stage],
                 comments: Mapping[str, str] | None = None) -> list[Row]:
    """Every key of one section: its fields in model order, and for a study section with
    ``base``/``configs`` each setting of ``base`` and one ``configs.<name>`` row."""
    section, comments = model.SECTION, comments or {}
    own = field_comments(model)
    settings = settings_model(model)
    rows = []
    for name, field in model.model_fields.items():
        if settings is not None and name == "base":
            rows += _settings_rows(model, settings, params, all_stages, comments)
            continue
        if settings is not None and name == "configs":
            rows.append(_configs_row(model, field, params, all_stages))
            continue
        # a one-value section (``source: train``) is its own key
        full = section if name == section else f"{section}.{name}"
        rows.append(Row(
            key=name, type=type_name(field.annotation), allowed=field.description or "",
            default=_default(field), value=_shown(_value(params, full)),
            stages=tuple(declared_by(full, all_stages)),
            instances=tuple(instances_of(full, all_stages)),
            notes=_notes(own.get(name) or comments.get(full, ""), field.annotation)))
    return rows


def _settings_rows(model: type, settings: type, params: Mapping[str, Any],
                   all_stages: Sequence[Stage], comments: Mapping[str, str]) -> list[Row]:
    section = model.SECTION
    own = field_comments(settings)
    configs = _value(params, f"{section}.configs")
    configs = configs if isinstance(configs, Mapping) else {}
    rows = []
    for name, field in settings.model_fields.items():
        full = f"{section}.base.{name}"
        base = _value(params, full)
        overrides = tuple((str(c), format_value(o[name])) for c, o in configs.items()
                          if isinstance(o, Mapping) and name in o and o[name] != base)
        rows.append(Row(
            key=f"base.{name}", type=type_name(field.annotation),
            allowed=field.description or "", default=_default(field), value=_shown(base),
            stages=tuple(declared_by(full, all_stages)),
            notes=_notes(own.get(name) or comments.get(full, ""), field.annotation),
            overrides=overrides))
    return rows


def _configs_row(model: type, field: Any, params: Mapping[str, Any],
                 all_stages: Sequence[Stage]) -> Row:
    section = model.SECTION
    full = f"{section}.configs.{PLACEHOLDER}"
    configs = _value(params, f"{section}.configs")
    value = (", ".join(f"{c}: {format_value(o or {})}" for c, o in configs.items())
             if isinstance(configs, Mapping) else _shown(configs))
    return Row(
        key=f"configs.{PLACEHOLDER}", type=f"mapping of {section}.base keys to values",
        allowed=field.description or "", default=_default(field), value=value,
        stages=tuple(declared_by(full, all_stages)),
        instances=tuple(instances_of(f"{section}.configs", all_stages)),
        notes=(f"one configuration: the keys of {section}.base it changes; each "
               f"entry is the stage {section}@{PLACEHOLDER}"))


def _notes(comment: str, annotation: Any) -> str:
    """A key's comment, unless it only lists the choices the type column shows
    (params.yaml's ``arch: mlp  # mlp | cnn | logistic``)."""
    choices = _choices(annotation)
    words = {w for w in re.split(r"[\s|,]+", comment) if w}
    return "" if choices and words == choices else comment


def _choices(annotation: Any) -> set[str]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _choices(args[0])
    return {str(a) for a in args} if origin is typing.Literal else set()


# ---------------------------------------------------------------- Markdown
def _text(s: str) -> str:
    # plain table text: a '|' would end the cell, '*' start emphasis, '<x' open an HTML tag
    s = " ".join(s.split()).replace("|", r"\|").replace("*", r"\*")
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", s)


def _code(s: str) -> str:
    return f"`{s}`" if s else ""


def _stages_cell(row: Row, section: str) -> str:
    if section == "runtime":
        return "none (an execution setting)"
    cell = ", ".join(_code(s) for s in row.stages) or "none"
    if row.instances:
        cell += "; its values name the stages of " + ", ".join(_code(s) for s in row.instances)
    return cell


HEADER = ("| Key | Notes | Type | Allowed values | Default | In params.yaml | Declared by |\n"
          "|---|---|---|---|---|---|---|")


def section_markdown(model: type, rows: Sequence[Row], level: int = 2) -> str:
    """One section: a heading, the model's docstring and the table of its keys."""
    section = model.SECTION
    doc = inspect.cleandoc(model.__doc__ or "")
    out = [f"{'#' * level} `{section}`", ""]
    if doc:
        out += [doc, ""]
    out.append(HEADER)
    for r in rows:
        value = _code(r.value)
        if r.overrides:
            value += " (" + "; ".join(f"{c}: {_code(v)}" for c, v in r.overrides) + ")"
        out.append("| " + " | ".join([
            _code(r.key), _text(r.notes), _text(r.type), _text(r.allowed),
            _code(r.default) if r.default != "required" else "required",
            value, _stages_cell(r, section)]) + " |")
    return "\n".join(out) + "\n"


INTRO = """\
# Configuration reference

Every key of `params.yaml`, generated from the params models in `src/biasvar` and from
`dvc.yaml` when the documentation is built. For each key:

- **Type** and **Allowed values**: what `python -m biasvar.tools.validate` and every
  stage accept (the allowed values are the text of the error message for a bad value).
- **Default**: the value a key takes when it is left out, or *required*.
- **Notes**: the comment on the key in its params model, else in `params.yaml`.
- **In params.yaml**: the value of the default configuration. For a study's `base`
  settings, the configs that set another value follow in parentheses.
- **Declared by**: the stages whose `params:` list in `dvc.yaml` names the key or a
  section above it. A change reruns these stages; DVC then reruns every stage downstream
  of them through their inputs (for example `train.lr` reruns `train@*`, then `collect`,
  `decompose` and the analysis stages, then `plot`). `name@*` is a group of stages
  generated by `foreach` or `matrix`; `name@<name>` is the stage of one config. A key
  that a stage's paths interpolate (`${source}`, `${import.path}`) counts too: a new
  value points the stage at other files.
  `runtime.*` are execution settings that no stage declares: they never rerun anything.

A variant runs with `dvc exp run -S train.lr=0.003` (or an edit of `params.yaml` and
`dvc repro`).
"""


def render(models: Sequence[type], params: Mapping[str, Any], dvc: Mapping[str, Any],
           params_text: str = "") -> str:
    """The whole page for the ``models`` (in order), the parsed params.yaml and dvc.yaml,
    and the text of params.yaml (for its comments)."""
    all_stages = stages(dvc)
    comments = yaml_comments(params_text)
    parts = [INTRO]
    for model in models:
        parts.append(section_markdown(model, section_rows(model, params, all_stages,
                                                          comments)))
    return "\n".join(parts)
