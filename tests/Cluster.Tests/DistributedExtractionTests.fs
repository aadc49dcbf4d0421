/// Distributed feature extraction on an in-process cluster of three silos: a silo killed while shards are in flight,
/// bad files gathered per shard, paths outside the dataset root refused.
module Hybrid.ClusterTests.DistributedExtractionTests

open System
open System.IO
open System.Threading
open Expecto
open Hybrid.Dsp.Managed
open Hybrid.Features
open Hybrid.Features.Schemas
open Hybrid.Cluster

let private schemaName = "logmel-fsdd"

/// A dataset of `count` one-second noise recordings at 8 kHz in three class folders, plus one file that is not audio.
let private dataset (count: int) =
    let root = Path.Combine(Path.GetTempPath(), "hybrid-shards-" + Guid.NewGuid().ToString("N"))
    let rng = Random(12)
    let items =
        [ for i in 0 .. count - 1 do
            let label = sprintf "class%d" (i % 3)
            let dir = Path.Combine(root, label)
            Directory.CreateDirectory dir |> ignore
            let path = Path.Combine(dir, sprintf "rec%03d.wav" i)
            let samples = Array.init (6000 + 100 * i) (fun _ -> float32 (rng.NextDouble() * 0.2 - 0.1))
            Wav.write path SampleFormat.Pcm16 { SampleRate = 8000; Samples = [| samples |] }
            ExtractionItem(path, sprintf "%s/rec%03d.wav" label i, label) ]
    let bad = Path.Combine(root, "class0", "broken.wav")
    File.WriteAllText(bad, "this is not a RIFF file")
    root, items @ [ ExtractionItem(bad, "class0/broken.wav", "class0") ]

/// The single-machine rows: each good recording extracted on the managed engine through the one extraction path.
let private localRows (items: ExtractionItem list) =
    use engine = new ManagedEngine(1)
    let schema = Schemas.ByName schemaName
    let extractor = Extraction.extractor engine schema
    let good = items |> List.filter (fun i -> not (i.Key.EndsWith "broken.wav"))
    let clips = good |> List.map (fun i -> Extraction.fit schema (AudioFile.load extractor.SampleRate i.Path)) |> Array.ofList
    let rows = Extraction.rows engine schema clips
    good |> List.mapi (fun k i -> i.Key, rows[k * extractor.Length .. (k + 1) * extractor.Length - 1]) |> Map.ofList

[<Tests>]
let tests =
    testSequencedGroup "orleans" <| testList "DistributedExtraction" [
        testCase "one of three silos killed while shards are in flight: every recording's row exactly once, bit-identical to one machine" (fun () ->
            let root, items = dataset 36
            let cache = root + "-cache"
            use cluster = TestClusters.start 3
            // The kill follows the hand-out of the first shards at once: the first calls (each worker creating its
            // engine and extractor) are then in flight.
            let firstShard = new ManualResetEventSlim(false)
            let lines = Collections.Concurrent.ConcurrentQueue<string>()
            let log (line: string) =
                lines.Enqueue line
                if line.Contains "to extract on" then firstShard.Set()
            let options = ClusterExtractionOptions(Workers = 3, Engine = "managed", ShardSize = 2, CallTimeout = TimeSpan.FromSeconds 60.0)
            let task = DistributedExtraction.RunAsync(cluster.Client, root, ResizeArray items, cache, schemaName, options, Action<string>(log))
            let waited = Diagnostics.Stopwatch.StartNew()
            while not firstShard.IsSet && not task.IsCompleted && waited.Elapsed < TimeSpan.FromSeconds 60.0 do
                Thread.Sleep 20
            if task.IsFaulted then failtestf "the run failed before the kill: %O\n%s" task.Exception (String.Join("\n", lines))
            Expect.isTrue firstShard.IsSet ("the shards were handed out:\n" + String.Join("\n", lines))
            cluster.KillSiloAsync(Seq.head cluster.SecondarySilos).Wait(TimeSpan.FromSeconds 30.0) |> ignore
            Expect.isTrue (task.Wait(TimeSpan.FromSeconds 120.0)) "the run finished within 120 s of the kill"
            let result = task.Result
            let text = String.Join("\n", lines)
            Expect.equal result.Shards 19 ("37 recordings in shards of 2:\n" + text)
            // Whether a call was in flight on the killed silo depends on timing (result.Reassigned counts those put back
            // in the queue); the output must be complete and exact either way.
            Expect.equal (List.ofArray result.SkippedPaths) [ (List.last items).Path ] "the broken file is reported"
            let expected = localRows items
            let shards = Shards.list (Shards.folderOf cache (Schemas.ByName schemaName).Fingerprint)
            Expect.equal shards.Length 19 "one file per shard"
            let keys = shards |> Array.collect (fun s -> s.Keys)
            Expect.equal (Array.sort keys) (expected |> Map.toArray |> Array.map fst |> Array.sort) ("every good recording exactly once:\n" + text)
            for s in shards do
                for r in 0 .. s.Rows - 1 do
                    let row = s.Values[r * s.RowLength .. (r + 1) * s.RowLength - 1]
                    Expect.isTrue (row = expected[s.Keys[r]]) (sprintf "%s: bit-identical to the single-machine row" s.Keys[r])
            Directory.Delete(root, true)
            Directory.Delete(cache, true))

        testCase "a recording outside the dataset root is refused, naming the file" (fun () ->
            let root, items = dataset 3
            let outside = Path.Combine(Path.GetTempPath(), "hybrid-outside-" + Guid.NewGuid().ToString("N") + ".wav")
            File.Copy((List.head items).Path, outside)
            let cache = Path.Combine(root, "cache")
            use cluster = TestClusters.start 1
            let task = DistributedExtraction.RunAsync(cluster.Client, root, ResizeArray(items @ [ ExtractionItem(outside, "../outside.wav", "class0") ]), cache, schemaName, ClusterExtractionOptions(Workers = 1, Engine = "managed"))
            let e = Expect.throwsC (fun () -> task.Wait(TimeSpan.FromSeconds 60.0) |> ignore) id
            let inner = match e with :? AggregateException as a -> nonNull a.InnerException | e -> e
            Expect.isTrue (inner :? ClusterException) (sprintf "a ClusterException, was %s: %s" (inner.GetType().Name) inner.Message)
            Expect.stringContains inner.Message (sprintf "%s: shard" outside) "names the file"
            Expect.stringContains inner.Message "outside the dataset root" "says why"
            File.Delete outside
            Directory.Delete(root, true))
    ]
