namespace Hybrid.Classifier

open System
open Hybrid.Dsp

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
///
/// With class weights (Keras' `class_weight`) each row's loss and its row of dL/dlogits are multiplied by its class's
/// weight: the gradient rows by one product with the diagonal matrix of the batch's weights (INnOps.Gemm, on either
/// path), the reported losses on the host.
type internal Trainer(model: Model, optimizer: Optimizer, clipNorm: float option, smoothing: float, classWeights: float[] option) =
    let engine = model.Engine
    let classes = model.Net.OutputShape[0]
    let size = model.Net.SampleSize
    let criterion = Criterion(engine, classes)
    let buffers = Buffers engine
    let state = OptimizerState(engine, optimizer, model.Parameters, model.Flat |> Option.map (fun (device, values, _) -> device, values))
    let mutable host: float32[] = [||]
    let mutable labels: int[] = [||]
    let mutable deviceWeightsFinite = true
    do
        match classWeights with
        | Some w when w.Length <> classes ->
            invalidArg "classWeights" (sprintf "Expected %d class weights (one per class), was %d." classes w.Length)
        | Some w when w |> Array.exists (fun v -> not (Double.IsFinite v) || v < 0.0) ->
            invalidArg "classWeights" (sprintf "Class weights must be finite and >= 0, were %s." (w |> Array.map (sprintf "%g") |> String.concat ", "))
        | _ -> ()
    let weightOf (label: int) = match classWeights with Some w -> w[label] | None -> 1.0
    let mutable diagonal: float32[] = [||]

    /// dL/dlogits of the weighted loss: the rows of `dLogits` [n; classes] (labels labels[0 .. n-1]) each times its
    /// class's weight, as diag(weights) x dLogits in a buffer of its own; `dLogits` itself without class weights.
    let weighted (dLogits: Tensor) (n: int) : Tensor =
        match classWeights with
        | None -> dLogits
        | Some w ->
            if diagonal.Length < n * n then diagonal <- Array.zeroCreate (n * n)
            Array.Clear(diagonal, 0, n * n)
            for i in 0 .. n - 1 do
                diagonal[i * n + i] <- float32 w[labels[i]]
            let d = buffers.Get("class weights", [| n; n |])
            d.CopyFrom(ReadOnlySpan<float32>(diagonal, 0, n * n), 0L)
            let result = buffers.Get("weighted d", [| n; classes |])
            model.Ops.Gemm(d, false, dLogits, false, result)
            result

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
        let dLogits = weighted (criterion.Run(logits, labels, 0, smoothing, true)) count
        let mutable total = 0.0
        let mutable correct = 0
        let p = criterion.Probabilities
        for i in 0 .. count - 1 do
            total <- total + weightOf labels[i] * float criterion.Losses[i]
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
            model.Backward(weighted dLogits n)
            clipNorm |> Option.iter (fun c -> device.ClipScale(grads, c, status))
            Optimizers.stepFlat device optimizer (rateOf b) state values grads status clipNorm.IsSome
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
                total <- total + weightOf allLabels[order[i]] * float result[i]
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
