"""Running `rig` in-process for tests, and reading its one-line errors."""

from typer.testing import CliRunner

from rig_cli.main import app

runner = CliRunner()


def rig(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(r, code: int = 2) -> str:
    """The single ``error: ...`` line of a failed command (exit ``code``, no traceback)."""
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    return lines[0]
