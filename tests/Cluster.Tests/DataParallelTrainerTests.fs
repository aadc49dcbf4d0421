/// Data-parallel training on an in-process cluster of three silos: equivalence with one process, replica agreement
/// with BatchNorm, and a silo killed mid-epoch.
module Hybrid.ClusterTests.DataParallelTrainerTests

open System
open System.IO
open System.Threading
open System.Threading.Tasks
open Expecto
open Hybrid.TestSupport.Speed
open Hybrid.Dsp.Managed
open Hybrid.Classifier
open Hybrid.Cluster

let private tempDir () =
    let d = Path.Combine(Path.GetTempPath(), "hybrid-cluster-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

/// Samples whose label is the strongest of four input groups, plus noise: learnable, so the weights move.
let private data (seed: int) (count: int) (width: int) =
    let rng = Random(seed)
    let inputs = Array.init (count * width) (fun _ -> float32 (rng.NextDouble() * 2.0 - 1.0))
    let labels =
        Array.init count (fun i ->
            let group g = Array.sum inputs[i * width + g * (width / 4) .. i * width + (g + 1) * (width / 4) - 1]
            [| 0 .. 3 |] |> Array.maxBy group)
    { Inputs = inputs; Labels = labels }

let private mlp () = Net.sequential [ 20 ] [ Layers.dense 16 |> Layers.withInit HeUniform; Layers.relu; Layers.dense 4 ]

let private bnNet () = Net.sequential [ 20 ] [ Layers.dense 12; BatchNorm(0.9, 1e-3); Layers.relu; Layers.dense 4 ]

let private maxDifference (a: float32[]) (b: float32[]) =
    Expect.equal a.Length b.Length "tensor sizes"
    Array.fold2 (fun m (x: float32) (y: float32) -> max m (abs (float x - float y))) 0.0 a b

/// Trains `net` in one process with Training.fit; returns the final tensors.
let private reference (net: Net) (options: FitOptions) (train: Examples) =
    use engine = new ManagedEngine(1)
    let model = Model.create engine 7 net
    Training.fit options model train None |> ignore
    model.Snapshot() |> Array.concat

/// The run folder's last checkpoint as tensors, and its history.
let private checkpointed (net: Net) (dir: string) =
    use engine = new ManagedEngine(1)
    let model = Model.create engine 0 net
    let history = DataParallel.load dir model
    model.Snapshot() |> Array.concat, history

let private run (cluster: Orleans.TestingHost.TestCluster) (dir: string) (options: ClusterTrainingOptions) (log: string -> unit) =
    let task = DataParallelTrainer.RunAsync(cluster.Client, dir, options, Action<string>(log))
    if not (task.Wait(TimeSpan.FromSeconds 120.0)) then failwith "the distributed run did not finish within 120 s"
    task.Result

let private prepare (net: Net) (options: FitOptions) (train: Examples) =
    let dir = tempDir ()
    use engine = new ManagedEngine(1)
    DataParallel.prepare dir options (Model.create engine 7 net) train
    dir

[<Tests>]
let tests =
    testSequencedGroup "orleans" << slow <| testList "DataParallelTrainer" [
        testCase "3 workers on 3 silos end with the weights of one process on the same global batches (50 steps, 1e-5)" (fun () ->
            // 240 samples in global batches of 24: 10 steps an epoch, 5 epochs; Adam, cosine schedule, clipping, smoothing.
            let train = data 1 240 20
            let options =
                { FitOptions.defaults with
                    Epochs = 5; BatchSize = 24; Optimizer = Optimizer.adam 0.01; Schedule = Cosine 0.1
                    Seed = 3; ClipNorm = Some 2.0; LabelSmoothing = 0.05 }
            let expected = reference (mlp ()) options train
            let dir = prepare (mlp ()) options train
            use cluster = TestClusters.start 3
            // 404 parameters in chunks of 100 floats: five messages per worker and step.
            let result = run cluster dir (ClusterTrainingOptions(3, ChunkFloats = 100)) ignore
            let actual, history = checkpointed (mlp ()) dir
            Expect.equal result.Steps 50 "steps"
            Expect.equal result.Workers 3 "workers"
            Expect.equal history.Length 5 "one report per epoch"
            let initial = (use e = new ManagedEngine(1) in (Model.create e 7 (mlp ())).Snapshot() |> Array.concat)
            Expect.isGreaterThan (maxDifference initial expected) 0.05 "training moved the weights"
            let d = maxDifference expected actual
            Expect.isLessThanOrEqual d 1e-5 (sprintf "largest weight difference %g" d)
            Directory.Delete(dir, true))

        testCase "BatchNorm replicas agree bit for bit after every epoch (per-replica batch statistics, averaged running statistics)" (fun () ->
            let train = data 2 120 20
            let options = { FitOptions.defaults with Epochs = 3; BatchSize = 30; Optimizer = Optimizer.adam 0.01; Seed = 5 }
            let dir = prepare (bnNet ()) options train
            use cluster = TestClusters.start 3
            let result = run cluster dir (ClusterTrainingOptions(3)) ignore
            // The coordinator compares every replica's fingerprint after each epoch and fails the run on a difference.
            Expect.equal result.Fingerprint.Length 64 "a SHA-256 fingerprint"
            let actual, history = checkpointed (bnNet ()) dir
            use engine = new ManagedEngine(1)
            let model = Model.create engine 0 (bnNet ())
            DataParallel.load dir model |> ignore
            let stats = model.Tensors |> Array.filter (fun (name, _) -> name.Contains "moving" || name.Contains "running")
            Expect.isNonEmpty stats "BatchNorm running statistics are saved"
            for name, t in stats do
                let values = t.ToArray()
                Expect.isTrue (values |> Array.forall Single.IsFinite) (sprintf "%s finite" name)
            Expect.isTrue (actual |> Array.forall Single.IsFinite) "weights finite"
            Expect.isLessThan (List.last history).TrainLoss (List.head history).TrainLoss "the loss falls"
            Directory.Delete(dir, true))

        testCase "a silo killed mid-epoch: the step stops, the run resumes from the last checkpoint with 2 workers and ends with one process's weights" (fun () ->
            // 480 samples in batches of 24: 20 steps an epoch, 16 epochs (long enough for the kill to land mid-run);
            // SGD with momentum.
            let train = data 3 480 20
            let options =
                { FitOptions.defaults with Epochs = 16; BatchSize = 24; Optimizer = Optimizer.sgdMomentum 0.02 0.9 false; Seed = 9 }
            let expected = reference (mlp ()) options train
            let dir = prepare (mlp ()) options train
            use cluster = TestClusters.start 3
            let firstEpoch = new ManualResetEventSlim(false)
            let lines = Collections.Concurrent.ConcurrentQueue<string>()
            let log (line: string) =
                lines.Enqueue line
                if line.StartsWith "cluster: epoch 1/" then firstEpoch.Set()
            let task = DataParallelTrainer.RunAsync(cluster.Client, dir, ClusterTrainingOptions(3, RunId = "fault", CallTimeout = TimeSpan.FromSeconds 15.0), Action<string>(log))
            Expect.isTrue (firstEpoch.Wait(TimeSpan.FromSeconds 60.0)) "the first epoch ended"
            // Kill a secondary silo that hosts a worker of the first generation while the second epoch runs.
            let secondaries = cluster.SecondarySilos |> List.ofSeq
            let victim =
                [ 0 .. 2 ]
                |> List.tryPick (fun k ->
                    let silo = cluster.Client.GetGrain<ITrainingWorker>(sprintf "fault/0/%d" k).Silo().Result
                    secondaries |> List.tryFind (fun s -> s.SiloAddress.ToString() = silo))
            match victim with
            | Some silo -> cluster.KillSiloAsync(silo).Wait(TimeSpan.FromSeconds 30.0) |> ignore
            | None -> failtest "no worker was placed on a secondary silo"
            if not (task.Wait(TimeSpan.FromSeconds 120.0)) then failtest "the run did not finish within 120 s after the kill"
            let result = task.Result
            let text = String.Join("\n", lines)
            Expect.equal result.Restarts 1 ("one restart:\n" + text)
            Expect.equal result.Workers 2 ("two workers after the loss:\n" + text)
            let resumed = Text.RegularExpressions.Regex.Match(text, "generation 1: 2 workers on 2 silos, from epoch (\\d+) of 16")
            Expect.isTrue resumed.Success ("a second generation of 2 workers:\n" + text)
            Expect.isTrue (int resumed.Groups[1].Value >= 1 && int resumed.Groups[1].Value < 16) ("resumed from a checkpoint after epoch 1 or later:\n" + text)
            let actual, history = checkpointed (mlp ()) dir
            Expect.equal (history |> List.map (fun h -> h.Epoch)) [ 1 .. 16 ] "each epoch reported once"
            let d = maxDifference expected actual
            Expect.isLessThanOrEqual d 1e-5 (sprintf "largest weight difference %g" d)
            Directory.Delete(dir, true))
    ]
