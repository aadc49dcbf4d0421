// Hybrid's build script: `dotnet fsi build.fsx <target> [options]`.
// Each target restores and builds what it needs, then calls one entry point: the test executables for
// `test`, the `hybrid` command (src/Cli) for everything else. Run `dotnet fsi build.fsx help` for the list.

open System
open System.Diagnostics
open System.IO
open System.Text.RegularExpressions

let root = __SOURCE_DIRECTORY__
let configuration = "Release"

let ansi = Regex(@"\x1b\[[0-9;?]*[A-Za-z]")

/// True when this script's standard output is a terminal (not a file or a pipe): only then do the lines it passes on
/// keep their colours.
let outputIsTerminal = not Console.IsOutputRedirected && isNull (Environment.GetEnvironmentVariable "NO_COLOR")

/// Runs a process in the repository root, streaming its output; returns the exit code and, when asked, the lines.
/// Captured lines are passed on to standard output, without ANSI escape codes unless it is a terminal.
let run (file: string) (args: string list) (env: (string * string) list) (capture: bool) =
    let psi = ProcessStartInfo(file, args)
    psi.WorkingDirectory <- root
    psi.UseShellExecute <- false
    psi.RedirectStandardOutput <- capture
    for (k, v) in env do psi.Environment.[k] <- v
    use p = Process.Start psi
    let lines = Collections.Generic.List<string>()
    if capture then
        let mutable line = p.StandardOutput.ReadLine()
        while not (isNull line) do
            Console.WriteLine(if outputIsTerminal then line else ansi.Replace(line, ""))
            lines.Add line
            line <- p.StandardOutput.ReadLine()
    p.WaitForExit()
    p.ExitCode, List.ofSeq lines

/// A duration as the build and test lines give it: "48.2 s", "3 min 07 s".
let duration (t: TimeSpan) =
    if t.TotalSeconds < 60.0 then sprintf "%.1f s" t.TotalSeconds
    else sprintf "%d min %02d s" (int t.TotalMinutes) t.Seconds

/// MSBuild's line for a project it has built (minimal verbosity): "  Classifier -> /path/bin/Release/net10.0/X.dll".
let builtLine = Regex(@"^\s*([^\s:]+) -> (.+)$")

/// Builds the solution, one line per project as MSBuild finishes it (`build: [3/16] Classifier (41.5 s)`, the time
/// since the build started) and MSBuild's error lines; nothing else of MSBuild's output. The lines go to standard
/// error, so that a target's standard output stays machine-readable (`dataset --json` prints exactly one JSON object).
let build () =
    let solution = Path.Combine(root, "Hybrid.sln")
    let total =
        File.ReadLines solution |> Seq.filter (fun l -> l.StartsWith "Project(" && (l.Contains ".csproj\"" || l.Contains ".fsproj\"")) |> Seq.length
    eprintfn "build: restoring and building Hybrid.sln (%s, %d projects)" configuration total
    let clock = Stopwatch.StartNew()
    let psi = ProcessStartInfo("dotnet", [ "build"; solution; "-c"; configuration; "-nologo"; "-v"; "minimal"; "-tl:off"; "-clp:NoSummary" ])
    psi.WorkingDirectory <- root
    psi.UseShellExecute <- false
    psi.RedirectStandardOutput <- true
    use p = Process.Start psi
    let built = Collections.Generic.HashSet<string>()
    p.OutputDataReceived.Add(fun e ->
        match e.Data with
        | null -> ()
        | line ->
            let m = builtLine.Match line
            if m.Success then
                lock built (fun () ->
                    if built.Add m.Groups.[1].Value then
                        eprintfn "build: [%d/%d] %s (%s)" built.Count total m.Groups.[1].Value (duration clock.Elapsed))
            elif line.Contains ": error " then eprintfn "%s" (line.Trim()))
    p.BeginOutputReadLine()
    p.WaitForExit()
    let code = p.ExitCode
    if code <> 0 then
        eprintfn "build: failed (exit %d) after %s" code (duration clock.Elapsed)
        exit code
    eprintfn "build: done in %s" (duration clock.Elapsed)

let testProjects () =
    Directory.GetDirectories(Path.Combine(root, "tests"), "*.Tests")
    |> Array.sort
    |> Array.map (fun dir ->
        let name = Path.GetFileName dir
        name, Path.Combine(dir, "bin", configuration, "net10.0", sprintf "Hybrid.%s.dll" name))

let countLine = Regex(@"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$")

/// `test [--quick] [--fsdd DIR] [--require-data] [-- EXPECTO ARGS]`: every Expecto suite, then the summed count line.
/// `--quick` sets HYBRID_QUICK=1, under which every suite reports its slow tests (TestSupport's `Speed.slow`: training,
/// packing, long fuzzing, Orleans silos) as skipped without running them; CI (.ci/run) runs everything.
let test (args: string list) =
    let rec parse env rest =
        function
        | "--quick" :: tail -> parse (("HYBRID_QUICK", "1") :: env) rest tail
        | "--fsdd" :: dir :: tail -> parse (("HYBRID_FSDD", Path.GetFullPath dir) :: env) rest tail
        | "--require-data" :: tail -> parse (("HYBRID_REQUIRE_DATA", "1") :: env) rest tail
        | "--" :: tail -> env, rest @ tail
        | x :: tail -> parse env (rest @ [ x ]) tail
        | [] -> env, rest
    let env, expectoArgs = parse [] [] args
    // The suites write into this script's pipe: they colour their output (Runner) only when this script's own output
    // is a terminal.
    let env = if outputIsTerminal then ("HYBRID_COLOUR", "1") :: env else env
    let clock = Stopwatch.StartNew()
    build ()
    if List.exists (fun (k, _) -> k = "HYBRID_QUICK") env then
        printfn "test: --quick: slow tests (training, packing, long fuzzing, Orleans silos) are reported skipped"
    let mutable passed, failed, skipped = 0, 0, 0
    for (name, dll) in testProjects () do
        printfn "test: %s" name
        let suiteClock = Stopwatch.StartNew()
        let code, lines = run "dotnet" (dll :: expectoArgs) env true
        let counted =
            lines
            |> List.rev
            |> List.tryPick (fun l ->
                let m = countLine.Match(ansi.Replace(l, "").Trim())
                if m.Success then Some(int m.Groups.[1].Value, int m.Groups.[2].Value, (if m.Groups.[3].Success then int m.Groups.[3].Value else 0))
                else None)
        match counted with
        | Some (p, f, s) ->
            passed <- passed + p
            failed <- failed + f + (if code <> 0 && f = 0 then 1 else 0)
            skipped <- skipped + s
            printfn "test: %s: %d passed, %d failed, %d skipped in %s" name p f s (duration suiteClock.Elapsed)
        | None ->
            eprintfn "test: %s exited %d without a count line after %s" name code (duration suiteClock.Elapsed)
            failed <- failed + 1
    printfn "test: total time %s (build and every suite)" (duration clock.Elapsed)
    printfn "%d passed, %d failed, %d skipped" passed failed skipped
    if failed > 0 then 1 else 0

/// `pack [--version V] [--out DIR]`: builds, then packs the libraries (Hybrid.Dsp.Kernels, Hybrid.Features.Schemas with
/// the generator as its analyzer, Hybrid.Features, Hybrid.Network, Hybrid.Classifier) and the `hybrid` tool into artifacts/ (or DIR).
let pack (args: string list) =
    let rec parse version out =
        function
        | "--version" :: v :: tail -> parse (Some v) out tail
        | "--out" :: dir :: tail -> parse version (Some(Path.GetFullPath dir)) tail
        | x :: _ ->
            eprintfn "pack: unknown option '%s' (expected --version V, --out DIR)" x
            exit 2
        | [] -> version, out
    let version, out = parse None None args
    let out = defaultArg out (Path.Combine(root, "artifacts"))
    build ()
    let versionArgs = version |> Option.map (fun v -> [ sprintf "-p:Version=%s" v ]) |> Option.defaultValue []
    let code, _ =
        run "dotnet" ([ "pack"; Path.Combine(root, "Hybrid.sln"); "-c"; configuration; "--no-build"; "-nologo"; "-v"; "q"; "-o"; out ] @ versionArgs) [] false
    if code = 0 then
        for file in Directory.GetFiles(out, "*.nupkg") |> Array.sort do
            printfn "pack: %s" file
    code

/// Targets implemented by the `hybrid` command (src/Cli); build.fsx only forwards their options.
let cliTargets =
    [ ("train", "train and evaluate a model on FSDD or any dataset folder (--data), leaving model, metrics, plots and report")
      ("predict", "label and class probabilities of audio files under a model file: --model FILE [--windows] [--json|--csv] FILES...")
      ("evaluate", "score a model file on any labelled dataset: --model FILE --data DIR [--label-map zero=0,...] [--json] [--out DIR]")
      ("export", "write a model file as ONNX (opset 17): --model RUN/model.hnn --onnx OUT.onnx [--frontend]")
      ("summary", "a model file's layers, output shapes and parameter counts, and its input: --model FILE [--json]")
      ("plot", "waveform, spectrogram, mel and MFCC plots of a recording: FILE.wav --out DIR")
      ("dataset", "summarise a dataset folder and its split")
      ("features", "export a schema or transform of a dataset as CSV, Parquet or .npy")
      ("bench", "time the workloads per engine: [--device all|NAME] [--json FILE] [--runs N] [--warmup N] [--workload NAME ...] [--threads N|1,2,...] [--scaling]")
      ("cluster", "start an Orleans silo for scale-out: silo [--port P] [--gateway-port G] [--seed HOST:PORT] [--address A --certificate FILE.pfx]") ]

/// True when the `hybrid` command is newer than every source and project file, so that running a target (or asking
/// for its help) does not start a build when nothing changed.
let cliUpToDate () =
    let dll = FileInfo(Path.Combine(root, "src", "Cli", "bin", configuration, "net10.0", "hybrid.dll"))
    let inputs =
        seq {
            for pattern in [ "*.fs"; "*.cs"; "*.fsproj"; "*.csproj"; "*.sha256" ] do
                yield! Directory.EnumerateFiles(Path.Combine(root, "src"), pattern, SearchOption.AllDirectories)
            yield! Directory.EnumerateFiles(root, "Directory.*.props")
        }
        |> Seq.filter (fun f -> not (f.Contains(string Path.DirectorySeparatorChar + "obj" + string Path.DirectorySeparatorChar))
                                && not (f.Contains(string Path.DirectorySeparatorChar + "bin" + string Path.DirectorySeparatorChar)))
    dll.Exists && inputs |> Seq.forall (fun f -> File.GetLastWriteTimeUtc f <= dll.LastWriteTimeUtc)

let cli (target: string) (args: string list) =
    if not (cliUpToDate ()) then build ()
    let dll = Path.Combine(root, "src", "Cli", "bin", configuration, "net10.0", "hybrid.dll")
    run "dotnet" (dll :: target :: args) [] false |> fst

let help () =
    printfn "usage: dotnet fsi build.fsx <target> [options]   (`dotnet fsi build.fsx <target> help` shows a target's options)"
    printfn "targets:"
    printfn "  build    restore and build the solution"
    printfn "  test     run every test suite: [--quick] [--fsdd DIR] [--require-data] [-- expecto options]"
    printfn "           --quick skips the slow tests (training, packing, long fuzzing, Orleans silos), counting them skipped"
    printfn "  version  the hybrid command's version (hybrid --version)"
    printfn "  pack     build and write NuGet packages (libraries and the hybrid tool): [--version V] [--out DIR]"
    printfn "  pocl     build PoCL 6.0 (OpenCL on the CPU) into the user cache for --device opencl: [ARCHIVE]"
    for (name, description) in cliTargets do
        printfn "  %-8s %s" name description
    0

// `dotnet fsi` answers --help and -h itself, wherever they stand, so through this script a target's help is
// asked for with the word `help` (e.g. `dotnet fsi build.fsx train help`); it is forwarded as --help.
let args =
    fsi.CommandLineArgs
    |> Array.skip 1
    |> Array.mapi (fun i a -> if i > 0 && a = "help" then "--help" else a)
    |> List.ofArray

let code =
    match args with
    | [] | [ "help" ] | [ "--help" ] | [ "-h" ] -> help ()
    | "build" :: [ "--help" ] -> printfn "build: restore and build Hybrid.sln in Release, a line per project as it is built (on the error output)"; 0
    | "build" :: _ -> build (); 0
    | "test" :: [ "--help" ] ->
        printfn "test [--quick] [--fsdd DIR] [--require-data] [-- expecto options]: build, run every suite, print 'N passed, N failed, N skipped'"
        printfn "  each suite ends with a line of its counts and wall time, and the total time comes just before the count line;"
        printfn "  redirected to a file or pipe (or with NO_COLOR set) the output has no colour codes"
        printfn "  --quick           skip the tests marked slow (training models, the package test, long fuzzing, Orleans silos);"
        printfn "                    they are counted as skipped (HYBRID_QUICK=1 does the same for a test executable run by hand)"
        printfn "  --fsdd DIR        the FSDD folder (else HYBRID_FSDD, else ../shared/data/fsdd)"
        printfn "  --require-data    fail, rather than skip, tests whose data is missing (HYBRID_REQUIRE_DATA=1)"
        0
    | "test" :: rest -> test rest
    | "pack" :: [ "--help" ] -> printfn "pack [--version V] [--out DIR]: build, then write the library packages and the hybrid tool package into artifacts/ (or DIR)"; 0
    | "pack" :: rest -> pack rest
    | "pocl" :: [ "--help" ] -> printfn "pocl [ARCHIVE]: build and install PoCL 6.0 under ~/.cache/hybrid/pocl-6.0 (scripts/pocl/build-pocl.sh; nothing when cached)"; 0
    | "pocl" :: rest -> run "bash" (Path.Combine(root, "scripts", "pocl", "build-pocl.sh") :: rest) [] false |> fst
    | [ "version" ] | [ "--version" ] -> cli "--version" []
    | target :: rest when List.exists (fun (n, _) -> n = target) cliTargets -> cli target rest
    | target :: _ ->
        eprintfn "unknown target '%s'" target
        help () |> ignore
        2

exit code
