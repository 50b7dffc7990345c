"""Config-as-code verbs: validate, diff, apply, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from relia.cli.client import ApiError, Client
from relia.cli.output import Format, console, emit, error_console, format_error, print_problem

PathsOpt = Annotated[list[Path], typer.Option("--file", "-f", help="A YAML file or a folder of them (repeatable)")]
OutputOpt = Annotated[Format, typer.Option("--output", "-o", help="table, json or yaml")]


def _read(paths: list[Path]) -> list[dict[str, str]]:
    from relia.config.documents import ConfigInvalid, read_paths

    try:
        files = read_paths(paths)
    except ConfigInvalid as exc:
        _report_problems([problem.as_dict() for problem in exc.problems], "Cannot read the files")
    return [{"name": item.name, "content": item.content} for item in files]


def _report_problems(errors: list[dict[str, Any]], title: str) -> None:
    error_console.print(f"[bold red]error[/]: {title}. Nothing was changed.")
    for error in errors:
        error_console.print(f"  - {format_error(error)}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


_SYMBOLS = {
    "create": "[green]+ create[/]",
    "update": "[yellow]~ update[/]",
    "delete": "[red]- delete[/]",
    "unchanged": "[dim]= unchanged[/]",
}


def _print_plan(plan: dict[str, Any], output: Format, *, verbose: bool) -> None:
    if output != Format.table:
        emit(plan, output)
        return
    for change in plan["changes"]:
        if change["action"] == "unchanged" and not verbose:
            continue
        fields = f" ({', '.join(change['fields'])})" if change["action"] == "update" and change["fields"] else ""
        # soft_wrap: one line per change even when the output is not a terminal (rich assumes 80 columns).
        console.print(
            f"{_SYMBOLS[change['action']]} {change['kind']}/{change['name']}{fields}",
            highlight=False,
            soft_wrap=True,
        )
    _print_warnings(plan.get("warnings", []))
    counts = plan["counts"]
    verb = "Applied" if plan["applied"] else "Plan"
    console.print(
        f"{verb}: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete, {counts['unchanged']} unchanged.",
        soft_wrap=True,
    )
    if not any(counts[action] for action in ("create", "update", "delete")):
        console.print("No changes.")


def _print_warnings(warnings: list[dict[str, Any]]) -> None:
    for warning in warnings:
        error_console.print(f"[yellow]warning[/]: {escape(format_error(warning))}", highlight=False, soft_wrap=True)


def _send(path: str, files: list[dict[str, str]], prune: bool) -> dict[str, Any]:
    try:
        return Client().request("POST", path, json={"files": files, "prune": prune})
    except ApiError as exc:
        if exc.problem.get("errors") and any("file" in error for error in exc.problem["errors"]):
            _report_problems(exc.problem["errors"], exc.problem.get("title", "Invalid configuration"))
        print_problem(exc.problem, exc.status or None)
        raise typer.Exit(1) from exc


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(paths: PathsOpt) -> None:
        """Check files offline: YAML, kinds, fields, duplicates, cycles. References to objects outside the
        files are checked by diff and apply."""
        from relia.config import service
        from relia.config.documents import ConfigInvalid, SourceFile

        files = _read(paths)
        try:
            loaded = service.validate([SourceFile(**item) for item in files])
        except ConfigInvalid as exc:
            _report_problems([problem.as_dict() for problem in exc.problems], "Invalid configuration")
        _print_warnings([warning.as_dict() for warning in loaded.warnings])
        console.print(f"Valid: {len(loaded.objects)} objects in {len(files)} files.")

    @app.command("diff")
    def diff(
        paths: PathsOpt,
        prune: Annotated[
            bool, typer.Option(help="Also show config-managed objects that apply --prune would delete")
        ] = False,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List unchanged objects too")] = False,
        output: OutputOpt = Format.table,
    ) -> None:
        """Show what apply would change: create / update / delete / unchanged, with the changed fields."""
        _print_plan(_send("/config/plan", _read(paths), prune), output, verbose=verbose)

    @app.command("apply")
    def apply(
        paths: PathsOpt,
        prune: Annotated[bool, typer.Option(help="Delete config-managed objects missing from the files")] = False,
        verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
        output: OutputOpt = Format.table,
    ) -> None:
        """Apply files: all or nothing, in one transaction; applying the same files again changes nothing."""
        _print_plan(_send("/config/apply", _read(paths), prune), output, verbose=verbose)

    @app.command("export")
    def export(
        out_dir: Annotated[Path | None, typer.Option("--output-dir", "-o", help="Write one file per kind here")] = None,
    ) -> None:
        """Every object as config documents (to stdout, or one file per kind)."""
        try:
            documents = Client().get("/config/export")["documents"]
        except ApiError as exc:
            print_problem(exc.problem, exc.status or None)
            raise typer.Exit(1) from exc
        from relia.config.documents import dump, export_file_name

        if out_dir is None:
            all_documents = [document for kind_documents in documents.values() for document in kind_documents]
            typer.echo(dump(all_documents), nl=False)
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        for kind, kind_documents in documents.items():
            target = out_dir / export_file_name(kind)
            if kind_documents:
                target.write_text(dump(kind_documents), encoding="utf-8")
                message = f"wrote {target} ({len(kind_documents)} objects)"
            elif target.exists():
                # An earlier export's file would bring back, on the next apply, objects deleted since.
                target.unlink()
                message = f"removed {target} (no objects)"
            else:
                continue
            console.print(message, markup=False, highlight=False, soft_wrap=True)


__all__ = ["register"]
