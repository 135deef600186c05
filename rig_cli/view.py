"""`rig view`: a dataset, an evaluation or a pipeline as a web page that opens from the file system."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rig_cli.common import handle_errors, print_json


@handle_errors
def view(
    path: Path = typer.Argument(..., help="A dataset (collected, reasoned or review), an evaluation folder (one "
                                "player or several) or a pipeline folder."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder of the site (default: beside PATH, "
                                       "as PATH-view); an earlier view there is replaced."),
    serve: bool = typer.Option(False, "--serve", help="Also serve the site on 127.0.0.1 and print its URL "
                               "(Ctrl-C stops)."),
    port: int = typer.Option(8000, help="With --serve: the port (0: any free port)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    json_output: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Write a self-contained static site (no server needed: open its index.html) to look through episodes
    step by step: frames, imagined frames with PSNR, thoughts, actions, reviews; and an evaluation's success
    per task, paired comparison and plots, with its episodes filterable by task, player and outcome."""
    from rig_core.view.build import view as write_view

    info = write_view(path, out, quiet=quiet or json_output)
    if json_output:
        print_json(info)
    elif not quiet:
        print(f"wrote the view of {info['kind']} {path} ({info['episodes']} episodes, {info['steps']} steps) "
              f"in {info['seconds']:.1f} s; open file://{info['index']}")
    if serve:
        from rig_core.view.serve import server, url

        srv = server(Path(info["out"]), port)
        print(f"serving {info['out']} at {url(srv)} (Ctrl-C stops)", flush=True)
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            srv.server_close()
