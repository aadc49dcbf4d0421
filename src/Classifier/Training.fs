namespace Hybrid.Classifier

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open Hybrid.Dsp

/// The quantity early stopping watches.
type Monitor =
    /// Validation log-loss (lower is better).
    | ValidationLoss
    /// Validation accuracy (higher is better).
    | ValidationAccuracy
    /// Mean training loss of the epoch (lower is better; for fits without validation data).
    | TrainingLoss

/// Early stopping (Keras' EarlyStopping): stop after `Patience` epochs without an improvement larger than
/// `MinDelta`, and optionally restore the weights of the best epoch.
type EarlyStopping =
    { Monitor: Monitor
      Patience: int
      MinDelta: float
      RestoreBestWeights: bool }

/// Metrics of one finished epoch.
type EpochReport =
    { /// 1-based epoch number.
      Epoch: int
      /// Mean training loss over the epoch's batches (dropout active, label smoothing included).
      TrainLoss: float
      /// Training accuracy over the epoch (predictions made during the training forward passes).
      TrainAccuracy: float
      /// Validation log-loss (inference mode), when validation data was given.
      ValidationLoss: float option
      /// Validation accuracy, when validation data was given.
      ValidationAccuracy: float option
      /// Learning rate of the epoch's last step.
      LearningRate: float
      /// Wall-clock seconds of the epoch (training and validation).
      Seconds: float }

/// Progress reported to the fit callback.
type Progress =
    /// After each optimization step: 1-based epoch and batch, batches per epoch, the batch's mean loss.
    | BatchEnd of epoch: int * batch: int * batches: int * loss: float
    /// After each epoch (after its checkpoint was written).
    | EpochEnd of EpochReport

/// Settings of `Training.fit`; start from `FitOptions.defaults`.
type FitOptions =
    { Epochs: int
      BatchSize: int
      Optimizer: Optimizer
      Schedule: Schedule
      /// Seeds the shuffles and dropout masks (weights are seeded by Model.create).
      Seed: int
      /// Gradient clipping by global L2 norm.
      ClipNorm: float option
      /// Label smoothing of the cross-entropy targets, in [0, 1).
      LabelSmoothing: float
      EarlyStopping: EarlyStopping option
      /// Folder receiving `checkpoint.hnn` after every epoch; a fit finding one there resumes from it.
      CheckpointDir: string option
      /// Receives progress (batch and epoch ends), e.g. to drive a progress bar.
      Callback: Progress -> unit }

/// What `Training.fit` did.
type FitResult =
    { /// Every epoch's report, including epochs completed before a resume.
      History: EpochReport list
      /// The best epoch by the early-stopping monitor (None without early stopping).
      BestEpoch: int option
      /// True when early stopping ended training before `Epochs`.
      StoppedEarly: bool
      /// Number of epochs restored from a checkpoint (0 for a fresh run).
      ResumedAfterEpochs: int }

/// Defaults for FitOptions.
[<RequireQualifiedAccess>]
module FitOptions =
    /// 10 epochs of batch 32, Adam 1e-3, constant rate, seed 0, no clipping, smoothing, early stopping or checkpoints.
    let defaults =
        { Epochs = 10
          BatchSize = 32
          Optimizer = Optimizer.adam 1e-3
          Schedule = Constant
          Seed = 0
          ClipNorm = None
          LabelSmoothing = 0.0
          EarlyStopping = None
          CheckpointDir = None
          Callback = ignore }

/// Optimization steps on an engine, an epoch (or any run of batches, a logging interval) at a time; shared by
/// `Training.fit` and the benchmark.
///
/// On the managed engine each step reads the batch's probabilities and losses back (a memory copy there) and the
/// optimizer updates each parameter in turn, as always. On a device engine (`Model.Flat`) the interval stays on the
/// device: the interval's labels are uploaded once in batch order, each batch's inputs once; forward and backward,
/// the fused softmax cross-entropy (per-row loss and correctness written into one interval-long device tensor), the
/// clipping scale and one guarded optimizer launch over the flat parameters run without a host read; a batch whose
/// loss is not finite sets a device flag that skips its update and every later one; at the end one copy reads the
/// rows, the flags and a non-finite-weights check back.
type internal Trainer(model: Model, optimizer: Optimizer, clipNorm: float option, smoothing: float) =
    let engine = model.Engine
    let classes = model.Net.OutputShape[0]
    let size = model.Net.SampleSize
    let criterion = Criterion(engine, classes)
    let buffers = Buffers engine
    let state = OptimizerState(engine, optimizer, model.Parameters, model.Flat |> Option.map (fun (device, values, _) -> device, values))
    let mutable host: float32[] = [||]
    let mutable labels: int[] = [||]
    let mutable deviceWeightsFinite = true

    /// Reads the rows order[start .. start + count - 1] of `source` into the host staging buffer (and their labels).
    let gather (source: RowSource) (order: int[]) (start: int) (count: int) =
        if host.Length < count * size then
            host <- Array.zeroCreate (count * size)
            labels <- Array.zeroCreate count
        source.Read(order, start, count, host)
        let allLabels = source.Labels
        for i in 0 .. count - 1 do
            labels[i] <- allLabels[order[start + i]]

    /// Forward pass and loss of the rows order[start .. start + count - 1] of `source` on the managed path: returns
    /// the loss gradient with respect to the logits (mean over the rows), the summed loss and the correct count.
    let forwardLoss (source: RowSource) (order: int[]) (start: int) (count: int) (seed: uint64) =
        gather source order start count
        let x = buffers.Get("x", Array.append [| count |] model.Net.InputShape)
        x.CopyFrom(ReadOnlySpan<float32>(host, 0, count * size), 0L)
        let logits = model.Forward(x, true, seed)
        let dLogits = criterion.Run(logits, labels, 0, smoothing, true)
        let mutable total = 0.0
        let mutable correct = 0
        let p = criterion.Probabilities
        for i in 0 .. count - 1 do
            total <- total + float criterion.Losses[i]
            let mutable best = 0
            for j in 1 .. classes - 1 do
                if p[i * classes + j] > p[i * classes + best] then best <- j
            if best = labels[i] then correct <- correct + 1
        dLogits, total, correct

    /// Trains one batch on the managed path: returns (mean loss, correct).
    let hostStep (source: RowSource) (order: int[]) (start: int) (count: int) (learningRate: float) (seed: uint64) =
        let dLogits, total, correct = forwardLoss source order start count seed
        let loss = total / float count
        if Double.IsFinite loss then
            model.Backward dLogits
            clipNorm |> Option.iter (fun c -> Optimizers.clipByNorm model.Ops model.Parameters c |> ignore)
            Optimizers.step model.Ops optimizer learningRate state model.Parameters
        loss, correct

    /// The device path of `Run`.
    let deviceRun (device: INnDeviceTraining) (values: Tensor) (grads: Tensor) (source: RowSource) (order: int[])
                  (count: int) (batchSize: int) (rateOf: int -> float) (seedOf: int -> uint64) (onBatch: int -> float -> int -> unit) =
        let allLabels = source.Labels
        let batches = (count + batchSize - 1) / batchSize
        let ops = model.Ops
        // Rows [0, count): losses; [count, 2 count): 1 for a correct prediction; then the status slots.
        let stats = buffers.Get("stats", [| 2 * count + DeviceStatus.Length |])
        let status = device.View(stats, 2L * int64 count, DeviceStatus.Length)
        ops.Fill(stats, 0.0f)
        let intervalLabels = buffers.Get("labels", [| count |])
        intervalLabels.CopyFrom(ReadOnlySpan<float32>(Array.init count (fun i -> float32 allLabels[order[i]])), 0L)
        for b in 0 .. batches - 1 do
            let start = b * batchSize
            let n = min batchSize (count - start)
            gather source order start n
            let x = buffers.Get("x", Array.append [| n |] model.Net.InputShape)
            x.CopyFrom(ReadOnlySpan<float32>(host, 0, n * size), 0L)
            let logits = model.Forward(x, true, seedOf b)
            let dLogits = buffers.Get("d", [| n; classes |])
            device.SoftmaxCrossEntropyRows(
                logits, device.View(intervalLabels, int64 start, n), float32 smoothing, dLogits, 1.0f / float32 n,
                device.View(stats, int64 start, n), device.View(stats, int64 (count + start), n), status)
            model.Backward dLogits
            clipNorm |> Option.iter (fun c -> device.ClipScale(grads, c, status))
            state.Step <- state.Step + 1
            let lr = float32 (rateOf b)
            let slots = state.FlatSlots.Value
            match optimizer with
            | Sgd o -> device.SgdUpdateGuarded(values, grads, slots[0], lr, float32 o.Momentum, o.Nesterov, float32 o.WeightDecay, status, clipNorm.IsSome)
            | Adam o ->
                device.AdamUpdateGuarded(values, grads, slots[0], slots[1], lr, float32 o.Beta1, float32 o.Beta2, float32 o.Epsilon,
                                         float32 o.WeightDecay, false, state.Step, status, clipNorm.IsSome)
            | AdamW o ->
                device.AdamUpdateGuarded(values, grads, slots[0], slots[1], lr, float32 o.Beta1, float32 o.Beta2, float32 o.Epsilon,
                                         float32 o.WeightDecay, true, state.Step, status, clipNorm.IsSome)
        device.FlagNonFinite(values, status, DeviceStatus.WeightsNotFinite)
        // The interval's one device-to-host read.
        let result = Array.zeroCreate<float32> (int stats.Length)
        stats.CopyTo(Span<float32>(result), 0L)
        deviceWeightsFinite <- result[2 * count + DeviceStatus.WeightsNotFinite] = 0.0f
        for b in 0 .. batches - 1 do
            let start = b * batchSize
            let n = min batchSize (count - start)
            let mutable total = 0.0
            let mutable correct = 0
            for i in start .. start + n - 1 do
                total <- total + float result[i]
                if result[count + i] <> 0.0f then correct <- correct + 1
            onBatch b (total / float n) correct

    member _.State = state

    /// Log-loss (nats) and accuracy of every row of `source` in inference mode, 256 rows a forward pass. On the managed
    /// engine: Rows.evaluate's (probabilities clipped to [1e-15, 1] as scikit-learn's log_loss). On a device engine
    /// the labels are uploaded once, the fused softmax cross-entropy writes each row's loss and correctness on the
    /// device (unclipped: the two agree unless a probability is below 1e-15) and one copy reads them back.
    member _.Evaluate(source: RowSource) : float * float =
        let count = source.Count
        match model.Flat with
        | Some(device, _, _) when count > 0 ->
            let ops = model.Ops
            let stats = buffers.Get("evaluation", [| 2 * count + DeviceStatus.Length |])
            let status = device.View(stats, 2L * int64 count, DeviceStatus.Length)
            ops.Fill(stats, 0.0f)
            let allLabels = source.Labels
            let deviceLabels = buffers.Get("evaluation labels", [| count |])
            deviceLabels.CopyFrom(ReadOnlySpan<float32>(Array.init count (fun i -> float32 allLabels[i])), 0L)
            let order = Array.init count id
            let mutable start = 0
            while start < count do
                let n = min 256 (count - start)
                gather source order start n
                let x = buffers.Get("evaluation x", Array.append [| n |] model.Net.InputShape)
                x.CopyFrom(ReadOnlySpan<float32>(host, 0, n * size), 0L)
                let logits = model.Forward(x, false, 0UL)
                let scratch = buffers.Get("evaluation d", [| n; classes |])
                device.SoftmaxCrossEntropyRows(
                    logits, device.View(deviceLabels, int64 start, n), 0.0f, scratch, 0.0f,
                    device.View(stats, int64 start, n), device.View(stats, int64 (count + start), n), status)
                start <- start + n
            // The evaluation's one device-to-host read.
            let result = Array.zeroCreate<float32> (int stats.Length)
            stats.CopyTo(Span<float32>(result), 0L)
            let mutable total = 0.0
            let mutable correct = 0
            for i in 0 .. count - 1 do
                total <- total + float result[i]
                if result[count + i] <> 0.0f then correct <- correct + 1
            total / float count, float correct / float count
        | _ ->
            let m = Rows.evaluate model source
            m.LogLoss, m.Accuracy

    /// Trains the rows order[0 .. count - 1] of `source` in batches of `batchSize` (the last smaller), each batch read
    /// into one host buffer (the source holds at most a batch of rows at a time):
    /// batch b at learning rate `rateOf b` with dropout seed `seedOf b`. `onBatch b loss correct` receives each batch's
    /// mean loss and correct count: right after the batch on the managed engine, at the end of the run on a device
    /// engine (it may raise, e.g. on a non-finite loss: later batches' results are then not delivered). A batch whose
    /// loss is not finite makes no update (on a device engine, neither do the batches after it in the run).
    member _.Run(source: RowSource, order: int[], count: int, batchSize: int,
                 rateOf: int -> float, seedOf: int -> uint64, onBatch: int -> float -> int -> unit) =
        match model.Flat with
        | Some(device, values, grads) -> deviceRun device values grads source order count batchSize rateOf seedOf onBatch
        | None ->
            let batches = (count + batchSize - 1) / batchSize
            for b in 0 .. batches - 1 do
                let start = b * batchSize
                let n = min batchSize (count - start)
                let loss, correct = hostStep source order start n (rateOf b) (seedOf b)
                onBatch b loss correct

    /// `Run` over samples held in memory: `inputs` [samples x SampleSize] with their labels.
    member this.Run(inputs: float32[], allLabels: int[], order: int[], count: int, batchSize: int,
                    rateOf: int -> float, seedOf: int -> uint64, onBatch: int -> float -> int -> unit) =
        use source = new ExampleRows({ Inputs = inputs; Labels = allLabels }, size)
        this.Run(source, order, count, batchSize, rateOf, seedOf, onBatch)

    /// False when a weight is NaN or infinite: on a device engine as found at the end of the last `Run` (read with
    /// its results), on the managed engine from the sum of squares of every parameter now.
    member _.WeightsFinite() =
        match model.Flat with
        | Some _ -> deviceWeightsFinite
        | None -> model.Parameters |> Array.sumBy (fun p -> model.Ops.SumOfSquares p.Value) |> Double.IsFinite

    /// Data-parallel half step: forward and backward on the samples `order[start .. start + count - 1]` with the loss
    /// gradient scaled to a share of a global batch of `globalCount` samples (dL/dlogits = (p - y) / globalCount), so
    /// that the shares of every worker sum to the gradient of the global batch's mean loss. Leaves the gradients in
    /// the parameters (not applied) and returns (summed loss, correct) over the slice.
    member _.Gradients(inputs: float32[], allLabels: int[], order: int[], start: int, count: int, globalCount: int, seed: uint64) =
        if count < 1 || globalCount < count then
            invalidArg "count" (sprintf "A slice of %d samples does not fit a global batch of %d." count globalCount)
        use source = new ExampleRows({ Inputs = inputs; Labels = allLabels }, size)
        let dLogits, total, correct = forwardLoss source order start count seed
        if count <> globalCount then model.Ops.Scale(dLogits, float32 count / float32 globalCount)
        if Double.IsFinite total then model.Backward dLogits
        total, correct
    /// Data-parallel second half: every parameter's gradient becomes `summed` (parameter after parameter, in
    /// `model.Parameters` order, the layout `GradientsTo` writes), then clipping and one optimizer step at
    /// `learningRate`, exactly as a training step (`Run`) applies its own gradient.
    member _.ApplySummed(summed: float32[], learningRate: float) =
        let mutable offset = 0
        for p in model.Parameters do
            let n = int p.Grad.Length
            if offset + n > summed.Length then
                invalidArg "summed" (sprintf "The summed gradient has %d values; the model has more parameters." summed.Length)
            p.Grad.CopyFrom(ReadOnlySpan<float32>(summed, offset, n), 0L)
            offset <- offset + n
        if offset <> summed.Length then
            invalidArg "summed" (sprintf "The summed gradient has %d values; the model has %d parameters." summed.Length offset)
        clipNorm |> Option.iter (fun c -> Optimizers.clipByNorm model.Ops model.Parameters c |> ignore)
        Optimizers.step model.Ops optimizer learningRate state model.Parameters
    /// Copies every parameter's gradient, parameter after parameter, into `target` (length: the parameter count).
    member _.GradientsTo(target: float32[]) =
        let mutable offset = 0
        for p in model.Parameters do
            let n = int p.Grad.Length
            p.Grad.CopyTo(Span<float32>(target, offset, n), 0L)
            offset <- offset + n

/// Training state saved after each epoch (weights, optimizer slots, best weights, history, early-stopping state).
type internal CheckpointState =
    { EpochsDone: int
      OptimizerStep: int
      History: EpochReport list
      Best: float option
      BestEpoch: int option
      Wait: int
      Stopped: bool
      Seed: int }

module internal Checkpoint =
    let fileName = "checkpoint.hnn"

    let private writeOptional (w: Utf8JsonWriter) (name: string) (v: float option) =
        match v with
        | Some x -> w.WriteNumber(name, x)
        | None -> w.WriteNull name

    /// Writes `checkpoint.hnn` (atomically) with the weights, the optimizer slots and, when given, the best weights
    /// (a device snapshot of `model.SnapshotTo`), in that order; every float comes from one device-to-host copy
    /// (`Engine.ReadTensors`), the same floats as each tensor's own read.
    let write (dir: string) (model: Model) (state: CheckpointState) (slots: Tensor[]) (best: Tensor option) =
        let tensors = model.Tensors
        let blocks =
            [ for name, t in tensors -> name, "weight", t.Shape ]
            @ [ for i, t in Array.indexed slots -> sprintf "slot%d" i, "optimizer", t.Shape ]
            @ (match best with
               | Some _ -> [ for name, t in tensors -> name, "best", t.Shape ]
               | None -> [])
        let header =
            HeaderJson.toBytes (fun w ->
                w.WriteStartObject()
                w.WriteString("format", "hybrid-nn")
                w.WriteString("kind", "checkpoint")
                w.WriteString("libraryVersion", Container.libraryVersion)
                Architecture.write w model.Net
                w.WriteNumber("seed", state.Seed)
                w.WriteNumber("epochsDone", state.EpochsDone)
                w.WriteNumber("optimizerStep", state.OptimizerStep)
                w.WriteNumber("wait", state.Wait)
                w.WriteBoolean("stopped", state.Stopped)
                match state.Best with
                | Some b -> w.WriteString("bestBits", string (BitConverter.DoubleToInt64Bits b))
                | None -> w.WriteNull "bestBits"
                match state.BestEpoch with
                | Some e -> w.WriteNumber("bestEpoch", e)
                | None -> w.WriteNull "bestEpoch"
                w.WriteStartArray "history"
                for r in state.History do
                    w.WriteStartObject()
                    w.WriteNumber("epoch", r.Epoch)
                    w.WriteNumber("trainLoss", r.TrainLoss)
                    w.WriteNumber("trainAccuracy", r.TrainAccuracy)
                    writeOptional w "validationLoss" r.ValidationLoss
                    writeOptional w "validationAccuracy" r.ValidationAccuracy
                    w.WriteNumber("learningRate", r.LearningRate)
                    w.WriteNumber("seconds", r.Seconds)
                    w.WriteEndObject()
                w.WriteEndArray()
                ModelFile.writeBlocks w blocks
                w.WriteEndObject())
        let floats =
            model.Engine.ReadTensors(Array.concat [ model.SavedTensors; slots; Option.toArray best ])
        Container.write (Path.Combine(dir, fileName)) header [ floats ]

    /// Reads a checkpoint written for `model`'s architecture and `seed`, restores weights and optimizer slots, and
    /// returns the saved state and the best weights (every saved tensor in `model.Tensors` order, one array, the
    /// layout of `model.SnapshotTo`).
    let read (dir: string) (model: Model) (seed: int) (slots: Tensor[]) =
        let path = Path.Combine(dir, fileName)
        let parse (header: byte[]) (count: int) =
            use doc = HeaderJson.parse path header
            let root = doc.RootElement
            if HeaderJson.string path root "kind" <> "checkpoint" then HeaderJson.bad path "kind is not 'checkpoint'."
            let net = Architecture.read path root
            if net.Layers <> model.Net.Layers || net.InputShape <> model.Net.InputShape then
                Container.fail path "the checkpoint was written for another architecture; delete it or use another checkpoint folder."
            let fileSeed = HeaderJson.int path root "seed"
            if fileSeed <> seed then
                Container.fail path (sprintf "the checkpoint was written with seed %d, this fit uses seed %d." fileSeed seed)
            let blocks = ModelFile.readBlocks path root count
            let optional (e: JsonElement) name =
                match HeaderJson.tryProp e name with
                | Some v when v.ValueKind = JsonValueKind.Number -> Some(v.GetDouble())
                | _ -> None
            let history =
                HeaderJson.array path root "history"
                |> List.map (fun e ->
                    { Epoch = HeaderJson.int path e "epoch"
                      TrainLoss = HeaderJson.float path e "trainLoss"
                      TrainAccuracy = HeaderJson.float path e "trainAccuracy"
                      ValidationLoss = optional e "validationLoss"
                      ValidationAccuracy = optional e "validationAccuracy"
                      LearningRate = HeaderJson.float path e "learningRate"
                      Seconds = HeaderJson.float path e "seconds" })
            let best =
                match HeaderJson.tryProp root "bestBits" with
                | Some v when v.ValueKind = JsonValueKind.String ->
                    match Int64.TryParse(match v.GetString() with null -> "" | s -> s) with
                    | true, bits -> Some(BitConverter.Int64BitsToDouble bits)
                    | _ -> HeaderJson.bad path "bestBits is not an integer."
                | _ -> None
            let state =
                { EpochsDone = HeaderJson.int path root "epochsDone"
                  OptimizerStep = HeaderJson.int path root "optimizerStep"
                  History = history
                  Best = best
                  BestEpoch = (match HeaderJson.tryProp root "bestEpoch" with Some _ -> Some(HeaderJson.int path root "bestEpoch") | None -> None)
                  Wait = HeaderJson.int path root "wait"
                  Stopped = (HeaderJson.prop path root "stopped").ValueKind = JsonValueKind.True
                  Seed = fileSeed }
            state, blocks
        let (state, blocks), floats = Container.read path parse
        let tensors = model.Tensors
        let weightBlocks = blocks |> List.filter (fun (_, r, _) -> r = "weight")
        let slotBlocks = blocks |> List.filter (fun (_, r, _) -> r = "optimizer")
        let bestBlocks = blocks |> List.filter (fun (_, r, _) -> r = "best")
        if weightBlocks.Length <> tensors.Length || slotBlocks.Length <> slots.Length
           || (bestBlocks.Length <> 0 && bestBlocks.Length <> tensors.Length) then
            Container.fail path "the checkpoint's tensors do not match this model and optimizer (was the optimizer changed?)."
        let mutable offset = 0
        let take (shape: int[]) (expected: int[]) =
            if shape <> expected then
                Container.fail path (sprintf "a checkpoint tensor has shape %s, expected %s." (Shapes.describe shape) (Shapes.describe expected))
            let n = Array.fold (*) 1 shape
            let values = floats[offset .. offset + n - 1]
            offset <- offset + n
            values
        for (_, _, shape), (_, t) in List.zip weightBlocks (List.ofArray tensors) do
            t.CopyFrom(ReadOnlySpan<float32>(take shape t.Shape), 0L)
        for (_, _, shape), t in List.zip slotBlocks (List.ofArray slots) do
            t.CopyFrom(ReadOnlySpan<float32>(take shape t.Shape), 0L)
        let best =
            if bestBlocks.IsEmpty then None
            else Some(Array.concat [| for (_, _, shape), (_, t) in List.zip bestBlocks (List.ofArray tensors) -> take shape t.Shape |])
        state, best

/// Training.
[<RequireQualifiedAccess>]
module Training =
    /// Seeded Fisher-Yates permutation of 0..n-1 for one epoch.
    let internal permutation (seed: int) (epoch: int) (n: int) =
        let rng = SplitMix(SplitMix.Derive(seed, 1, epoch))
        let order = Array.init n id
        for i = n - 1 downto 1 do
            let j = rng.NextInt(i + 1)
            let t = order[i]
            order[i] <- order[j]
            order[j] <- t
        order

    /// Trains `model` in place with softmax cross-entropy: per epoch a seeded shuffle of `train`'s rows (read a batch
    /// at a time, so a source on disk holds at most `BatchSize` rows in memory), mini-batches of `BatchSize` (the last
    /// one smaller), the learning rate times the schedule's factor, optional clipping, one
    /// optimizer step per batch; then validation metrics, early stopping, a checkpoint (atomic) and the callback.
    /// With a checkpoint folder holding a checkpoint of this architecture and seed, training resumes after its last
    /// epoch and ends with the same weights as an uninterrupted run. A NaN or infinite loss raises TrainingException
    /// naming the epoch and batch before anything is saved. With early stopping and RestoreBestWeights the model ends
    /// with the best epoch's weights.
    let fitRows (options: FitOptions) (model: Model) (train: RowSource) (validation: RowSource option) : FitResult =
        if options.Epochs < 1 then invalidArg "options" (sprintf "Epochs must be at least 1, was %d." options.Epochs)
        if options.BatchSize < 1 then invalidArg "options" (sprintf "BatchSize must be at least 1, was %d." options.BatchSize)
        if not (options.LabelSmoothing >= 0.0 && options.LabelSmoothing < 1.0) then
            invalidArg "options" (sprintf "LabelSmoothing must be in [0, 1), was %g." options.LabelSmoothing)
        if train.RowLength <> model.Net.SampleSize then
            invalidArg "train" (sprintf "Rows have %d floats, the model's input shape %s needs %d." train.RowLength (Shapes.describe model.Net.InputShape) model.Net.SampleSize)
        let n = train.Count
        if train.Labels.Length <> n then invalidArg "train" (sprintf "Training data has %d samples but %d labels." n train.Labels.Length)
        if n = 0 then invalidArg "train" "Training data is empty."
        let classes = Model.classes model
        train.Labels |> Array.iteri (fun i y -> if y < 0 || y >= classes then invalidArg "train" (sprintf "Label %d of sample %d is outside 0..%d." y i (classes - 1)))
        match options.EarlyStopping, validation with
        | Some { Monitor = (ValidationLoss | ValidationAccuracy) }, None ->
            invalidArg "options" "Early stopping on a validation metric needs validation data."
        | _ -> ()
        let batches = (n + options.BatchSize - 1) / options.BatchSize
        let totalSteps = options.Epochs * batches
        let trainer = Trainer(model, options.Optimizer, options.ClipNorm, options.LabelSmoothing)
        let slots = trainer.State.Tensors
        let baseRate = Optimizer.learningRate options.Optimizer
        let mutable history = []
        let mutable best = None
        let mutable bestEpoch = None
        let mutable wait = 0
        let mutable stopped = false
        // The best epoch's weights stay on the device (one flat copy of every saved tensor) until they are restored or
        // written into a checkpoint.
        let bestStore = lazy (model.Engine.Allocate [| int model.SavedLength |])
        use _freeBest =
            { new IDisposable with
                member _.Dispose() =
                    if bestStore.IsValueCreated then
                        // Copies from the snapshot may still be queued on a device engine: let them finish first.
                        model.Engine.Synchronize()
                        bestStore.Value.Dispose() }
        let mutable bestWeights: Tensor option = None
        let mutable startEpoch = 0
        match options.CheckpointDir with
        | Some dir when File.Exists(Path.Combine(dir, Checkpoint.fileName)) ->
            let state, savedBest = Checkpoint.read dir model options.Seed slots
            trainer.State.Step <- state.OptimizerStep
            history <- state.History
            best <- state.Best
            bestEpoch <- state.BestEpoch
            wait <- state.Wait
            stopped <- state.Stopped
            match savedBest with
            | Some b ->
                bestStore.Value.CopyFrom(ReadOnlySpan<float32>(b), 0L)
                bestWeights <- Some bestStore.Value
            | None -> ()
            startEpoch <- state.EpochsDone
        | _ -> ()
        let resumed = startEpoch
        let mutable epoch = startEpoch
        while epoch < options.Epochs && not stopped do
            let watch = Stopwatch.StartNew()
            let order = permutation options.Seed epoch n
            train.BeginEpoch epoch
            let lossSum = ref 0.0
            let correct = ref 0
            let rateOf b = baseRate * Schedule.factor options.Schedule (epoch * batches + b) totalSteps batches
            let rate = rateOf (batches - 1)
            let onBatch b loss c =
                if not (Double.IsFinite loss) then
                    raise (TrainingException(
                        sprintf "Training stopped: the loss became %g at epoch %d, batch %d of %d (learning rate %g). Nothing was saved for this epoch; lower the learning rate, enable gradient clipping or check the inputs for NaN."
                            loss (epoch + 1) (b + 1) batches (rateOf b)))
                lossSum.Value <- lossSum.Value + loss * float (min options.BatchSize (n - b * options.BatchSize))
                correct.Value <- correct.Value + c
                options.Callback(BatchEnd(epoch + 1, b + 1, batches, loss))
            trainer.Run(train, order, n, options.BatchSize, rateOf,
                        (fun b -> SplitMix.Derive(options.Seed, 2, epoch * batches + b)), onBatch)
            let metrics = validation |> Option.map trainer.Evaluate
            let report =
                { Epoch = epoch + 1
                  TrainLoss = lossSum.Value / float n
                  TrainAccuracy = float correct.Value / float n
                  ValidationLoss = metrics |> Option.map fst
                  ValidationAccuracy = metrics |> Option.map snd
                  LearningRate = rate
                  Seconds = watch.Elapsed.TotalSeconds }
            history <- history @ [ report ]
            match options.EarlyStopping with
            | Some es ->
                let value, higherIsBetter =
                    match es.Monitor with
                    | ValidationLoss -> report.ValidationLoss |> Option.defaultValue nan, false
                    | ValidationAccuracy -> report.ValidationAccuracy |> Option.defaultValue nan, true
                    | TrainingLoss -> report.TrainLoss, false
                let improved =
                    match best with
                    | None -> true
                    | Some b -> if higherIsBetter then value > b + es.MinDelta else value < b - es.MinDelta
                if improved then
                    best <- Some value
                    bestEpoch <- Some report.Epoch
                    wait <- 0
                    if es.RestoreBestWeights then
                        model.SnapshotTo bestStore.Value
                        bestWeights <- Some bestStore.Value
                else
                    wait <- wait + 1
                    if wait >= es.Patience then stopped <- true
            | None -> ()
            if not (trainer.WeightsFinite()) then
                raise (TrainingException(
                    sprintf "Training stopped: the weights became NaN or infinite during epoch %d (last batch %d of %d, learning rate %g). Nothing was saved for this epoch; lower the learning rate or enable gradient clipping."
                        (epoch + 1) batches batches rate))
            epoch <- epoch + 1
            match options.CheckpointDir with
            | Some dir ->
                let state =
                    { EpochsDone = epoch
                      OptimizerStep = trainer.State.Step
                      History = history
                      Best = best
                      BestEpoch = bestEpoch
                      Wait = wait
                      Stopped = stopped
                      Seed = options.Seed }
                Checkpoint.write dir model state slots bestWeights
            | None -> ()
            options.Callback(EpochEnd report)
        match options.EarlyStopping, bestWeights with
        | Some { RestoreBestWeights = true }, Some weights -> model.RestoreFrom weights
        | _ -> ()
        { History = history
          BestEpoch = bestEpoch
          StoppedEarly = stopped
          ResumedAfterEpochs = resumed }

    /// `fitRows` on examples held in memory (same shuffles, batches and results as the same rows from any source).
    let fit (options: FitOptions) (model: Model) (train: Examples) (validation: Examples option) : FitResult =
        let size = model.Net.SampleSize
        Model.checkInputs model train.Inputs |> ignore
        validation |> Option.iter (fun v -> Model.checkInputs model v.Inputs |> ignore)
        fitRows options model (new ExampleRows(train, size)) (validation |> Option.map (fun v -> new ExampleRows(v, size) :> RowSource))
