"""Typed params: a pydantic model per ``params.yaml`` section, one-line errors.

Each subpackage owns the models of the sections it reads (``data.config``,
``ensemble.config``, ``analysis.config``, each study module, ``report.config``);
this module holds what they share:

- ``Section``: the base model (frozen, strict types, unknown keys refused) whose
  ``from_dict`` turns pydantic's ``ValidationError`` into one ``ParamError``
  line naming the key path, the value and what is allowed. "What is allowed"
  is the field's ``description``, so every constraint is stated once, next to
  the field, in words a user reads.
- ``DeclaredParams``: a stage reads only the keys its ``dvc.yaml`` entry declares.
- ``RuntimeParams``: ``runtime.*``, the execution settings no stage declares.

Why pydantic rather than hand-written checks: the constraints (ranges, choices,
strict int/bool/float, unknown keys) become declarations, and the ~450 lines of
hand-written checks shrink to the models plus the message conversion below.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from biasvar.core.errors import InputError, ParamError


# ---------------------------------------------------------------- field types
def _as_tuple(v: Any) -> Any:
    # YAML gives lists; the models hold tuples (frozen, hashable).
    return tuple(v) if isinstance(v, list) else v


def _distinct(v: tuple) -> tuple:
    if len(set(v)) != len(v):
        raise ValueError("values are not distinct")
    return v


def Ints(min_value: int, what: str):  # noqa: N802 - a type factory, used like a type
    """A non-empty list of distinct integers >= ``min_value`` (``what`` names the items)."""
    return Annotated[
        tuple[Annotated[int, Field(ge=min_value)], ...],
        BeforeValidator(_as_tuple), AfterValidator(_distinct),
        Field(min_length=1, description=f"a non-empty list of distinct {what} >= {min_value}"),
    ]


def Choice(*choices: str):  # noqa: N802 - a type factory, used like a type
    """One of ``choices``; the message lists them."""
    return Annotated[Literal[choices], Field(description="one of " + ", ".join(choices))]


def Int(min_value: int, what: str = "an integer"):  # noqa: N802
    return Annotated[int, Field(ge=min_value, description=f"{what} >= {min_value}")]


PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False,
                                       description="a positive number")]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False,
                                          description="a number >= 0")]
UnitInterval = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False,
                                      description="a number in [0, 1)")]
OpenUnitInterval = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False,
                                          description="a level in (0, 1)")]
Bool = Annotated[bool, Field(description="true or false")]
Seed = Int(0, "an integer")


# ---------------------------------------------------------------- sections
class Section(BaseModel):
    """Base of every params section: frozen, strict, unknown keys refused.

    ``SECTION`` is the dotted path of the section in ``params.yaml``; errors
    name keys below it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    SECTION: ClassVar[str] = ""

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(cls.model_fields)

    @classmethod
    def from_dict(cls, d: Any, where: str | None = None, **context: Any):
        """Validate one section; a bad value raises one ``ParamError`` (first problem only).

        ``where`` overrides ``SECTION`` in messages (e.g. ``spectral.configs.relu``);
        ``context`` reaches validators that need values from other sections.
        """
        where = where or cls.SECTION
        if not isinstance(d, Mapping):
            raise ParamError(where, d, "a mapping with keys " + ", ".join(cls.keys()))
        try:
            return cls.model_validate(dict(d), context=context or None)
        except ValidationError as e:
            raise param_error(cls, where, e.errors()[0]) from None


    @classmethod
    def problems(cls, d: Any, where: str | None = None) -> list[ParamError]:
        """Every problem of a section (``from_dict`` stops at the first), for validate."""
        where = where or cls.SECTION
        if not isinstance(d, Mapping):
            return [ParamError(where, d, "a mapping with keys " + ", ".join(cls.keys()))]
        try:
            cls.model_validate(dict(d))
        except ValidationError as e:
            return [param_error(cls, where, err) for err in e.errors()]
        except ParamError as e:  # a cross-field rule
            return [e]
        return []


def _key(where: str, loc: tuple) -> str:
    out = where
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def param_error(model: type[BaseModel], where: str, err: Mapping[str, Any]) -> ParamError:
    """Convert one pydantic error (``ValidationError.errors()`` item) to a ``ParamError``."""
    loc = tuple(p for p in err["loc"] if p not in ("function-after[_distinct()]",))
    key = _key(where, loc)
    if err["type"] == "missing":
        return ParamError(key, None, "missing; it must be set")
    if err["type"] == "extra_forbidden":
        return ParamError(key, err["input"], "unknown key; allowed keys: "
                          + ", ".join(model.model_fields))
    # What is allowed: the description of the (outermost) field the value belongs to.
    field = model.model_fields.get(str(loc[0])) if loc else None
    allowed = field.description if field is not None and field.description else err["msg"]
    if err["type"] == "value_error" and "distinct" in err["msg"]:
        allowed = allowed if "distinct" in allowed else "distinct values"
    return ParamError(key, err["input"], allowed)


# ---------------------------------------------------------------- runtime
class RuntimeParams(Section):
    """Execution settings (``runtime.*``): never a stage dependency, never change results.

    ``threads: 0`` keeps PyTorch's default thread count.
    """

    SECTION: ClassVar[str] = "runtime"
    device: Choice("auto", "cpu", "cuda") = "auto"
    threads: Int(0) = 0
    progress: Bool = True


# ---------------------------------------------------------------- loading
def read_yaml(path: str | Path) -> dict[str, Any]:
    """The whole params file as a dict; a missing or unparsable file is named."""
    import yaml

    path = Path(path)
    try:
        with path.open() as f:
            d = yaml.safe_load(f)
    except FileNotFoundError as e:
        raise InputError(f"{path}: params file not found") from e
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML ({e.__class__.__name__})") from e
    if not isinstance(d, dict):
        raise InputError(f"{path}: expected a mapping of sections")
    return d


class DeclaredParams:
    """The params a stage declared in dvc.yaml, and nothing else.

    ``get("train.lr")`` works only if ``train.lr`` (or its section ``train``)
    was declared, so a script cannot quietly depend on an undeclared key.
    """

    def __init__(self, raw: Mapping[str, Any], declared: Iterable[str], path: str | Path):
        self._raw, self._declared, self._path = raw, tuple(declared), str(path)

    def _allowed(self, key: str) -> bool:
        return any(key == d or key.startswith(d + ".") for d in self._declared)

    def get(self, key: str) -> Any:
        if not self._allowed(key):
            raise KeyError(f"params key {key!r} is not declared by this stage "
                           f"(declared: {', '.join(self._declared)})")
        node: Any = self._raw
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise ParamError(key, None, "missing; it must be set")
            node = node[part]
        return node

    def section(self, model: type[Section], **context: Any):
        """Build ``model`` from its whole (declared) section."""
        return model.from_dict(self.get(model.SECTION), **context)

    def subset(self, name: str, keys: Iterable[str]) -> dict[str, Any]:
        """A dict of some declared keys of one section (for stages that need a few keys)."""
        return {k: self.get(f"{name}.{k}") for k in keys}


def load_declared(declared: Iterable[str], path: str | Path = "params.yaml") -> DeclaredParams:
    """Open ``path`` for a stage that declared ``declared`` (dvc.yaml ``params:``)."""
    return DeclaredParams(read_yaml(path), declared, path)


def load_runtime(path: str | Path = "params.yaml") -> RuntimeParams:
    """The runtime section; defaults (auto, 0 threads, progress on) when absent."""
    return RuntimeParams.from_dict(read_yaml(path).get("runtime", {}))
