/// `--schemas PATH.dll` refuses an assembly whose schema repeats a loaded schema's name (a predefined one's, or
/// another --schemas assembly's) with exit code 1 and a message naming both types and assemblies, as the README's
/// example schema once did by reusing "mfcc-mean40". The clashing names are refused in this process from then on,
/// which no other test here looks up.
module Hybrid.DocsTests.SchemaOptionTests

open System.IO
open Expecto
open Hybrid.TestSupport
open Hybrid.DocsTests.Compile

/// A schema `typeName` named `name` built into `folder/assemblyName.dll` (the generator's HYB015 for a taken name
/// ignored, as for an assembly built against a Hybrid that did not have that name yet).
let private schemaAssembly (folder: string) (assemblyName: string) (name: string) (typeName: string) =
    let source =
        sprintf "using Hybrid.Features.Schemas;\nnamespace Mine;\n[FeatureSchema(\"%s\", SampleRate = 8000)]\npublic sealed partial record %s { [Rms(Statistic.Mean)] public partial float Rms { get; } }\n" name typeName
    let compilation, errors = compileCSharp assemblyName source
    let compilerErrors = errors |> List.filter (fun p -> not (p.Id.StartsWith "HYB"))
    if not compilerErrors.IsEmpty then failtestf "the schema assembly does not compile: %A" compilerErrors
    let path = Path.Combine(folder, assemblyName + ".dll")
    do
        use stream = File.Create path
        let emitted = compilation.Emit stream
        if not emitted.Success then failtestf "the schema assembly could not be emitted: %A" (List.ofSeq emitted.Diagnostics)
    path

/// Runs `body` on a new temporary folder, deleted afterwards.
let private withTemp (body: string -> unit) =
    let folder = Directory.CreateTempSubdirectory("hybrid-schemas-option-").FullName
    try body folder
    finally Directory.Delete(folder, true)

[<Tests>]
let tests =
    testList "Schema names on the command line" [
        testCase "features --schemas refuses a schema named like a predefined one, naming both types and assemblies" <| fun () ->
          withTemp (fun temp ->
            let path = schemaAssembly temp "ReusesPredefined" "mfcc-mean40" "Mfcc40"
            let code, _, err = Commands.run Hybrid.Cli.Program.run [ "features"; "--schemas"; path; "--data"; temp; "--out"; Path.Combine(temp, "x.csv"); "--schema"; "mfcc-mean40" ]
            Expect.equal code 1 "exit code 1"
            Expect.equal (err.Trim())
                "features: Feature schema name 'mfcc-mean40' is declared by both 'Hybrid.Features.Schemas.MfccMean40Features' (Hybrid.Features.Schemas) and 'Mine.Mfcc40' (ReusesPredefined); names select schemas and must be unique across the loaded assemblies ('mfcc-mean40' is predefined: give Mfcc40 another name)."
                "the message names both")

        testCase "two --schemas assemblies declaring one name are refused, naming both" <| fun () ->
          withTemp (fun temp ->
            let first = schemaAssembly (Directory.CreateDirectory(Path.Combine(temp, "a")).FullName) "FirstSchemas" "twin-option" "Twin"
            let second = schemaAssembly (Directory.CreateDirectory(Path.Combine(temp, "b")).FullName) "SecondSchemas" "twin-option" "Twin"
            let code, _, err = Commands.run Hybrid.Cli.Program.run [ "train"; "--schemas"; first; "--schemas"; second; "--features"; "twin-option" ]
            Expect.equal code 1 "exit code 1"
            Expect.stringContains err "train: Feature schema name 'twin-option' is declared by both 'Mine.Twin' (FirstSchemas) and 'Mine.Twin' (SecondSchemas)" "both assemblies named")
    ]
