namespace Hybrid.Classifier

open Hybrid.Dsp

/// Batch normalisation over axis 1 of [N; C; ...]: batch statistics while training (running statistics updated
/// with Keras' momentum), running statistics at inference. gamma starts at 1, beta at 0, running mean 0, variance 1.
type internal BatchNormRuntime(engine: Engine, name: string, inShape: int[], momentum: float, epsilon: float) =
    inherit LayerRuntime(engine)
    let c = inShape[0]
    let gamma = Param.create engine (name + ".gamma") [| c |]
    let beta = Param.create engine (name + ".beta") [| c |]
    let runningMean = engine.Allocate [| c |]
    let runningVar = engine.Allocate [| c |]
    let saveMean = engine.Allocate [| c |]
    let saveInvStd = engine.Allocate [| c |]
    do
        Param.fill gamma (Array.create c 1.0f)
        runningVar.CopyFrom(System.ReadOnlySpan<float32>(Array.create c 1.0f), 0L)
    let mutable input = Unchecked.defaultof<Tensor>
    let mutable output = Unchecked.defaultof<Tensor>
    /// With a fused pool: the pooled output of the last forward pass (`output` then holds the full-size activation
    /// after an inference pass, and nothing after a training pass, whose backward pass recomputes it).
    let mutable pooled = Unchecked.defaultof<Tensor>
    let mutable activation: float32 option = None
    /// The fused 2 x 2 max pool after the activation: the engine's fusion, the pool's geometry for a batch, the pooled
    /// shape of one sample.
    let mutable pool: (INnBatchNormPoolFusion * (int -> PoolGeometry) * int[]) option = None
    override _.Params = [ gamma; beta ]
    override _.States = [ name + ".moving_mean", runningMean; name + ".moving_variance", runningVar ]
    /// Applies the following (leaky) ReLU of `slope` from now on: the forward pass writes the activation of each
    /// normalised value and the backward pass reads dy through its gradient (`Model` does this, and marks that
    /// activation layer `Whole`). Bit-identical to the two layers apart.
    member _.FuseActivation(slope: float32) = activation <- Some slope
    /// The slope of the fused activation, if any.
    member _.FusedSlope = activation
    /// Applies the 2 x 2 max pool after the fused activation too (`Model` does this on an engine whose operations
    /// implement INnBatchNormPoolFusion, and marks the pool layer `Fused`): training runs the fused operations, which
    /// never store the full-size activation; inference runs batch norm + activation, then the pool. Bit-identical to
    /// the three layers apart.
    member _.FusePool(fusion: INnBatchNormPoolFusion, geometry: int -> PoolGeometry, sampleOutput: int[]) =
        pool <- Some(fusion, geometry, sampleOutput)
    override this.Forward(x, training, _) =
        match pool, activation with
        | Some(fusion, geometry, sampleOutput), Some slope ->
            let n = x.Shape[0]
            let y = this.Buffers.Get("pooled", Array.append [| n |] sampleOutput)
            let g = geometry n
            pooled <- y
            if training then
                input <- x
                fusion.BatchNormLeakyReluMaxPoolTrainingForward(&g, x, gamma.Value, beta.Value, slope, float32 momentum, float32 epsilon,
                    runningMean, runningVar, saveMean, saveInvStd, y)
                output <- Unchecked.defaultof<Tensor>
            else
                // Batch norm + activation as apart, keeping the full-size activation in `output`: a backward pass after
                // this (an input gradient at inference) runs the operations apart from it.
                this.Ops.Pool2DForward(&g, PoolKind.Max, this.ForwardUnpooled(x, false), y)
            y
        | _ -> this.ForwardUnpooled(x, training)
    member private this.ForwardUnpooled(x: Tensor, training: bool) =
        input <- x
        let y = this.Buffers.Get("y", x.Shape)
        output <- y
        match training, activation with
        | true, None ->
            this.Ops.BatchNormTrainingForward(x, gamma.Value, beta.Value, float32 momentum, float32 epsilon, runningMean, runningVar, saveMean, saveInvStd, y)
        | true, Some slope ->
            this.Ops.BatchNormLeakyReluTrainingForward(x, gamma.Value, beta.Value, slope, float32 momentum, float32 epsilon, runningMean, runningVar, saveMean, saveInvStd, y)
        | false, None ->
            this.Ops.BatchNormInferenceForward(x, gamma.Value, beta.Value, runningMean, runningVar, float32 epsilon, y)
        | false, Some slope ->
            this.Ops.BatchNormLeakyReluInferenceForward(x, gamma.Value, beta.Value, slope, runningMean, runningVar, float32 epsilon, y)
        y
    override this.Backward(dy, _) =
        let dx = this.Buffers.Get("dx", input.Shape)
        match pool, activation with
        | Some(fusion, geometry, _), Some slope when isNull (box output) ->
            let g = geometry input.Shape[0]
            fusion.BatchNormLeakyReluMaxPoolBackward(&g, input, slope, gamma.Value, beta.Value, saveMean, saveInvStd, dy, dx, gamma.Grad, beta.Grad)
        | Some(_, geometry, _), Some slope ->
            // After an inference forward pass: the pool's gradient from the stored activation, then batch norm's, as the
            // layers apart do (the fused backward pass recomputes the activation from the training statistics).
            let g = geometry input.Shape[0]
            let dFull = this.Buffers.Get("dy_full", input.Shape)
            this.Ops.Pool2DBackward(&g, PoolKind.Max, output, pooled, dy, dFull)
            this.Ops.BatchNormLeakyReluBackward(input, output, slope, gamma.Value, saveMean, saveInvStd, dFull, dx, gamma.Grad, beta.Grad)
        | _, None -> this.Ops.BatchNormBackward(input, gamma.Value, saveMean, saveInvStd, dy, dx, gamma.Grad, beta.Grad)
        | _, Some slope -> this.Ops.BatchNormLeakyReluBackward(input, output, slope, gamma.Value, saveMean, saveInvStd, dy, dx, gamma.Grad, beta.Grad)
        Some dx

/// Batch normalisation over the first (channel or feature) axis; in ONNX its inference form,
/// BatchNormalization with the running statistics.
type internal BatchNormKind =
    { Momentum: float
      Epsilon: float }
    interface ILayerKind with
        member _.Name = "BatchNormalization"
        member k.Output(what, input) =
            if input.Length < 1 then invalidArg "layers" (sprintf "%s: needs at least one axis." what)
            if not (k.Momentum >= 0.0 && k.Momentum < 1.0) then invalidArg "layers" (sprintf "%s: momentum must be in [0, 1), was %g." what k.Momentum)
            if not (k.Epsilon > 0.0) then invalidArg "layers" (sprintf "%s: epsilon must be positive, was %g." what k.Epsilon)
            input
        member _.Parameters input = 2L * int64 input[0], 2L * int64 input[0]
        member k.Create(engine, name, input, _, _) = BatchNormRuntime(engine, name, input, k.Momentum, k.Epsilon)
        member k.Write w =
            w.WriteNumber("momentum", k.Momentum)
            w.WriteNumber("epsilon", k.Epsilon)
        member k.ToOnnx(g, name, x, input, weight) =
            let c = [| int64 input[0] |]
            let inputs = [ for role in [ "gamma"; "beta"; "moving_mean"; "moving_variance" ] -> g.Constant(name + "." + role, c, weight role) ]
            g.Node("BatchNormalization", name, x :: inputs, [ OnnxAttr.float "epsilon" (float32 k.Epsilon) ])
        member k.WithInit _ = k

/// The BatchNorm constructor and its model-file registration.
[<AutoOpen>]
module BatchNormLayer =
    /// Batch normalisation over the first (channel or feature) axis; Keras' momentum convention (0.99 keeps 99%).
    let BatchNorm (momentum: float, epsilon: float) = Layer { Momentum = momentum; Epsilon = epsilon }
    let internal registration =
        { Names = [ "BatchNormalization"; "batch_norm" ]
          Read = fun _ f -> BatchNorm(f.Float "momentum", f.Float "epsilon") }
