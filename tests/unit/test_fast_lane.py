"""The fast lane's plugin: a fast test that starts a process fails naming it, a slow one may, and a module whose
every test is slow is not collected by ``-m "not slow"``."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.mark.slow  # the inner tests start a subprocess (in this process's pytest session)
def test_a_fast_test_that_starts_a_process_fails_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("pytest_plugins = ['tests.plugins.fast_lane']\n")
    pytester.makepyfile(
        test_spawns="""
        import subprocess, sys
        import pytest

        def test_fast_but_spawns():
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        @pytest.mark.slow
        def test_slow_and_spawns():
            subprocess.run([sys.executable, "-c", "pass"], check=True)
        """,
        test_all_slow="""
        import pytest

        pytestmark = pytest.mark.slow

        def test_never_collected_in_the_fast_lane():
            pass
        """,
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-m", "not slow")
    result.assert_outcomes(passed=1, errors=1, deselected=1)
    result.stdout.fnmatch_lines(
        ["*test_fast_but_spawns is in the fast lane but started subprocess * -c pass: mark it @pytest.mark.slow*"]
    )
    assert "test_never_collected_in_the_fast_lane" not in result.stdout.str()
    everything = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    everything.assert_outcomes(passed=3, errors=1)
