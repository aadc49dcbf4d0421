namespace Hybrid.Classifier

open System
open Hybrid.Dsp

/// An optimizer: one shared `step` applies the per-optimizer update rule to every parameter.
type Optimizer =
    | Sgd of SgdSettings
    | Adam of AdamSettings
    | AdamW of AdamSettings

/// Learning-rate schedules: a factor applied to the optimizer's learning rate at each step.
type Schedule =
    /// Factor 1.
    | Constant
    /// Factor gamma^(floor(epoch / everyEpochs)) (PyTorch's StepLR).
    | StepDecay of everyEpochs: int * gamma: float
    /// Cosine annealing over all training steps from 1 down to minFactor (Loshchilov and Hutter 2017, no restarts).
    | Cosine of minFactor: float
    /// One-cycle (Smith 2018; PyTorch's OneCycleLR with cosine phases): from 1/divFactor up to 1 over the first
    /// warmupFraction of the steps, then down to 1/(divFactor * finalDivFactor).
    | OneCycle of warmupFraction: float * divFactor: float * finalDivFactor: float

/// Optimizer constructors with the usual defaults.
[<RequireQualifiedAccess>]
module Optimizer =
    /// Plain SGD.
    let sgd learningRate = Sgd { LearningRate = learningRate; Momentum = 0.0; Nesterov = false; WeightDecay = 0.0 }
    /// SGD with (optionally Nesterov) momentum.
    let sgdMomentum learningRate momentum nesterov =
        Sgd { LearningRate = learningRate; Momentum = momentum; Nesterov = nesterov; WeightDecay = 0.0 }
    /// Adam with beta1 0.9, beta2 0.999, epsilon 1e-7 (Keras' defaults).
    let adam learningRate =
        Adam { LearningRate = learningRate; Beta1 = 0.9; Beta2 = 0.999; Epsilon = 1e-7; WeightDecay = 0.0 }
    /// AdamW with beta1 0.9, beta2 0.999, epsilon 1e-7 and the given decoupled weight decay.
    let adamW learningRate weightDecay =
        AdamW { LearningRate = learningRate; Beta1 = 0.9; Beta2 = 0.999; Epsilon = 1e-7; WeightDecay = weightDecay }
    /// The base learning rate.
    let learningRate optimizer =
        match optimizer with
        | Sgd s -> s.LearningRate
        | Adam a
        | AdamW a -> a.LearningRate
    /// Slots of state per parameter (velocity; or first and second moments).
    let internal slotCount optimizer =
        match optimizer with
        | Sgd _ -> SgdRule.slotCount
        | Adam _
        | AdamW _ -> AdamRule.slotCount

/// Evaluating schedules.
[<RequireQualifiedAccess>]
module Schedule =
    /// The learning-rate factor at zero-based `step` of `totalSteps`, with `stepsPerEpoch` steps per epoch.
    let factor (schedule: Schedule) (step: int) (totalSteps: int) (stepsPerEpoch: int) : float =
        let fraction = if totalSteps <= 1 then 0.0 else float step / float (totalSteps - 1)
        let cosineBetween a b (t: float) = b + (a - b) * 0.5 * (1.0 + cos (Math.PI * t))
        match schedule with
        | Constant -> 1.0
        | StepDecay(every, gamma) -> gamma ** float ((step / max 1 stepsPerEpoch) / max 1 every)
        | Cosine minFactor -> cosineBetween 1.0 minFactor fraction
        | OneCycle(warmup, div, finalDiv) ->
            let start = 1.0 / div
            let finish = start / finalDiv
            let warmSteps = warmup * float (max 1 (totalSteps - 1))
            let s = float step
            if s < warmSteps then cosineBetween start 1.0 (s / warmSteps)
            else cosineBetween 1.0 finish (if totalSteps - 1 - int warmSteps <= 0 then 1.0 else (s - warmSteps) / (float (totalSteps - 1) - warmSteps))

/// Per-parameter optimizer state (velocity, or Adam's moments) and the step counter. With `flat` (a device engine's
/// training operations and the flat tensor holding every parameter, see `Model.Flat`) each slot is one flat tensor
/// too, and the per-parameter slots are views of it at the parameters' offsets.
type internal OptimizerState(engine: Engine, optimizer: Optimizer, parameters: Param[], flat: (INnDeviceTraining * Tensor) option) =
    let count = Optimizer.slotCount optimizer
    let flatSlots = flat |> Option.map (fun (_, values) -> Array.init count (fun _ -> engine.Allocate values.Shape))
    let slots =
        match flat, flatSlots with
        | Some(device, _), Some whole ->
            let mutable offset = 0L
            parameters
            |> Array.map (fun p ->
                let views = whole |> Array.map (fun s -> device.View(s, offset, p.Value.Shape))
                offset <- offset + p.Value.Length
                views)
        | _ -> parameters |> Array.map (fun p -> Array.init count (fun _ -> engine.Allocate p.Value.Shape))
    /// State with one tensor per parameter and slot.
    new(engine, optimizer, parameters) = OptimizerState(engine, optimizer, parameters, None)
    member val Step = 0 with get, set
    /// The flat slot tensors (velocity; or first and second moments) when built with `flat`.
    member _.FlatSlots = flatSlots
    member _.Slots = slots
    /// Every slot tensor, parameter by parameter.
    member _.Tensors = slots |> Array.concat

module internal Optimizers =
    /// L2 norm of all gradients together (fixed-order reduction); scales them to maxNorm when larger. Returns the
    /// norm before clipping.
    let clipByNorm (ops: INnOps) (parameters: Param[]) (maxNorm: float) =
        let mutable total = 0.0
        for p in parameters do
            total <- total + ops.SumOfSquares p.Grad
        let norm = sqrt total
        if norm > maxNorm && norm > 0.0 then
            let scale = float32 (maxNorm / norm)
            for p in parameters do
                ops.Scale(p.Grad, scale)
        norm

    /// One optimization step of every parameter at learning rate `learningRate` (the schedule already applied): the
    /// optimizer's update rule (SgdRule, AdamRule) applied parameter by parameter with its slots in `state`.
    let step (ops: INnOps) (optimizer: Optimizer) (learningRate: float) (state: OptimizerState) (parameters: Param[]) =
        state.Step <- state.Step + 1
        let lr = float32 learningRate
        parameters
        |> Array.iteri (fun i p ->
            let s = state.Slots[i]
            match optimizer with
            | Sgd o -> SgdRule.update ops o lr p.Value p.Grad s
            | Adam o -> AdamRule.update ops o false lr state.Step p.Value p.Grad s
            | AdamW o -> AdamRule.update ops o true lr state.Step p.Value p.Grad s)

    /// One optimization step of a device engine's flat parameters `values` and gradients `grads` (see `Model.Flat`) at
    /// learning rate `learningRate`, in one guarded launch of the optimizer's update rule over `state.FlatSlots`:
    /// skipped on the device while `status` records a non-finite loss, the gradient first multiplied by `status`'s
    /// clipping scale when `clipped`. Raises InvalidOperationException when `state` was built without flat slots.
    let stepFlat (device: INnDeviceTraining) (optimizer: Optimizer) (learningRate: float) (state: OptimizerState)
                 (values: Tensor) (grads: Tensor) (status: Tensor) (clipped: bool) =
        state.Step <- state.Step + 1
        let lr = float32 learningRate
        let slots = state.FlatSlots.Value
        match optimizer with
        | Sgd o -> SgdRule.updateFlat device o lr values grads slots status clipped
        | Adam o -> AdamRule.updateFlat device o false lr state.Step values grads slots status clipped
        | AdamW o -> AdamRule.updateFlat device o true lr state.Step values grads slots status clipped
