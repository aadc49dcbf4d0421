/// The shared entry point of every test executable: runs Expecto and ends with `N passed, N failed, N skipped`.
module Hybrid.TestSupport.Runner

open System
open System.IO
open Expecto
open Expecto.Impl

/// Passes text on to `inner` without ANSI escape sequences (ESC, then '[', parameters and a final letter; ESC and one
/// other character) and without the spaces that end a line: what Expecto writes, for a file or a pipe. Expecto appends
/// a colour reset to every line even with `--colours 0`, sends what tests write to the error output to standard output
/// painted red, and blanks its progress line with spaces.
type PlainWriter(inner: TextWriter) =
    inherit TextWriter()
    let mutable escape = 0
    let mutable spaces = 0
    override _.Encoding = inner.Encoding
    override _.Write(c: char) =
        match escape with
        | 1 -> escape <- (if c = '[' then 2 else 0)
        | 2 -> if c >= '@' && c <= '~' then escape <- 0
        | _ ->
            match c with
            | '\u001b' -> escape <- 1
            | ' ' -> spaces <- spaces + 1
            | '\n' | '\r' ->
                spaces <- 0
                inner.Write c
            | c ->
                if spaces > 0 then
                    inner.Write(String(' ', spaces))
                    spaces <- 0
                inner.Write c
    override this.Write(s: string | null) =
        match s with
        | null -> ()
        | s -> for c in s do this.Write c
    override _.Flush() = inner.Flush()

/// True when the test output may carry colours (ANSI escape codes): NO_COLOR (https://no-color.org) unset, and either
/// standard output is a terminal or HYBRID_COLOUR=1 says that whoever reads it passes it on to one (build.fsx does,
/// when its own output is a terminal). Redirected output is plain text.
let colours () =
    let set (name: string) = not (String.IsNullOrEmpty(Environment.GetEnvironmentVariable name))
    not (set "NO_COLOR") && (not Console.IsOutputRedirected || Environment.GetEnvironmentVariable "HYBRID_COLOUR" = "1")

/// The line a test executable ends with, given Expecto's summary line (None when no test ran) and its exit code: the
/// summary; nothing when no test ran and nothing failed (Expecto only listed the tests or printed its help); else
/// `0 passed, 1 failed, 0 skipped`, so a run that broke before its tests is never read as a pass.
let closingLine (summary: string option) (code: int) : string option =
    match summary, code with
    | Some line, _ -> Some line
    | None, 0 -> None
    | None, _ -> Some "0 passed, 1 failed, 0 skipped"

/// Runs the tests with Expecto's command-line arguments (e.g. --filter, --sequenced) and prints the
/// closing count line. Failed and errored tests both count as failed; ignored (skipped) tests as skipped, among them
/// the slow ones of a quick run. A run that only lists the tests (`--list-tests`) or prints Expecto's help ends with
/// no count line; one that stops before any test ran with a non-zero code ends with `0 passed, 1 failed`. `--quick` among the arguments is taken out before Expecto sees them and sets
/// HYBRID_QUICK=1 (see Speed.slow). Without `colours ()`, Expecto writes no colour (`--colours 0`) unless the
/// arguments ask for some. Exit code 0 only when nothing failed.
let private runWith (argv: string[]) (runner: CLIArguments list -> string[] -> int) =
    if Array.contains "--quick" argv then Environment.SetEnvironmentVariable(Speed.QuickVariable, "1")
    let argv = argv |> Array.filter (fun a -> a <> "--quick")
    let argv =
        if colours () || Array.contains "--colours" argv then argv
        else
            // Before Expecto takes the console's writers over (on its first line), so that every line reaches the
            // real output through them.
            Console.SetOut(new PlainWriter(Console.Out))
            Console.SetError(new PlainWriter(Console.Error))
            Array.append argv [| "--colours"; "0" |]
    let mutable line = None
    let record (summary: TestRunSummary) =
        line <-
            Some(
                sprintf "%d passed, %d failed, %d skipped"
                    summary.passed.Length
                    (summary.failed.Length + summary.errored.Length)
                    summary.ignored.Length)
    let code = runner [ CLIArguments.No_Spinner; CLIArguments.Append_Summary_Handler(SummaryHandler record) ] argv
    closingLine line code |> Option.iter (printfn "%s")
    code

/// Runs the given tests (see runWith).
let run (argv: string[]) (tests: Test) =
    runWith argv (fun cli args -> runTestsWithCLIArgs cli args tests)

/// Runs every `[<Tests>]` value of the calling test executable (see runWith).
let runInAssembly (argv: string[]) =
    runWith argv (fun cli args -> runTestsInAssemblyWithCLIArgs cli args)
