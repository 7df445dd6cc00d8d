"""The generated part of the site, run by the ``gen-files`` plugin at every build.

Writes into the build (never into ``docs/``): the configuration reference
(``reference/configuration.md``), one page per API module listed in the nav and the API
overview (``reference/api/``), and the figures of the committed reports
(``results/<report>/<figure>.png``). Generated at build time, these cannot go stale: a
changed params model, dvc.yaml or report shows in the next build.
"""

from __future__ import annotations

import sys
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(mkdocs_gen_files.config.config_file_path).resolve().parent
SRC = ROOT / "src"
# This checkout's code, not whichever biasvar the environment has installed (a copy of the
# repository, as tests/test_docs.py builds, documents its own params).
sys.path[:0] = [str(SRC), str(Path(__file__).resolve().parent)]

import api_pages  # noqa: E402 - needs the path above
import config_reference  # noqa: E402


def main() -> None:
    """Write every generated file into the build."""
    import yaml

    from biasvar.core.config import read_yaml
    from biasvar.tools.validate import SECTIONS

    params_path = ROOT / "params.yaml"
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    page = config_reference.render(SECTIONS, read_yaml(params_path), dvc,
                                   params_path.read_text(encoding="utf-8"))
    with mkdocs_gen_files.open("reference/configuration.md", "w") as f:
        f.write(page)

    pages = api_pages.api_pages(mkdocs_gen_files.config.nav)
    for path, module in pages:
        with mkdocs_gen_files.open(path, "w") as f:
            f.write(api_pages.module_page(module))
    with mkdocs_gen_files.open(api_pages.API_INDEX, "w") as f:
        f.write(api_pages.index_page(pages, SRC))

    for source, target in api_pages.figures(ROOT):
        with mkdocs_gen_files.open(target, "wb") as f:
            f.write(source.read_bytes())


main()
