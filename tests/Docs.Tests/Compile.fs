/// Compiles documentation code blocks against the built Hybrid assemblies: C# in-process with Roslyn and the Hybrid
/// feature schema generator (so that a block declaring a [FeatureSchema] gets its generated members, and its HYB
/// diagnostics), F# by type-checking the blocks as scripts with `dotnet fsi --typecheck-only` (one process for all).
/// Diagnostics name the markdown file and line (through #line directives).
module Hybrid.DocsTests.Compile

open System
open System.Diagnostics
open System.IO
open System.Text.RegularExpressions
open Microsoft.CodeAnalysis
open Microsoft.CodeAnalysis.CSharp
open Hybrid.DocsTests.DocBlocks

/// One compiler error, located in the markdown file.
type Problem =
    { File: string
      Line: int
      Column: int
      Id: string
      Message: string }

    override p.ToString() = sprintf "%s(%d,%d): error %s: %s" p.File p.Line p.Column p.Id p.Message

/// The Hybrid libraries a user references (the packages' assemblies), found beside this test's binaries.
let libraries =
    let folder = AppContext.BaseDirectory
    [ "Hybrid.Dsp.Kernels"; "Hybrid.Features.Schemas"; "Hybrid.Features"; "Hybrid.Network"; "Hybrid.Classifier" ]
    |> List.map (fun n -> Path.Combine(folder, n + ".dll"))

let private parseOptions = CSharpParseOptions(LanguageVersion.Latest)

/// The framework and the Hybrid libraries with their dependencies: this process's trusted platform assemblies without
/// the test's own tools (Roslyn, the generator, Expecto, the test assemblies).
let private references =
    lazy
        (let tools = [ "Microsoft.CodeAnalysis"; "Hybrid.Generators"; "Hybrid.TestSupport"; "Hybrid.Docs.Tests"; "Expecto"; "FsCheck"; "Mono.Cecil" ]
         match AppContext.GetData "TRUSTED_PLATFORM_ASSEMBLIES" with
         | :? string as paths ->
             paths.Split(Path.PathSeparator)
             |> Array.filter (fun p -> p <> "" && File.Exists p)
             |> Array.filter (fun p -> let n = nonNull (Path.GetFileNameWithoutExtension p) in not (tools |> List.exists (fun t -> n.StartsWith t)))
             |> Array.distinctBy Path.GetFileName
             |> Array.map (fun p -> MetadataReference.CreateFromFile p :> MetadataReference)
         | _ -> failwith "TRUSTED_PLATFORM_ASSEMBLIES is not set")

/// The SDK's implicit usings of a C# project (ImplicitUsings=enable), which every C# block may rely on.
let private implicitUsings =
    [ "System"; "System.Collections.Generic"; "System.IO"; "System.Linq"; "System.Net.Http"; "System.Threading"; "System.Threading.Tasks" ]
    |> List.map (sprintf "global using global::%s;")
    |> String.concat "\n"

/// The C# source of a block: its code under a #line directive pointing at the markdown file; a fragment inside a
/// method of a class, after its given declarations.
let csharpSource (b: Block) =
    let located = sprintf "#line %d \"%s\"\n%s\n#line default\n" b.Line b.File b.Code
    if b.Fragment then
        sprintf "internal static class DocFragment\n{\n    internal static void Run()\n    {\n#line hidden\n%s\n%s    }\n}\n" b.Given located
    else
        (if b.Given = "" then "" else "#line hidden\n" + b.Given + "\n") + located

/// A diagnostic located in the markdown file: the compiler's own diagnostics are mapped by the #line directives;
/// the generator's point into the block's file by position, so they are mapped through `tree` here.
let private problemOf (tree: SyntaxTree) (d: Diagnostic) =
    let span =
        if d.Location.Kind = LocationKind.ExternalFile && d.Location.GetLineSpan().Path = tree.FilePath then tree.GetMappedLineSpan d.Location.SourceSpan
        else d.Location.GetMappedLineSpan()
    { File = (if span.IsValid && span.Path <> "" then span.Path else "<generated>")
      Line = span.StartLinePosition.Line + 1
      Column = span.StartLinePosition.Character + 1
      Id = d.Id
      Message = d.GetMessage(Globalization.CultureInfo.InvariantCulture) }

/// Compiles C# source (the text of one file) with the generator; returns the compilation with the generated files and
/// every error: the generator's (HYB...) and the compiler's.
let compileCSharp (assemblyName: string) (source: string) : Compilation * Problem list =
    let tree = CSharpSyntaxTree.ParseText(source, parseOptions, path = "block.cs")
    let usings = CSharpSyntaxTree.ParseText(implicitUsings, parseOptions, path = "usings.cs")
    let topLevel = tree.GetRoot().DescendantNodes() |> Seq.exists (fun n -> n :? Syntax.GlobalStatementSyntax)
    let options =
        CSharpCompilationOptions((if topLevel then OutputKind.ConsoleApplication else OutputKind.DynamicallyLinkedLibrary),
                                 nullableContextOptions = NullableContextOptions.Enable)
    let compilation = CSharpCompilation.Create(assemblyName, [ usings; tree ], references.Value, options)
    let driver =
        CSharpGeneratorDriver
            .Create([| Hybrid.Generators.FeatureSchemaGenerator().AsSourceGenerator() |], parseOptions = parseOptions)
            .RunGenerators(compilation)
    let result = driver.GetRunResult()
    let full = compilation.AddSyntaxTrees result.GeneratedTrees :> Compilation
    let errors =
        Seq.append result.Diagnostics (full.GetDiagnostics())
        |> Seq.filter (fun d -> d.Severity = DiagnosticSeverity.Error)
        |> Seq.map (problemOf tree)
        |> Seq.distinct
        |> Seq.toList
    full, errors

/// The errors of one C# block (none when it compiles).
let checkCSharp (b: Block) : Problem list =
    snd (compileCSharp "DocBlock" (csharpSource b))

/// An error line of `dotnet fsi`: file(line,column): error FSnnnn: message.
let private fsiError = Regex(@"^(?<file>.+?)\((?<line>\d+),(?<col>\d+)\): error (?<id>FS\d+): (?<msg>.*)$")

/// A `#r "nuget: Hybrid...` or `#i "nuget: ...` line: the script's way to the packages, which the test replaces by
/// the built assemblies (tests/Packages.Tests runs the scripts against the packages themselves).
let private packageLine = Regex(@"^\s*#(i\s+""nuget:|r\s+""nuget:\s*Hybrid\.)")

/// The script of one F# block: the built libraries referenced, the given declarations, then the code under a line
/// directive pointing at the markdown file (package reference lines blanked, keeping the line numbers).
let fsharpScript (b: Block) =
    let refs = libraries |> List.map (fun p -> sprintf "#r @\"%s\"" p) |> String.concat "\n"
    let code = b.Code.Split('\n') |> Array.map (fun l -> if packageLine.IsMatch l then "" else l) |> String.concat "\n"
    sprintf "#I @\"%s\"\n%s\n%s\n# %d \"%s\"\n%s\n" AppContext.BaseDirectory refs b.Given b.Line b.File code

/// Type-checks F# blocks as scripts in one `dotnet fsi --typecheck-only` run: the errors of the first block that has
/// any (fsi stops there), with the blocks before it clean; (blocks.Length, []) when all are.
let private fsiRun (blocks: Block list) : int * Problem list =
    let folder = Directory.CreateTempSubdirectory("hybrid-doc-fsx-").FullName
    try
        let scripts =
            blocks |> List.mapi (fun i b ->
                let path = Path.Combine(folder, sprintf "block%d.fsx" (i + 1))
                File.WriteAllText(path, fsharpScript b)
                path)
        let main = Path.Combine(folder, "main.fsx")
        File.WriteAllText(main, "let finished = true\n")
        let args = [ "fsi"; "--typecheck-only"; "--nologo" ] @ (scripts |> List.map (fun s -> "--load:" + s)) @ [ main ]
        let psi = ProcessStartInfo("dotnet", args)
        psi.WorkingDirectory <- folder
        psi.RedirectStandardOutput <- true
        psi.RedirectStandardError <- true
        psi.UseShellExecute <- false
        use p = nonNull (Process.Start psi)
        let out = p.StandardOutput.ReadToEndAsync()
        let err = p.StandardError.ReadToEndAsync()
        if not (p.WaitForExit 120_000) then
            p.Kill true
            failwith "dotnet fsi --typecheck-only did not finish in 120 s"
        let lines = (out.Result + "\n" + err.Result).Split('\n')
        let problems =
            lines
            |> Array.choose (fun l ->
                let m = fsiError.Match(l.Trim())
                if m.Success then
                    let file = m.Groups.["file"].Value
                    let relative = if file.StartsWith(folder + "/") then file.Substring(folder.Length + 1) else file
                    Some { File = relative; Line = int m.Groups.["line"].Value; Column = int m.Groups.["col"].Value
                           Id = m.Groups.["id"].Value; Message = m.Groups.["msg"].Value.Trim() }
                else None)
            |> Array.distinct
            |> List.ofArray
        if p.ExitCode <> 0 && problems.IsEmpty then
            failwithf "dotnet fsi --typecheck-only exited %d without an error line:\n%s" p.ExitCode (String.Join("\n", lines))
        // A problem belongs to the block whose script it names (its header or given lines) or whose lines it is on.
        let owner (p: Problem) =
            blocks |> List.indexed |> List.tryPick (fun (i, b) ->
                if p.File = sprintf "block%d.fsx" (i + 1) || (p.File = b.File && p.Line >= b.Line && p.Line < b.Line + b.Code.Split('\n').Length)
                then Some i else None)
        match problems |> List.choose owner with
        | [] when problems.IsEmpty -> blocks.Length, []
        | [] -> failwithf "the F# check failed outside every block:\n%s" (String.Join("\n", lines))
        | owners ->
            let first = List.min owners
            first, problems |> List.filter (fun p -> owner p = Some first)
    finally
        try Directory.Delete(folder, true) with _ -> ()

/// Type-checks F# blocks as scripts with `dotnet fsi --typecheck-only`, one process for all while they pass (fsi stops
/// at the first block with errors, so the blocks after a failing one are checked again in another run); returns
/// each block's errors.
let checkFSharp (blocks: Block list) : (Block * Problem list) list =
    let rec go (remaining: Block list) =
        match remaining with
        | [] -> []
        | _ ->
            let failing, problems = fsiRun remaining
            if failing = remaining.Length then remaining |> List.map (fun b -> b, [])
            else
                (List.take failing remaining |> List.map (fun b -> b, []))
                @ [ remaining.[failing], problems ]
                @ go (List.skip (failing + 1) remaining)
    go blocks

/// The report of a block that does not compile: where it is and the compiler's errors.
let report (b: Block) (problems: Problem list) =
    sprintf "%s does not compile:\n%s" b.Name (problems |> List.map string |> String.concat "\n")
