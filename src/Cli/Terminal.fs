/// How the hybrid command draws on a terminal, with Spectre.Console: progress bars for the library's reporters
/// (Progress.create, rendered through Progress.renderWith) and tables for summaries. Drawing happens only on a live
/// terminal: a writer that is the process's own standard output or error, not redirected, on a console that takes
/// ANSI sequences and is interactive. Everywhere else (CI, pipes, files, the tests' writers) each command writes the
/// plain lines it always wrote, and `--json` output is never drawn.
module Hybrid.Cli.Terminal

open System
open System.IO
open Spectre.Console
open Hybrid.Features

/// The console on standard error (progress bars and, while they run, the log lines), made on first use.
let private errorConsole =
    lazy (AnsiConsole.Create(AnsiConsoleSettings(Out = AnsiConsoleOutput(Console.Error))))

/// The console on standard output (tables), made on first use.
let private outConsole = lazy AnsiConsole.Console

/// True when `writer` is the process's standard output or error and reaches an interactive terminal that takes ANSI
/// sequences: only there are bars redrawn and tables drawn.
let isLive (writer: TextWriter) =
    let live (console: Lazy<IAnsiConsole>) =
        let c = console.Value.Profile.Capabilities
        c.Ansi && c.Interactive
    if obj.ReferenceEquals(writer, Console.Out) then not Console.IsOutputRedirected && live outConsole
    elif obj.ReferenceEquals(writer, Console.Error) then not Console.IsErrorRedirected && live errorConsole
    else false

/// The console drawing on `writer`: Some for a live terminal (isLive), None for plain lines.
let consoleOf (writer: TextWriter) : IAnsiConsole option =
    if not (isLive writer) then None
    elif obj.ReferenceEquals(writer, Console.Out) then Some outConsole.Value
    else Some errorConsole.Value

/// A reporter drawn as a task of a Spectre progress display: its label, a bar, the percentage, the elapsed and the
/// remaining time. Report may be called from any thread (ProgressTask locks its value).
let private taskReporter (context: ProgressContext) (label: string) (total: int) : Progress.Reporter =
    let task = context.AddTask(Markup.Escape label, true, float (max total 1))
    { new Progress.Reporter with
        member _.Report completed = task.Value <- float (min completed (max total 1))
        member _.Finish() =
            task.Value <- task.MaxValue
            task.StopTask() }

/// Runs `body` with the library's progress drawn on the command's error writer `error` when that is a live terminal.
/// `body` gets the function that writes one log line to `logWriter`: while the bars are drawn, a line for a live
/// terminal goes through the progress display (above the bars, which are redrawn below it); otherwise it is written
/// to `logWriter` as a plain line. Without a live `error`, `body` runs as it is, with the library's plain progress.
let withProgress (error: TextWriter) (logWriter: TextWriter) (body: (string -> unit) -> 'T) : 'T =
    match consoleOf error with
    | None -> body logWriter.WriteLine
    | Some console ->
        let log =
            if isLive logWriter then (fun (line: string) -> console.WriteLine line)
            else logWriter.WriteLine
        console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(
                [| TaskDescriptionColumn() :> ProgressColumn
                   ProgressBarColumn()
                   PercentageColumn()
                   ElapsedTimeColumn()
                   RemainingTimeColumn() |])
            .Start(fun context ->
                use _ = Progress.renderWith (taskReporter context)
                body log)

let private makeTable (rightAligned: bool) (title: string option) (headers: string list) (rows: string list list) : Table =
    let t = Table()
    t.Border <- TableBorder.Rounded
    title |> Option.iter (fun text -> t.Title <- TableTitle(Markup.Escape text))
    headers |> List.iteri (fun i h ->
        let column = TableColumn(Markup.Escape h)
        if rightAligned && i > 0 then column.RightAligned() |> ignore
        t.AddColumn column |> ignore)
    for row in rows do
        t.AddRow(row |> List.map (fun cell -> Markup.Escape cell) |> Array.ofList) |> ignore
    t

/// A table of numbers: a header row, the first column (names) left-aligned and the others right-aligned; cells are
/// plain text.
let table (title: string option) (headers: string list) (rows: string list list) : Table = makeTable true title headers rows

/// A table of text: a header row, every column left-aligned; cells are plain text.
let textTable (title: string option) (headers: string list) (rows: string list list) : Table = makeTable false title headers rows

/// Writes an empty line.
let blankLine (console: IAnsiConsole) = console.WriteLine()

/// A two-column grid of names and values (a summary), values as plain text.
let grid (rows: (string * string) list) : Grid =
    let g = Grid()
    g.AddColumn(GridColumn().NoWrap()) |> ignore
    g.AddColumn() |> ignore
    for name, value in rows do
        g.AddRow([| Markup.Escape name; Markup.Escape value |]) |> ignore
    g
