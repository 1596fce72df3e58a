"""`run_code` in R, in sessions of code_latest: its kernel (r_kernel.py driving kernel.R) keeps the
global environment, prints values as R's console does, and turns plots into PNG results."""

from __future__ import annotations

from typing import Any

from cove import EnhancedCodeExecutionResult, Session
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.test_code_languages import png_size

pytestmark = BOTH_RUNTIMES


def r(session: Session, code: str, **arguments: Any) -> EnhancedCodeExecutionResult:
    return session.code.run_code(code, "r", **arguments)


def test_r_state_output_values_and_errors(code_session: Session) -> None:
    first = r(
        code_session, 'base <- 40\nadd <- function(n) base + n\ncat("to stdout\\n")\nmessage("to stderr")'
    )
    assert first.success and first.results == [] and first.execution_count == 1, first.error_message
    assert ("".join(first.logs.stdout), "".join(first.logs.stderr)) == ("to stdout\n", "to stderr\n")
    second = code_session.code.run_code("add(2)", "R")
    assert second.success and second.result == "[1] 42", "the value, as the console prints it"
    summary = r(code_session, "xs <- c(1, 2, 3)\nxs * 2\nsummary(xs)")
    assert "".join(summary.logs.stdout) == "[1] 2 4 6\n", "earlier visible values are printed"
    assert summary.result is not None and "Median" in summary.result and "2.0" in summary.result
    assert r(code_session, "invisible(7)").results == [], "an invisible value is no result"
    warned = r(code_session, 'f <- function() warning("careful")\nf()\n"after"')
    assert warned.success and warned.result == '[1] "after"'
    assert "".join(warned.logs.stderr) == "Warning message:\nIn f() : careful\n"
    thrown = r(code_session, 'cat("before\\n")\ng <- function(n) stop("boom ", n)\nh <- function() g(2)\nh()')
    assert not thrown.success and thrown.error is not None
    assert (thrown.error.name, thrown.error.value) == ("Error", "boom 2")
    assert thrown.error.traceback.startswith("Error in g(2) : boom 2") and "1: h()" in thrown.error.traceback
    assert "".join(thrown.logs.stdout) == "before\n"
    wrong = r(code_session, "a b")
    assert wrong.error is not None and wrong.error.name == "SyntaxError"
    assert "unexpected symbol" in wrong.error.value and "<cell 7>:1:3" in wrong.error.value
    assert r(code_session, 'paste("é", add(0))').result == '[1] "é 40"', "the kernel goes on"


def test_r_plots_are_png_results(code_session: Session) -> None:
    drawn = r(code_session, "plot(1:10, main = 'ten')")
    assert drawn.success, drawn.error_message
    [plot] = drawn.results
    assert not plot.is_main_result and png_size(plot.png) == (700, 500)
    two = r(code_session, "hist(rnorm(100))\nbarplot(c(a = 1, b = 2))\nlength(letters)")
    assert [result.is_main_result for result in two.results] == [True, False, False]
    assert two.result == "[1] 26" and all(png_size(result.png) for result in two.results[1:])
    own = r(code_session, 'png("own.png"); plot(1); invisible(dev.off())\nfile.size("own.png") > 0')
    assert own.success and own.result == "[1] TRUE" and len(own.results) == 1, "its own file, no result"


def test_r_timeout_keeps_the_state_and_a_killed_kernel_restarts(code_session: Session) -> None:
    assert r(code_session, 'kept <- "still here"').success
    looping = r(code_session, 'cat("looping\\n")\nrepeat {}', timeout_s=2)
    assert not looping.success and looping.timed_out and not looping.kernel_died
    assert looping.error is not None and looping.error.name == "TimeoutError"
    assert "".join(looping.logs.stdout) == "looping\n"
    sleeping = r(code_session, "Sys.sleep(60)", timeout_s=1)
    assert sleeping.timed_out and not sleeping.kernel_died
    after = r(code_session, "kept")
    assert after.success and after.result == '[1] "still here"' and not after.kernel_restarted
    ended = r(code_session, "quit(status = 3)")
    assert ended.kernel_died and ended.error is not None and "exit code 3" in ended.error.value
    fresh = r(code_session, 'exists("kept")')
    assert fresh.result == "[1] FALSE" and fresh.kernel_restarted
