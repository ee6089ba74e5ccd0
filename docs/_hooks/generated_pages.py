"""MkDocs hook: pages the site takes from outside ``docs/``.

* The model cards ``models/<name>.md`` (and images beside them) become pages
  ``model-cards/<name>.md``; ``model-cards.md`` lists them where it says ``<!-- model-cards -->``.
  With no card yet, the list says so, so the site builds either way.
* Docstrings use Sphinx roles (``:func:`name```); the API pages show them as plain code.
* ``performance.md`` is written from the benchmarks; until it exists, a short page says that the
  figures are not measured yet, so the navigation never points at a missing page.

Nothing is fetched from the network.
"""

import re
from pathlib import Path

from mkdocs.structure.files import File

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
CARD_ASSETS = (".png", ".svg", ".jpg", ".jpeg")
MARKER = "<!-- model-cards -->"
SPHINX_ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|exc|obj):(<code>)~?")


def model_cards(models_dir=MODELS):
    """The model cards: ``*.md`` files of ``models_dir`` except a README, sorted by name."""
    if not models_dir.is_dir():
        return []
    return sorted(p for p in models_dir.glob("*.md") if p.name.lower() != "readme.md")


def card_title(path):
    """A card's first ``# `` heading, or its file name."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


def cards_list(cards):
    """Markdown list linking each card's page (or a line saying there is none yet)."""
    if not cards:
        return ("*No model card has been published yet: the released models and their cards "
                "will appear here.*")
    return "\n".join(f"- [{card_title(c)}](model-cards/{c.name})" for c in cards)


def on_files(files, config):
    for card in model_cards():
        files.append(File.generated(config, f"model-cards/{card.name}",
                                    abs_src_path=str(card)))
    if MODELS.is_dir():
        for asset in sorted(MODELS.iterdir()):
            if asset.suffix.lower() in CARD_ASSETS:
                files.append(File.generated(config, f"model-cards/{asset.name}",
                                            abs_src_path=str(asset)))
    if files.get_file_from_path("performance.md") is None:
        files.append(File.generated(
            config, "performance.md",
            content="# Performance\n\nThe speed and memory figures have not been measured "
                    "yet; `benchmarks/` holds the scripts that measure them.\n"))
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "model-cards.md":
        return markdown.replace(MARKER, cards_list(model_cards()))
    return markdown


def strip_sphinx_roles(html):
    """``:func:<code>~pkg.name</code>`` (a Sphinx role as rendered) -> ``<code>pkg.name</code>``."""
    return SPHINX_ROLE.sub(r"\1", html)


def on_page_content(html, page, config, files):
    return strip_sphinx_roles(html)
