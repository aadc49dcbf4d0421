namespace Hybrid.Classifier

open System
open Hybrid.Dsp

/// Samples for training or evaluation: `Inputs` holds count x (product of the network's input shape) floats,
/// sample after sample in row-major order; `Labels` holds one class index per sample.
type Examples =
    { Inputs: float32[]
      Labels: int[] }

/// A network instantiated on an engine with its weights (trainable parameters and BatchNorm running statistics).
/// Create with `Model.create`, train with `Training.fit`, save with `ModelFile.save`.
[<Sealed>]
type Model internal (engine: Engine, net: Net, runtimes: LayerRuntime[]) =
    let ops = engine.Nn
    let parameters = runtimes |> Array.collect (fun r -> Array.ofList r.Params)
    /// On a device engine (one whose operations keep a training step on the device), every parameter and gradient
    /// becomes a view of one flat value and one flat gradient tensor, in parameter order, and each Dense layer followed
    /// by a (leaky) ReLU applies it in its bias launch. The managed engine keeps its separate tensors and launches.
    let flat =
        match ops with
        | :? INnDeviceTraining as device when parameters.Length > 0 ->
            let total = parameters |> Array.sumBy (fun p -> p.Value.Length)
            let values = engine.Allocate [| int total |]
            let grads = engine.Allocate [| int total |]
            let old = parameters |> Array.map (fun p -> p.Value, p.Grad)
            let mutable offset = 0L
            for p in parameters do
                let v = device.View(values, offset, p.Value.Shape)
                ops.Copy(p.Value, v)
                p.Grad <- device.View(grads, offset, p.Value.Shape)
                offset <- offset + p.Value.Length
                p.Value <- v
            engine.Synchronize()
            for v, g in old do
                v.Dispose()
                g.Dispose()
            for i in 0 .. runtimes.Length - 2 do
                match runtimes[i], runtimes[i + 1] with
                | (:? DenseRuntime as dense), (:? LeakyReluRuntime as activation) ->
                    dense.FuseActivation(device, float32 activation.Slope)
                    activation.Fusion <- ForwardOnly
                | _ -> ()
            Some(device, values, grads)
        | _ -> None
    /// On every engine, a BatchNorm layer followed by a (leaky) ReLU applies it in its own passes (forward: the
    /// activation of each normalised value; backward: dy read through the activation's gradient), bit for bit the
    /// two layers apart.
    do
        for i in 0 .. runtimes.Length - 2 do
            match runtimes[i], runtimes[i + 1] with
            | (:? BatchNormRuntime as norm), (:? LeakyReluRuntime as activation) when activation.Fusion = Separate ->
                norm.FuseActivation(float32 activation.Slope)
                activation.Fusion <- Whole
            | _ -> ()
    /// On an engine whose operations fuse batch norm, activation and 2 x 2 max pooling (the managed engine), a
    /// BatchNorm + (leaky) ReLU + MaxPooling2D (2 x 2, stride 2, unpadded) sequence over [C; H; W] runs as one
    /// operation each way, bit for bit the three layers apart (INnBatchNormPoolFusion).
    do
        match ops with
        | :? INnBatchNormPoolFusion as fusion ->
            for i in 0 .. runtimes.Length - 3 do
                match runtimes[i], runtimes[i + 1], runtimes[i + 2] with
                | (:? BatchNormRuntime as norm), (:? LeakyReluRuntime as activation), (:? PoolRuntime as pool)
                    when activation.Fusion = Whole && pool.IsMaxPool2x2 ->
                    norm.FusePool(fusion, pool.Geometry, pool.SampleOutput)
                    pool.Fused <- true
                | _ -> ()
        | _ -> ()
    let tensors =
        runtimes |> Array.collect (fun r -> Array.ofList ([ for p in r.Params -> p.Name, p.Value ] @ r.States))
    let savedTensors = tensors |> Array.map snd
    let savedLength = savedTensors |> Array.sumBy (fun t -> t.Length)
    /// The architecture.
    member _.Net = net
    /// The engine holding the weights.
    member _.Engine = engine
    member internal _.Ops = ops
    member internal _.Parameters = parameters
    /// On a device engine: its training operations, and every parameter's value and gradient as one flat tensor each
    /// (the parameters' tensors are views of these, in parameter order). None on the managed engine.
    member internal _.Flat = flat
    /// The layers' runtimes, in layer order.
    member internal _.Runtimes = runtimes
    /// Every tensor saved in a model file (parameters, then each layer's state), in layer order.
    member internal _.Tensors = tensors
    /// The saved tensors' storage, in `Tensors` order (the list `Engine.Gather`/`ReadTensors` take).
    member internal _.SavedTensors = savedTensors
    /// Floats in all saved tensors together (the length of a `SnapshotTo` target).
    member internal _.SavedLength = savedLength
    /// Copies every saved tensor to host arrays, read from the device in one copy (`Engine.ReadTensors`).
    member internal _.Snapshot() =
        let flat = engine.ReadTensors savedTensors
        let mutable offset = 0
        savedTensors
        |> Array.map (fun t ->
            let n = int t.Length
            let part = Array.sub flat offset n
            offset <- offset + n
            part)
    /// Copies every saved tensor, in `Tensors` order, into `target` ([SavedLength] on this engine) without leaving the
    /// device (`Engine.Gather`): a snapshot of the weights that `RestoreFrom` puts back.
    member internal _.SnapshotTo(target: Tensor) =
        if target.Length <> savedLength then
            invalidArg "target" (sprintf "A snapshot of this model needs %d floats, the target has %d." savedLength target.Length)
        engine.Gather(savedTensors, target, 0L)
    /// Restores every saved tensor from a device snapshot written by `SnapshotTo` (`Engine.Scatter`).
    member internal _.RestoreFrom(source: Tensor) =
        if source.Length <> savedLength then
            invalidArg "source" (sprintf "A snapshot of this model has %d floats, the source has %d." savedLength source.Length)
        engine.Scatter(source, 0L, savedTensors)
    /// Restores tensors from a snapshot.
    member internal _.Restore(values: float32[][]) =
        Array.iter2 (fun (_, t: Tensor) (v: float32[]) -> t.CopyFrom(ReadOnlySpan<float32>(v), 0L)) tensors values
    /// Runs the layers; x: [batch; input shape]; returns logits [batch; classes].
    member internal _.Forward(x: Tensor, training: bool, seed: uint64) =
        let mutable h = x
        for i in 0 .. runtimes.Length - 1 do
            h <- runtimes[i].Forward(h, training, SplitMix(seed + uint64 i * 0x632BE59BD9B4E019UL).NextUInt64())
        h
    /// Back-propagates dL/doutput, filling every parameter gradient; returns dL/dinput when `inputGradient`.
    member internal _.BackwardFrom(dOutput: Tensor, inputGradient: bool) : Tensor option =
        let mutable g = Some dOutput
        for i = runtimes.Length - 1 downto 0 do
            match g with
            | Some d -> g <- runtimes[i].Backward(d, i > 0 || inputGradient)
            | None -> ()
        g
    /// Back-propagates dL/dlogits, filling every parameter gradient (no gradient for the network input).
    member internal m.Backward(dLogits: Tensor) = m.BackwardFrom(dLogits, false) |> ignore

/// Softmax cross-entropy on one engine, with host copies of the per-batch results.
type internal Criterion(engine: Engine, classes: int) =
    let ops = engine.Nn
    let buffers = Buffers engine
    let mutable hostLabels: float32[] = [||]
    let mutable hostLosses: float32[] = [||]
    let mutable hostProbabilities: float32[] = [||]
    member _.Probabilities = hostProbabilities
    member _.Losses = hostLosses
    /// Computes probabilities and losses of `logits` [n; classes] for `labels` (n of them, from `start` in `all`),
    /// and dL/dlogits of the mean loss when `gradient` is given. Returns the gradient tensor (or the logits if none).
    member _.Run(logits: Tensor, all: int[], start: int, smoothing: float, gradient: bool) : Tensor =
        let n = logits.Shape[0]
        if hostLabels.Length <> n then
            hostLabels <- Array.zeroCreate n
            hostLosses <- Array.zeroCreate n
            hostProbabilities <- Array.zeroCreate (n * classes)
        for i in 0 .. n - 1 do
            hostLabels[i] <- float32 all[start + i]
        let labels = buffers.Get("labels", [| n |])
        labels.CopyFrom(ReadOnlySpan<float32>(hostLabels), 0L)
        let probabilities = buffers.Get("p", [| n; classes |])
        let losses = buffers.Get("loss", [| n |])
        let dLogits: Tensor | null = if gradient then buffers.Get("d", [| n; classes |]) else null
        ops.SoftmaxCrossEntropy(logits, labels, float32 smoothing, probabilities, losses, dLogits, 1.0f / float32 n)
        losses.CopyTo(Span<float32>(hostLosses), 0L)
        probabilities.CopyTo(Span<float32>(hostProbabilities), 0L)
        match dLogits with
        | null -> logits
        | d -> d

/// Creating models and running them on batches.
[<RequireQualifiedAccess>]
module Model =
    let internal build (engine: Engine) (seed: int) (net: Net) =
        let runtimes =
            net.Layers
            |> List.mapi (fun i (layer: Layer) ->
                let inShape = net.InputOf i
                let outShape = net.LayerOutputShapes[i]
                let name = sprintf "%d.%s" i (layer.TypeName.ToLowerInvariant())
                layer.Kind.Create(engine, name, inShape, outShape, SplitMix(SplitMix.Derive(seed, i))))
            |> Array.ofList
        Model(engine, net, runtimes)

    /// Instantiates `net` on `engine` with weights drawn from `seed` (each layer from its own stream derived from the
    /// seed and its index): the same seed gives the same weights bit for bit. Biases and beta start at 0, gamma at 1.
    /// The network's output must be one axis (the class scores).
    let create (engine: Engine) (seed: int) (net: Net) : Model =
        if net.OutputShape.Length <> 1 then
            invalidArg "net" (sprintf "A classifier's output must be [classes], was %s." (Shapes.describe net.OutputShape))
        build engine seed net

    /// Number of classes (the network's output size).
    let classes (model: Model) = model.Net.OutputShape[0]

    let internal checkInputs (model: Model) (inputs: float32[]) =
        let size = model.Net.SampleSize
        if inputs.Length % size <> 0 then
            invalidArg "inputs" (sprintf "Inputs have %d floats, not a multiple of the sample size %d (input shape %s)." inputs.Length size (Shapes.describe model.Net.InputShape))
        inputs.Length / size

    /// Class probabilities [samples, classes] (softmax of the logits, inference mode: running BatchNorm statistics,
    /// no dropout). `inputs` holds samples x (product of the input shape) floats; processed in batches of 256.
    let predict (model: Model) (inputs: float32[]) : float32[,] =
        let count = checkInputs model inputs
        let size = model.Net.SampleSize
        let k = classes model
        let result = Array2D.zeroCreate count k
        let criterion = Criterion(model.Engine, k)
        let buffers = Buffers model.Engine
        let zeros = Array.zeroCreate (min 256 (max count 1))
        let mutable start = 0
        while start < count do
            let n = min 256 (count - start)
            let x = buffers.Get("x", Array.append [| n |] model.Net.InputShape)
            x.CopyFrom(ReadOnlySpan<float32>(inputs, start * size, n * size), 0L)
            let logits = model.Forward(x, false, 0UL)
            criterion.Run(logits, zeros, 0, 0.0, false) |> ignore
            let p = criterion.Probabilities
            for i in 0 .. n - 1 do
                for j in 0 .. k - 1 do
                    result[start + i, j] <- p[i * k + j]
            start <- start + n
        result

    /// Metrics of the model on a dataset (inference mode).
    let evaluate (model: Model) (data: Examples) : Metrics =
        let count = checkInputs model data.Inputs
        if data.Labels.Length <> count then
            invalidArg "data" (sprintf "Examples have %d samples but %d labels." count data.Labels.Length)
        Metrics.compute (predict model data.Inputs) data.Labels
