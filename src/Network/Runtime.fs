namespace Hybrid.Classifier

open System
open System.Collections.Generic
open Hybrid.Dsp

/// A trainable tensor and its gradient (same shape), named "<layer index>.<layer type>.<role>". On a device engine
/// `Model` moves both into one flat value and one flat gradient tensor after the layers are built (the fields then
/// hold views of those), so that one optimizer launch updates every parameter.
type internal Param =
    { Name: string
      mutable Value: Tensor
      mutable Grad: Tensor }

module internal Param =
    let create (engine: Engine) (name: string) (shape: int[]) =
        { Name = name; Value = engine.Allocate shape; Grad = engine.Allocate shape }

    let fill (p: Param) (values: float32[]) = p.Value.CopyFrom(ReadOnlySpan<float32>(values), 0L)

/// Batch-sized tensors of one layer, kept between calls and reallocated only when a shape changes.
type internal Buffers(engine: Engine) =
    let cache = Dictionary<string, Tensor>()
    member _.Get(key: string, shape: int[]) : Tensor =
        let mutable existing = Unchecked.defaultof<Tensor>
        if cache.TryGetValue(key, &existing) && existing.Shape = shape then
            existing
        else
            if cache.ContainsKey key then existing.Dispose()
            let t = engine.Allocate shape
            cache[key] <- t
            t

/// The executable form of one layer on an engine: parameters, state and cached buffers. Forward keeps what the
/// backward pass needs; Backward fills the parameter gradients (overwriting them) and returns dL/dx when asked.
[<AbstractClass>]
type internal LayerRuntime(engine: Engine) =
    let ops = engine.Nn
    let buffers = Buffers engine
    member _.Engine = engine
    member _.Ops = ops
    member _.Buffers = buffers
    /// Trainable parameters.
    abstract Params: Param list
    default _.Params = []
    /// Non-trainable state saved with the model (BatchNorm's running statistics).
    abstract States: (string * Tensor) list
    default _.States = []
    /// x: [batch; per-sample input shape]; returns [batch; per-sample output shape] (valid until the next call).
    abstract Forward: x: Tensor * training: bool * seed: uint64 -> Tensor
    /// dy: gradient of the loss with respect to the last output; returns dL/dx when needDx.
    abstract Backward: dy: Tensor * needDx: bool -> Tensor option
