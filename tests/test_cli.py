import io
import subprocess
import sys

import pytest

from crmkit import __version__
from crmkit.cli import demo, main


def test_demo_rejects_bad_rows_keeps_good_ones_and_routes_them():
    out = io.StringIO()
    assert demo(out, synthetic=500, seed=1) == 0
    text = out.getvalue()
    assert "row 3 rejected" in text
    assert "email: 'alan@@bletchley'" in text
    assert "employees: must not be negative" in text
    assert "kept 5, rejected 2" in text
    assert "Cobol Systems        US   12000  -> enterprise" in text
    assert "Rings & Fields       DE      95  -> dach-software" in text
    assert "[failed] industry eq 'software' (actual: 'telecom')" in text
    assert "equal after the round trip: True" in text
    assert "Routed 500 synthetic leads" in text


def test_demo_can_skip_the_synthetic_batch():
    out = io.StringIO()
    demo(out, synthetic=0)
    assert "synthetic" not in out.getvalue()


def test_main_runs_the_demo(capsys):
    assert main(["demo", "--synthetic", "10"]) == 0
    assert "crmkit" in capsys.readouterr().out


def test_main_refuses_bad_arguments(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["demo", "--synthetic", "-1"])
    assert caught.value.code == 2
    assert "--synthetic must be 0 or more" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([])


def test_version_flag(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"crmkit {__version__}"


def test_a_closed_pipe_ends_the_command_quietly():
    process = subprocess.Popen(
        [sys.executable, "-m", "crmkit", "demo", "--synthetic", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    process.stdout.readline()
    process.stdout.close()  # the reader goes away after one line
    _, stderr = process.communicate(timeout=60)
    assert b"Traceback" not in stderr
