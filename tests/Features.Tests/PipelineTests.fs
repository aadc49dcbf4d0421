module Hybrid.FeaturesTests.PipelineTests

open System
open System.IO
open Expecto
open Hybrid.TestSupport
open Hybrid.Features

/// An extractor whose row for a clip is (sum, max, first sample): easy to check by hand.
let private summary clipSamples : Pipeline.Extractor =
    { Name = "summary"
      Fingerprint = "summary-v1"
      Length = 3
      Shape = [| 3 |]
      SampleRate = 8000
      ClipSamples = clipSamples
      ExtractBatch =
        fun clips n ->
            Array.init (n * 3) (fun k ->
                let clip = Array.sub clips ((k / 3) * clipSamples) clipSamples
                match k % 3 with
                | 0 -> Array.sum clip
                | 1 -> Array.max clip
                | _ -> clip.[0]) }

let private clipOf clipSamples i = Array.init clipSamples (fun t -> float32 ((i * 7 + t * 3) % 11))

let private expectedRow clipSamples i =
    let c = clipOf clipSamples i
    [| Array.sum c; Array.max c; c.[0] |]

[<Tests>]
let tests =
    testList "Pipeline" [
        testPropertyWithConfig Properties.defaults "extractAll returns every item's row in item order whatever the batch size" (fun (count: uint8) (batch: uint8) ->
            let count = int count % 40
            let batchSize = 1 + int batch % 9
            let ex = summary 5
            let rows = Pipeline.extractAll ex (clipOf 5) count batchSize 2 Progress.silent
            Expect.equal rows (Array.concat [ for i in 0 .. count - 1 -> expectedRow 5 i ]) "rows in item order")

        test "a consumer that stops after the first batch releases the reader" {
            let ex = summary 5
            let first = Pipeline.extractBatches ex (clipOf 5) 1000 4 1 Progress.silent |> Seq.head
            Expect.equal (fst first) 0 "first batch starts at item 0"
            Expect.equal (snd first) (Array.concat [ for i in 0 .. 3 -> expectedRow 5 i ]) "first batch rows"
        }

        test "extractAll names the item whose clip has the wrong length" {
            let ex = summary 5
            let load i = if i = 3 then Array.zeroCreate 4 else clipOf 5 i
            let error = Expect.throwsC (fun () -> Pipeline.extractAll ex load 6 2 2 Progress.silent |> ignore) id
            Expect.stringContains (error.ToString()) "item 3 has 4 samples" "expected the item and its length in the message"
        }

        test "an extractor of any clip length computes each run of equal lengths together and keeps item order" {
            let calls = Collections.Concurrent.ConcurrentBag<int * int>()
            let ex =
                { summary 0 with
                    ExtractBatch =
                        fun clips n ->
                            let samples = clips.Length / n
                            calls.Add((n, samples))
                            Array.init (n * 3) (fun k ->
                                let clip = Array.sub clips ((k / 3) * samples) samples
                                match k % 3 with
                                | 0 -> Array.sum clip
                                | 1 -> Array.max clip
                                | _ -> clip.[0]) }
            let lengthOf i = [| 3; 5; 3; 7; 5; 3 |].[i]
            let rows = Pipeline.extractAll ex (fun i -> clipOf (lengthOf i) i) 6 6 2 Progress.silent
            Expect.equal rows (Array.concat [ for i in 0 .. 5 -> expectedRow (lengthOf i) i ]) "rows in item order"
            Expect.equal (calls.ToArray() |> Array.sortBy snd) [| 3, 3; 2, 5; 1, 7 |] "one call per length in the batch"
        }
    ]
