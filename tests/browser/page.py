"""Locators for the rtm page, so tests read as what a person sees."""

from __future__ import annotations

from typing import Any


def rows(page: Any, view: str = "accounts") -> Any:
    """The grid rows (only the rendered ones: the grid is virtual) of a view."""
    return page.locator(f"#view-{view} tr.row")


def row_with(page: Any, text: str, view: str = "accounts") -> Any:
    """Rendered rows of a view containing `text`."""
    return rows(page, view).filter(has_text=text)


def headline(page: Any, view: str = "accounts") -> Any:
    """The count after a view's title (" - 2 registered users")."""
    return page.locator(f"#{view}-title .headline")


def tile(page: Any, name: str) -> Any:
    """A headline tile: users, contacts, trunks, queue, oldest."""
    return page.locator(f'.tile[data-tile="{name}"]')


def column_texts(page: Any, view: str, index: int) -> list[str]:
    """The text of one column (0-based) in the rendered rows, top to bottom."""
    return page.eval_on_selector_all(
        f"#view-{view} tr.row", f"rows => rows.map(r => r.cells[{index}].textContent)"
    )
