"""Params of the plot stage (``plot.*``): plot-only settings, rerunning only ``plot``."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from biasvar.core.config import Choice, Int, Section

THEMES = ("whitegrid", "darkgrid", "white", "dark", "ticks")
CONTEXTS = ("paper", "notebook", "talk", "poster")


class Style(Section):
    """Plot-only settings (``plot.*`` params): changing them reruns only the plot stage."""

    SECTION: ClassVar[str] = "plot"
    report: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", description=(
        "a folder name of letters, digits, '_', '-', '.'"))] = "default"  # under reports/
    theme: Choice(*THEMES) = "whitegrid"  # seaborn style
    context: Choice(*CONTEXTS) = "paper"  # seaborn context
    panel_size: Annotated[float, Field(ge=0.5, le=20, allow_inf_nan=False,
                                       description="inches in [0.5, 20]")] = 2.6  # per panel
    dpi: Int(30) = 130
    max_points: Int(10) = 3000  # per alignment panel (random subsample, seeded)

    def apply(self) -> None:
        import seaborn as sns

        sns.set_theme(style=self.theme, context=self.context)
