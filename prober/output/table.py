"""A terminal table of journey results (rich: aligned columns, colour only on a TTY)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from rich.console import Console
from rich.table import Table

from prober.results import JourneyResult


def render_table(results: Sequence[JourneyResult], stream: TextIO) -> None:
    """Print one row per journey, with the failing step and its error."""
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in ("site", "check", "kind", "result", "outcome", "ms", "failed step", "error"):
        table.add_column(column, justify="right" if column == "ms" else "left", overflow="fold")
    for r in results:
        table.add_row(
            r.site,
            r.check,
            r.kind,
            "[green]OK[/]" if r.success else "[red]FAIL[/]",
            r.outcome.value,
            f"{r.duration_ms:.0f}",
            r.failed_step or "-",
            r.error or "",
        )
    console = Console(file=stream, width=160 if not stream.isatty() else None, highlight=False)
    console.print(table)
    failed = sum(not r.success for r in results)
    console.print(
        f"{len(results)} checks: {len(results) - failed} ok, {failed} failing" if results else "no checks selected"
    )
