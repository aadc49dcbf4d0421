/// TestSupport's runner: what the suites print when their output is redirected (the count line build.fsx and CI read).
module Hybrid.CliTests.RunnerTests

open System.IO
open Expecto
open Hybrid.TestSupport

[<Tests>]
let tests =
    testList "Runner" [
        test "redirected output loses ANSI escape codes and the spaces that end a line, and keeps everything else" {
            use inner = new StringWriter()
            let plain = new Runner.PlainWriter(inner)
            plain.Write "\u001b[37m[\u001b[37m05:45:23 \u001b[37mINF\u001b[37m] EXPECTO? Running tests...\u001b[0m\n"
            plain.Write "\u001b[31mred text\u001b[0m  in  between  \n"
            plain.Write "3 passed, 0 failed, 0 skipped"
            plain.Write "           \n"
            plain.Write(String.replicate 3 "\u001b[?25l" + "end")
            Expect.equal (inner.ToString()) "[05:45:23 INF] EXPECTO? Running tests...\nred text  in  between\n3 passed, 0 failed, 0 skipped\nend" "plain lines"
        }

        test "the closing line: Expecto's counts; none after a listing; a failure when the run broke before its tests" {
            Expect.equal (Runner.closingLine (Some "3 passed, 0 failed, 0 skipped") 0) (Some "3 passed, 0 failed, 0 skipped") "a run"
            Expect.equal (Runner.closingLine (Some "2 passed, 1 failed, 0 skipped") 1) (Some "2 passed, 1 failed, 0 skipped") "a failing run"
            Expect.equal (Runner.closingLine None 0) None "--list-tests: no count line that would read as a failure"
            Expect.equal (Runner.closingLine None 2) (Some "0 passed, 1 failed, 0 skipped") "broke before any test"
        }
    ]
