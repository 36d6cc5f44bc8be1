"""``bioner experiment``: run a datasets × taggers × seeds grid, see its state, report it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioner.errors import BionerError

app = typer.Typer(help="Experiment grids: run, status, report.", no_args_is_help=True)


@app.command("run")
def run_command(spec: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")]) -> None:
    """Run every cell (train → test → cost); finished cells are skipped, interrupted ones resumed."""
    from bioner.experiments.runner import run
    from bioner.experiments.spec import load_spec

    states = run(load_spec(spec), spec, echo=typer.echo)
    failed = [k for k, v in states.items() if v == "failed"]
    typer.echo(f"{len(states) - len(failed)} done, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)


@app.command("status")
def status_command(spec: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")]) -> None:
    """Which cells are done, partial (interrupted), failed or pending."""
    from bioner.experiments.runner import cell_state, cells
    from bioner.experiments.spec import load_spec, out_dir

    s = load_spec(spec)
    root = out_dir(s, spec)
    typer.echo("| dataset | tagger | seed | state |\n|---|---|---|---|")
    for cell in cells(s):
        typer.echo(f"| {cell.dataset} | {cell.tagger.name} | {cell.seed} | {cell_state(cell.folder(root))} |")


@app.command("report")
def report_command(
    spec: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")],
    out: Annotated[Path | None, typer.Option(help="Report folder (default: OUT/report).")] = None,
) -> None:
    """Tables (mean ± sd over seeds), paired tests, plots; report.md, results.csv, report.html."""
    from bioner.experiments.report import write_report
    from bioner.experiments.spec import load_spec, out_dir

    s = load_spec(spec)
    try:
        written = write_report(s, spec, out or out_dir(s, spec) / "report")
    except FileNotFoundError as exc:
        raise BionerError(str(exc)) from exc
    for path in written.values():
        typer.echo(f"wrote {path}")
