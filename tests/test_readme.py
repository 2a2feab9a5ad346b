"""The README is executable documentation: every fenced example runs as written,
in order, in one empty folder, and prints what it shows (tests/readme_examples.py
says how blocks are read and how tolerantly output is compared).

Opting a block out takes a visible marker with a reason right above it, and
such blocks stay rare (MAX_SKIPPED). Background processes an example starts
(the Dask scheduler and workers) are stopped at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from readme_examples import blocks, line_matches, mismatch, python_shown, session_steps

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_SKIPPED = 3
STEP_TIMEOUT_S = 300


def _environment(folder: Path) -> dict:
    """The user's shell: this Python's scripts first (mlp-backends, and dask as this Python's)."""
    bin_dir = folder / ".bin"
    bin_dir.mkdir()
    shim = bin_dir / "dask"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dask "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLP_BACKEND")}
    env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr interleave as on a terminal
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


class Shell:
    """Runs commands in the examples' folder; remembers each one's process group to stop it later."""

    def __init__(self, folder: Path):
        self.folder, self.env, self.groups = folder, _environment(folder), []

    def run(self, argv: list[str]) -> tuple[int, list[str]]:
        proc = subprocess.Popen(argv, cwd=self.folder, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.groups.append(proc.pid)
        out, _ = proc.communicate(timeout=STEP_TIMEOUT_S)
        return proc.returncode, out.splitlines()

    def stop(self) -> None:
        for group in self.groups:
            try:
                os.killpg(group, signal.SIGTERM)
            except ProcessLookupError:
                pass


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_every_readme_example_runs_and_prints_what_it_shows(tmp_path):
    examples = blocks(README.read_text())
    skipped = [(b.line, b.skip_reason) for b in examples if b.skip_reason is not None]
    assert all(reason for _, reason in skipped), f"a skip marker needs a reason: {skipped}"
    assert len(skipped) <= MAX_SKIPPED, f"too many README blocks opted out: {skipped}"
    shell = Shell(tmp_path)
    try:
        for block in examples:
            if block.skip_reason is not None:
                continue
            where = f"README.md line {block.line}"
            if block.kind == "toml":
                try:
                    import tomllib  # Python 3.11+; on 3.10 the fragment goes unparsed
                except ImportError:
                    continue
                tomllib.loads(block.text)
            elif block.kind == "bash":
                code, out = shell.run(["bash", "-ec", block.text])
                assert code == 0, f"{where}: exit {code}\n" + "\n".join(out)
            elif block.kind == "python":
                code, out = shell.run([sys.executable, "-c", block.text])
                assert code == 0, f"{where}: exit {code}\n" + "\n".join(out[-30:])
                problem = mismatch(python_shown(block.text), out, block.numbers_vary)
                assert problem is None, f"{where}: {problem}; printed:\n" + "\n".join(out)
            elif block.kind == "session":
                for command, shown in session_steps(block.text):
                    _, out = shell.run(["bash", "-c", command])
                    problem = mismatch(shown, out, block.numbers_vary)
                    assert problem is None, f"{where}, `{command}`: {problem}; printed:\n" + "\n".join(out)
            else:
                pytest.fail(f"{where}: a ```{block.lang} block is no example this test can run; "
                            "make it python, bash, toml or a `$ ` session, or mark it to skip with a reason")
    finally:
        shell.stop()


# -- the matcher itself (fast) ----------------------------------------------------
def test_times_match_any_time_and_decimals_match_closely():
    assert line_matches("wall time: 0.24 s (30 epochs)", "wall time: 3.10 s (30 epochs)")
    assert not line_matches("wall time: 0.24 s (30 epochs)", "wall time: 0.24 s (29 epochs)")
    assert line_matches("epoch    1/30  loss 1.1422  (6 ms)", "epoch    1/30  loss 1.1501  (61 ms)")
    assert not line_matches("test accuracy: 0.9778", "test accuracy: 0.5000")
    assert line_matches("backend: numpy (...)", "backend: numpy (no usable GPU backend)")
    assert line_matches("interrupted after step 5626", "interrupted after step 17", numbers_vary=True)


def test_an_ellipsis_line_stands_for_any_lines_and_order_counts():
    shown = ["first", "...", "last 1.0"]
    assert mismatch(shown, ["first", "a", "b", "last 1.001"]) is None
    assert mismatch(shown, ["first", "last 1.0"]) is None
    assert mismatch(shown, ["last 1.0", "first"]) is not None
    assert "was not printed" in mismatch(["first", "second"], ["first"])


def test_blocks_sessions_and_python_outputs_are_read_as_documented():
    text = ("x\n<!-- readme-test: skip: needs a GPU -->\n```bash\nnvidia-smi\n```\n\n"
            "<!-- readme-test: numbers vary -->\n```text\n$ a \\\n  --b\nout\n$ c\n```\n"
            "```python\nprint(1)\n# 1\nx = 2  # not output\n```\n")
    found = blocks(text)
    assert [(b.kind, b.skip_reason, b.numbers_vary) for b in found] == [
        ("bash", "needs a GPU", False), ("session", None, True), ("python", None, False)]
    assert session_steps(found[1].text) == [("a \\\n  --b", ["out"]), ("c", [])]
    assert python_shown(found[2].text) == ["1"]
