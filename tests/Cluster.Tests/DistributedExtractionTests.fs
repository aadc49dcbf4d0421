/// Distributed feature extraction on an in-process cluster of three silos: a silo killed while shards are in flight,
/// bad files gathered per shard, paths outside the dataset root refused.
module Hybrid.ClusterTests.DistributedExtractionTests

open System
open System.IO
open System.Threading
open System.Threading.Tasks
open Expecto
open Hybrid.TestSupport.Speed
open Hybrid.Dsp.Managed
open Hybrid.Features
open Hybrid.Features.Schemas
open Hybrid.Cluster

let schemaName = "logmel-fsdd"

/// A dataset of `count` one-second noise recordings at 8 kHz in three class folders, plus one file that is not audio.
let dataset (count: int) =
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
let localRows (items: ExtractionItem list) =
    use engine = new ManagedEngine(1)
    let schema = Schemas.ByName schemaName
    let extractor = Extraction.extractor engine schema
    let good = items |> List.filter (fun i -> not (i.Key.EndsWith "broken.wav"))
    let clips = good |> List.map (fun i -> Extraction.fit schema ((AudioFile.read { AudioFile.defaults with SampleRate = Some extractor.SampleRate } i.Path).Samples.[0])) |> Array.ofList
    let rows = Extraction.rows engine schema clips
    good |> List.mapi (fun k i -> i.Key, rows[k * extractor.Length .. (k + 1) * extractor.Length - 1]) |> Map.ofList

[<Tests>]
let tests =
    testSequencedGroup "orleans" << slow <| testList "DistributedExtraction" [
        testCase "a silo killed while it holds a shard: that shard is reassigned, every readable recording's row exactly once, bit-identical to one machine" (fun () ->
            let root, items = dataset 36
            let cache = root + "-cache"
            use cluster = TestClusters.start 3
            let doomed = Seq.head cluster.SecondarySilos
            let doomedAddress = doomed.SiloAddress.ToString()
            // The first shard that reaches the doomed silo is held there (ShardWorker.BeforeExtract) until the silo has
            // been killed, so the kill always lands while that silo has a shard in flight.
            let held = TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously)
            let release = TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)
            ShardWorker.BeforeExtract <-
                Func<ShardOrder, string, Task>(fun order silo ->
                    if silo = doomedAddress && held.TrySetResult order.Index then release.Task else Task.CompletedTask)
            try
                let lines = Collections.Concurrent.ConcurrentQueue<string>()
                let options = ClusterExtractionOptions(Workers = 3, Engine = "managed", ShardSize = 2, CallTimeout = TimeSpan.FromSeconds 60.0)
                let task = DistributedExtraction.RunAsync(cluster.Client, root, ResizeArray items, cache, schemaName, options, Action<string>(fun l -> lines.Enqueue(sprintf "%s %s" (DateTime.UtcNow.ToString "HH:mm:ss.f") l)))
                let text () = String.Join("\n", lines)
                Expect.isTrue (held.Task.Wait(TimeSpan.FromSeconds 60.0)) ("the doomed silo started a shard within 60 s:\n" + text ())
                let heldShard = held.Task.Result
                let killing = cluster.KillSiloAsync doomed
                Expect.isTrue (killing.Wait(TimeSpan.FromSeconds 30.0)) "the silo was killed within 30 s"
                // The held call ends without writing its shard (its silo is gone; the coordinator has given up on it).
                release.TrySetCanceled() |> ignore
                Expect.isTrue (task.Wait(TimeSpan.FromSeconds 120.0)) ("the run finished within 120 s of the kill:\n" + text ())
                let result = task.Result
                Expect.equal result.Shards 19 ("37 recordings in shards of 2:\n" + text ())
                Expect.contains result.ReassignedShards heldShard (sprintf "shard %d, held on the killed silo, was reassigned:\n%s" heldShard (text ()))
                Expect.equal result.Reassigned result.ReassignedShards.Length "Reassigned counts the shards listed"
                Expect.equal (List.ofArray result.SkippedPaths) [ (List.last items).Path ] "the broken file is reported"
                let expected = localRows items
                let shards = Shards.list (Shards.folderOf cache (Schemas.ByName schemaName).Fingerprint)
                Expect.equal shards.Length 19 "one file per shard"
                Expect.contains (shards |> Array.map (fun s -> s.Index)) heldShard "the reassigned shard was written"
                let keys = shards |> Array.collect (fun s -> s.Keys)
                Expect.equal (Array.sort keys) (expected |> Map.toArray |> Array.map fst |> Array.sort) ("every readable recording exactly once:\n" + text ())
                for s in shards do
                    for r in 0 .. s.Rows - 1 do
                        let row = s.Values[r * s.RowLength .. (r + 1) * s.RowLength - 1]
                        Expect.isTrue (row = expected[s.Keys[r]]) (sprintf "%s: bit-identical to the single-machine row" s.Keys[r])
            finally
                ShardWorker.BeforeExtract <- null
                release.TrySetCanceled() |> ignore
            Directory.Delete(root, true)
            Directory.Delete(cache, true))

        testCase "recordings a worker cannot read are skipped in a local scan's words, a truncated one used with its warning" (fun () ->
            let root, items = dataset 4
            let whole = File.ReadAllBytes (List.head items).Path
            let truncated = Path.Combine(root, "class1", "truncated.wav")
            File.WriteAllBytes(truncated, whole[.. whole.Length / 2])
            let all = items @ [ ExtractionItem(truncated, "class1/truncated.wav", "class1") ]
            let scan = Dataset.openFolder false root
            Expect.equal (scan.Skipped.Length, scan.Warnings.Length) (1, 1) "the local scan skips one file and warns about one"
            let cache = root + "-cache"
            use cluster = TestClusters.start 1
            // The recordings are handed over unscanned: the worker checks each as the scan does.
            let task = DistributedExtraction.RunAsync(cluster.Client, root, ResizeArray all, cache, schemaName, ClusterExtractionOptions(Workers = 1, Engine = "managed"))
            Expect.isTrue (task.Wait(TimeSpan.FromSeconds 60.0)) "the run finished within 60 s"
            let result = task.Result
            let pairs (paths: string[]) (reasons: string[]) = Array.zip paths reasons |> List.ofArray
            Expect.equal (pairs result.SkippedPaths result.SkippedReasons) [ for s in scan.Skipped -> s.Path, s.Reason ] "skipped with the scan's reasons"
            Expect.equal (pairs result.WarningPaths result.WarningReasons) [ for s in scan.Warnings -> s.Path, s.Reason ] "warned with the scan's words"
            let shard = Shards.list (Shards.folderOf cache (Schemas.ByName schemaName).Fingerprint) |> Array.exactlyOne
            Expect.equal (Array.sort shard.Keys) [| for i in scan.Items -> i.Key |] "a row for every recording the scan keeps, the truncated one included"
            let expected = localRows all
            for r in 0 .. shard.Rows - 1 do
                Expect.isTrue (shard.Values[r * shard.RowLength .. (r + 1) * shard.RowLength - 1] = expected[shard.Keys[r]]) (sprintf "%s: the single-machine row" shard.Keys[r])
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
