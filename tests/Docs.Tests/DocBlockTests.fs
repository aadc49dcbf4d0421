/// Every C# and F# code block of README.md and docs/*.md compiles against the built Hybrid assemblies (see
/// DocBlocks for the `<!-- doctest: ... -->` comments), and the checker itself fails on a broken block, naming the
/// file, the line and the compiler's error.
module Hybrid.DocsTests.DocBlockTests

open Expecto
open Hybrid.TestSupport
open Hybrid.DocsTests.DocBlocks
open Hybrid.DocsTests.Compile

let private root =
    lazy
        (match TestData.repositoryRoot () with
         | Some r -> r
         | None -> failwith "repository root (Hybrid.sln) not found above the test binaries")

let private blocks = lazy (DocBlocks.all root.Value)

/// The F# blocks of the documentation, type-checked once (one fsi process) for all their tests.
let private fsharpResults = lazy (checkFSharp (blocks.Value |> List.filter (fun b -> b.Language = FSharp)))

let private markdown =
    String.concat "\n"
        [ "# Example"
          "```sh"
          "dotnet build"
          "```"
          "```csharp"
          "public static class Good { public static int Two => 1 + 1; }"
          "```"
          "Text."
          "```cs"
          "public static class Broken { public static int Two => One + 1; }"
          "```"
          "<!-- doctest: fragment given"
          "Hybrid.Dsp.Engine engine = null!;"
          "-->"
          "```csharp"
          "var tensor = engine.FromHost(new float[4], 2, 2);"
          "```"
          "```fsharp"
          "let three = 1 + 2"
          "```"
          "<!-- doctest: given"
          "let count : int = failwith \"given\""
          "-->"
          "```fs"
          "let doubled = count * 2"
          "let broken : string = doubled"
          "```"
          "```fsharp"
          "let alsoBroken : int = \"text\""
          "```" ]

[<Tests>]
let tests =
    testList "Documentation code blocks" [
        testCase "the extractor finds C# and F# blocks with their first line, directives, and skips shell blocks" <| fun () ->
            let found = parse "example.md" markdown
            Expect.equal (found |> List.map (fun b -> b.Name))
                [ "example.md:6 (csharp)"; "example.md:10 (csharp)"; "example.md:16 (csharp)"; "example.md:19 (fsharp)"; "example.md:25 (fsharp)"; "example.md:29 (fsharp)" ] "blocks and lines"
            Expect.equal (found |> List.map (fun b -> b.Fragment)) [ false; false; true; false; false; false ] "fragment"
            Expect.equal found.[2].Given "Hybrid.Dsp.Engine engine = null!;" "given lines"
            Expect.equal found.[4].Given "let count : int = failwith \"given\"" "F# given lines"

        testCase "a misplaced or unknown doctest comment is an error naming the file and line" <| fun () ->
            let unknown = Expect.throwsC (fun () -> parse "x.md" "<!-- doctest: fragmnt -->\n```csharp\nint x = 1;\n```" |> ignore) (fun e -> e :?> DocBlockException)
            Expect.stringContains unknown.Message "x.md:1: unknown doctest directive 'fragmnt'" "unknown word"
            let detached = Expect.throwsC (fun () -> parse "x.md" "<!-- doctest: fragment -->\n\n```csharp\nint x = 1;\n```" |> ignore) (fun e -> e :?> DocBlockException)
            Expect.stringContains detached.Message "x.md:1: a doctest comment must stand on the line right before a code block" "detached"
            let unclosed = Expect.throwsC (fun () -> parse "x.md" "text\n```fsharp\nlet x = 1\n" |> ignore) (fun e -> e :?> DocBlockException)
            Expect.stringContains unclosed.Message "x.md:2: the code block is not closed" "unclosed"

        testCase "the C# check passes a good block and fails a broken one with file, line and the compiler's error" <| fun () ->
            let found = parse "example.md" markdown
            Expect.isEmpty (checkCSharp found.[0]) "a good block compiles"
            match checkCSharp found.[1] with
            | [ p ] ->
                Expect.equal (p.File, p.Line, p.Id) ("example.md", 10, "CS0103") "located in the markdown, with the compiler's ID"
                Expect.stringContains p.Message "'One'" "the compiler's message"
                Expect.stringContains (report found.[1] [ p ]) "example.md(10,55): error CS0103" "the report"
            | other -> failtestf "expected one error, was %A" other
            Expect.isEmpty (checkCSharp found.[2]) "a fragment with given declarations compiles as a method body"

        testCase "the C# check runs the generator: generated members exist and HYB diagnostics fail the block" <| fun () ->
            let block code = { File = "schema.md"; Line = 3; Language = CSharp; Code = code; Fragment = false; Given = "" }
            let schema name =
                sprintf "using Hybrid.Dsp;\nusing Hybrid.Features.Schemas;\n[FeatureSchema(\"%s\", SampleRate = 8000, ClipSamples = 1024, NFft = 256)]\npublic sealed partial record Probe { [Rms(Statistic.Mean)] public partial float Rms { get; } }\npublic static class Use { public static Probe[] Run(Engine e, Tensor t) => Probe.Extract(e, t); }" name
            Expect.isEmpty (checkCSharp (block (schema "doc-probe"))) "Extract is generated"
            match checkCSharp (block (schema "genre")) with
            | [ p ] -> Expect.equal (p.Id, p.File, p.Line) ("HYB015", "schema.md", 5) "a predefined schema's name is refused at the attribute's line"
            | other -> failtestf "expected HYB015, was %A" other

        testCase "the F# check passes good blocks and fails broken ones with file, line and the compiler's error" <| fun () ->
            let found = parse "example.md" markdown |> List.filter (fun b -> b.Language = FSharp)
            match checkFSharp found with
            | [ (_, []); (_, [ p ]); (_, [ q ]) ] ->
                Expect.equal (p.File, p.Line, p.Id) ("example.md", 26, "FS0001") "located in the markdown, with the compiler's ID"
                Expect.equal (q.File, q.Line, q.Id) ("example.md", 29, "FS0001") "a block after a failing one is checked too"
            | other -> failtestf "expected the second and third blocks to fail once each, was %A" other

        testCase "README.md and docs/*.md have C# and F# blocks" <| fun () ->
            let languages = blocks.Value |> List.countBy (fun b -> b.Language) |> Map.ofList
            Expect.isGreaterThanOrEqual (languages.TryFind CSharp |> Option.defaultValue 0) 3 "C# blocks"
            Expect.isGreaterThanOrEqual (languages.TryFind FSharp |> Option.defaultValue 0) 4 "F# blocks"

        testList "every block compiles" [
            // A malformed doctest comment or a missing repository is one failing test, not a crash of the listing.
            let listed =
                try Ok blocks.Value
                with e -> Error e.Message
            match listed with
            | Error message -> testCase "the documentation's code blocks can be read" <| fun () -> failtest message
            | Ok all ->
                for b in all do
                    testCase b.Name <| fun () ->
                        let problems =
                            match b.Language with
                            | CSharp -> checkCSharp b
                            | FSharp -> fsharpResults.Value |> List.find (fun (x, _) -> x = b) |> snd
                        if not problems.IsEmpty then failtest (report b problems)
        ]
    ]
