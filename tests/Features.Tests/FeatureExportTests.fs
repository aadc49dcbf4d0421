/// FeatureExport.export, the F# form of `hybrid features`, on hand-made FSDD-style folders.
module Hybrid.FeaturesTests.FeatureExportTests

open System
open System.IO
open Expecto
open Hybrid.Dsp
open Hybrid.Features
open Hybrid.Features.Schemas
open Hybrid.FeaturesTests.DatasetFixtures

/// An FSDD-style folder of 8 kHz tones (digits 0-2, speakers george and lucas, takes 0-1), one unusable file and one
/// truncated recording.
let private standIn (folder: TempFolder) =
    writeFsdd folder.Path [ 0; 1; 2 ] [ "george"; "lucas" ] [ 0; 1 ]
    write (folder.Combine "recordings/3_george_0.wav") (snd (brokenWavs () |> List.find (fun (n, _) -> n = "text")))
    write (folder.Combine "recordings/4_george_0.wav") (snd (truncatedWavs () |> List.find (fun (n, _) -> n = "truncated-data")))

let private schema () = Schemas.ByName "logmel-fsdd"

let private requestFor (folder: TempFolder) (out: string) =
    { FeatureExport.request (FeatureExport.ExportFeatures.Schema(schema ())) (folder.Combine out) with
        Data = FeatureExport.ExportData.Folder(Some folder.Path)
        Device = "managed" }

[<Tests>]
let tests =
    testList "FeatureExport" [
        testCase "a schema export writes Extraction's rows keyed by relative path, and reports skipped and truncated files" (fun () ->
            use folder = new TempFolder()
            standIn folder
            let skipped = ResizeArray()
            let warned = ResizeArray()
            let result = FeatureExport.export { requestFor folder "t.csv" with OnSkipped = skipped.Add; OnWarning = warned.Add }
            let bad = folder.Combine "recordings/3_george_0.wav"
            Expect.equal [ for s in result.Skipped -> s.Path ] [ bad ] "the unusable file is skipped"
            Expect.isNonEmpty result.Skipped.[0].Reason "with its reason"
            Expect.equal (List.ofSeq skipped) (List.ofArray result.Skipped) "OnSkipped saw the same file"
            Expect.equal [ for w in result.Warnings -> Path.GetFileName w.Path ] [ "4_george_0.wav" ] "the truncated file is used with a warning"
            Expect.equal (List.ofSeq warned) (List.ofArray result.Warnings) "OnWarning saw the same file"
            Expect.equal result.Items.Length 13 "12 tones and the truncated recording"
            Expect.equal result.Shape [| 40; 65 |] "logmel-fsdd rows"
            Expect.equal result.Fingerprint (schema ()).Fingerprint "the schema's fingerprint"
            Expect.equal result.Variant "" "a declaration has no variant"
            Expect.equal result.Device "managed" "the engine asked for"
            Expect.equal result.Files [ Path.GetFullPath(folder.Combine "t.csv") ] "the table written"
            Expect.isNone result.CacheHits "no cache"
            let table = Export.readCsv (folder.Combine "t.csv")
            Expect.equal table.Files [| for i in result.Items -> i.Key |] "rows keyed by relative path, in item order"
            Expect.equal table.Labels [| for i in result.Items -> i.Label |] "labels"
            use engine = Engines.Create "managed"
            let expected = Extraction.rows engine (schema ()) [| for i in result.Items -> (AudioFile.read { AudioFile.defaults with SampleRate = Some 8000 } i.Path).Samples.[0] |]
            Expect.equal table.Values expected "the rows Extraction gives, bit for bit")

        testCase "Strict refuses the unusable file instead of skipping it" (fun () ->
            use folder = new TempFolder()
            standIn folder
            Expect.throwsT<DatasetException> (fun () -> FeatureExport.export { requestFor folder "t.csv" with Strict = true } |> ignore) "strict scan"
            Expect.isFalse (File.Exists(folder.Combine "t.csv")) "no output")

        testCase "a split part exports only that part; a second export through the cache takes every row from it, byte for byte" (fun () ->
            use folder = new TempFolder()
            standIn folder
            let part = { requestFor folder "lucas.npy" with Split = Some(HoldOutSpeakers [ "lucas" ]); Part = FeatureExport.ExportPart.Test }
            let streamed = FeatureExport.export part
            Expect.equal (streamed.Items |> Array.map (fun i -> i.Speaker) |> Array.distinct) [| Some "lucas" |] "only lucas"
            Expect.equal streamed.Items.Length 6 "three digits, two takes"
            let cache = folder.Combine "cache"
            let cached (out: string) = FeatureExport.export { part with Out = folder.Combine out; Cache = Some cache }
            let first = cached "first.npy"
            let second = cached "second.npy"
            Expect.equal first.CacheHits (Some 0) "an empty cache"
            Expect.equal second.CacheHits (Some 6) "every row from the cache"
            for out in [ "first.npy"; "second.npy" ] do
                Expect.equal (File.ReadAllBytes(folder.Combine out)) (File.ReadAllBytes(folder.Combine "lucas.npy")) (sprintf "%s equals the streamed export" out)
                Expect.equal (File.ReadAllText(folder.Combine(out + ".files.txt"))) (File.ReadAllText(folder.Combine "lucas.npy.files.txt")) (sprintf "%s's sidecar" out))

        testCase "a transform takes the first item's rate and the longest recording when Sr and Length are not given" (fun () ->
            use folder = new TempFolder()
            writeFsdd folder.Path [ 0; 1 ] [ "george" ] [ 0; 3 ]
            let transform: FeatureExport.TransformRequest =
                { Kind = Transforms.Mfcc; Sr = None; Length = None; Settings = fun sr -> { Transforms.defaults sr with NMfcc = 13 } }
            let result =
                FeatureExport.export
                    { FeatureExport.request (FeatureExport.ExportFeatures.Transform transform) (folder.Combine "m.npy") with
                        Data = FeatureExport.ExportData.Folder(Some folder.Path)
                        Device = "managed" }
            // The longest tone has 800 + 10 * 3 samples at 8 kHz.
            let settings = { Transforms.defaults 8000 with NMfcc = 13 }
            Expect.equal result.Shape (Transforms.shape settings Transforms.Mfcc 830) "[n_mfcc, frames] of the longest recording"
            Expect.equal result.Fingerprint (Transforms.fingerprint settings Transforms.Mfcc 830) "the transform's fingerprint"
            let shape, _ = Export.readNpy (folder.Combine "m.npy")
            Expect.equal shape (Array.append [| 4 |] result.Shape) "[clips, n_mfcc, frames]")

        testCase "an empty folder is a DatasetException naming it" (fun () ->
            use folder = new TempFolder()
            let e = Expect.throwsC (fun () -> FeatureExport.export (requestFor folder "t.csv") |> ignore) id
            Expect.isTrue (e :? DatasetException) "DatasetException"
            Expect.stringContains e.Message "holds no usable audio" "says why")
    ]
