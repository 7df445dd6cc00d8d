"""Params of the plot stage (``plot.*``): plot-only settings, rerunning only ``plot``."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field

from biasvar.core.config import Choice, Int, Section

MAX_DPI = 600  # 100000 dpi passed validation and died in plot with a MemoryError
MAX_POINTS = 1_000_000

# Folders of reports/ that are not reports: `dvc repro` deletes the report folder before
# plot runs (a `cache: false` output), so a report named like one would delete it.
RESERVED_REPORTS = ("provenance",)
REPORT_NAME = ("a folder name of 1 to 64 letters, digits, '_', '-', '.', starting with a "
               "letter, digit or '_', other than " + ", ".join(RESERVED_REPORTS))


def _not_reserved(name: str) -> str:
    if name in RESERVED_REPORTS:
        raise ValueError("a reserved folder of reports/")
    return name


THEMES = ("whitegrid", "darkgrid", "white", "dark", "ticks")
CONTEXTS = ("paper", "notebook", "talk", "poster")


class Style(Section):
    """Plot-only settings (``plot.*`` params): changing them reruns only the plot stage."""

    SECTION: ClassVar[str] = "plot"
    # A folder under reports/: it may not start with '.' ('..' would be the repository
    # root, '.' reports/ itself) or '-' (an option to a shell command).
    report: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", max_length=64,
                                 description=REPORT_NAME),
                      AfterValidator(_not_reserved)] = "default"
    theme: Choice(*THEMES) = "whitegrid"  # seaborn style
    context: Choice(*CONTEXTS) = "paper"  # seaborn context
    panel_size: Annotated[float, Field(ge=0.5, le=20, allow_inf_nan=False,
                                       description="inches in [0.5, 20]")] = 2.6  # per panel
    dpi: Int(30, "an integer", MAX_DPI) = 130
    max_points: Int(10, "an integer", MAX_POINTS) = 3000  # per alignment panel (seeded)

    def apply(self) -> None:
        import seaborn as sns

        sns.set_theme(style=self.theme, context=self.context)
