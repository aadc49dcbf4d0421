module Hybrid.CliTests.DatasetCommandTests

open System.IO
open System.Text.Json
open Expecto
open Hybrid.Cli
open Hybrid.TestSupport
open Hybrid.TestSupport.TestData
open Hybrid.FeaturesTests.DatasetFixtures

/// Runs `hybrid dataset ARGS` in-process; returns exit code, standard output and standard error.
let private run (args: string list) =
    use out = new StringWriter()
    use error = new StringWriter()
    let code = DatasetCommand.run out error (Array.ofList args)
    code, out.ToString(), error.ToString()

let private json (text: string) = JsonDocument.Parse(text).RootElement

let private counts (e: JsonElement) =
    [ for p in e.EnumerateObject() -> p.Name, p.Value.GetInt32() ] |> Map.ofList

[<Tests>]
let tests =
    testList "DatasetCommand" [
        testCase "the label count is the labels that have recordings; labels a layout lists without any are named apart" <| fun () ->
            use temp = new TempFolder()
            writeFsdd temp.Path [ 1; 2 ] [ "ann"; "bob" ] [ 0; 5 ]
            let code, out, _ = run [ "--data"; temp.Path ]
            Expect.equal code 0 "exit code"
            Expect.stringContains out "8 items, 0 skipped, 2 labels" "two digits have recordings"
            Expect.stringContains out "labels without recordings (not counted; train drops them): 0, 3, 4, 5, 6, 7, 8, 9" "FSDD's other digits named apart"
            Expect.equal (Hybrid.Features.Dataset.openFolder false temp.Path |> Hybrid.Features.Dataset.withoutEmptyLabels).Labels [| "1"; "2" |] "withoutEmptyLabels keeps the two"

        testCase "prints one JSON object with items, skipped, splits, labels and speakers" <| fun () ->
            use temp = new TempFolder()
            writeFsdd temp.Path [ 0 .. 9 ] [ "ann"; "bob" ] [ 0; 10; 11; 12; 13; 14 ]
            write (temp.Combine "recordings/3_bob_9.wav") [| 1uy; 2uy |]
            let code, out, _ = run [ "--data"; temp.Path; "--json" ]
            Expect.equal code 0 "exit code"
            let root = json out
            Expect.equal (root.GetProperty("items").GetInt32()) 120 "items"
            let skipped = [ for s in root.GetProperty("skipped").EnumerateArray() -> s.GetProperty("path").GetString() |> nonNull, s.GetProperty("reason").GetString() |> nonNull ]
            Expect.equal skipped.Length 1 "one skipped file"
            Expect.stringEnds (fst skipped.Head) "3_bob_9.wav" "skipped path"
            Expect.isNotEmpty (snd skipped.Head) "skipped reason"
            Expect.equal (counts (root.GetProperty "splits")) (Map [ "train", 100; "test", 20 ]) "official split"
            Expect.equal (counts (root.GetProperty "labels")) (Map [ for d in 0 .. 9 -> string d, 12 ]) "labels"
            Expect.equal (counts (root.GetProperty "speakers")) (Map [ "ann", 60; "bob", 60 ]) "speakers"

        testCase "lists truncated recordings under warnings and non-finite ones under skipped; --strict exits 1" <| fun () ->
            use temp = new TempFolder()
            writeFsdd temp.Path [ 0; 1 ] [ "ann" ] [ 0; 1 ]
            write (temp.Combine "recordings/2_ann_0.wav") (snd (truncatedWavs ()).[1])
            write (temp.Combine "recordings/3_ann_0.wav") (floatWav32 [| 0.25f; nanf |])
            let code, out, _ = run [ "--data"; temp.Path; "--json" ]
            Expect.equal code 0 "exit code"
            let root = json out
            Expect.equal (root.GetProperty("items").GetInt32()) 5 "the truncated file is an item"
            let warnings = [ for s in root.GetProperty("warnings").EnumerateArray() -> Path.GetFileName(s.GetProperty("path").GetString()) |> nonNull, s.GetProperty("warning").GetString() |> nonNull ]
            Expect.equal (List.map fst warnings) [ "2_ann_0.wav" ] "one warning"
            Expect.stringContains (snd warnings.Head) "truncated file" "warning text"
            let skipped = [ for s in root.GetProperty("skipped").EnumerateArray() -> Path.GetFileName(s.GetProperty("path").GetString()) |> nonNull, s.GetProperty("reason").GetString() |> nonNull ]
            Expect.equal (List.map fst skipped) [ "3_ann_0.wav" ] "the NaN file is skipped"
            Expect.stringStarts (snd skipped.Head) "non-finite samples" "reason"
            let _, text, _ = run [ "--data"; temp.Path ]
            Expect.stringContains text "used with warnings (1):" "text lists the warnings"
            let code, _, err = run [ "--data"; temp.Path; "--strict" ]
            Expect.equal code 1 "strict refuses the dataset"
            Expect.stringContains err "2_ann_0.wav" "naming the first refused file"

        testCase "gives one entry per fold for loso and the held-out part for speaker:NAME" <| fun () ->
            use temp = new TempFolder()
            writeFsdd temp.Path [ 1; 2 ] [ "ann"; "bob"; "cy" ] [ 0; 6 ]
            let _, out, _ = run [ "--data"; temp.Path; "--split"; "loso"; "--json" ]
            Expect.equal (counts ((json out).GetProperty "splits")) (Map [ "ann", 4; "bob", 4; "cy", 4 ]) "loso"
            let _, out, _ = run [ "--data"; temp.Path; "--split"; "speaker:cy,ann"; "--json" ]
            Expect.equal (counts ((json out).GetProperty "splits")) (Map [ "train", 4; "test", 8 ]) "hold-out"
            let _, out, _ = run [ "--data"; temp.Path; "--split"; "random:0.5"; "--seed"; "3"; "--json" ]
            Expect.equal (counts ((json out).GetProperty "splits")) (Map [ "train", 6; "test", 6 ]) "random"

        testCase "prints a text summary naming every skipped file and its reason" <| fun () ->
            use temp = new TempFolder()
            writeFsdd temp.Path [ 4 ] [ "ann" ] [ 0; 9 ]
            write (temp.Combine "recordings/4_ann_3.wav") [||]
            let code, out, _ = run [ "--data"; temp.Path ]
            Expect.equal code 0 "exit code"
            Expect.stringContains out "4_ann_3.wav" "skipped file named"
            Expect.stringContains out "train" "split parts"
            Expect.stringContains out "duration" "duration statistics"

        testCase "exits 1 when --strict meets a bad file" <| fun () ->
            use temp = new TempFolder()
            writeFsdd temp.Path [ 4 ] [ "ann" ] [ 0 ]
            write (temp.Combine "recordings/4_ann_3.wav") [||]
            let code, _, error = run [ "--data"; temp.Path; "--strict"; "--json" ]
            Expect.equal code 1 "exit code"
            Expect.stringContains error "4_ann_3.wav" "names the file"

        testCase "exits 1 when the folder holds no usable audio" <| fun () ->
            use temp = new TempFolder()
            write (temp.Combine "recordings/1_ann_0.wav") [| 0uy |]
            let code, out, _ = run [ "--data"; temp.Path; "--json" ]
            Expect.equal code 1 "exit code"
            Expect.equal ((json out).GetProperty("items").GetInt32()) 0 "no items"

        testCase "exits 2 for a bad split or an unknown speaker, with a clear message" <| fun () ->
            use temp = new TempFolder()
            writeFsdd temp.Path [ 4 ] [ "ann" ] [ 0 ]
            let code, _, error = run [ "--data"; temp.Path; "--split"; "halves" ]
            Expect.equal code 2 "bad split"
            Expect.stringContains error "halves" "names the text"
            let code, _, error = run [ "--data"; temp.Path; "--split"; "speaker:zed" ]
            Expect.equal code 2 "unknown speaker"
            Expect.stringContains error "ann" "lists the known speakers"

        testCase "answers --help with its options" <| fun () ->
            let code, out, _ = run [ "--help" ]
            Expect.equal code 0 "exit code"
            for option in [ "--data"; "--split"; "--seed"; "--strict"; "--json" ] do
                Expect.stringContains out option option

        testWithFsdd "counts the shared FSDD: 2,500 items, 5 speakers, official 2,250 / 250, loso 5 x 500" <| fun dir ->
            let code, out, _ = run [ "--data"; dir; "--json" ]
            Expect.equal code 0 "exit code"
            let root = json out
            Expect.equal (root.GetProperty("items").GetInt32()) 2500 "items"
            Expect.equal (counts (root.GetProperty "speakers")).Count 5 "speakers"
            Expect.equal (counts (root.GetProperty "splits")) (Map [ "train", 2250; "test", 250 ]) "official"
            // Keys are snake_case like every other command's --json (metrics.json, run.json, summary, bench).
            Expect.equal (counts (root.GetProperty "sample_rates")) (Map [ "8000", 2500 ]) "sample_rates"
            Expect.isGreaterThan (root.GetProperty("duration_seconds").GetProperty("total").GetDouble()) 0.0 "duration_seconds"
            Expect.equal (root.GetProperty("noise_files").GetInt32()) 0 "noise_files"
            let keys = [ for p in root.EnumerateObject() -> p.Name ]
            Expect.isEmpty (keys |> List.filter (fun k -> k <> k.ToLowerInvariant())) "no camelCase key"
            let _, out, _ = run [ "--data"; dir; "--split"; "loso"; "--json" ]
            let loso = counts ((json out).GetProperty "splits")
            Expect.equal (loso.Count, loso |> Map.forall (fun _ v -> v = 500)) (5, true) "loso"
    ]
