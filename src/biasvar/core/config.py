"""Typed params: a pydantic model per ``params.yaml`` section, one-line errors.

Each subpackage owns the models of the sections it reads (``data.config``,
``ensemble.config``, ``analysis.config``, each study module, ``report.config``);
this module holds what they share:

- ``Section``: the base model (frozen, strict types, unknown keys refused with
  the closest allowed key suggested) whose ``from_dict`` turns pydantic's
  ``ValidationError`` into one ``ParamError`` line naming the key path, the
  value and what is allowed. "What is allowed" is the field's ``description``,
  so every constraint is stated once, next to the field, in words a user reads.
- Field types with their ranges (``Int(min, what, max)``, ``Ints``, ``Width``,
  ``Steps``, ``Bootstrap``, ...): every size and count a user could mistype has
  an upper bound (``MAX_*``), stated in its message.
- ``read_yaml``: the one strict loader of ``tools.validate`` and every stage
  (duplicate keys, undecodable bytes, binary files, directories and unknown
  sections are one ``InputError`` line naming the file).
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


def Ints(min_value: int, what: str, max_value: int | None = None):  # noqa: N802 - a type
    """A non-empty list of distinct integers in ``[min_value, max_value]`` (``what`` names
    the items)."""
    return Annotated[
        tuple[Annotated[int, Field(ge=min_value, le=max_value)], ...],
        BeforeValidator(_as_tuple), AfterValidator(_distinct),
        Field(min_length=1, description=(
            f"a non-empty list of distinct {what} {_range(min_value, max_value)}")),
    ]


def Choice(*choices: str):  # noqa: N802 - a type factory, used like a type
    """One of ``choices``; the message lists them."""
    return Annotated[Literal[choices], Field(description="one of " + ", ".join(choices))]


def _range(min_value: int, max_value: int | None) -> str:
    # ">= 1 and <= 4096" (not "in [1, 4096]"): messages keep the ">= min" they always had.
    return f">= {min_value}" + ("" if max_value is None else f" and <= {max_value}")


def Int(min_value: int, what: str = "an integer", max_value: int | None = None):  # noqa: N802
    """An integer in ``[min_value, max_value]``; the message states the range."""
    return Annotated[int, Field(ge=min_value, le=max_value,
                                description=f"{what} {_range(min_value, max_value)}")]


PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False,
                                       description="a positive number")]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False,
                                          description="a number >= 0")]
UnitInterval = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False,
                                      description="a number in [0, 1)")]
OpenUnitInterval = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False,
                                          description="a level in (0, 1)")]
Bool = Annotated[bool, Field(description="true or false")]

# Upper bounds of sizes and counts. Generous: far above params.yaml, configs/experiment/*.yaml and
# the test params; a value past one is a typo (a digit or three too many) that would
# otherwise end in an allocator traceback, a MemoryError or days of computing, after
# earlier stages had run (a plot at `dpi: 100000` died after DVC had removed the report).
MAX_WIDTH = 4096  # hidden units or channels
MAX_DEPTH = 100  # layers
MAX_MEMBERS = 1024  # members trained together (a block, a study's ensemble), seeds, draws
MAX_STEPS = 1_000_000  # optimization steps, and the logging interval
MAX_BATCH = 100_000  # minibatch size
MAX_SAMPLES = 1_000_000  # make_dataset's num_samples (and test points of a 1-D study)
MAX_BOOTSTRAP = 100_000  # bootstrap replicates
MAX_BINS = 1000  # calibration bins
MAX_THREADS = 1024
MAX_SEED = 2**32 - 1  # numpy.random.seed (inside make_dataset) refuses larger seeds

Seed = Int(0, "an integer", MAX_SEED)
Width = Int(1, "an integer", MAX_WIDTH)
Depth = Int(1, "an integer", MAX_DEPTH)
Steps = Int(1, "an integer", MAX_STEPS)
BatchSize = Int(1, "an integer", MAX_BATCH)
Bootstrap = Int(0, "an integer", MAX_BOOTSTRAP)  # 0: no intervals
Bins = Int(1, "an integer", MAX_BINS)


def Members(min_value: int = 1):  # noqa: N802 - a type factory, used like a type
    """A count of members (or seeds, draws) in ``[min_value, MAX_MEMBERS]``."""
    return Int(min_value, "an integer", MAX_MEMBERS)


def NumSamples(min_value: int):  # noqa: N802 - a type factory, used like a type
    """``make_dataset``'s ``num_samples`` in ``[min_value, MAX_SAMPLES]``."""
    return Int(min_value, "an integer", MAX_SAMPLES)


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
        where = cls.SECTION if where is None else where
        if not isinstance(d, Mapping):
            raise ParamError(where, d, "a mapping with keys " + ", ".join(cls.keys()))
        try:
            return cls.model_validate(dict(d), context=context or None)
        except ValidationError as e:
            raise param_error(cls, where, _root_first(e.errors())[0]) from None


    @classmethod
    def problems(cls, d: Any, where: str | None = None) -> list[ParamError]:
        """Every problem of a section (``from_dict`` stops at the first), for validate."""
        where = cls.SECTION if where is None else where
        if not isinstance(d, Mapping):
            return [ParamError(where, d, "a mapping with keys " + ", ".join(cls.keys()))]
        try:
            cls.model_validate(dict(d))
        except ValidationError as e:
            return [param_error(cls, where, err) for err in _root_first(e.errors())]
        except ParamError as e:  # a cross-field rule
            return [e]
        return []


def _root_first(errors: list) -> list:
    # A mistyped key (`depht`) is both an unknown key and a missing one (`depth`): the
    # unknown key, with its suggestion, is the cause, so it is reported first.
    return sorted(errors, key=lambda err: err["type"] != "extra_forbidden")


def did_you_mean(name: Any, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to a mistyped ``name``, or ''."""
    import difflib

    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _key(where: str, loc: tuple) -> str:
    out = where
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.removeprefix(".")  # a top-level value (``source``) has no section prefix


def param_error(model: type[BaseModel], where: str, err: Mapping[str, Any]) -> ParamError:
    """Convert one pydantic error (``ValidationError.errors()`` item) to a ``ParamError``."""
    loc = tuple(p for p in err["loc"] if p not in ("function-after[_distinct()]",))
    key = _key(where, loc)
    if err["type"] == "missing":
        return ParamError(key, None, "missing; it must be set")
    if err["type"] == "extra_forbidden":
        return ParamError(key, err["input"], "unknown key" + did_you_mean(loc[-1], model.keys())
                          + "; allowed keys: " + ", ".join(model.keys()))
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
    threads: Int(0, "an integer", MAX_THREADS) = 0
    progress: Bool = True


class SourceParams(Section):
    """Where the members' logits come from (``source``: one value, not a mapping):
    ``train``, this pipeline's generate → split → train → collect, or ``import``, the
    ensemble file at ``import.path``. The stages after them read ``data/sources/<source>``
    (``biasvar.ensemble.source``)."""

    SECTION: ClassVar[str] = "source"
    source: Choice("train", "import")

    @classmethod
    def from_dict(cls, d: Any, where: str | None = None, **context: Any):
        return super().from_dict({"source": d}, where="", **context)

    @classmethod
    def problems(cls, d: Any, where: str | None = None) -> list[ParamError]:
        return super().problems({"source": d}, where="")


# ---------------------------------------------------------------- loading
# Every top-level section of params.yaml, in pipeline order. The models live in the
# subpackages that read them (``tools.validate.SECTIONS`` lists them; a test checks that the
# two lists agree); the names live here so that the loader of every stage can refuse an
# unknown section without importing later subpackages or the study modules (torch).
SECTION_NAMES = ("data", "split", "ensemble", "model", "train", "runtime", "source", "import",
                 "decompose",
                 "regress", "alignment_size", "calibration_intervention", "dynamics", "shift",
                 "tradeoff",
                 "ridgeless", "spectral", "pc_bias", "spectral_cls", "erank_depth", "probe",
                 "collapse", "plot")


def check_sections(raw: Mapping[Any, Any], where: str | Path = "params.yaml") -> None:
    """Refuse a top-level key that is not a section: one ``InputError`` line naming the
    file, the key and the closest section name."""
    for name in raw:
        if name not in SECTION_NAMES:
            raise InputError(f"{where}: unknown section {name!r}"
                             f"{did_you_mean(name, SECTION_NAMES)}; sections: "
                             + ", ".join(SECTION_NAMES))


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The whole params file as a dict, read strictly; the one loader of validation and stages.

    Each refusal is one ``InputError`` line naming the file: missing or unreadable, a
    directory, a binary file (a NUL byte) or UTF-16 text, a byte that is not UTF-8 (the
    byte, its line and column), invalid YAML (line, column, problem), a key given twice at
    any depth (its key path and both lines: PyYAML would silently keep the last, while
    ``dvc repro`` refuses the file, so the two would disagree), a document that is not a
    mapping of sections, or an unknown section (with the closest name). Configuration
    files (``configs/experiment/*.yaml``, overrides of params.yaml) are read with it too.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: a directory, not a params file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: params file not found") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read the params file: {e.strerror or e}") from None
    d = _load_strict(path, _decode(path, data))
    if not isinstance(d, dict):
        raise InputError(f"{path}: expected a mapping of sections (data:, split:, ...), "
                         f"got {type(d).__name__ if d is not None else 'an empty file'}")
    check_sections(d, path)
    return d


def _position(data: bytes | str, offset: int) -> str:
    nl = b"\n" if isinstance(data, bytes) else "\n"
    line = data.count(nl, 0, offset) + 1
    return f"line {line}, column {offset - (data.rfind(nl, 0, offset) + 1) + 1}"


def _decode(path: Path, data: bytes) -> str:
    """The text of a params file: UTF-8 (an optional BOM dropped), else one line."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{path}: UTF-16 text; save the file as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(f"{path}: a binary file (a NUL byte at {_position(data, nul)}), "
                         "not YAML text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        # typically an editor that saved one character (e.g. "µ") as Latin-1
        raise InputError(f"{path}: not UTF-8 text: byte 0x{data[e.start]:02x} at "
                         f"{_position(data, e.start)}; save the file as UTF-8") from None
    return text.removeprefix("\ufeff")


def _load_strict(path: Path, text: str) -> Any:
    """``yaml.safe_load`` that refuses duplicate keys (checked on the node graph, where each
    key still has its line) and turns YAML errors into one line."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_keys(loader, node, (), path, set())
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {_yaml_problem(e, text)}") from None
    except RecursionError:
        raise InputError(f"{path}: not a params file: nested too deeply") from None
    finally:
        loader.dispose()


def _yaml_problem(e: Exception, text: str) -> str:
    """Where and what, in one line, from a PyYAML error (its ``str`` spans several lines)."""
    import yaml

    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        what = " ".join(str(e.problem or e.context or type(e).__name__).split())
        if e.context and e.problem:
            what += f" ({' '.join(str(e.context).split())})"
        return (f"line {mark.line + 1}, column {mark.column + 1}: " if mark else "") + what
    if isinstance(e, yaml.reader.ReaderError) and isinstance(e.position, int):
        char = e.character if isinstance(e.character, int) else ord(str(e.character)[:1] or " ")
        return f"{_position(text, e.position)}: character U+{char:04X}: {e.reason}"
    return " ".join(str(e).split())


def _dotted(parts: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) and not isinstance(p, bool) else f".{p}"
                   for p in parts).lstrip(".")


def _check_keys(loader: Any, node: Any, where: tuple, path: Path, seen: set[int]) -> None:
    """Refuse a key given twice in any mapping below ``node``, naming its key path and lines."""
    import yaml

    if id(node) in seen:  # an alias of a node already checked
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_keys(loader, item, (*where, i), path, seen)
    if not isinstance(node, yaml.MappingNode):
        return
    first: dict[Any, tuple[Any, Any]] = {}
    for key_node, value_node in node.value:
        key = None
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            # the constructed key: `1` and `1.0`, `yes` and `true` are one key in the dict
            key = loader.construct_object(key_node)
        try:
            earlier = first.get(key) if key is not None else None
        except TypeError:  # an unhashable key: the constructor will say so
            earlier = None
        if earlier is not None:
            _duplicate(path, _dotted((*where, key_node.value)), earlier, (key_node, value_node))
        if key is not None:
            first[key] = (key_node, value_node)
        _check_keys(loader, value_node, (*where, key_node.value), path, seen)


def _duplicate(path: Path, dotted: str, a: tuple, b: tuple) -> None:
    import yaml

    (ka, va), (kb, vb) = a, b
    la, lb = ka.start_mark.line + 1, kb.start_mark.line + 1
    sa, sb = isinstance(va, yaml.MappingNode), isinstance(vb, yaml.MappingNode)
    if sa != sb:
        how = {True: "used as a section", False: "set to a value"}
        raise InputError(f"{path}: {dotted} is {how[sa]} on line {la} and {how[sb]} on line "
                         f"{lb}; keep one of them")
    raise InputError(f"{path}: {dotted} is set twice, on line {la} and line {lb} (YAML would "
                     "silently keep the last); keep one")


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
        walked: list[str] = []
        for part in key.split("."):
            if not isinstance(node, Mapping):  # e.g. `train: 5` read as `train.lr`
                raise ParamError(".".join(walked), node,
                                 f"a mapping (a section) with the key {part!r}")
            if part not in node:
                raise ParamError(key, None, "missing; it must be set")
            node = node[part]
            walked.append(part)
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
