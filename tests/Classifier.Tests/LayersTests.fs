/// Finite-difference gradient checks of every layer and of the loss, on every engine in Support.engines.
module Hybrid.ClassifierTests.LayersTests

open System
open Expecto
open Hybrid.TestSupport
open Hybrid.Dsp
open Hybrid.Classifier
open Hybrid.ClassifierTests.Support

let private config = Properties.config 12
let private eps = 1e-2f

/// Moves values away from 0 so that ReLU's kink is never crossed by a finite difference.
let private awayFromZero (x: float32[]) = x |> Array.map (fun v -> (if v >= 0.0f then 1.0f else -1.0f) * (0.05f + abs v))

/// Distinct values 0.05 apart (shuffled), so max-pooling's choice never changes under a finite difference.
let private distinct (rng: Random) (x: float32[]) =
    let order = Array.init x.Length id |> Array.sortBy (fun _ -> rng.Next())
    Array.init x.Length (fun i -> float32 order[i] * 0.05f - float32 x.Length * 0.025f)

let private close (what: string) (numeric: float) (analytic: float) =
    if not (abs (numeric - analytic) <= 2e-2 + 3e-2 * max (abs numeric) (abs analytic)) then
        failwithf "%s: finite difference %g, backward %g" what numeric analytic

/// Checks dL/dx and dL/dparameters of a network of `layers` for L = sum(y * r) with random r, by central
/// differences at up to 12 random coordinates of the input and of each parameter; `inspect` sees the model first.
let gradientCheckLayers (engine: Engine) (layers: Layer list) (inShape: int[]) (batch: int) (seed: int) (prepare: Random -> float32[] -> float32[]) (inspect: Model -> unit) =
    let rng = Random seed
    let net = Net.sequential (List.ofArray inShape) layers
    let model = Model.build engine seed net
    inspect model
    let layer = layers
    let xs = uniform rng (batch * size inShape) |> prepare rng
    let r = uniform rng (batch * size net.OutputShape)
    let x = tensor engine xs (Array.append [| batch |] inShape)
    let loss () =
        let y = (model.Forward(x, true, 42UL)).ToArray()
        Array.fold2 (fun acc (a: float32) (b: float32) -> acc + float a * float b) 0.0 y r
    model.Forward(x, true, 42UL) |> ignore
    let dy = tensor engine r (Array.append [| batch |] net.OutputShape)
    let dx = (model.BackwardFrom(dy, true)).Value.ToArray()
    let grads = model.Parameters |> Array.map (fun p -> p.Grad.ToArray())
    let pick n = Array.init (min n 12) (fun _ -> rng.Next n) |> Array.distinct
    let probe (t: Tensor) (i: int) =
        let original = (t.ToArray())[i]
        let set (v: float32) = t.CopyFrom(ReadOnlySpan<float32>([| v |]), int64 i)
        set (original + eps)
        let plus = loss ()
        set (original - eps)
        let minus = loss ()
        set original
        (plus - minus) / (2.0 * float eps)
    for i in pick xs.Length do
        close (sprintf "%A dL/dx[%d]" layer i) (probe x i) (float dx[i])
    model.Parameters
    |> Array.iteri (fun k p ->
        for i in pick (int p.Value.Length) do
            close (sprintf "%A dL/d%s[%d]" layer p.Name i) (probe p.Value i) (float grads.[k].[i]))

/// Checks dL/dx and dL/dparameters of a one-layer network (see `gradientCheckLayers`).
let gradientCheck (engine: Engine) (layer: Layer) (inShape: int[]) (batch: int) (seed: int) (prepare: Random -> float32[] -> float32[]) =
    gradientCheckLayers engine [ layer ] inShape batch seed prepare ignore

/// Pairs (0.3 + d, 0.3 - d) with |d| in [0.5, 1.5) at even and odd positions: with an even last axis every BatchNorm
/// channel's mean is 0.3 and each normalised value is at least 1/3 away from 0, so a finite difference never crosses
/// the kink of a (leaky) ReLU after it.
let private pairsAwayFromMean (rng: Random) (x: float32[]) =
    let d = Array.init ((x.Length + 1) / 2) (fun _ -> float32 (0.5 + rng.NextDouble()) * (if rng.Next 2 = 0 then 1.0f else -1.0f))
    Array.init x.Length (fun i -> if i % 2 = 0 then 0.3f + d[i / 2] else 0.3f - d[i / 2])

/// Fails unless every BatchNorm of the model applies the activation after it (fused) and that activation passes through.
let private fusedPairs (expected: int) (model: Model) =
    let fused =
        model.Runtimes
        |> Array.pairwise
        |> Array.filter (fun (a, b) ->
            match a, b with
            | (:? BatchNormRuntime as norm), (:? LeakyReluRuntime as activation) -> norm.FusedSlope.IsSome && activation.Fusion = Whole
            | _ -> false)
    Expect.equal fused.Length expected "BatchNorm + activation pairs fused"

/// BatchNorm followed by an activation (fused by `Model` into one forward and one backward pass).
let private pairCases: (string * (Random -> Layer list * int[] * int)) list =
    [ "BatchNorm + ReLU 1-D", (fun rng -> [ BatchNorm(0.9, 1e-3); ReLU ], [| rng.Next(1, 4); 2 * rng.Next(1, 5) |], rng.Next(1, 4))
      "BatchNorm + LeakyReLU 2-D", (fun rng ->
          [ BatchNorm(0.99, 1e-3); LeakyReLU(0.01 + rng.NextDouble() * 0.5) ], [| rng.Next(1, 4); rng.Next(1, 4); 2 * rng.Next(1, 4) |], rng.Next(1, 4)) ]

let private padding (rng: Random) = if rng.Next 2 = 0 then Same else Valid

/// Random small layer configurations: (layer, per-sample input shape, batch, input preparation).
let private cases: (string * (Random -> Layer * int[] * int * (Random -> float32[] -> float32[]))) list =
    let keep _ x = x
    [ "Dense", (fun rng -> Layers.dense (rng.Next(1, 6)), [| rng.Next(1, 7) |], rng.Next(1, 5), keep)
      "Conv1D", (fun rng ->
          let l, k, d = rng.Next(4, 13), rng.Next(1, 4), rng.Next(1, 3)
          let p = if l < (k - 1) * d + 1 then Same else padding rng
          Conv1D(rng.Next(1, 4), k, rng.Next(1, 3), p, d, HeUniform), [| rng.Next(1, 4); l |], rng.Next(1, 4), keep)
      "Conv2D", (fun rng ->
          Layers.conv2dWith (rng.Next(1, 4)) (rng.Next(1, 4), rng.Next(1, 4)) (rng.Next(1, 3), rng.Next(1, 3)) Same,
          [| rng.Next(1, 6); rng.Next(3, 8); rng.Next(3, 8) |], rng.Next(1, 3), keep)
      "Conv2D valid", (fun rng ->
          Layers.conv2d (rng.Next(1, 4)) (rng.Next(1, 4), rng.Next(1, 4)) Valid, [| rng.Next(1, 3); rng.Next(3, 7); rng.Next(3, 7) |], rng.Next(1, 3), keep)
      "MaxPool1D", (fun rng -> Pool1D(PoolKind.Max, rng.Next(1, 4), rng.Next(1, 4), padding rng), [| rng.Next(1, 3); rng.Next(4, 10) |], rng.Next(1, 3), distinct)
      "AvgPool1D", (fun rng -> Pool1D(PoolKind.Average, rng.Next(1, 4), rng.Next(1, 4), padding rng), [| rng.Next(1, 3); rng.Next(4, 10) |], rng.Next(1, 3), keep)
      "MaxPool2D", (fun rng ->
          Pool2D(PoolKind.Max, rng.Next(1, 4), rng.Next(1, 4), rng.Next(1, 3), rng.Next(1, 3), padding rng), [| rng.Next(1, 3); rng.Next(4, 8); rng.Next(4, 8) |], rng.Next(1, 3), distinct)
      "MaxPool2D 2x2", (fun rng -> Layers.maxPool2d 2, [| rng.Next(1, 3); rng.Next(2, 8); rng.Next(2, 8) |], rng.Next(1, 3), distinct)
      "AvgPool2D", (fun rng ->
          Pool2D(PoolKind.Average, rng.Next(1, 4), rng.Next(1, 4), rng.Next(1, 3), rng.Next(1, 3), padding rng), [| rng.Next(1, 3); rng.Next(4, 8); rng.Next(4, 8) |], rng.Next(1, 3), keep)
      "GlobalAvgPool", (fun rng -> GlobalAvgPool, (if rng.Next 2 = 0 then [| rng.Next(1, 4); rng.Next(1, 6) |] else [| rng.Next(1, 4); rng.Next(1, 4); rng.Next(1, 4) |]), rng.Next(1, 3), keep)
      "BatchNorm 1-D", (fun rng -> BatchNorm(0.9, 1e-3), [| rng.Next(1, 5) |], rng.Next(3, 7), keep)
      "BatchNorm 2-D", (fun rng -> BatchNorm(0.99, 1e-3), [| rng.Next(1, 4); rng.Next(1, 4); rng.Next(2, 5) |], rng.Next(1, 4), keep)
      "Dropout", (fun rng -> Dropout(rng.NextDouble() * 0.6), [| rng.Next(1, 4); rng.Next(1, 6) |], rng.Next(1, 4), keep)
      "ReLU", (fun rng -> ReLU, [| rng.Next(1, 10) |], rng.Next(1, 4), (fun _ x -> awayFromZero x))
      "LeakyReLU", (fun rng -> LeakyReLU(0.01 + rng.NextDouble() * 0.5), [| rng.Next(1, 3); rng.Next(1, 6) |], rng.Next(1, 4), (fun _ x -> awayFromZero x))
      "Flatten", (fun rng -> Flatten, [| rng.Next(1, 3); rng.Next(1, 4); rng.Next(1, 4) |], rng.Next(1, 3), keep) ]

let private lossCheck (engine: Engine) (seed: int) =
    let rng = Random seed
    let n, k = rng.Next(1, 5), rng.Next(2, 7)
    let smoothing = float32 (rng.NextDouble() * 0.3)
    let z = uniform rng (n * k) |> Array.map ((*) 3.0f)
    let labels = tensor engine (Array.init n (fun _ -> float32 (rng.Next k))) [| n |]
    let logits = tensor engine z [| n; k |]
    let ops = engine.Nn
    let p, l, d = engine.Allocate(n, k), engine.Allocate n, engine.Allocate(n, k)
    let meanLoss () =
        ops.SoftmaxCrossEntropy(logits, labels, smoothing, p, l, null, 1.0f)
        (l.ToArray() |> Array.sumBy float) / float n
    ops.SoftmaxCrossEntropy(logits, labels, smoothing, p, l, d, 1.0f / float32 n)
    let grad = d.ToArray()
    for i in 0 .. n * k - 1 do
        let set (v: float32) = logits.CopyFrom(ReadOnlySpan<float32>([| v |]), int64 i)
        set (z[i] + eps)
        let plus = meanLoss ()
        set (z[i] - eps)
        let minus = meanLoss ()
        set z[i]
        close (sprintf "dL/dlogits[%d] (smoothing %g)" i smoothing) ((plus - minus) / (2.0 * float eps)) (float grad[i])

[<Tests>]
let tests =
    testList "Layers" [
        for engineName, create in engines do
            for name, make in cases do
                onEngine engineName <| testPropertyWithConfig config (sprintf "%s gradients match finite differences on %s" name engineName) (fun (seed: int) ->
                    use lease = create ()
                    let engine = lease.Engine
                    let rng = Random seed
                    let layer, shape, batch, prepare = make rng
                    gradientCheck engine layer shape batch seed prepare)
            for name, make in pairCases do
                onEngine engineName <| testPropertyWithConfig config (sprintf "%s, fused, gradients match finite differences on %s" name engineName) (fun (seed: int) ->
                    use lease = create ()
                    let rng = Random seed
                    let layers, shape, batch = make rng
                    gradientCheckLayers lease.Engine layers shape batch seed pairsAwayFromMean (fusedPairs 1))
            onEngine engineName <| testPropertyWithConfig config (sprintf "softmax cross-entropy gradients match finite differences on %s" engineName) (fun (seed: int) ->
                use lease = create ()
                lossCheck lease.Engine seed)
            onEngine engineName <| testCase (sprintf "BatchNorm at inference uses the running statistics on %s" engineName) (fun () ->
                use lease = create ()
                let engine = lease.Engine
                let model = Model.build engine 0 (Net.sequential [ 2 ] [ BatchNorm(0.0, 1e-3) ])
                let x = tensor engine [| 1.0f; 10.0f; 3.0f; 30.0f |] [| 2; 2 |]
                model.Forward(x, true, 0UL) |> ignore
                let y = (model.Forward(x, false, 0UL)).ToArray()
                let expected = [| 1.0f; 10.0f; 3.0f; 30.0f |] |> Array.mapi (fun i v ->
                    let mean, var = (if i % 2 = 0 then 2.0f, 1.0f else 20.0f, 100.0f)
                    (v - mean) / sqrt (var + 1e-3f))
                Hybrid.TestSupport.Assertions.allClose 1e-5 1e-5 expected y "normalised with running mean and variance")
    ]
