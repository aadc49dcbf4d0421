/// The stage profile of `hybrid bench` (HYBRID_BENCH_PROFILE=1): named stages with their wall and CPU time, and an
/// engine wrapper that times every network operation of a training step as a stage.
module Hybrid.Cli.BenchStages

open System
open System.Collections.Generic
open System.Diagnostics
open System.Reflection
open Hybrid.Dsp

/// Whether the workloads time their stages: each engine call of the log-mel workloads (STFT, mel, dB, DCT), each
/// network operation of train-cnn2d (`ProfiledEngine`): HYBRID_BENCH_PROFILE=1. The timing reads the process CPU time
/// around every call, which costs a few microseconds a call, so it is off unless asked for.
let profiling () = Environment.GetEnvironmentVariable "HYBRID_BENCH_PROFILE" = "1"

/// Turns Parallelism.MeasureWork on when profiling (HYBRID_BENCH_PROFILE=1), so that each stage also reports the work
/// its threads did inside the managed engine's parallel loops; returns whether it did.
let measureWorkWhenProfiling () =
    let on = profiling ()
    if on then Parallelism.MeasureWork <- true
    on

/// Wall and CPU milliseconds (all threads) spent in one stage, the milliseconds its threads worked inside the managed
/// engine's parallel loops (Parallelism.MeasureWork: 0 on other engines and outside those loops), and its calls,
/// summed over its calls.
type StageTime = { mutable WallMs: float; mutable CpuMs: float; mutable WorkMs: float; mutable Calls: int }

/// The stages timed since the last `takeStages`, by name, in the order first met.
let private stages = List<string * StageTime>()

/// Adds wall, CPU and work milliseconds and calls to stage `name` of `into`, appending the stage when it is new.
let addStage (into: List<string * StageTime>) (name: string) (wallMs: float) (cpuMs: float) (workMs: float) (calls: int) =
    let t =
        match into |> Seq.tryFind (fun (n, _) -> n = name) with
        | Some(_, t) -> t
        | None ->
            let t = { WallMs = 0.0; CpuMs = 0.0; WorkMs = 0.0; Calls = 0 }
            into.Add((name, t))
            t
    t.WallMs <- t.WallMs + wallMs
    t.CpuMs <- t.CpuMs + cpuMs
    t.WorkMs <- t.WorkMs + workMs
    t.Calls <- t.Calls + calls

/// Runs `action` as one call of stage `name` of `into`, adding its wall and process CPU time and the work its threads
/// did in the managed engine's parallel loops (counted while Parallelism.MeasureWork is on; the profile turns it on).
let timeStage (into: List<string * StageTime>) (name: string) (action: unit -> unit) =
    let cpu0 = Environment.CpuUsage.TotalTime
    let work0 = Parallelism.WorkTicks
    let sw = Stopwatch.StartNew()
    action ()
    let wall = sw.Elapsed.TotalMilliseconds
    let work = float (Parallelism.WorkTicks - work0) * 1000.0 / float Stopwatch.Frequency
    addStage into name wall (Environment.CpuUsage.TotalTime - cpu0).TotalMilliseconds work 1

/// Runs `action` as one call of stage `name`, adding its wall and process CPU time to the stage when profiling.
let stage (name: string) (action: unit -> unit) =
    if profiling () then timeStage stages name action else action ()

/// The stages timed since the last call, and forgets them.
let takeStages () =
    let taken = List.ofSeq stages
    stages.Clear()
    taken

/// A stage name for one network operation: the INnOps method in snake case, with the channels of a convolution
/// ("conv2d_backward 32->64"), the channels of a pooling ("pool2d_forward 32 ch") and the sizes m x n x k of a GEMM
/// ("gemm 64x128x10240"), so that layers of one kind stay apart.
let nnStageName (m: MethodInfo) (args: (obj | null) array) =
    let name = m.Name
    // A word starts at a capital after a small letter, or at the capital before a small letter ("2DForward").
    let starts i =
        i > 0 && Char.IsUpper name.[i]
        && (Char.IsLower name.[i - 1] || (Char.IsUpper name.[i - 1] && i + 1 < name.Length && Char.IsLower name.[i + 1]))
    let snake = name |> Seq.mapi (fun i c -> (if starts i then "_" else "") + string (Char.ToLowerInvariant c)) |> String.concat ""
    match args with
    | [| :? ConvGeometry as g; _; _; _; _ |]
    | [| :? ConvGeometry as g; _; _; _; _; _; _ |] -> sprintf "%s %d->%d" snake g.InChannels g.OutChannels
    | args when args.Length > 0 && (match args.[0] with :? PoolGeometry -> true | _ -> false) ->
        let g = args.[0] :?> PoolGeometry
        sprintf "%s %d ch" snake g.Channels
    | [| :? Tensor as a; :? bool as ta; :? Tensor as b; :? bool as tb; _; _; _ |] when m.Name = "Gemm" ->
        let rows, inner = if ta then a.Shape.[1], a.Shape.[0] else a.Shape.[0], a.Shape.[1]
        let cols = if tb then b.Shape.[0] else b.Shape.[1]
        sprintf "%s %dx%dx%d" snake rows cols inner
    | _ -> snake

/// The interface a profiled device-training engine's operations present: both of the inner engine's.
type IProfiledDeviceNn =
    inherit INnOps
    inherit INnDeviceTraining

/// The interface a profiled engine's operations present when the inner engine fuses batch norm and pooling: both.
type IProfiledFusedNn =
    inherit INnOps
    inherit INnBatchNormPoolFusion

/// Forwards every call to `Inner` and adds it to the stage `nnStageName` names, after synchronising `Engine` so that a
/// GPU's queued kernels are counted in the call that queued them (a no-op on the managed engine).
type NnStageProxy() =
    inherit NnForwardingProxy()
    member val Engine: Engine = Unchecked.defaultof<Engine> with get, set
    member val Stages: List<string * StageTime> = List<string * StageTime>() with get, set
    /// The inner call (InvokeInner is protected, which F# does not let a closure reach).
    member private this.CallInner(m: MethodInfo, args: (obj | null) array) = this.InvokeInner(m, args)
    override this.Invoke(m: MethodInfo | null, args: (obj | null) array | null) : obj | null =
        match m with
        | null -> this.InvokeInner(m, args)
        | m ->
            let args = match args with | null -> [||] | a -> a
            let mutable result: obj | null = null
            timeStage this.Stages (nnStageName m args) (fun () ->
                result <- this.CallInner(m, args)
                if m.ReturnType = typeof<Void> then this.Engine.Synchronize())
            result

/// The profiled operations of `inner`, presenting its optional interfaces too so that a profiled step takes the same
/// paths (no engine implements both).
let private profiledNn (inner: Engine) (into: List<string * StageTime>) : INnOps =
    let make (proxy: obj) =
        let p = proxy :?> NnStageProxy
        p.Inner <- (inner.Nn :> obj)
        p.Engine <- inner
        p.Stages <- into
        proxy :?> INnOps
    match inner.Nn with
    | :? INnDeviceTraining -> make (DispatchProxy.Create<IProfiledDeviceNn, NnStageProxy>())
    | :? INnBatchNormPoolFusion -> make (DispatchProxy.Create<IProfiledFusedNn, NnStageProxy>())
    | _ -> make (DispatchProxy.Create<INnOps, NnStageProxy>())

/// `inner` with its network operations (Nn) timed as stages of `into`, everything else passed through
/// (`ForwardingEngine`): tensors are the inner engine's, and its thread count (managed) changes under the wrapper.
/// Every operation is followed by a synchronisation, so on a GPU the profile shows each kernel's own time but the step
/// runs slower than unprofiled. The one-argument constructor adds to the stages `takeStages` returns.
type ProfiledEngine(inner: Engine, into: List<string * StageTime>) =
    inherit ForwardingEngine(inner, profiledNn inner into)
    new(inner: Engine) = new ProfiledEngine(inner, stages)
