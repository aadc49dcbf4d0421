/// `dotnet fsi build.fsx pack` and the packages it writes, used as a user would: a C# project that declares its own
/// schema (samples/UseFromPackages/SchemaApp), an F# script that trains on it (samples/UseFromPackages/train.fsx) and
/// the `hybrid` tool, all restored from the packages, never from project references.
module Hybrid.PackagesTests.PackTests

open System
open System.Diagnostics
open System.IO
open System.IO.Compression
open System.Text.RegularExpressions
open Expecto
open Hybrid.TestSupport.Speed
open Hybrid.TestSupport

/// Runs a command to completion in `folder`; returns its exit code and its standard output and error together.
let private exec (folder: string) (file: string) (args: string list) =
    let psi = ProcessStartInfo(file, args)
    psi.WorkingDirectory <- folder
    psi.RedirectStandardOutput <- true
    psi.RedirectStandardError <- true
    psi.UseShellExecute <- false
    use p = nonNull (Process.Start psi)
    let stdout = p.StandardOutput.ReadToEndAsync()
    let stderr = p.StandardError.ReadToEndAsync()
    p.WaitForExit()
    p.ExitCode, stdout.Result + stderr.Result

let private expectSuccess (what: string) (code: int, output: string) =
    if code <> 0 then failtestf "%s exited %d:\n%s" what code output
    output

let private entries (nupkg: string) =
    use zip = ZipFile.OpenRead nupkg
    zip.Entries |> Seq.map (fun e -> e.FullName) |> Set.ofSeq

/// Copies a folder tree (without bin/ and obj/).
let rec private copyTree (source: string) (target: string) =
    Directory.CreateDirectory target |> ignore
    for f in Directory.GetFiles source do
        File.Copy(f, Path.Combine(target, nonNull (Path.GetFileName f)))
    for d in Directory.GetDirectories source do
        match nonNull (Path.GetFileName d) with
        | "bin" | "obj" -> ()
        | name -> copyTree d (Path.Combine(target, name))

[<Tests>]
let tests =
    testSequenced << slow <| testList "Pack" [
        TestData.testWithFsdd "pack writes the packages, and a C# project, an F# script and the tool use them" <| fun fsdd ->
            let root =
                match TestData.repositoryRoot () with
                | Some r -> r
                | None -> failtest "the repository root (the folder holding Hybrid.sln) was not found above the test binaries"
            // A version of its own, so that no package restored earlier from the global cache can stand in for these.
            let version = sprintf "0.1.0-test.%s" (DateTime.UtcNow.ToString "yyyyMMddHHmmssfff")
            let work = Directory.CreateTempSubdirectory("hybrid-pack-").FullName
            let artifacts = Path.Combine(work, "artifacts")
            try
                let packed = exec root "dotnet" [ "fsi"; "build.fsx"; "pack"; "--version"; version; "--out"; artifacts ] |> expectSuccess "build.fsx pack"
                let ids = [ "Hybrid.Dsp.Kernels"; "Hybrid.Features.Schemas"; "Hybrid.Features"; "Hybrid.Network"; "Hybrid.Classifier"; "hybrid" ]
                for id in ids do
                    let nupkg = Path.Combine(artifacts, sprintf "%s.%s.nupkg" id version)
                    Expect.isTrue (File.Exists nupkg) (sprintf "%s written (pack said:\n%s)" nupkg packed)
                    Expect.isTrue (File.Exists(Path.ChangeExtension(nupkg, ".snupkg"))) (sprintf "%s has a symbols package" id)
                    let files = entries nupkg
                    Expect.isTrue (files.Contains "README.md" && files.Contains "LICENSE") (sprintf "%s carries README and licence" id)
                for id in ids |> List.filter (fun i -> i <> "hybrid") do
                    let files = entries (Path.Combine(artifacts, sprintf "%s.%s.nupkg" id version))
                    Expect.isTrue (files.Contains(sprintf "lib/net10.0/%s.dll" id)) (sprintf "%s has its library" id)
                    Expect.isTrue (files.Contains(sprintf "lib/net10.0/%s.xml" id)) (sprintf "%s has its XML docs" id)
                // The network core ships as its own package, which the façade's package depends on.
                let classifierNuspec =
                    use zip = ZipFile.OpenRead(Path.Combine(artifacts, sprintf "Hybrid.Classifier.%s.nupkg" version))
                    use reader = new StreamReader((nonNull (zip.GetEntry "Hybrid.Classifier.nuspec")).Open())
                    reader.ReadToEnd()
                Expect.stringContains classifierNuspec (sprintf "id=\"Hybrid.Network\" version=\"%s\"" version) "Hybrid.Classifier depends on Hybrid.Network"
                let schemas = entries (Path.Combine(artifacts, sprintf "Hybrid.Features.Schemas.%s.nupkg" version))
                Expect.isTrue (schemas.Contains "analyzers/dotnet/cs/Hybrid.Generators.dll") "the generator is the schemas package's analyzer"

                // The sample, copied out of the repository so that nothing of the repository's build reaches it.
                let sample = Path.Combine(work, "sample")
                copyTree (Path.Combine(root, "samples", "UseFromPackages")) sample
                // The sample's nuget.config names ../../artifacts; the copy points it at this test's packages.
                let config = Path.Combine(sample, "nuget.config")
                File.WriteAllText(config, File.ReadAllText(config).Replace("\"../../artifacts\"", sprintf "\"%s\"" artifacts))
                let recordings = Path.Combine(fsdd, "recordings")
                exec sample "dotnet" [ "build"; "SchemaApp"; "-c"; "Release"; "-nologo"; sprintf "-p:HybridVersion=%s" version; sprintf "-p:HybridPackages=%s" artifacts ]
                |> expectSuccess "building the C# sample against the packages" |> ignore
                let assets = File.ReadAllText(Path.Combine(sample, "SchemaApp", "obj", "project.assets.json"))
                Expect.stringContains assets (sprintf "Hybrid.Features.Schemas/%s" version) "the sample restored the packed schemas package"
                Expect.isFalse (assets.Contains "\"type\": \"project\"") "and no project reference"
                let app = exec sample "dotnet" [ Path.Combine("SchemaApp", "bin", "Release", "net10.0", "SchemaApp.dll"); recordings ] |> expectSuccess "the C# sample"
                Expect.stringContains app "schema digit-timbre: 27 columns" "the generator ran on the user's schema"
                Expect.isMatch app @"0_george_0\.wav: rms 0\.\d{4}, mfcc1 -\d+\.\d\d" "and its rows were extracted"

                // The F# script, pointed at these packages.
                let script = Path.Combine(sample, "train.fsx")
                let text =
                    File.ReadAllText(script)
                        .Replace("Hybrid.Classifier, 0.1.0\"", sprintf "Hybrid.Classifier, %s\"" version)
                Expect.stringContains text version "the script names the packed version"
                Expect.isFalse (text.Contains "#i ") "the script finds the packages through nuget.config, as a user runs it"
                File.WriteAllText(script, text)
                let trained = exec sample "dotnet" [ "fsi"; "train.fsx"; recordings ] |> expectSuccess "the F# script"
                Expect.isFalse (trained.Contains "warning") (sprintf "the script compiles without warnings:\n%s" trained)
                let m = Regex.Match(trained, @"digit-timbre: 450 training and 50 test clips, test accuracy (\d\.\d{4})")
                Expect.isTrue m.Success (sprintf "the script trained on the user's schema:\n%s" trained)
                Expect.isGreaterThanOrEqual (float m.Groups.[1].Value) 0.8 "a speaker's digits are told apart from their timbre"

                // The repository's own command uses the user's schema: features, train and predict with --schemas; a
                // model file names the assembly predict needs when it is not given.
                let schemaDll = Path.Combine(sample, "SchemaApp", "bin", "Release", "net10.0", "SchemaApp.dll")
                let hybrid = Path.Combine(root, "src", "Cli", "bin", "Release", "net10.0", "hybrid.dll")
                let subset = Path.Combine(work, "subset", "recordings")
                Directory.CreateDirectory subset |> ignore
                for f in Directory.GetFiles(recordings, "*_theo_*.wav") do File.Copy(f, Path.Combine(subset, nonNull (Path.GetFileName f)))
                let data = nonNull (Path.GetDirectoryName subset)
                let csv = Path.Combine(work, "timbre.csv")
                let exported = exec work "dotnet" [ hybrid; "features"; "--schemas"; schemaDll; "--schema"; "digit-timbre"; "--data"; data; "--out"; csv; "--device"; "managed" ] |> expectSuccess "features --schemas"
                Expect.stringContains exported "500 clips x [27]" "features extracted the user's schema"
                Expect.stringContains (File.ReadLines csv |> Seq.head) "mfcc1," "with its columns"
                let run = Path.Combine(work, "run")
                exec work "dotnet" [ hybrid; "train"; "--schemas"; schemaDll; "--features"; "digit-timbre"; "--model"; "mlp"; "--epochs"; "5"; "--data"; data; "--device"; "managed"; "--no-plots"; "--out"; run ]
                |> expectSuccess "train --schemas" |> ignore
                let model = Path.Combine(run, "model.hnn")
                let clip = Path.Combine(subset, "3_theo_0.wav")
                let code, refused = exec work "dotnet" [ hybrid; "predict"; "--model"; model; clip ]
                Expect.notEqual code 0 "predict without the schema's assembly fails"
                Expect.stringContains refused "--schemas PATH/SchemaApp.dll" "naming the assembly to pass"
                let predicted = exec work "dotnet" [ hybrid; "predict"; "--schemas"; schemaDll; "--model"; model; clip ] |> expectSuccess "predict --schemas"
                Expect.stringContains predicted "3_theo_0.wav" "a prediction for the file"

                // The tool package installs and runs.
                let tools = Path.Combine(work, "tools")
                exec work "dotnet" [ "tool"; "install"; "--tool-path"; tools; "--add-source"; artifacts; "--version"; version; "hybrid" ]
                |> expectSuccess "dotnet tool install" |> ignore
                let usage = exec work (Path.Combine(tools, "hybrid")) [ "--help" ] |> expectSuccess "hybrid --help"
                Expect.stringContains usage "usage: hybrid" "the installed tool answers"
            finally
                // The test versions restored into the global package cache are removed with the rest.
                let cache =
                    match Environment.GetEnvironmentVariable "NUGET_PACKAGES" with
                    | null | "" -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".nuget", "packages")
                    | path -> path
                for id in [ "hybrid.dsp.kernels"; "hybrid.features.schemas"; "hybrid.features"; "hybrid.network"; "hybrid.classifier"; "hybrid" ] do
                    let dir = Path.Combine(cache, id, version)
                    if Directory.Exists dir then Directory.Delete(dir, true)
                Directory.Delete(work, true)
    ]
