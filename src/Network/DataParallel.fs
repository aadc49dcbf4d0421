namespace Hybrid.Classifier

open System
open System.IO
open System.Text.Json
open Hybrid.Dsp

/// The settings of a data-parallel run (those of `FitOptions` that decide the weights). Written once to the run
/// folder by the coordinator (`DataParallel.prepare`), read by every worker, so that a worker started later (after a
/// lost node) trains with exactly the same settings.
type internal ParallelJob =
    { Epochs: int
      BatchSize: int
      Seed: int
      Optimizer: Optimizer
      Schedule: Schedule
      ClipNorm: float option
      LabelSmoothing: float }

/// The plan every worker and the coordinator share: global batches of one epoch and each worker's slice of them.
[<RequireQualifiedAccess>]
module internal ParallelPlan =
    /// Global batches per epoch for `samples` samples of batch `batchSize` (the last one smaller).
    let batches (samples: int) (batchSize: int) = (samples + batchSize - 1) / batchSize

    /// The rows [start, start + count) of the epoch's order that form global batch `batch`.
    let globalBatch (samples: int) (batchSize: int) (batch: int) =
        let start = batch * batchSize
        start, min batchSize (samples - start)

    /// Worker `worker`'s contiguous slice of a global batch of `count` rows starting at `start`, for `workers`
    /// workers: sizes differ by at most one, the first `count % workers` workers take one row more; a slice may be
    /// empty (more workers than rows).
    let slice (start: int) (count: int) (worker: int) (workers: int) =
        let q, r = count / workers, count % workers
        let size = q + (if worker < r then 1 else 0)
        start + worker * q + min worker r, size

/// Files of a data-parallel run in its run folder (which every silo must see: a shared or network folder across
/// machines, any folder for silos on one machine).
[<RequireQualifiedAccess>]
module internal ParallelFiles =
    /// The settings (JSON).
    let jobName = "cluster-job.json"
    /// The training examples (a Hybrid container of kind "examples": inputs, then labels as floats).
    let examplesName = "cluster-examples.hnn"

    let private fail (path: string) (problem: string) : 'a = raise (ModelFileException(path, problem))

    let writeJob (dir: string) (job: ParallelJob) =
        let bytes =
            HeaderJson.toBytes (fun w ->
                w.WriteStartObject()
                w.WriteString("kind", "cluster-job")
                w.WriteNumber("epochs", job.Epochs)
                w.WriteNumber("batchSize", job.BatchSize)
                w.WriteNumber("seed", job.Seed)
                match job.Optimizer with
                | Sgd s ->
                    w.WriteString("optimizer", "sgd")
                    w.WriteNumber("learningRate", s.LearningRate)
                    w.WriteNumber("momentum", s.Momentum)
                    w.WriteBoolean("nesterov", s.Nesterov)
                    w.WriteNumber("weightDecay", s.WeightDecay)
                | Adam a
                | AdamW a ->
                    w.WriteString("optimizer", (match job.Optimizer with Adam _ -> "adam" | _ -> "adamw"))
                    w.WriteNumber("learningRate", a.LearningRate)
                    w.WriteNumber("beta1", a.Beta1)
                    w.WriteNumber("beta2", a.Beta2)
                    w.WriteNumber("epsilon", a.Epsilon)
                    w.WriteNumber("weightDecay", a.WeightDecay)
                match job.Schedule with
                | Constant -> w.WriteString("schedule", "constant")
                | StepDecay(every, gamma) ->
                    w.WriteString("schedule", "step")
                    w.WriteNumber("everyEpochs", every)
                    w.WriteNumber("gamma", gamma)
                | Cosine minFactor ->
                    w.WriteString("schedule", "cosine")
                    w.WriteNumber("minFactor", minFactor)
                | OneCycle(warmup, div, finalDiv) ->
                    w.WriteString("schedule", "onecycle")
                    w.WriteNumber("warmupFraction", warmup)
                    w.WriteNumber("divFactor", div)
                    w.WriteNumber("finalDivFactor", finalDiv)
                match job.ClipNorm with
                | Some c -> w.WriteNumber("clipNorm", c)
                | None -> w.WriteNull "clipNorm"
                w.WriteNumber("labelSmoothing", job.LabelSmoothing)
                w.WriteEndObject())
        Directory.CreateDirectory dir |> ignore
        let path = Path.Combine(dir, jobName)
        File.WriteAllBytes(path + ".tmp", bytes)
        File.Move(path + ".tmp", path, true)

    let readJob (dir: string) : ParallelJob =
        let path = Path.Combine(dir, jobName)
        if not (File.Exists path) then fail path "file not found: the run folder was not prepared for data-parallel training (DataParallel.prepare)."
        use doc = HeaderJson.parse path (File.ReadAllBytes path)
        let root = doc.RootElement
        if HeaderJson.string path root "kind" <> "cluster-job" then HeaderJson.bad path "kind is not 'cluster-job'."
        let f name = HeaderJson.float path root name
        let optimizer =
            match HeaderJson.string path root "optimizer" with
            | "sgd" ->
                Sgd { LearningRate = f "learningRate"; Momentum = f "momentum"
                      Nesterov = (HeaderJson.prop path root "nesterov").ValueKind = JsonValueKind.True
                      WeightDecay = f "weightDecay" }
            | "adam" | "adamw" as kind ->
                let a = { LearningRate = f "learningRate"; Beta1 = f "beta1"; Beta2 = f "beta2"; Epsilon = f "epsilon"; WeightDecay = f "weightDecay" }
                if kind = "adam" then Adam a else AdamW a
            | other -> HeaderJson.bad path (sprintf "unknown optimizer '%s' (known: sgd, adam, adamw)." other)
        let schedule =
            match HeaderJson.string path root "schedule" with
            | "constant" -> Constant
            | "step" -> StepDecay(HeaderJson.int path root "everyEpochs", f "gamma")
            | "cosine" -> Cosine(f "minFactor")
            | "onecycle" -> OneCycle(f "warmupFraction", f "divFactor", f "finalDivFactor")
            | other -> HeaderJson.bad path (sprintf "unknown schedule '%s' (known: constant, step, cosine, onecycle)." other)
        { Epochs = HeaderJson.int path root "epochs"
          BatchSize = HeaderJson.int path root "batchSize"
          Seed = HeaderJson.int path root "seed"
          Optimizer = optimizer
          Schedule = schedule
          ClipNorm =
            (match HeaderJson.tryProp root "clipNorm" with
             | Some v when v.ValueKind = JsonValueKind.Number -> Some(v.GetDouble())
             | _ -> None)
          LabelSmoothing = f "labelSmoothing" }

    let writeExamples (dir: string) (sampleSize: int) (examples: Examples) =
        let header =
            HeaderJson.toBytes (fun w ->
                w.WriteStartObject()
                w.WriteString("format", "hybrid-nn")
                w.WriteString("kind", "examples")
                w.WriteNumber("samples", examples.Labels.Length)
                w.WriteNumber("sampleSize", sampleSize)
                w.WriteEndObject())
        Container.write (Path.Combine(dir, examplesName)) header [ examples.Inputs; Array.map float32 examples.Labels ]

    let readExamples (dir: string) (sampleSize: int) : Examples =
        let path = Path.Combine(dir, examplesName)
        let check (header: byte[]) (count: int) =
            use doc = HeaderJson.parse path header
            let root = doc.RootElement
            if HeaderJson.string path root "kind" <> "examples" then HeaderJson.bad path "kind is not 'examples'."
            let samples = HeaderJson.int path root "samples"
            let size = HeaderJson.int path root "sampleSize"
            if size <> sampleSize then
                fail path (sprintf "the examples have %d floats per sample, the checkpoint's network takes %d." size sampleSize)
            if int64 samples * int64 (size + 1) <> int64 count then
                fail path (sprintf "%d samples of %d floats and their labels need %d floats, the file has %d." samples size (int64 samples * int64 (size + 1)) count)
            samples
        let samples, floats = Container.read path check
        { Inputs = floats[0 .. samples * sampleSize - 1]
          Labels = Array.init samples (fun i -> int floats[samples * sampleSize + i]) }

    /// The network of the checkpoint in `dir` (read from its header).
    let readNet (dir: string) : Net =
        let path = Path.Combine(dir, Checkpoint.fileName)
        let check (header: byte[]) (_: int) =
            use doc = HeaderJson.parse path header
            Architecture.read path doc.RootElement
        let net, _ = Container.read path check
        net

/// One worker's replica of a data-parallel run: the model, its optimizer state and the training examples, loaded
/// from the run folder's checkpoint (the epoch-0 checkpoint `DataParallel.prepare` writes, or the last epoch's).
/// Every replica applies the same summed gradient, so the parameters of all replicas stay equal bit for bit.
type internal Replica(dir: string, engine: Engine) =
    let job = ParallelFiles.readJob dir
    let net = ParallelFiles.readNet dir
    let model = Model.build engine job.Seed net
    let trainer = Trainer(model, job.Optimizer, job.ClipNorm, job.LabelSmoothing, None)
    let state, _ = Checkpoint.read dir model job.Seed trainer.State.Tensors
    do trainer.State.Step <- state.OptimizerStep
    let examples = ParallelFiles.readExamples dir net.SampleSize
    let samples = examples.Labels.Length
    let batches = ParallelPlan.batches samples job.BatchSize
    let parameterCount = model.Parameters |> Array.sumBy (fun p -> int p.Grad.Length)
    let parameterValues = model.Parameters |> Array.map (fun p -> p.Value)
    let states =
        model.Tensors |> Array.map snd |> Array.filter (fun t -> not (parameterValues |> Array.exists (fun v -> obj.ReferenceEquals(v, t))))
    let mutable history = state.History
    let mutable orderEpoch = -1
    let mutable order: int[] = [||]
    /// The model (weights live on the replica's engine).
    member _.Model = model
    /// Epochs completed by the checkpoint this replica was loaded from.
    member _.EpochsDone = state.EpochsDone
    /// Epochs of the run.
    member _.Epochs = job.Epochs
    /// Global batches (optimisation steps) per epoch.
    member _.StepsPerEpoch = batches
    /// Training samples.
    member _.Samples = samples
    /// Trainable parameters (the length of a flat gradient).
    member _.ParameterCount = parameterCount
    /// Floats of the non-trainable state (BatchNorm running statistics), flattened in layer order.
    member _.StateCount = states |> Array.sumBy (fun t -> int t.Length)
    /// Computes this worker's share of global step `step` (epoch-major: step = epoch x StepsPerEpoch + batch): its
    /// slice of the global batch (ParallelPlan.slice), the loss gradient scaled to the global batch. Returns the flat
    /// gradient (ParameterCount floats, zero for an empty slice), the summed loss, correct predictions and the slice
    /// size. Dropout masks are drawn per worker: with one worker they equal `Training.fit`'s, with several they differ.
    member _.Compute(step: int, worker: int, workers: int) =
        if step < 0 || step >= job.Epochs * batches then
            invalidArg "step" (sprintf "Step %d is outside 0..%d." step (job.Epochs * batches - 1))
        if worker < 0 || worker >= workers then invalidArg "worker" (sprintf "Worker %d is outside 0..%d." worker (workers - 1))
        let epoch, batch = step / batches, step % batches
        if epoch <> orderEpoch then
            order <- Training.permutation job.Seed epoch samples
            orderEpoch <- epoch
        let start, count = ParallelPlan.globalBatch samples job.BatchSize batch
        let sliceStart, sliceCount = ParallelPlan.slice start count worker workers
        let gradient = Array.zeroCreate<float32> parameterCount
        if sliceCount = 0 then
            gradient, 0.0, 0, 0
        else
            let seed = if workers = 1 then SplitMix.Derive(job.Seed, 2, step) else SplitMix.Derive(job.Seed, 2, step, worker)
            let loss, correct = trainer.Gradients(examples.Inputs, examples.Labels, order, sliceStart, sliceCount, count, seed)
            if not (Double.IsFinite loss) then
                raise (TrainingException(
                    sprintf "Training stopped: the loss became %g at epoch %d, batch %d of %d (worker %d of %d). Nothing was saved for this epoch; lower the learning rate, enable gradient clipping or check the inputs for NaN."
                        loss (epoch + 1) (batch + 1) batches (worker + 1) workers))
            trainer.GradientsTo gradient
            gradient, loss, correct, sliceCount
    /// The learning rate of global step `step` (the schedule applied).
    member _.LearningRate(step: int) =
        Optimizer.learningRate job.Optimizer * Schedule.factor job.Schedule step (job.Epochs * batches) batches
    /// Applies the summed gradient of step `step` (clipping and one optimizer step).
    member r.Apply(step: int, summed: float32[]) = trainer.ApplySummed(summed, r.LearningRate step)
    /// The non-trainable state (BatchNorm running statistics) as one flat array.
    member r.States() =
        let values = Array.zeroCreate<float32> r.StateCount
        let mutable offset = 0
        for t in states do
            t.CopyTo(Span<float32>(values, offset, int t.Length), 0L)
            offset <- offset + int t.Length
        values
    /// Replaces the non-trainable state (e.g. with the replicas' average).
    member r.SetStates(values: float32[]) =
        if values.Length <> r.StateCount then
            invalidArg "values" (sprintf "%d state values given, the model has %d." values.Length r.StateCount)
        let mutable offset = 0
        for t in states do
            t.CopyFrom(ReadOnlySpan<float32>(values, offset, int t.Length), 0L)
            offset <- offset + int t.Length
    /// Every saved tensor (parameters and states, model-file order) flattened: for comparing replicas.
    member _.Snapshot() = model.Snapshot() |> Array.concat
    /// Writes the run folder's checkpoint after epoch `epochsDone` (the existing checkpoint format) with the epoch's
    /// report appended to the history; atomic (temporary file, then rename).
    member _.WriteCheckpoint(epochsDone: int, trainLoss: float, trainAccuracy: float, seconds: float) =
        let report =
            { Epoch = epochsDone
              TrainLoss = trainLoss
              TrainAccuracy = trainAccuracy
              ValidationLoss = None
              ValidationAccuracy = None
              LearningRate = Optimizer.learningRate job.Optimizer * Schedule.factor job.Schedule (epochsDone * batches - 1) (job.Epochs * batches) batches
              Seconds = seconds }
        history <- (history |> List.filter (fun h -> h.Epoch < epochsDone)) @ [ report ]
        let saved =
            { EpochsDone = epochsDone
              OptimizerStep = trainer.State.Step
              History = history
              Best = None
              BestEpoch = None
              Wait = 0
              Stopped = false
              Seed = job.Seed }
        Checkpoint.write dir model saved trainer.State.Tensors None

/// Data-parallel training's local half: preparing a run folder that workers on any silo load, and reading the
/// result back. The distribution itself (worker grains, the reducer, fault handling) is in Hybrid.Cluster.
[<RequireQualifiedAccess>]
module DataParallel =
    /// Prepares `dir` for a data-parallel run of `model` on `train` with `options` (epochs, batch size, optimizer,
    /// schedule, seed, clipping, smoothing; early stopping, validation and the callback are not used): writes the
    /// settings, the examples and an epoch-0 checkpoint of the model's weights. A folder already holding a checkpoint
    /// of this architecture and seed is resumed from, not overwritten. Raises ArgumentException for the same bad
    /// options and data `Training.fit` refuses (and class weights, which the workers do not apply), ModelFileException for a checkpoint of another run.
    let prepare (dir: string) (options: FitOptions) (model: Model) (train: Examples) : unit =
        if options.Epochs < 1 then invalidArg "options" (sprintf "Epochs must be at least 1, was %d." options.Epochs)
        if options.BatchSize < 1 then invalidArg "options" (sprintf "BatchSize must be at least 1, was %d." options.BatchSize)
        if not (options.LabelSmoothing >= 0.0 && options.LabelSmoothing < 1.0) then
            invalidArg "options" (sprintf "LabelSmoothing must be in [0, 1), was %g." options.LabelSmoothing)
        if options.ClassWeights.IsSome then invalidArg "options" "Class weights are not available in a data-parallel run (its workers weigh every class 1)."
        let n = Model.checkInputs model train.Inputs
        if train.Labels.Length <> n then invalidArg "train" (sprintf "Training data has %d samples but %d labels." n train.Labels.Length)
        if n = 0 then invalidArg "train" "Training data is empty."
        let classes = Model.classes model
        train.Labels |> Array.iteri (fun i y -> if y < 0 || y >= classes then invalidArg "train" (sprintf "Label %d of sample %d is outside 0..%d." y i (classes - 1)))
        Directory.CreateDirectory dir |> ignore
        ParallelFiles.writeJob dir
            { Epochs = options.Epochs
              BatchSize = options.BatchSize
              Seed = options.Seed
              Optimizer = options.Optimizer
              Schedule = options.Schedule
              ClipNorm = options.ClipNorm
              LabelSmoothing = options.LabelSmoothing }
        ParallelFiles.writeExamples dir model.Net.SampleSize train
        let slots = OptimizerState(model.Engine, options.Optimizer, model.Parameters)
        if File.Exists(Path.Combine(dir, Checkpoint.fileName)) then
            Checkpoint.read dir model options.Seed slots.Tensors |> ignore
        else
            let initial =
                { EpochsDone = 0; OptimizerStep = 0; History = []; Best = None; BestEpoch = None; Wait = 0; Stopped = false; Seed = options.Seed }
            Checkpoint.write dir model initial slots.Tensors None

    /// Loads the run folder's last checkpoint into `model` (weights and running statistics) and returns the epoch
    /// reports so far. Raises ModelFileException when the checkpoint is missing or of another architecture.
    let load (dir: string) (model: Model) : EpochReport list =
        let job = ParallelFiles.readJob dir
        let slots = OptimizerState(model.Engine, job.Optimizer, model.Parameters)
        let state, _ = Checkpoint.read dir model job.Seed slots.Tensors
        state.History
