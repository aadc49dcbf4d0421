/// Runs every F# interactive walk-through in scripts/ so they never rot (they use the Release build of src/Cli).
module Hybrid.ClassifierTests.ScriptsTests

open System
open System.Diagnostics
open System.IO
open Expecto
open Hybrid.TestSupport.Speed
open Hybrid.TestSupport

let private runScript (root: string) (fsdd: string) (script: string) (args: string list) =
    let psi = ProcessStartInfo("dotnet", [ "fsi"; "--quiet"; Path.Combine(root, "scripts", script) ] @ args)
    psi.WorkingDirectory <- root
    psi.RedirectStandardOutput <- true
    psi.RedirectStandardError <- true
    psi.Environment.["HYBRID_FSDD"] <- fsdd
    use p = nonNull (Process.Start psi)
    let stdout = p.StandardOutput.ReadToEndAsync()
    let stderr = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit(TimeSpan.FromMinutes 5.0)) then
        p.Kill true
        failtestf "%s did not finish within 5 minutes" script
    p.ExitCode, stdout.Result, stderr.Result

let private scriptTest (script: string) (args: string list) (expected: string) =
    TestData.testWithFsdd (sprintf "scripts/%s runs to the end" script) (fun fsdd ->
        match TestData.repositoryRoot () with
        | None -> failtest "repository root (Hybrid.sln) not found above the test binaries"
        | Some root ->
            let code, out, err = runScript root fsdd script args
            Expect.equal code 0 (sprintf "%s exit code (stderr: %s)" script err)
            Expect.stringContains out expected (sprintf "%s output" script))

[<Tests>]
let tests =
    testSequenced <| testList "Scripts" [
        test "every script in scripts/ has a test here" {
            match TestData.repositoryRoot () with
            | None -> failtest "repository root not found"
            | Some root ->
                let scripts = Directory.GetFiles(Path.Combine(root, "scripts"), "*.fsx") |> Array.map (Path.GetFileName >> nonNull) |> Array.filter (fun f -> not (f.StartsWith "_")) |> Array.sort
                Expect.equal scripts [| "compare-features.fsx"; "explore-recording.fsx"; "train-model.fsx" |] "walk-throughs"
        }
        scriptTest "explore-recording.fsx" [] "logmel     shape 40x28"
        scriptTest "compare-features.fsx" [] "nearest-centroid labels agree"
        slow <| scriptTest "train-model.fsx" [ "8" ] "mlp on official: test accuracy"
    ]
