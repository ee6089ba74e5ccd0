"""The documentation site builds with warnings treated as errors, covers the code, and picks up
the model cards in models/ (the docs tools come with the `test` extra)."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

ENV = dict(os.environ, NO_MKDOCS_2_WARNING="1")


def _build(config, site):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                           str(config), "-d", str(site)], capture_output=True, text=True,
                          timeout=300, env=ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    _build(REPO / "mkdocs.yml", out)
    return out


def _page(site, name):
    return (site / name / "index.html").read_text(encoding="utf-8")


def test_every_page_is_built(site):
    for name in ("installation", "tutorial", "localization", "api", "cli", "model-cards",
                 "performance", "differences", "architecture"):
        assert (site / name / "index.html").is_file(), name
    assert (site / "index.html").is_file()


def test_api_reference_is_generated_from_docstrings(site):
    api = _page(site, "api")
    assert 'id="openl3lite.localize.correspondence_logits"' in api
    assert 'id="openl3lite.api.get_audio_embedding"' in api
    # a docstring's own words made it to the page
    assert "difference of the two pre-softmax outputs" in api
    # Sphinx roles in docstrings are shown as plain code, not as ":func:" text
    assert ":func:" not in api and "<code>correspondence_logits</code>" in api


def test_api_reference_lists_every_module():
    text = (REPO / "docs" / "api.md").read_text()
    listed = set(re.findall(r"^::: (openl3lite[\w.]*)$", text, re.M))
    modules = {f"openl3lite.{p.stem}" for p in (REPO / "openl3lite").glob("*.py")}
    modules |= {f"openl3lite.training.{p.stem}"
                for p in (REPO / "openl3lite" / "training").glob("*.py")}
    modules -= {"openl3lite.__init__", "openl3lite.training.__init__", "openl3lite.cli",
                "openl3lite.__main__"}  # the CLI: docs/cli.md
    assert modules <= listed, f"not in docs/api.md: {sorted(modules - listed)}"


def test_cli_reference_is_generated_from_click(site):
    from openl3lite.cli import main

    cli = _page(site, "cli")
    for name in main.commands:
        assert f'id="l3embed-{name}"' in cli, name
    assert "Frames per second to localise" in cli  # an option's help text


def test_site_loads_nothing_from_the_network(site):
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert not re.search(r'(src|href)="(https?:)?//[^"]*\.(css|js|woff2?)', html), page
        assert "fonts.googleapis" not in html and "fonts.gstatic" not in html, page


def test_model_cards_in_models_become_pages(tmp_path):
    """A copy of the site's sources with the released cards plus a test card and its figure."""
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    os.symlink(REPO / "openl3lite", tmp_path / "openl3lite")
    shutil.copytree(REPO / "models", tmp_path / "models")  # the docs link the released cards
    (tmp_path / "models" / "l3lite-test.md").write_text(
        "# l3lite-test\n\nTrained for a test. ![curves](l3lite-test-curves.png)\n")
    (tmp_path / "models" / "l3lite-test-curves.png").write_bytes(
        (REPO / "examples" / "data" / "avdigits_frame.png").read_bytes())
    _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    cards = (tmp_path / "site" / "model-cards" / "index.html").read_text()
    assert 'href="l3lite-test/"' in cards and "No model card" not in cards
    card = (tmp_path / "site" / "model-cards" / "l3lite-test" / "index.html").read_text()
    assert "Trained for a test." in card
    assert (tmp_path / "site" / "model-cards" / "l3lite-test-curves.png").is_file()


def test_no_model_card_yet_is_said(tmp_path):
    sys.path.insert(0, str(REPO / "docs" / "_hooks"))
    try:
        import generated_pages
    finally:
        sys.path.pop(0)
    assert generated_pages.model_cards(tmp_path / "absent") == []
    assert "No model card" in generated_pages.cards_list([])
    (tmp_path / "README.md").write_text("# not a card\n")
    (tmp_path / "b.md").write_text("no heading\n")
    (tmp_path / "a.md").write_text("# Model A\n")
    cards = generated_pages.model_cards(tmp_path)
    assert [c.name for c in cards] == ["a.md", "b.md"]
    assert generated_pages.cards_list(cards) == ("- [Model A](model-cards/a.md)\n"
                                                 "- [b](model-cards/b.md)")


def test_readme_links_to_the_docs():
    readme = (REPO / "README.md").read_text()
    assert "mkdocs serve" in readme or "mkdocs build" in readme
    for page in ("docs/tutorial.md", "docs/differences.md", "docs/localization.md"):
        assert page in readme and (REPO / page).is_file()
