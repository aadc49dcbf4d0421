/// The shared entry point of every test executable: runs Expecto and ends with `N passed, N failed, N skipped`.
module Hybrid.TestSupport.Runner

open System
open Expecto
open Expecto.Impl

/// Runs the tests with Expecto's command-line arguments (e.g. --filter, --sequenced) and prints the
/// closing count line. Failed and errored tests both count as failed; ignored (skipped) tests as skipped, among them
/// the slow ones of a quick run. `--quick` among the arguments is taken out before Expecto sees them and sets
/// HYBRID_QUICK=1 (see Speed.slow). Exit code 0 only when nothing failed.
let private runWith (argv: string[]) (runner: CLIArguments list -> string[] -> int) =
    if Array.contains "--quick" argv then Environment.SetEnvironmentVariable(Speed.QuickVariable, "1")
    let argv = argv |> Array.filter (fun a -> a <> "--quick")
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
