/// Schema names are unique across everything loaded: a schema named like a predefined one, or like another
/// assembly's, is refused at compile time (HYB015) and at run time by every route (the user's own program, whose
/// module initializer registers it; Schemas.LoadAssembly), with both types and assemblies named.
module Hybrid.GeneratorsTests.SchemaNameTests

open System
open System.IO
open System.Reflection
open System.Runtime.Loader
open Expecto
open Hybrid.Features.Schemas

/// A private copy of Hybrid's assemblies in a collectible load context of its own, with its own registry, so that a
/// test can register a clashing schema (which refuses the name from then on) without touching the registry that the
/// other tests of this process use.
type private IsolatedRegistry() =
    inherit AssemblyLoadContext("isolated-schema-registry", isCollectible = true)
    let folder = nonNull (Path.GetDirectoryName typeof<FeatureSchemaInfo>.Assembly.Location)
    override this.Load(name) : Assembly | null =
        let candidate = Path.Combine(folder, nonNull name.Name + ".dll")
        if (nonNull name.Name).StartsWith "Hybrid." && File.Exists candidate then this.LoadFromAssemblyPath candidate else null
    /// The isolated copy's Schemas class, its predefined schemas registered.
    member this.Schemas =
        let assembly = this.LoadFromAssemblyPath typeof<FeatureSchemaInfo>.Assembly.Location
        Runtime.CompilerServices.RuntimeHelpers.RunModuleConstructor assembly.ManifestModule.ModuleHandle
        nonNull (assembly.GetType "Hybrid.Features.Schemas.Schemas")

/// Calls a public static method of the isolated Schemas class, unwrapping the exception it throws.
let private call (schemas: Type) (name: string) (args: (obj | null) array) : obj | null =
    let m = schemas.GetMethods() |> Array.find (fun m -> m.Name = name && m.GetParameters().Length = args.Length)
    try m.Invoke(null, args)
    with :? TargetInvocationException as e -> raise (nonNull e.InnerException)

/// A schema `typeName` named `name` compiled (generator included) into an assembly file; the generator's diagnostics
/// (HYB015 for a taken name) are ignored, as for an assembly built against an older Hybrid that lacked the name.
let private schemaAssembly (name: string) (typeName: string) =
    Driver.emitToFile (Driver.run (Driver.prelude + sprintf "[FeatureSchema(\"%s\", SampleRate = 8000)] public sealed partial record %s { [Rms(Statistic.Mean)] public partial float Rms { get; } }" name typeName))

let private withIsolated (body: IsolatedRegistry -> Type -> unit) =
    let context = IsolatedRegistry()
    try body context context.Schemas
    finally context.Unload()

[<Tests>]
let tests =
    testList "Schema names" [
        testCase "a user program's schema named like a predefined one makes the name fail, naming both types and assemblies" <| fun () ->
            withIsolated (fun context schemas ->
                let path = schemaAssembly "GENRE" "MyGenre"
                let user = context.LoadFromAssemblyPath path
                // As in the user's program: the runtime runs the module initializer, which registers the schema.
                Runtime.CompilerServices.RuntimeHelpers.RunModuleConstructor user.ManifestModule.ModuleHandle
                let byName = Driver.throws<InvalidOperationException> (fun () -> call schemas "ByName" [| box "genre" |] |> ignore)
                let assemblyName = Path.GetFileNameWithoutExtension path
                Expect.equal byName.Message
                    (sprintf "Feature schema name 'GENRE' is declared by both 'Hybrid.Features.Schemas.GenreFeatures' (Hybrid.Features.Schemas) and 'Probe.MyGenre' (%s); names select schemas and must be unique across the loaded assemblies ('genre' is predefined: give MyGenre another name)." assemblyName)
                    "ByName names both types and assemblies instead of returning the predefined schema"
                Driver.throws<InvalidOperationException> (fun () -> call schemas "TryGetByName" [| box "Genre"; null |] |> ignore) |> ignore
                Expect.isTrue (unbox<bool> (nonNull (call schemas "TryGetByName" [| box "mfcc-mean40"; null |]))) "other names still resolve")

        testCase "LoadAssembly refuses an assembly whose schema is named like a predefined one" <| fun () ->
            withIsolated (fun _ schemas ->
                let path = schemaAssembly "mfcc-mean40" "MyMfcc"
                let e = Driver.throws<InvalidOperationException> (fun () -> call schemas "LoadAssembly" [| box path |] |> ignore)
                Expect.stringContains e.Message "Feature schema name 'mfcc-mean40' is declared by both 'Hybrid.Features.Schemas.MfccMean40Features' (Hybrid.Features.Schemas) and 'Probe.MyMfcc'" "both named"
                Expect.stringContains e.Message "give MyMfcc another name" "what to do")

        testCase "two user assemblies loaded by the program with one name make the name fail" <| fun () ->
            withIsolated (fun context schemas ->
                let first = schemaAssembly "shared-name" "First"
                let second = schemaAssembly "shared-name" "Second"
                for path in [ first; second ] do
                    let a = context.LoadFromAssemblyPath path
                    Runtime.CompilerServices.RuntimeHelpers.RunModuleConstructor a.ManifestModule.ModuleHandle
                let e = Driver.throws<InvalidOperationException> (fun () -> call schemas "ByName" [| box "shared-name" |] |> ignore)
                Expect.stringContains e.Message (sprintf "'Probe.First' (%s) and 'Probe.Second' (%s)" (Path.GetFileNameWithoutExtension first) (Path.GetFileNameWithoutExtension second)) "both named"
                Expect.isFalse (e.Message.Contains "predefined") "neither is predefined")

        testCase "HYB015 names a referenced user assembly's schema that a new schema repeats" <| fun () ->
            let library = schemaAssembly "library-name" "LibrarySchema"
            let r = Driver.runWith [ library ] (Driver.prelude + "[FeatureSchema(\"Library-Name\")] public sealed partial record Mine { [Rms(Statistic.Mean)] public partial float Rms { get; } }")
            match r.GeneratorDiagnostics |> List.filter (fun d -> d.Id = "HYB015") with
            | [ d ] ->
                Expect.equal (d.GetMessage(Globalization.CultureInfo.InvariantCulture))
                    (sprintf "Feature schema name 'Library-Name' of 'Mine' is already declared by 'Probe.LibrarySchema' in the referenced assembly %s; names select schemas (--schema, model files) and must be unique across the loaded assemblies: give 'Mine' another name" (Path.GetFileNameWithoutExtension library))
                    "message"
            | other -> failtestf "expected one HYB015, was:\n%s" (Driver.describe r.GeneratorDiagnostics)
            let clean = Driver.runWith [ library ] (Driver.prelude + "[FeatureSchema(\"mine\")] public sealed partial record Mine { [Rms(Statistic.Mean)] public partial float Rms { get; } }")
            Expect.isEmpty clean.GeneratorDiagnostics "another name is accepted"
    ]
