"""`babysit lab`: the list, and user errors as one line before any folder is made."""
from click.testing import CliRunner

from babysit.cli import main


def _invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_list_names_every_lab():
    result = _invoke("lab", "--list")
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == [
        "init", "optimizers", "activations", "makemore", "batchnorm"]


def test_unknown_lab_is_one_line_naming_the_labs(tmp_path):
    result = _invoke("lab", "nope", "--out", str(tmp_path / "x"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "unknown lab 'nope'; valid: init, optimizers, activations, makemore, batchnorm" in result.output
    assert not (tmp_path / "x").exists()


def test_no_name_is_a_usage_error():
    result = _invoke("lab")
    assert result.exit_code == 2 and "babysit lab --list" in result.output


def test_a_used_folder_is_refused(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = _invoke("lab", "init", "--out", str(tmp_path))
    assert result.exit_code == 1 and "is not empty" in result.output
    assert (tmp_path / "keep.txt").read_text() == "mine"
