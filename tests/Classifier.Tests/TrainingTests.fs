/// fit: learning (XOR, a tiny CNN), determinism, kill-and-resume, NaN handling, early stopping.
module Hybrid.ClassifierTests.TrainingTests

open System
open System.IO
open Expecto
open Hybrid.TestSupport.Speed
open Hybrid.Dsp
open Hybrid.Dsp.Managed
open Hybrid.Classifier
open Hybrid.ClassifierTests.Support

let private xor =
    { Inputs = [| 0.0f; 0.0f; 0.0f; 1.0f; 1.0f; 0.0f; 1.0f; 1.0f |]
      Labels = [| 0; 1; 1; 0 |] }

let private tempDir () =
    let d = Path.Combine(Path.GetTempPath(), "hybrid-fit-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

/// A small CNN with every stateful part: BatchNorm statistics, dropout masks, Adam moments.
let private cnn () =
    Net.sequential [ 1; 8; 8 ]
        [ Layers.conv2d 4 (3, 3) Same; BatchNorm(0.5, 1e-3); Layers.relu; Layers.maxPool2d 2
          Layers.flatten; Layers.dropout 0.2; Layers.dense 4 ]

let private tinyImages seed count =
    let rng = Random(seed: int)
    { Inputs = uniform rng (count * 64); Labels = Array.init count (fun i -> i % 4) }

let private options =
    { FitOptions.defaults with Epochs = 5; BatchSize = 5; Optimizer = Optimizer.adam 0.01; Seed = 11; Schedule = Cosine 0.1 }

let private trainedWeights (engine: Engine) opts =
    let model = Model.create engine 5 (cnn ())
    let result = Training.fit opts model (tinyImages 2 12) (Some(tinyImages 3 6))
    model.Snapshot(), result

/// Training.fit on an ILGPU engine with its transfer counter on: the fit's result and the transfers it counted.
let private countedFit (e: Hybrid.Dsp.Ilgpu.IlgpuEngine) opts model data validation =
    e.Synchronize()
    e.Transfers.Reset()
    e.Transfers.Enabled <- true
    let result =
        try Training.fit opts model data validation
        finally e.Transfers.Enabled <- false
    let counts = e.Transfers.Snapshot() |> List.ofSeq
    e.Transfers.Reset()
    result, counts

[<Tests>]
let tests =
    slow <| testList "Training" [
        testCase "a small MLP fits XOR" (fun () ->
            use engine = new ManagedEngine(1)
            let net = Net.sequential [ 2 ] [ Layers.dense 16 |> Layers.withInit HeUniform; Layers.relu; Layers.dense 2 ]
            let model = Model.create engine 1 net
            let result = Training.fit { FitOptions.defaults with Epochs = 300; BatchSize = 4; Optimizer = Optimizer.adam 0.03 } model xor None
            let m = Model.evaluate model xor
            Expect.equal m.Accuracy 1.0 (sprintf "XOR accuracy (last loss %g)" (List.last result.History).TrainLoss)
            Expect.isLessThan m.LogLoss 0.1 "confident")

        testCase "a small CNN overfits a tiny batch to 100%" (fun () ->
            use engine = new ManagedEngine(2)
            let data = tinyImages 7 8
            let model = Model.create engine 2 (cnn ())
            let result = Training.fit { options with Epochs = 150; BatchSize = 8; Schedule = Constant } model data None
            Expect.equal (List.last result.History).TrainAccuracy 1.0 "training accuracy"
            Expect.equal (Model.evaluate model data).Accuracy 1.0 "inference accuracy")

        testCase "the same seed gives the same trained weights bit for bit, on one or two threads" (fun () ->
            use e1 = new ManagedEngine(1)
            use e2 = new ManagedEngine(2)
            let a, ra = trainedWeights e1 options
            let b, rb = trainedWeights e2 options
            Array.iteri2 (fun i x y -> bitEqual (sprintf "tensor %d" i) x y) a b
            Expect.equal (ra.History |> List.map (fun r -> r.TrainLoss)) (rb.History |> List.map (fun r -> r.TrainLoss)) "losses"
            use e3 = new ManagedEngine(2)
            let model = Model.create e3 6 (cnn ())
            Expect.notEqual (model.Snapshot()[0]) ((Model.create e3 5 (cnn ())).Snapshot()[0]) "another seed, other weights")

        for engineName in deviceEngines do
            onEngine engineName <| testCase $"training the small CNN on {engineName} ends near the managed engine's weights and losses" (fun () ->
                use managed = new ManagedEngine(2)
                // SGD with momentum: Adam would normalise the convolution bias's gradient, which BatchNorm makes pure rounding
                // noise, into full-size steps that differ between any two summation orders.
                let short = { options with Epochs = 2; Optimizer = Optimizer.sgdMomentum 0.05 0.9 true }
                let expected, re = trainedWeights managed short
                use lease = leaseOn engineName
                let actual, ra = trainedWeights lease.Engine short
                Array.iteri2 (fun i (x: float32[]) (y: float32[]) ->
                    let scale = x |> Array.fold (fun m v -> max m (abs (float v))) 1.0
                    Hybrid.TestSupport.Assertions.allClose 1e-3 (1e-3 * scale) x y (sprintf "tensor %d" i)) expected actual
                List.iter2 (fun (a: float) (b: float) -> Expect.floatClose { absolute = 1e-4; relative = 1e-4 } b a "training loss")
                    (re.History |> List.map (fun r -> r.TrainLoss)) (ra.History |> List.map (fun r -> r.TrainLoss)))

        for engineName in deviceEngines do
            onEngine engineName <| testCase $"an epoch of the default model on {engineName} reads from the device once, besides the batch uploads" (fun () ->
                use lease = leaseOn engineName
                let e = lease.Engine :?> Hybrid.Dsp.Ilgpu.IlgpuEngine
                // The default recipe's network (cnn2d) on a small stand-in image; its options as Fit.fold sets them.
                let recipe = Recipes.all.Head
                Expect.equal recipe.Name "cnn2d" "the default recipe"
                let model = Model.create e 0 (recipe.Build [ 1; 16; 16 ] 10)
                let count = 40
                let data = { Inputs = uniform (Random 8) (count * 256); Labels = Array.init count (fun i -> i % 10) }
                let opts =
                    { FitOptions.defaults with
                        Epochs = 1; BatchSize = 16; Optimizer = Optimizer.adam 3e-3; Schedule = OneCycle(0.25, 10.0, 100.0)
                        LabelSmoothing = 0.05; Seed = 3 }
                let batches = (count + opts.BatchSize - 1) / opts.BatchSize
                let result, counts = countedFit e opts model data None
                let describe kind =
                    counts |> List.filter (fun c -> c.Kind = kind) |> List.map (fun c -> sprintf "%s x%d" c.CallSite c.Count) |> String.concat "; "
                let total kind = counts |> List.filter (fun c -> c.Kind = kind) |> List.sumBy _.Count
                Expect.isLessThanOrEqual (total Hybrid.Dsp.Ilgpu.TransferKind.DeviceToHost) 1
                    (sprintf "device->host reads in one epoch of %d batches (by call site: %s)" batches (describe Hybrid.Dsp.Ilgpu.TransferKind.DeviceToHost))
                Expect.isLessThanOrEqual (total Hybrid.Dsp.Ilgpu.TransferKind.HostToDevice) (batches + 1)
                    (sprintf "host->device copies: one per batch and one per epoch (by call site: %s)" (describe Hybrid.Dsp.Ilgpu.TransferKind.HostToDevice))
                let report = result.History.Head
                Expect.isTrue (Double.IsFinite report.TrainLoss && report.TrainLoss > 0.0) (sprintf "the epoch's loss still reaches the report, was %g" report.TrainLoss)
                Expect.isTrue (report.TrainAccuracy >= 0.0 && report.TrainAccuracy <= 1.0) "accuracy in [0, 1]")

        for engineName in deviceEngines do
            onEngine engineName <| testCase $"validation on {engineName} reads from the device once per epoch and agrees with the probabilities' metrics" (fun () ->
                use lease = leaseOn engineName
                let e = lease.Engine :?> Hybrid.Dsp.Ilgpu.IlgpuEngine
                // A small dense network keeps the 300-row validation (two forward passes of 256) quick on the simulator.
                let model = Model.create e 0 (Net.sequential [ 8 ] [ Layers.dense 16; Layers.relu; Layers.dense 10 ])
                let data = { Inputs = uniform (Random 9) (32 * 8); Labels = Array.init 32 (fun i -> i % 10) }
                let validation = { Inputs = uniform (Random 10) (300 * 8); Labels = Array.init 300 (fun i -> (3 * i) % 10) }
                let opts = { FitOptions.defaults with Epochs = 1; BatchSize = 16; Optimizer = Optimizer.adam 3e-3; Seed = 4 }
                let result, counts = countedFit e opts model data (Some validation)
                let reads = counts |> List.filter (fun c -> c.Kind = Hybrid.Dsp.Ilgpu.TransferKind.DeviceToHost)
                Expect.isLessThanOrEqual (reads |> List.sumBy _.Count) 2
                    (sprintf "one read for the training interval and one for the 300 validation rows (two forward passes of 256; by call site: %s)" (reads |> List.map (fun c -> sprintf "%s x%d" c.CallSite c.Count) |> String.concat "; "))
                let report = result.History.Head
                let expected = Model.evaluate model validation
                Expect.equal report.ValidationAccuracy (Some expected.Accuracy) "accuracy as from the probabilities"
                Expect.floatClose { absolute = 1e-5; relative = 1e-4 } (Option.get report.ValidationLoss) expected.LogLoss "log-loss as from the probabilities")

        for engineName in deviceEngines do
            onEngine engineName <| testCase $"an epoch of the default model on {engineName} with a checkpoint and restore-best-weights reads from the device three times: training, validation, checkpoint" (fun () ->
                use lease = leaseOn engineName
                let e = lease.Engine :?> Hybrid.Dsp.Ilgpu.IlgpuEngine
                let model = Model.create e 0 (Recipes.all.Head.Build [ 1; 16; 16 ] 10)
                // One batch and a few validation rows keep the simulator's time down; the reads do not depend on the count.
                let data = { Inputs = uniform (Random 8) (16 * 256); Labels = Array.init 16 (fun i -> i % 10) }
                let validation = { Inputs = uniform (Random 12) (6 * 256); Labels = Array.init 6 (fun i -> (7 * i) % 10) }
                let dir = tempDir ()
                let opts =
                    { FitOptions.defaults with
                        Epochs = 1; BatchSize = 16; Optimizer = Optimizer.adam 3e-3; Schedule = OneCycle(0.25, 10.0, 100.0)
                        LabelSmoothing = 0.05; Seed = 3; CheckpointDir = Some dir
                        EarlyStopping = Some { Monitor = ValidationLoss; Patience = 3; MinDelta = 0.0; RestoreBestWeights = true } }
                let result, counts = countedFit e opts model data (Some validation)
                let reads = counts |> List.filter (fun c -> c.Kind = Hybrid.Dsp.Ilgpu.TransferKind.DeviceToHost)
                let described = reads |> List.map (fun c -> sprintf "%s x%d (%d bytes)" c.CallSite c.Count c.Bytes) |> String.concat "; "
                Expect.isLessThanOrEqual (reads |> List.sumBy _.Count) 3
                    (sprintf "device->host reads in one epoch with a checkpoint and restore-best-weights (by call site: %s)" described)
                Expect.isTrue (reads |> List.exists (fun c -> c.CallSite.StartsWith "Hybrid.Classifier.Checkpoint.write")) (sprintf "the checkpoint's read is named by its call site (%s)" described)
                Expect.equal result.BestEpoch (Some 1) "the one epoch is the best"
                Expect.isTrue (File.Exists(Path.Combine(dir, "checkpoint.hnn"))) "checkpoint written"
                Directory.Delete(dir, true))

        testCase "a killed run resumes from its last checkpoint and ends with the same weights" (fun () ->
            use engine = new ManagedEngine(2)
            let early = Some { Monitor = ValidationLoss; Patience = 10; MinDelta = 0.0; RestoreBestWeights = true }
            let opts = { options with EarlyStopping = early }
            let reference, referenceResult = trainedWeights engine { opts with CheckpointDir = Some(tempDir ()) }
            let dir = tempDir ()
            let kill =
                function
                | EpochEnd r when r.Epoch = 2 -> raise (OperationCanceledException "killed")
                | _ -> ()
            Expect.throwsT<OperationCanceledException> (fun () -> trainedWeights engine { opts with CheckpointDir = Some dir; Callback = kill } |> ignore) "killed"
            Expect.isTrue (File.Exists(Path.Combine(dir, "checkpoint.hnn"))) "checkpoint written"
            let resumed, result = trainedWeights engine { opts with CheckpointDir = Some dir }
            Expect.equal result.ResumedAfterEpochs 2 "resumed after epoch 2"
            Expect.equal result.History.Length referenceResult.History.Length "full history"
            Expect.equal result.BestEpoch referenceResult.BestEpoch "best epoch"
            Array.iteri2 (fun i x y -> bitEqual (sprintf "tensor %d" i) x y) reference resumed
            Directory.Delete(dir, true))

        for engineName in deviceEngines do
            onEngine engineName <| testCase $"a killed run on {engineName} resumes from its checkpoint (the tensors' own floats, read in one copy) and ends with the same weights bit for bit" (fun () ->
                use lease = leaseOn engineName
                let e = lease.Engine
                let early = Some { Monitor = ValidationLoss; Patience = 10; MinDelta = 0.0; RestoreBestWeights = true }
                let opts = { options with Epochs = 3; EarlyStopping = early }
                let referenceDir = tempDir ()
                let reference, referenceResult = trainedWeights e { opts with CheckpointDir = Some referenceDir }
                let dir = tempDir ()
                let model = Model.create e 5 (cnn ())
                let mutable atKill = [||]
                let kill =
                    function
                    | EpochEnd r when r.Epoch = 2 ->
                        // Each tensor read on its own, as the checkpoint's single read must reproduce.
                        atKill <- model.Tensors |> Array.map (fun (_, t) -> t.ToArray())
                        raise (OperationCanceledException "killed")
                    | _ -> ()
                Expect.throwsT<OperationCanceledException>
                    (fun () -> Training.fit { opts with CheckpointDir = Some dir; Callback = kill } model (tinyImages 2 12) (Some(tinyImages 3 6)) |> ignore) "killed"
                let _, floats = Container.read (Path.Combine(dir, Checkpoint.fileName)) (fun _ _ -> ())
                let weights = Array.concat atKill
                bitEqual "the checkpoint's weights" weights floats[.. weights.Length - 1]
                let resumed, result = trainedWeights e { opts with CheckpointDir = Some dir }
                Expect.equal result.ResumedAfterEpochs 2 "resumed after epoch 2"
                Expect.equal result.BestEpoch referenceResult.BestEpoch "best epoch"
                Expect.equal (result.History |> List.map _.TrainLoss) (referenceResult.History |> List.map _.TrainLoss) "training losses"
                Array.iteri2 (fun i x y -> bitEqual (sprintf "tensor %d" i) x y) reference resumed
                Directory.Delete(referenceDir, true)
                Directory.Delete(dir, true))

        for engineName, lease in engines do
            onEngine engineName <| testCase (sprintf "a NaN loss stops training naming epoch and batch, updates no parameter with it and writes no checkpoint (%s)" engineName) (fun () ->
                use lease = lease ()
                let data = tinyImages 4 12
                data.Inputs[7 * 64 + 3] <- nanf
                let batch = (Array.findIndex ((=) 7) (Training.permutation options.Seed 0 12)) / 4 + 1
                let dir = tempDir ()
                let model = Model.create lease.Engine 1 (cnn ())
                try
                    Training.fit { options with Epochs = 1; BatchSize = 4; CheckpointDir = Some dir } model data None |> ignore
                    failtest "expected TrainingException"
                with :? TrainingException as e ->
                    Expect.stringContains e.Message "epoch 1" "epoch named"
                    Expect.stringContains e.Message (sprintf "batch %d of 3" batch) "the batch holding the NaN sample named"
                    Expect.stringContains e.Message "NaN" "cause"
                // (BatchNorm's running statistics do take the NaN batch's statistics in its forward pass, on every engine.)
                Expect.isTrue (model.Parameters |> Array.forall (fun p -> p.Value.ToArray() |> Array.forall Single.IsFinite)) "the NaN batch updated no parameter"
                Expect.isFalse (File.Exists(Path.Combine(dir, "checkpoint.hnn"))) "nothing saved"
                Directory.Delete(dir, true))

            onEngine engineName <| testCase (sprintf "weights that become infinite stop training at the epoch's end, before its checkpoint (%s)" engineName) (fun () ->
                use lease = lease ()
                let dir = tempDir ()
                let model = Model.create lease.Engine 1 (Net.sequential [ 2 ] [ Layers.dense 2 ])
                try
                    Training.fit { FitOptions.defaults with Epochs = 1; BatchSize = 4; Optimizer = Optimizer.sgd 1e39; CheckpointDir = Some dir } model xor None |> ignore
                    failtest "expected TrainingException"
                with :? TrainingException as e ->
                    Expect.stringContains e.Message "epoch 1" "epoch named"
                    Expect.stringContains e.Message "weights became NaN or infinite" "cause"
                Expect.isFalse (File.Exists(Path.Combine(dir, "checkpoint.hnn"))) "nothing saved"
                Directory.Delete(dir, true))

        for engineName in deviceEngines do
            onEngine engineName <| testCase $"an MLP trained with Adam, clipping and dropout on {engineName} (fused bias + ReLU, one flat Adam launch) ends within 1e-3 of managed" (fun () ->
                let net () =
                    Net.sequential [ 12 ] [ Layers.dense 16; Layers.relu; Layers.dropout 0.2; Layers.dense 8; Layers.leakyRelu 0.1; Layers.dense 3 ]
                let rng = Random 21
                let data = { Inputs = uniform rng (30 * 12); Labels = Array.init 30 (fun i -> i % 3) }
                let opts =
                    { FitOptions.defaults with
                        Epochs = 3; BatchSize = 8; Optimizer = Optimizer.adam 0.01; ClipNorm = Some 0.5; LabelSmoothing = 0.1
                        Schedule = Cosine 0.1; Seed = 4 }
                let train (engine: Engine) =
                    let model = Model.create engine 9 (net ())
                    let result = Training.fit opts model data None
                    model.Snapshot(), result
                use managed = new ManagedEngine(2)
                let expected, re = train managed
                use lease = leaseOn engineName
                let actual, ra = train lease.Engine
                Array.iteri2 (fun i (x: float32[]) (y: float32[]) ->
                    let scale = x |> Array.fold (fun m v -> max m (abs (float v))) 1.0
                    Hybrid.TestSupport.Assertions.allClose 1e-3 (1e-3 * scale) x y (sprintf "tensor %d" i)) expected actual
                List.iter2 (fun (a: EpochReport) (b: EpochReport) ->
                    Expect.floatClose { absolute = 1e-4; relative = 1e-4 } b.TrainLoss a.TrainLoss "training loss"
                    Expect.equal b.TrainAccuracy a.TrainAccuracy "training accuracy"
                    Expect.equal b.LearningRate a.LearningRate "learning rate") re.History ra.History)

        testCase "early stopping stops after the patience and restores the best epoch's weights" (fun () ->
            use engine = new ManagedEngine(2)
            let model = Model.create engine 5 (cnn ())
            let bestWeights = ref [||]
            let mutable best = infinity
            let record =
                function
                | EpochEnd r when r.ValidationLoss.Value < best ->
                    best <- r.ValidationLoss.Value
                    bestWeights.Value <- model.Snapshot()
                | _ -> ()
            let opts =
                { options with
                    Epochs = 40
                    Optimizer = Optimizer.adam 0.05
                    EarlyStopping = Some { Monitor = ValidationLoss; Patience = 2; MinDelta = 0.0; RestoreBestWeights = true }
                    Callback = record }
            let result = Training.fit opts model (tinyImages 2 12) (Some(tinyImages 9 8))
            Expect.isTrue result.StoppedEarly "random labels stop improving"
            Expect.equal result.History.Length (result.BestEpoch.Value + 2) "patience 2 after the best epoch"
            Array.iteri2 (fun i x y -> bitEqual (sprintf "tensor %d" i) x y) bestWeights.Value (model.Snapshot()))

        testCase "the callback sees every batch and epoch" (fun () ->
            use engine = new ManagedEngine(1)
            let events = Collections.Generic.List<Progress>()
            let model = Model.create engine 1 (cnn ())
            Training.fit { options with Epochs = 2; Callback = events.Add } model (tinyImages 1 12) None |> ignore
            let batches = events |> Seq.filter (function BatchEnd _ -> true | _ -> false) |> Seq.length
            Expect.equal batches 6 "3 batches (5, 5, 2) per epoch"
            Expect.equal (events |> Seq.filter (function EpochEnd _ -> true | _ -> false) |> Seq.length) 2 "epochs")
    ]
