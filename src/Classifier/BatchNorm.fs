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
    override _.Params = [ gamma; beta ]
    override _.States = [ name + ".moving_mean", runningMean; name + ".moving_variance", runningVar ]
    override this.Forward(x, training, _) =
        input <- x
        let y = this.Buffers.Get("y", x.Shape)
        if training then
            this.Ops.BatchNormTrainingForward(x, gamma.Value, beta.Value, float32 momentum, float32 epsilon, runningMean, runningVar, saveMean, saveInvStd, y)
        else
            this.Ops.BatchNormInferenceForward(x, gamma.Value, beta.Value, runningMean, runningVar, float32 epsilon, y)
        y
    override this.Backward(dy, _) =
        let dx = this.Buffers.Get("dx", input.Shape)
        this.Ops.BatchNormBackward(input, gamma.Value, saveMean, saveInvStd, dy, dx, gamma.Grad, beta.Grad)
        Some dx
