"""`rig`: one subcommand per pipeline stage."""

from __future__ import annotations

import typer

from rig_cli import augment, collect, dataset, evaluate, export, imagine, models, pipeline, play, train, view
from rig_cli.common import STATE
from rig_core import __version__

app = typer.Typer(
    name="rig",
    help="Build, train and run RIG policies: reason, act and imagine in one transformer.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rig {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    STATE["debug"] = debug


app.command("collect")(collect.collect)
app.command("augment")(augment.augment)
app.command("train")(train.train)
app.command("play")(play.play)
app.command("imagine")(imagine.imagine)
app.command("evaluate")(evaluate.evaluate)
app.command("export")(export.export)
app.command("pipeline")(pipeline.pipeline)
app.command("models")(models.models)
app.command("view")(view.view)
app.add_typer(dataset.app, name="dataset")

if __name__ == "__main__":  # pragma: no cover
    app()
