/// The shared entry point of every test executable: runs Expecto and ends with `N passed, N failed, N skipped`.
module Hybrid.TestSupport.Runner

open Expecto
open Expecto.Impl

/// Runs the tests with Expecto's command-line arguments (e.g. --filter, --sequenced) and prints the
/// closing count line. Failed and errored tests both count as failed; ignored (skipped) tests as skipped.
/// Exit code 0 only when nothing failed.
let private runWith (argv: string[]) (runner: CLIArguments list -> string[] -> int) =
    let mutable line = None
    let record (summary: TestRunSummary) =
        line <-
            Some(
                sprintf "%d passed, %d failed, %d skipped"
                    summary.passed.Length
                    (summary.failed.Length + summary.errored.Length)
                    summary.ignored.Length)
    let code = runner [ CLIArguments.No_Spinner; CLIArguments.Append_Summary_Handler(SummaryHandler record) ] argv
    match line with
    | Some l -> printfn "%s" l
    | None -> printfn "0 passed, 1 failed, 0 skipped"
    code

/// Runs the given tests (see runWith).
let run (argv: string[]) (tests: Test) =
    runWith argv (fun cli args -> runTestsWithCLIArgs cli args tests)

/// Runs every `[<Tests>]` value of the calling test executable (see runWith).
let runInAssembly (argv: string[]) =
    runWith argv (fun cli args -> runTestsInAssemblyWithCLIArgs cli args)
