"""Every declared setting is documented in the README with its default (datasette's rule)."""

from pathlib import Path

from study.settings import SETTINGS

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_is_in_the_readme_table_with_its_default():
    lines = README.read_text().splitlines()
    for setting in SETTINGS:
        row = [line for line in lines if line.startswith(f"| `{setting.name}` |")]
        assert row, f"{setting.name} is not in the README's settings table"
        default = f"`{setting.default}`" if setting.default else "(empty)"
        assert default in row[0], f"{setting.name}: README does not show default {default}"


def test_readme_quick_start_is_the_two_commands():
    text = README.read_text()
    assert "make run" in text and "make test" in text
