"""Parts of the command that need no subprocess: help texts, the progress bar, errors."""

from __future__ import annotations

import io

import pytest

from mlp_backends import cli
from mlp_backends.callbacks import ProgressBar
from mlp_backends.commands import backends as backends_command


@pytest.mark.parametrize("command", ["backends", "train", "predict", "evaluate"])
def test_every_subcommand_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:\n  mlp-backends " + command in text


def test_train_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    for option in ("--data", "--target", "--hidden", "--activation", "--optimizer", "--learning-rate",
                   "--batch-size", "--epochs", "--seed", "--dtype", "--backend", "--validation-split",
                   "--early-stopping", "--save", "--plot", "--log-json", "--quiet", "--checkpoint",
                   "--checkpoint-every", "--resume", "--scheduler"):
        assert option in text, option


def test_progress_bar_on_a_terminal_shows_loss_and_accuracy():
    stream = io.StringIO()
    bar = ProgressBar(3, stream=stream, tty=True)
    for epoch in (1, 2, 3):
        bar.on_epoch_end(None, {"epoch": epoch, "loss": 1.0 / epoch, "accuracy": 0.5, "time": 0.01})
    bar.on_train_end(None, None)
    text = stream.getvalue()
    assert "3/3" in text and "loss=0.3333" in text and "accuracy=0.5000" in text
    assert "\r" in text  # redrawn in place, not a line per epoch
    assert "epoch    1/3" not in text


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    bar = ProgressBar(2, stream=stream, tty=False)
    bar.on_epoch_end(None, {"epoch": 1, "loss": 0.5, "accuracy": 0.75, "time": 0.002,
                            "val_loss": 0.6, "val_accuracy": 0.7})
    assert stream.getvalue() == ("epoch    1/2  loss 0.5000  accuracy 0.7500  val_loss 0.6000  "
                                 "val_accuracy 0.7000  (2 ms)\n")


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--backend", "numpy", "--save", "/nonexistent/folder/m.npz"],
     "folder /nonexistent/folder does not exist"),
    (["train", "--backend", "numpy", "--epochs", "0"], "--epochs must be at least 1"),
    (["train", "--backend", "numpy", "--validation-split", "1.5"], "validation_size must be a fraction"),
    (["train", "--backend", "numpy", "--data", "iris", "--target", "x"], "--target names a CSV column"),
    (["train", "--backend", "numpy", "--lr", "-1"], "learning_rate must be a number above 0"),
])
def test_bad_options_exit_2_with_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_evaluate_refuses_labels_the_model_never_saw(tmp_path, capsys):
    from mlp_backends import MLP

    model = MLP(2, 4, 2, backend="numpy")
    model.extra = {"classes": ["cat", "dog"]}
    model.save(tmp_path / "m.npz")
    (tmp_path / "d.csv").write_text("a,b,animal\n1,2,cat\n3,4,bird\n")
    assert cli.main(["evaluate", str(tmp_path / "m.npz"), str(tmp_path / "d.csv"), "--backend", "numpy"]) == 2
    assert "labels the model does not know: bird" in capsys.readouterr().err
    (tmp_path / "w.csv").write_text("a,b,c,d\n1,2,3,4\n")  # three features and a label: one too many
    assert cli.main(["predict", str(tmp_path / "m.npz"), str(tmp_path / "w.csv"), "--backend", "numpy"]) == 2
    assert "w.csv has 3 features per row but the model takes 2" in capsys.readouterr().err


def test_debug_before_the_subcommand_adds_the_traceback_and_keeps_exit_2(capsys):
    assert cli.main(["--debug", "train", "--data", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1].startswith("mlp-backends: error: unknown data set")


def test_anything_else_exits_1_with_one_line(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(backends_command, "run", broken)
    assert cli.main(["backends"]) == 1
    err = capsys.readouterr().err
    assert err == "mlp-backends: internal error: RuntimeError: a bug (run again with --debug for the traceback)\n"
