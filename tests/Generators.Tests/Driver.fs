/// Runs the feature schema generator on C# source strings with CSharpGeneratorDriver and loads the result.
module Hybrid.GeneratorsTests.Driver

open System
open System.IO
open System.Reflection
open Microsoft.CodeAnalysis
open Microsoft.CodeAnalysis.CSharp
open Hybrid.Features.Schemas

/// What one generator run produced.
type GeneratorRun =
    { /// Diagnostics the generator reported.
      GeneratorDiagnostics: Diagnostic list
      /// Generated files: hint name and text.
      Sources: (string * string) list
      /// Errors and warnings of the compilation with the generated files added (generator diagnostics excluded).
      CompilationProblems: Diagnostic list
      /// The compilation with the generated files added.
      Compilation: Compilation }

let private parseOptions = CSharpParseOptions(LanguageVersion.Latest)

/// The framework assemblies of this process plus Features.Schemas and Dsp.Kernels.
let private references =
    lazy
        (let platform =
            match AppContext.GetData "TRUSTED_PLATFORM_ASSEMBLIES" with
            | :? string as paths -> paths.Split(Path.PathSeparator) |> Array.toList
            | _ -> []
         let ours = [ typeof<FeatureSchemaInfo>.Assembly.Location; typeof<Hybrid.Dsp.Engine>.Assembly.Location ]
         (platform @ ours)
         |> List.filter (fun p -> p <> "" && File.Exists p)
         |> List.distinctBy Path.GetFileName
         |> List.map (fun p -> MetadataReference.CreateFromFile p :> MetadataReference))

/// Usings every test source starts with.
let prelude = "using System;\nusing Hybrid.Dsp;\nusing Hybrid.Features.Schemas;\nnamespace Probe;\n"

let private counter = ref 0

/// Compiles `source` (a C# file) with the generator, referencing the assemblies at `extra` besides the usual ones,
/// and returns its diagnostics, output and compilation problems.
let runWith (extra: string list) (source: string) =
    let tree = CSharpSyntaxTree.ParseText(source, parseOptions, path = "Schema.cs")
    let name = sprintf "Probe%d" (Threading.Interlocked.Increment counter)
    let options =
        CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions = NullableContextOptions.Enable)
    let all = references.Value @ [ for p in extra -> MetadataReference.CreateFromFile p :> MetadataReference ]
    let compilation = CSharpCompilation.Create(name, [ tree ], all, options)
    let generator = Hybrid.Generators.FeatureSchemaGenerator()
    let driver =
        CSharpGeneratorDriver
            .Create([| generator.AsSourceGenerator() |], parseOptions = parseOptions)
            .RunGenerators(compilation)
    let result = driver.GetRunResult()
    let generated = result.GeneratedTrees |> Seq.toList
    let full = compilation.AddSyntaxTrees generated :> Compilation
    let problems =
        full.GetDiagnostics()
        |> Seq.filter (fun d -> d.Severity >= DiagnosticSeverity.Warning)
        |> Seq.toList
    { GeneratorDiagnostics = result.Diagnostics |> Seq.toList
      Sources =
        result.Results
        |> Seq.collect (fun r -> r.GeneratedSources)
        |> Seq.map (fun s -> s.HintName, s.SourceText.ToString())
        |> Seq.toList
      CompilationProblems = problems
      Compilation = full }

/// Compiles `source` (a C# file) with the generator and returns its diagnostics, output and compilation problems.
let run (source: string) = runWith [] source

/// Runs `f`, requires it to throw an exception of type 'E and returns that exception.
let throws<'E when 'E :> exn> (f: unit -> unit) : 'E =
    let caught =
        try
            f ()
            None
        with
        | :? 'E as e -> Some e
    match caught with
    | Some e -> e
    | None -> failwithf "expected %s, nothing was thrown" typeof<'E>.Name

/// Describes diagnostics one per line, for failure messages.
let describe (diagnostics: Diagnostic list) =
    diagnostics |> List.map (fun d -> d.ToString()) |> String.concat "\n"

/// Emits the compilation and loads it; fails the test with the compiler's errors when that is impossible.
let load (run: GeneratorRun) : Assembly =
    use stream = new MemoryStream()
    let emitted = run.Compilation.Emit(stream)
    if not emitted.Success then
        failwithf "the generated code did not compile:\n%s" (describe (emitted.Diagnostics |> Seq.toList))
    Assembly.Load(stream.ToArray())

/// Emits the compilation as `<assembly name>.dll` into a new temporary folder and returns the file's path.
let emitToFile (run: GeneratorRun) : string =
    let folder = Directory.CreateTempSubdirectory("hybrid-schemas-").FullName
    let path = Path.Combine(folder, nonNull run.Compilation.AssemblyName + ".dll")
    do
        use stream = File.Create path
        let emitted = run.Compilation.Emit(stream)
        if not emitted.Success then
            failwithf "the generated code did not compile:\n%s" (describe (emitted.Diagnostics |> Seq.toList))
    path

/// The generated `Info` of type `Probe.<typeName>` in a loaded assembly.
let info (assembly: Assembly) (typeName: string) : FeatureSchemaInfo =
    let t =
        match assembly.GetType("Probe." + typeName) with
        | null -> failwithf "type Probe.%s not found" typeName
        | t -> t
    match t.GetProperty("Info", BindingFlags.Public ||| BindingFlags.Static) with
    | null -> failwithf "Probe.%s has no static Info" typeName
    | p ->
        match p.GetValue null with
        | :? FeatureSchemaInfo as i -> i
        | _ -> failwithf "Probe.%s.Info is not a FeatureSchemaInfo" typeName

/// Runs the generator, requires a clean compilation, loads the assembly and returns the schema's Info.
let compileSchema (source: string) (typeName: string) =
    let r = run (prelude + source)
    if not r.GeneratorDiagnostics.IsEmpty || not r.CompilationProblems.IsEmpty then
        failwithf "expected a clean compilation, was:\n%s" (describe (r.GeneratorDiagnostics @ r.CompilationProblems))
    info (load r) typeName

/// The hint name of the generated module initializer that registers a compilation's schemas.
let registrationHint = "FeatureSchemaRegistration.g.cs"

/// Runs only the generator (no binding of the result) and returns its diagnostics and generated schema files
/// (without the registration file).
let generate (source: string) =
    let tree = CSharpSyntaxTree.ParseText(prelude + source, parseOptions, path = "Schema.cs")
    let options = CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary)
    let compilation = CSharpCompilation.Create("Generate", [ tree ], references.Value, options)
    let driver =
        CSharpGeneratorDriver
            .Create([| Hybrid.Generators.FeatureSchemaGenerator().AsSourceGenerator() |], parseOptions = parseOptions)
            .RunGenerators(compilation)
    let result = driver.GetRunResult()
    result.Diagnostics |> Seq.toList,
    result.Results
    |> Seq.collect (fun r -> r.GeneratedSources)
    |> Seq.filter (fun s -> s.HintName <> registrationHint)
    |> Seq.map (fun s -> s.SourceText.ToString())
    |> Seq.toList

/// The fingerprint the generator emits for a single valid schema in `source`.
let fingerprintOf (source: string) =
    match generate source with
    | [], [ text ] ->
        let m = Text.RegularExpressions.Regex.Match(text, "const string Fingerprint = \"([0-9a-f]{64})\"")
        if m.Success then m.Groups.[1].Value else failwithf "no fingerprint in:\n%s" text
    | diagnostics, files -> failwithf "expected one clean schema, got %d files and:\n%s" files.Length (describe diagnostics)

/// Runs the generator on `before`, then on `after` (the same file edited), and returns the run reasons of the
/// parse step's outputs in the second run: Unchanged or Cached when the model compared equal.
let secondRunReasons (before: string) (after: string) =
    let parse text = CSharpSyntaxTree.ParseText(prelude + text, parseOptions, path = "Schema.cs")
    let first = parse before
    let compilation = CSharpCompilation.Create("Incremental", [ first ], references.Value, CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary))
    let options = GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps = true)
    let driver =
        CSharpGeneratorDriver
            .Create([| Hybrid.Generators.FeatureSchemaGenerator().AsSourceGenerator() |], parseOptions = parseOptions, driverOptions = options)
            .RunGenerators(compilation)
    let second = driver.RunGenerators(compilation.ReplaceSyntaxTree(first, parse after))
    let result = second.GetRunResult().Results.[0]
    result.TrackedSteps.[Hybrid.Generators.FeatureSchemaGenerator.TrackingName]
    |> Seq.collect (fun step -> step.Outputs)
    |> Seq.map (fun struct (_, reason) -> reason)
    |> Seq.toList
