/// Engine equivalence of the network operations: every INnOps operation, forward and backward, gives the same results
/// on every ILGPU engine (IlgpuNn on ilgpu-cpu, opencl and cuda where present, one test list each) as on managed (ManagedNn, the reference) within 1e-4 of each output's scale, on small shapes
/// straddling the 32-wide GEMM tiles and warp sizes. Each case runs an operation on an engine from the same host
/// tensors and returns every tensor it writes.
module Hybrid.DspKernelsTests.IlgpuNnTests

open System
open Expecto
open Hybrid.Dsp
open Hybrid.Dsp.Managed
open Hybrid.TestSupport
open Hybrid.DspKernelsTests.IlgpuFixture
open ILGPU.Runtime.CPU

/// Uploads the tensors, runs f on the engine's NN operations and returns the contents of the tensors at `results`
/// (indices into the list), disposing every tensor.
let private nn (tensors: (float32[] * int[]) list) (results: int list) (f: INnOps -> Tensor[] -> unit) (e: Engine) =
    let ts = tensors |> List.map (fun (data, shape) -> upload e data shape) |> Array.ofList
    try
        f e.Nn ts
        results |> List.map (fun i -> ts.[i].ToArray())
    finally
        for t in ts do t.Dispose()

let private rnd seed (shape: int[]) = randomSignal seed (Array.fold (*) 1 shape), shape

/// Values from {-2, ..., 2} so that pooling windows hold ties (the first maximal cell must win on both engines).
let private ties seed (shape: int[]) =
    randomSignal seed (Array.fold (*) 1 shape) |> Array.map (fun v -> MathF.Round(v * 2.0f)), shape

let private positive seed (shape: int[]) = randomSignal seed (Array.fold (*) 1 shape) |> Array.map (fun v -> abs v + 0.5f), shape

/// A shape as text, e.g. [3; 33; 5].
let private fmt (shape: int[]) = "[" + String.Join("; ", shape) + "]"

let private convGeometry n ci h w co kh kw sh sw pt pl dh dw (same: bool) =
    let oh, ow =
        if same then (h + sh - 1) / sh, (w + sw - 1) / sw
        else (h + 2 * pt - dh * (kh - 1) - 1) / sh + 1, (w + 2 * pl - dw * (kw - 1) - 1) / sw + 1
    ConvGeometry(n, ci, h, w, co, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)

let private poolGeometry n c h w ph pw sh sw pt pl =
    let oh = (h + 2 * pt - ph) / sh + 1
    let ow = (w + 2 * pl - pw) / sw + 1
    PoolGeometry(n, c, h, w, ph, pw, sh, sw, pt, pl, oh, ow)

/// The geometry-taking operations with the geometry passed by reference from a local copy.
let private convForward (o: INnOps) (geometry: ConvGeometry) x w (b: Tensor | null) y =
    let g = geometry
    o.Conv2DForward(&g, x, w, b, y)

let private convBackward (o: INnOps) (geometry: ConvGeometry) x w dy (dx: Tensor | null) dw (db: Tensor | null) =
    let g = geometry
    o.Conv2DBackward(&g, x, w, dy, dx, dw, db)

let private poolForward (o: INnOps) (geometry: PoolGeometry) kind x y =
    let g = geometry
    o.Pool2DForward(&g, kind, x, y)

let private poolBackward (o: INnOps) (geometry: PoolGeometry) kind x y dy dx =
    let g = geometry
    o.Pool2DBackward(&g, kind, x, y, dy, dx)

let private cases : (string * (Engine -> float32[] list)) list =
    [
        let x = rnd 1 [| 3; 33 |]
        "Fill", nn [ x ] [ 0 ] (fun o ts -> o.Fill(ts.[0], 0.25f))
        "Copy", nn [ x; rnd 2 [| 99 |] ] [ 1 ] (fun o ts -> o.Copy(ts.[0], ts.[1]))
        "Scale", nn [ x ] [ 0 ] (fun o ts -> o.Scale(ts.[0], -1.5f))
        for len in [ 1; 8191; 8193; 20000 ] do
            $"SumOfSquares length={len}",
            fun e ->
                let data, shape = rnd 3 [| len |]
                use t = upload e data shape
                [ [| float32 (e.Nn.SumOfSquares t) |] ]

        for (m, n, k) in [ 31, 33, 32; 1, 1, 1; 33, 65, 31; 2, 40, 70 ] do
            for ta in [ false; true ] do
                for tb in [ false; true ] do
                    for (alpha, beta) in [ 1.0f, 0.0f; 0.7f, 0.5f ] do
                        let a = rnd 4 (if ta then [| k; m |] else [| m; k |])
                        let b = rnd 5 (if tb then [| n; k |] else [| k; n |])
                        $"Gemm m={m} n={n} k={k} transA={ta} transB={tb} alpha={alpha} beta={beta}",
                        nn [ a; b; rnd 6 [| m; n |] ] [ 2 ] (fun o ts -> o.Gemm(ts.[0], ta, ts.[1], tb, ts.[2], alpha, beta))

        for shape in [ [| 3; 33; 5 |]; [| 2; 31 |] ] do
            let c = shape.[1]
            $"BiasAdd shape={fmt shape}", nn [ rnd 7 shape; rnd 8 [| c |]; rnd 9 shape ] [ 2 ] (fun o ts -> o.BiasAdd(ts.[0], ts.[1], ts.[2]))
            $"BiasGrad shape={fmt shape}", nn [ rnd 7 shape; rnd 8 [| c |] ] [ 1 ] (fun o ts -> o.BiasGrad(ts.[0], ts.[1]))

        for (label, g) in
            [ "3x3 same", convGeometry 2 3 9 33 5 3 3 1 1 1 1 1 1 true
              "3x3 stride 2 valid", convGeometry 3 2 8 11 4 3 3 2 2 0 0 1 1 false
              "2x5 stride 2x3 padded", convGeometry 2 3 7 17 33 2 5 2 3 1 2 1 1 false
              "1-D k=5 dilation 2 same", convGeometry 2 4 1 33 3 1 5 1 1 0 4 1 2 false
              "1x1 pointwise", convGeometry 2 31 3 5 2 1 1 1 1 0 0 1 1 false ] do
            let xs = [| g.Batch; g.InChannels; g.InHeight; g.InWidth |]
            let ws = [| g.OutChannels; g.InChannels; g.KernelHeight; g.KernelWidth |]
            let ys = [| g.Batch; g.OutChannels; g.OutHeight; g.OutWidth |]
            $"Conv2DForward {label}", nn [ rnd 10 xs; rnd 11 ws; rnd 12 [| g.OutChannels |]; rnd 13 ys ] [ 3 ] (fun o ts -> convForward o g (ts.[0]) (ts.[1]) (ts.[2]) (ts.[3]))
            $"Conv2DForward {label} without bias", nn [ rnd 10 xs; rnd 11 ws; rnd 13 ys ] [ 2 ] (fun o ts -> convForward o g (ts.[0]) (ts.[1]) null (ts.[2]))
            $"Conv2DBackward {label}",
            nn [ rnd 10 xs; rnd 11 ws; rnd 14 ys; rnd 15 xs; rnd 16 ws; rnd 17 [| g.OutChannels |] ] [ 3; 4; 5 ]
                (fun o ts -> convBackward o g (ts.[0]) (ts.[1]) (ts.[2]) (ts.[3]) (ts.[4]) (ts.[5]))
            $"Conv2DBackward {label} without dx and dBias",
            nn [ rnd 10 xs; rnd 11 ws; rnd 14 ys; rnd 16 ws ] [ 3 ] (fun o ts -> convBackward o g (ts.[0]) (ts.[1]) (ts.[2]) null (ts.[3]) null)

        for (label, g) in
            [ "2x2 stride 2", poolGeometry 2 3 8 33 2 2 2 2 0 0
              "3x3 stride 2 pad 1", poolGeometry 2 2 9 31 3 3 2 2 1 1
              "2x3 stride 1", poolGeometry 1 3 5 7 2 3 1 1 0 0
              "1-D 3 stride 2 pad 1", poolGeometry 2 4 1 33 1 3 1 2 0 1 ] do
            for kind in [ PoolKind.Max; PoolKind.Average ] do
                let xs = [| g.Batch; g.Channels; g.InHeight; g.InWidth |]
                let ys = [| g.Batch; g.Channels; g.OutHeight; g.OutWidth |]
                $"Pool2DForward {label} {kind}", nn [ ties 18 xs; rnd 19 ys ] [ 1 ] (fun o ts -> poolForward o g kind (ts.[0]) (ts.[1]))
                $"Pool2DBackward {label} {kind}",
                nn [ ties 18 xs; rnd 19 ys; rnd 20 ys; rnd 21 xs ] [ 3 ]
                    (fun o ts ->
                        poolForward o g kind (ts.[0]) (ts.[1])
                        poolBackward o g kind (ts.[0]) (ts.[1]) (ts.[2]) (ts.[3]))

        for shape in [ [| 2; 3; 33 |]; [| 3; 2; 4; 9 |] ] do
            $"GlobalAvgPoolForward shape={fmt shape}", nn [ rnd 22 shape; rnd 23 [| shape.[0]; shape.[1] |] ] [ 1 ] (fun o ts -> o.GlobalAvgPoolForward(ts.[0], ts.[1]))
            $"GlobalAvgPoolBackward shape={fmt shape}", nn [ rnd 23 [| shape.[0]; shape.[1] |]; rnd 22 shape ] [ 1 ] (fun o ts -> o.GlobalAvgPoolBackward(ts.[0], ts.[1]))

        for shape in [ [| 4; 3; 33 |]; [| 31; 5 |]; [| 2; 2; 3; 5 |] ] do
            let c = [| shape.[1] |]
            let xs = rnd 24 shape |> fun (d, s) -> Array.map (fun v -> 3.0f * v + 1.0f) d, s
            $"BatchNormTrainingForward shape={fmt shape}",
            nn [ xs; rnd 25 c; rnd 26 c; rnd 27 c; positive 28 c; rnd 29 c; rnd 30 c; rnd 31 shape ] [ 3; 4; 5; 6; 7 ]
                (fun o ts -> o.BatchNormTrainingForward(ts.[0], ts.[1], ts.[2], 0.9f, 1e-3f, ts.[3], ts.[4], ts.[5], ts.[6], ts.[7]))
            $"BatchNormInferenceForward shape={fmt shape}",
            nn [ xs; rnd 25 c; rnd 26 c; rnd 27 c; positive 28 c; rnd 31 shape ] [ 5 ]
                (fun o ts -> o.BatchNormInferenceForward(ts.[0], ts.[1], ts.[2], ts.[3], ts.[4], 1e-3f, ts.[5]))
            $"BatchNormBackward shape={fmt shape}",
            nn [ xs; rnd 25 c; rnd 26 c; rnd 27 c; positive 28 c; rnd 29 c; rnd 30 c; rnd 31 shape; rnd 32 shape; rnd 33 shape; rnd 34 c; rnd 35 c ] [ 9; 10; 11 ]
                (fun o ts ->
                    o.BatchNormTrainingForward(ts.[0], ts.[1], ts.[2], 0.99f, 1e-3f, ts.[3], ts.[4], ts.[5], ts.[6], ts.[7])
                    o.BatchNormBackward(ts.[0], ts.[1], ts.[5], ts.[6], ts.[8], ts.[9], ts.[10], ts.[11]))

            for slope in [ 0.0f; 0.2f ] do
                $"BatchNormLeakyReluTrainingForward shape={fmt shape} slope={slope}",
                nn [ xs; rnd 25 c; rnd 26 c; rnd 27 c; positive 28 c; rnd 29 c; rnd 30 c; rnd 31 shape ] [ 3; 4; 5; 6; 7 ]
                    (fun o ts -> o.BatchNormLeakyReluTrainingForward(ts.[0], ts.[1], ts.[2], slope, 0.9f, 1e-3f, ts.[3], ts.[4], ts.[5], ts.[6], ts.[7]))
                $"BatchNormLeakyReluInferenceForward shape={fmt shape} slope={slope}",
                nn [ xs; rnd 25 c; rnd 26 c; rnd 27 c; positive 28 c; rnd 31 shape ] [ 5 ]
                    (fun o ts -> o.BatchNormLeakyReluInferenceForward(ts.[0], ts.[1], ts.[2], slope, ts.[3], ts.[4], 1e-3f, ts.[5]))
                $"BatchNormLeakyReluBackward shape={fmt shape} slope={slope}",
                nn [ xs; rnd 25 c; rnd 26 c; rnd 27 c; positive 28 c; rnd 29 c; rnd 30 c; rnd 31 shape; rnd 32 shape; rnd 33 shape; rnd 34 c; rnd 35 c ] [ 9; 10; 11 ]
                    (fun o ts ->
                        o.BatchNormLeakyReluTrainingForward(ts.[0], ts.[1], ts.[2], slope, 0.99f, 1e-3f, ts.[3], ts.[4], ts.[5], ts.[6], ts.[7])
                        o.BatchNormLeakyReluBackward(ts.[0], ts.[7], slope, ts.[1], ts.[5], ts.[6], ts.[8], ts.[9], ts.[10], ts.[11]))

        for rate in [ 0.0f; 0.3f; 0.9f ] do
            $"DropoutForward rate={rate}", nn [ rnd 36 [| 3; 33 |]; rnd 37 [| 3; 33 |]; rnd 38 [| 3; 33 |] ] [ 1; 2 ] (fun o ts -> o.DropoutForward(ts.[0], rate, 12345UL, ts.[1], ts.[2]))
        "DropoutBackward", nn [ rnd 36 [| 3; 33 |]; rnd 37 [| 3; 33 |]; rnd 38 [| 3; 33 |] ] [ 2 ] (fun o ts -> o.DropoutBackward(ts.[0], ts.[1], ts.[2]))

        for slope in [ 0.0f; 0.1f ] do
            $"LeakyReluForward slope={slope}", nn [ rnd 39 [| 2; 33 |]; rnd 40 [| 2; 33 |] ] [ 1 ] (fun o ts -> o.LeakyReluForward(ts.[0], slope, ts.[1]))
            $"LeakyReluBackward slope={slope}",
            nn [ rnd 39 [| 2; 33 |]; rnd 40 [| 2; 33 |]; rnd 41 [| 2; 33 |] ] [ 2 ]
                (fun o ts ->
                    o.LeakyReluForward(ts.[0], slope, ts.[0])
                    o.LeakyReluBackward(ts.[0], slope, ts.[1], ts.[2]))

        for (n, k) in [ 5, 10; 33, 3 ] do
            let labels = Array.init n (fun i -> float32 ((i * 7) % k)), [| n |]
            let logits = rnd 42 [| n; k |] |> fun (d, s) -> Array.map (fun v -> 8.0f * v) d, s
            for smoothing in [ 0.0f; 0.1f ] do
                $"SoftmaxCrossEntropy n={n} k={k} smoothing={smoothing}",
                nn [ logits; labels; rnd 43 [| n; k |]; rnd 44 [| n |]; rnd 45 [| n; k |] ] [ 2; 3; 4 ]
                    (fun o ts -> o.SoftmaxCrossEntropy(ts.[0], ts.[1], smoothing, ts.[2], ts.[3], ts.[4], 1.0f / float32 n))
            $"SoftmaxCrossEntropy n={n} k={k} without gradient",
            nn [ logits; labels; rnd 43 [| n; k |]; rnd 44 [| n |] ] [ 2; 3 ] (fun o ts -> o.SoftmaxCrossEntropy(ts.[0], ts.[1], 0.0f, ts.[2], ts.[3], null, 1.0f))

        for (momentum, nesterov, decay) in [ 0.0f, false, 0.0f; 0.9f, false, 1e-2f; 0.9f, true, 1e-2f ] do
            $"SgdUpdate momentum={momentum} nesterov={nesterov} weight_decay={decay}",
            nn [ rnd 46 [| 5; 33 |]; rnd 47 [| 5; 33 |]; rnd 48 [| 5; 33 |] ] [ 0; 2 ] (fun o ts -> o.SgdUpdate(ts.[0], ts.[1], ts.[2], 0.05f, momentum, nesterov, decay))
        for decoupled in [ false; true ] do
            $"AdamUpdate decoupled={decoupled}",
            nn [ rnd 46 [| 5; 33 |]; rnd 47 [| 5; 33 |]; rnd 48 [| 5; 33 |]; positive 49 [| 5; 33 |] ] [ 0; 2; 3 ]
                (fun o ts ->
                    for step in 1 .. 3 do o.AdamUpdate(ts.[0], ts.[1], ts.[2], ts.[3], 1e-2f, 0.9f, 0.999f, 1e-7f, 1e-2f, decoupled, step))
    ]

/// The INnOps operations the cases cover, to keep the list complete when the interface grows.
let private covered = cases |> List.map (fun (name, _) -> name.Split(' ').[0]) |> Set.ofList

/// Runs a case on managed and on `other` and compares each result within 1e-4 of its scale.
let private equivalentOn (other: Engine) (name: string) (run: Engine -> float32[] list) =
    use managed = new ManagedEngine()
    let expected = run managed
    let actual = run other
    Expect.equal actual.Length expected.Length "result count"
    List.iteri2 (fun i (ex: float32[]) (ac: float32[]) ->
        let scale = ex |> Array.fold (fun m v -> max m (abs (float v))) 1.0
        Hybrid.TestSupport.Assertions.allClose 1e-4 (1e-4 * scale) ex ac $"{name} result {i}") expected actual


let private propertyConfig = Properties.config 25

/// A random small convolution (any stride, dilation, asymmetric padding) and its forward and backward case.
let private randomConv (seed: int) =
    let rng = Random seed
    let n, ci, h, w, co = rng.Next(1, 4), rng.Next(1, 6), rng.Next(1, 9), rng.Next(1, 36), rng.Next(1, 36)
    let kh, kw, sh, sw, dh, dw = rng.Next(1, 4), rng.Next(1, 4), rng.Next(1, 3), rng.Next(1, 4), rng.Next(1, 3), rng.Next(1, 3)
    let pt, pl = rng.Next(0, 3), rng.Next(0, 3)
    let oh = max 1 ((h + 2 * pt - ((kh - 1) * dh + 1)) / sh + 1)
    let ow = max 1 ((w + 2 * pl - ((kw - 1) * dw + 1)) / sw + 1)
    let g = ConvGeometry(n, ci, h, w, co, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
    let xs, ws, ys = [| n; ci; h; w |], [| co; ci; kh; kw |], [| n; co; oh; ow |]
    $"{g}",
    nn [ rnd seed xs; rnd (seed + 1) ws; rnd (seed + 2) [| co |]; rnd (seed + 3) ys; rnd (seed + 4) ys; rnd (seed + 5) xs; rnd (seed + 6) ws; rnd (seed + 7) [| co |] ] [ 3; 5; 6; 7 ]
        (fun o ts ->
            convForward o g ts.[0] ts.[1] ts.[2] ts.[3]
            convBackward o g ts.[0] ts.[1] ts.[4] ts.[5] ts.[6] ts.[7])

/// A random small pooling (max with ties, or average; any stride and padding) forward and backward.
let private randomPool (seed: int) =
    let rng = Random seed
    let n, c, h, w = rng.Next(1, 3), rng.Next(1, 4), rng.Next(1, 9), rng.Next(1, 36)
    let ph, pw, sh, sw = rng.Next(1, min h 3 + 1), rng.Next(1, min w 4 + 1), rng.Next(1, 3), rng.Next(1, 4)
    let pt, pl = rng.Next(0, ph), rng.Next(0, pw)
    let g = poolGeometry n c h w ph pw sh sw pt pl
    let kind = if rng.Next 2 = 0 then PoolKind.Max else PoolKind.Average
    let xs, ys = [| n; c; h; w |], [| n; c; g.OutHeight; g.OutWidth |]
    $"{g} {kind}",
    nn [ ties seed xs; rnd (seed + 1) ys; rnd (seed + 2) ys; rnd (seed + 3) xs ] [ 1; 3 ]
        (fun o ts ->
            poolForward o g kind ts.[0] ts.[1]
            poolBackward o g kind ts.[0] ts.[1] ts.[2] ts.[3])

/// The device training operations (INnDeviceTraining) of an ILGPU engine.
let private device (e: Engine) = e.Nn :?> INnDeviceTraining

/// Row argmax (first maximum) of probabilities [n, k] equal to the label: 1, else 0 (the managed Trainer's count).
let private correctRows (p: float32[]) (labels: float32[]) k =
    labels |> Array.mapi (fun i l ->
        let mutable best = 0
        for j in 1 .. k - 1 do
            if p[i * k + j] > p[i * k + best] then best <- j
        if best = int l then 1.0f else 0.0f)

/// Fused cases: (name, the managed engine's INnOps composition, the same on an ILGPU engine through one fused operation).
/// Each returns every tensor it writes, in the same order.
let private fusedCases : (string * (Engine -> float32[] list) * (Engine -> float32[] list)) list =
    [
        for (shape, slope) in [ [| 3; 33 |], 0.0f; [| 2; 5; 7 |], 0.1f; [| 4; 3; 2; 9 |], 0.0f ] do
            let x = rnd 70 shape
            let bias = rnd 71 [| shape.[1] |]
            $"BiasLeakyRelu shape={fmt shape} slope={slope}",
            nn [ x; bias; rnd 72 shape ] [ 2 ] (fun o ts -> o.BiasAdd(ts.[0], ts.[1], ts.[2]); o.LeakyReluForward(ts.[2], slope, ts.[2])),
            nn [ x; bias; rnd 72 shape ] [ 2 ] (fun o ts -> (o :?> INnDeviceTraining).BiasLeakyRelu(ts.[0], ts.[1], slope, ts.[2]))

        for (n, k) in [ 5, 10; 33, 3; 1, 1 ] do
            let labels = Array.init n (fun i -> float32 ((i * 7) % k)), [| n |]
            let logits = rnd 73 [| n; k |] |> fun (d, s) -> Array.map (fun v -> 8.0f * v) d, s
            for smoothing in [ 0.0f; 0.05f ] do
                $"SoftmaxCrossEntropyRows n={n} k={k} smoothing={smoothing}",
                (fun (e: Engine) ->
                    match nn [ logits; labels; rnd 74 [| n; k |]; rnd 75 [| n |]; rnd 76 [| n; k |] ] [ 2; 3; 4 ]
                              (fun o ts -> o.SoftmaxCrossEntropy(ts.[0], ts.[1], smoothing, ts.[2], ts.[3], ts.[4], 1.0f / float32 n)) e with
                    | [ p; losses; d ] -> [ d; losses; correctRows p (fst labels) k; Array.zeroCreate DeviceStatus.Length ]
                    | other -> other),
                nn [ logits; labels; rnd 76 [| n; k |]; rnd 75 [| n |]; rnd 77 [| n |]; (Array.zeroCreate DeviceStatus.Length, [| DeviceStatus.Length |]) ] [ 2; 3; 4; 5 ]
                    (fun o ts -> (o :?> INnDeviceTraining).SoftmaxCrossEntropyRows(ts.[0], ts.[1], smoothing, ts.[2], 1.0f / float32 n, ts.[3], ts.[4], ts.[5]))

        // Three parameters of a small network, updated per parameter on managed and in one flat launch on the ILGPU engine.
        let shapes = [ [| 4; 3; 3; 3 |]; [| 4 |]; [| 33; 10 |] ]
        let sizes = shapes |> List.map (Array.fold (*) 1)
        let total = List.sum sizes
        let parts (seed: int) = shapes |> List.mapi (fun i s -> rnd (seed + i) s)
        let whole (seed: int) = parts seed |> List.map fst |> Array.concat, [| total |]
        let positives (seed: int) = shapes |> List.mapi (fun i s -> positive (seed + i) s)
        let perParameter (slots: int) (step: INnOps -> Tensor[] -> unit) (clip: float option) (e: Engine) =
            // Tensors: 3 values, 3 gradients, then 3 per slot; results: values then slots, concatenated like the flat buffer.
            let tensors = parts 80 @ parts 83 @ (if slots = 2 then parts 86 @ positives 89 else parts 86)
            let results = [ 0; 1; 2 ] @ [ for s in 0 .. slots - 1 do yield! [ 6 + 3 * s; 7 + 3 * s; 8 + 3 * s ] ]
            nn tensors results (fun o ts ->
                for _ in 1 .. 3 do
                    match clip with
                    | Some c ->
                        let norm = sqrt (ts.[3..5] |> Array.sumBy (fun g -> o.SumOfSquares g))
                        if norm > c then (for g in ts.[3..5] do o.Scale(g, float32 (c / norm)))
                    | None -> ()
                    step o ts) e
            |> List.chunkBySize 3 |> List.map Array.concat
        let flat (slots: int) (step: INnDeviceTraining -> Tensor[] -> Tensor -> unit) (clip: float option) (e: Engine) =
            let tensors = [ whole 80; whole 83; whole 86 ] @ (if slots = 2 then [ (positives 89 |> List.map fst |> Array.concat), [| total |] ] else [])
                          @ [ Array.zeroCreate DeviceStatus.Length, [| DeviceStatus.Length |] ]
            let status = tensors.Length - 1
            nn tensors ([ 0 ] @ [ 2 .. 1 + slots ]) (fun o ts ->
                let d = o :?> INnDeviceTraining
                for _ in 1 .. 3 do
                    clip |> Option.iter (fun c -> d.ClipScale(ts.[1], c, ts.[status]))
                    step d ts ts.[status]) e
        for clip in [ None; Some 0.5 ] do
            for decoupled in [ false; true ] do
                let stepCount = ref 0
                $"""AdamUpdateGuarded decoupled={decoupled} clip={defaultArg (Option.map string clip) "none"}""",
                perParameter 2 (fun o ts ->
                    stepCount.Value <- stepCount.Value + 1
                    for i in 0 .. 2 do
                        o.AdamUpdate(ts.[i], ts.[3 + i], ts.[6 + i], ts.[9 + i], 1e-2f, 0.9f, 0.999f, 1e-7f, 1e-2f, decoupled, ((stepCount.Value - 1) % 3) + 1)) clip,
                let deviceSteps = ref 0
                flat 2 (fun d ts status ->
                    deviceSteps.Value <- deviceSteps.Value + 1
                    d.AdamUpdateGuarded(ts.[0], ts.[1], ts.[2], ts.[3], 1e-2f, 0.9f, 0.999f, 1e-7f, 1e-2f, decoupled, ((deviceSteps.Value - 1) % 3) + 1, status, clip.IsSome)) clip
            $"""SgdUpdateGuarded clip={defaultArg (Option.map string clip) "none"}""",
            perParameter 1 (fun o ts -> for i in 0 .. 2 do o.SgdUpdate(ts.[i], ts.[3 + i], ts.[6 + i], 0.05f, 0.9f, true, 1e-2f)) clip,
            flat 1 (fun d ts status -> d.SgdUpdateGuarded(ts.[0], ts.[1], ts.[2], 0.05f, 0.9f, true, 1e-2f, status, clip.IsSome)) clip
    ]

/// The INnDeviceTraining operations the fused cases and the flag tests cover.
let private fusedCovered =
    (fusedCases |> List.map (fun (name, _, _) -> name.Split(' ').[0])) @ [ "View"; "ClipScale"; "FlagNonFinite" ] |> Set.ofList

/// The gradient and the row losses written by SoftmaxCrossEntropyRows on an ILGPU engine.
let private rowsLoss (e: Engine) (logits: float32[]) (labels: float32[]) n k smoothing =
    nn [ (logits, [| n; k |]); (labels, [| n |]); rnd 1 [| n; k |]; rnd 2 [| n |]; rnd 3 [| n |]; (Array.zeroCreate DeviceStatus.Length, [| DeviceStatus.Length |]) ] [ 2; 3 ]
        (fun o ts -> (o :?> INnDeviceTraining).SoftmaxCrossEntropyRows(ts.[0], ts.[1], smoothing, ts.[2], 1.0f, ts.[3], ts.[4], ts.[5])) e

/// The tests of one ILGPU engine (ilgpu-cpu, opencl, cuda), each named after it.
let private onEngine (engineName: string) (engine: Lazy<Engine>) =
    let equivalent name run = equivalentOn engine.Value name run
    let device () = device engine.Value
    let rowsLoss logits labels n k smoothing = rowsLoss engine.Value logits labels n k smoothing
    [
        for (name, managedRun, deviceRun) in fusedCases do
            test $"{name} on {engineName} equals the managed engine's unfused operations within 1e-4" {
                use managed = new ManagedEngine()
                let expected = managedRun managed
                let actual = deviceRun engine.Value
                Expect.equal actual.Length expected.Length "result count"
                List.iteri2 (fun i (ex: float32[]) (ac: float32[]) ->
                    let scale = ex |> Array.fold (fun m v -> max m (abs (float v))) 1.0
                    Hybrid.TestSupport.Assertions.allClose 1e-4 (1e-4 * scale) ex ac $"{name} result {i}") expected actual
            }

        for shape in [ [| 4; 3; 33 |]; [| 31; 5 |]; [| 2; 2; 3; 5 |] ] do
            for slope in [ 0.0f; 0.2f ] do
                test $"BatchNorm with leaky ReLU fused equals BatchNorm then LeakyRelu bit for bit on {engineName}, shape={fmt shape} slope={slope}" {
                    let c = [| shape.[1] |]
                    let xs = rnd 24 shape |> fun (d, s) -> Array.map (fun v -> 3.0f * v + 1.0f) d, s
                    let tensors = [ xs; rnd 25 c; rnd 26 c; rnd 27 c; positive 28 c; rnd 29 c; rnd 30 c; rnd 31 shape; rnd 32 shape; rnd 33 shape; rnd 34 c; rnd 35 c; rnd 36 shape ]
                    // Forward (training, then inference from the updated running statistics) and backward, each result kept.
                    let unfused =
                        nn tensors [ 3; 4; 5; 6; 7; 12; 9; 10; 11 ]
                            (fun o ts ->
                                o.BatchNormTrainingForward(ts.[0], ts.[1], ts.[2], 0.9f, 1e-3f, ts.[3], ts.[4], ts.[5], ts.[6], ts.[7])
                                o.LeakyReluForward(ts.[7], slope, ts.[7])
                                o.LeakyReluBackward(ts.[7], slope, ts.[8], ts.[8])
                                o.BatchNormBackward(ts.[0], ts.[1], ts.[5], ts.[6], ts.[8], ts.[9], ts.[10], ts.[11])
                                o.BatchNormInferenceForward(ts.[0], ts.[1], ts.[2], ts.[3], ts.[4], 1e-3f, ts.[12])
                                o.LeakyReluForward(ts.[12], slope, ts.[12])) engine.Value
                    let fused =
                        nn tensors [ 3; 4; 5; 6; 7; 12; 9; 10; 11 ]
                            (fun o ts ->
                                o.BatchNormLeakyReluTrainingForward(ts.[0], ts.[1], ts.[2], slope, 0.9f, 1e-3f, ts.[3], ts.[4], ts.[5], ts.[6], ts.[7])
                                o.BatchNormLeakyReluBackward(ts.[0], ts.[7], slope, ts.[1], ts.[5], ts.[6], ts.[8], ts.[9], ts.[10], ts.[11])
                                o.BatchNormLeakyReluInferenceForward(ts.[0], ts.[1], ts.[2], slope, ts.[3], ts.[4], 1e-3f, ts.[12])) engine.Value
                    let names = [ "running mean"; "running variance"; "saved mean"; "saved inverse std"; "training output"; "inference output"; "dx"; "dGamma"; "dBeta" ]
                    List.iteri2 (fun i (ex: float32[]) (ac: float32[]) ->
                        for j in 0 .. ex.Length - 1 do
                            if BitConverter.SingleToInt32Bits ex.[j] <> BitConverter.SingleToInt32Bits ac.[j] then
                                failtestf "%s[%d]: unfused %.9g, fused %.9g (not bit-identical)" (List.item i names) j ex.[j] ac.[j]) unfused fused
                }

        test $"SoftmaxCrossEntropyRows on {engineName} flags a non-finite loss and an invalid label on the device instead of reading out of bounds" {
            let run (logits: float32[]) (labels: float32[]) =
                nn [ (logits, [| 3; 4 |]); (labels, [| 3 |]); rnd 1 [| 3; 4 |]; rnd 2 [| 3 |]; rnd 3 [| 3 |]; (Array.zeroCreate DeviceStatus.Length, [| DeviceStatus.Length |]) ] [ 3; 5 ]
                    (fun o ts -> (o :?> INnDeviceTraining).SoftmaxCrossEntropyRows(ts.[0], ts.[1], 0.0f, ts.[2], 1.0f, ts.[3], ts.[4], ts.[5])) engine.Value
            let good = Array.init 12 (fun i -> float32 (i % 5) * 0.3f)
            match run good [| 0.0f; 3.0f; 1.0f |] with
            | [ losses; status ] ->
                Expect.isTrue (losses |> Array.forall Single.IsFinite) "finite losses"
                Expect.equal status.[DeviceStatus.LossNotFinite] 0.0f "no flag"
            | other -> failtestf "unexpected %A" other
            let withNaN = Array.copy good
            withNaN.[5] <- nanf
            match run withNaN [| 0.0f; 3.0f; 1.0f |] with
            | [ losses; status ] ->
                Expect.isTrue (Single.IsNaN losses.[1]) "the NaN row's loss"
                Expect.equal status.[DeviceStatus.LossNotFinite] 1.0f "flag set"
            | other -> failtestf "unexpected %A" other
            match run good [| 0.0f; 7.0f; 1.5f |] with
            | [ losses; status ] ->
                Expect.isTrue (Single.IsNaN losses.[1] && Single.IsNaN losses.[2]) "labels 7 and 1.5 of 4 classes give NaN"
                Expect.isTrue (Single.IsFinite losses.[0]) "a valid row is unaffected"
                Expect.equal status.[DeviceStatus.LossNotFinite] 1.0f "flag set"
            | other -> failtestf "unexpected %A" other
        }

        test $"a guarded update on {engineName} is skipped while the loss flag is set, and FlagNonFinite sets its slot only for NaN or infinity" {
            let p, g, m, v = rnd 90 [| 40 |], rnd 91 [| 40 |], rnd 92 [| 40 |], positive 93 [| 40 |]
            let flagged = Array.zeroCreate DeviceStatus.Length
            flagged.[DeviceStatus.LossNotFinite] <- 1.0f
            let after = nn [ p; g; m; v; (flagged, [| DeviceStatus.Length |]) ] [ 0; 2; 3 ] (fun o ts ->
                            let d = o :?> INnDeviceTraining
                            d.AdamUpdateGuarded(ts.[0], ts.[1], ts.[2], ts.[3], 0.1f, 0.9f, 0.999f, 1e-7f, 0.0f, false, 1, ts.[4], false)
                            d.SgdUpdateGuarded(ts.[0], ts.[1], ts.[2], 0.1f, 0.9f, false, 0.0f, ts.[4], false)) engine.Value
            Expect.equal after [ fst p; fst m; fst v ] "nothing changed"
            let flag (values: float32[]) =
                (nn [ (values, [| values.Length |]); (Array.zeroCreate DeviceStatus.Length, [| DeviceStatus.Length |]) ] [ 1 ]
                    (fun o ts -> (o :?> INnDeviceTraining).FlagNonFinite(ts.[0], ts.[1], DeviceStatus.WeightsNotFinite)) engine.Value).Head
            Expect.equal (flag [| 1.0f; -3.0e38f; 0.0f |]).[DeviceStatus.WeightsNotFinite] 0.0f "finite"
            Expect.equal (flag [| 1.0f; infinityf; 0.0f |]).[DeviceStatus.WeightsNotFinite] 1.0f "infinity"
            Expect.equal (flag [| nanf; 1.0f |]).[DeviceStatus.WeightsNotFinite] 1.0f "NaN"
            Expect.equal (flag [| nanf |]).[DeviceStatus.LossNotFinite] 0.0f "other slots untouched"
        }

        test $"ClipScale on {engineName} writes maxNorm / norm above the norm and 1 below it" {
            let data = Array.init 20000 (fun i -> if i % 2 = 0 then 0.01f else -0.02f)
            let norm = sqrt (data |> Array.sumBy (fun v -> float v * float v))
            let scale maxNorm =
                (nn [ (data, [| data.Length |]); (Array.zeroCreate DeviceStatus.Length, [| DeviceStatus.Length |]) ] [ 1 ]
                    (fun o ts -> (o :?> INnDeviceTraining).ClipScale(ts.[0], maxNorm, ts.[1])) engine.Value).Head.[DeviceStatus.GradientScale]
            Expect.floatClose Accuracy.high (float (scale (norm / 4.0))) 0.25 "a quarter"
            Expect.equal (scale (norm * 2.0)) 1.0f "no clipping below the limit"
            throwsArgument "non-positive norm" [ "maxNorm" ] (fun () -> scale 0.0 |> ignore)
        }

        test $"View on {engineName} shares storage at an offset and refuses a range outside it" {
            let e = engine.Value
            let d = device ()
            use whole = e.FromHost(ReadOnlySpan<float32>(Array.init 10 float32), [| 10 |])
            let part = d.View(whole, 4L, 2, 3)
            Expect.equal (part.ToArray()) [| 4.0f .. 9.0f |] "elements 4..9"
            e.Nn.Fill(part, -1.0f)
            Expect.equal (whole.ToArray()) (Array.append [| 0.0f .. 3.0f |] (Array.create 6 -1.0f)) "written through the view"
            Expect.throwsT<ArgumentOutOfRangeException> (fun () -> d.View(whole, 5L, 6) |> ignore) "past the end"
        }

        testPropertyWithConfig propertyConfig $"SoftmaxCrossEntropyRows' gradient on {engineName} is the derivative of its summed loss (central differences)" (fun (seed: int) ->
            let rng = Random(abs (seed % 100000))
            let n, k = rng.Next(1, 5), rng.Next(2, 7)
            let smoothing = if rng.Next 2 = 0 then 0.0f else 0.1f
            let logits = Array.init (n * k) (fun _ -> float32 (rng.NextDouble() * 4.0 - 2.0))
            let labels = Array.init n (fun _ -> float32 (rng.Next k))
            let gradient = (rowsLoss logits labels n k smoothing).Head
            let h = 1e-2f
            for i in 0 .. n * k - 1 do
                let at (delta: float32) =
                    let z = Array.copy logits
                    z.[i] <- z.[i] + delta
                    (rowsLoss z labels n k smoothing).[1] |> Array.sumBy float
                let numeric = (at h - at -h) / (2.0 * float h)
                Expect.floatClose { absolute = 2e-3; relative = 1e-2 } (float gradient.[i]) numeric $"d loss / d logit {i} (n={n} k={k})")

        testPropertyWithConfig propertyConfig $"BiasLeakyRelu on {engineName} equals bias then leaky ReLU on random shapes" (fun (seed: int) ->
            let rng = Random(abs (seed % 100000))
            let shape = [| rng.Next(1, 5); rng.Next(1, 40); rng.Next(1, 9) |]
            let slope = if rng.Next 2 = 0 then 0.0f else 0.2f
            let x, bias = rnd seed shape, rnd (seed + 1) [| shape.[1] |]
            use managed = new ManagedEngine()
            let expected = nn [ x; bias; rnd 5 shape ] [ 2 ] (fun o ts -> o.BiasAdd(ts.[0], ts.[1], ts.[2]); o.LeakyReluForward(ts.[2], slope, ts.[2])) managed
            let actual = nn [ x; bias; rnd 5 shape ] [ 2 ] (fun o ts -> (o :?> INnDeviceTraining).BiasLeakyRelu(ts.[0], ts.[1], slope, ts.[2])) engine.Value
            Expect.equal actual expected "bit-identical (the same two float operations)")

        test $"CompileKernels on {engineName} loads every network kernel an operation launches (what a GPU engine compiles when created)" {
            let e = engine.Value :?> Hybrid.Dsp.Ilgpu.IlgpuEngine
            e.CompileKernels()
            let before = Set.ofSeq e.LoadedKernels
            Expect.isGreaterThanOrEqual (before |> Set.filter (fun k -> k.StartsWith "nn.") |> Set.count) 20 "network kernels loaded"
            // One case of every operation: none may need a kernel that CompileKernels did not load.
            for (_, run) in cases |> List.distinctBy (fun (name, _) -> name.Split(' ').[0]) do
                run e |> ignore
            for (_, _, run) in fusedCases |> List.distinctBy (fun (name, _, _) -> name.Split(' ').[0]) do
                run e |> ignore
            use g = e.Allocate 9000
            use status = e.Allocate DeviceStatus.Length
            (device ()).ClipScale(g, 1.0, status)
            (device ()).FlagNonFinite(g, status, DeviceStatus.WeightsNotFinite)
            Expect.isEmpty (Set.difference (Set.ofSeq e.LoadedKernels) before) "kernels first loaded by an operation after CompileKernels"
        }

        test $"gives.Nn the {engineName} engine its kernels, once" {
            let ops = engine.Value.Nn
            Expect.isTrue (obj.ReferenceEquals(ops.Engine, engine.Value)) "engine"
            Expect.isTrue (obj.ReferenceEquals(ops, engine.Value.Nn)) "cached"
        }

        test $"dropout on {engineName} draws the same mask bit for bit as the managed engine" {
            use managed = new ManagedEngine()
            let run (e: Engine) = nn [ rnd 50 [| 7; 33 |]; rnd 51 [| 7; 33 |]; rnd 52 [| 7; 33 |] ] [ 1 ] (fun o ts -> o.DropoutForward(ts.[0], 0.4f, 987654321UL, ts.[1], ts.[2])) e
            let expected, actual = (run managed).Head, (run engine.Value).Head
            Expect.equal (Array.map BitConverter.SingleToInt32Bits actual) (Array.map BitConverter.SingleToInt32Bits expected) "mask"
            Expect.isTrue (Array.exists ((=) 0.0f) actual && Array.exists ((<>) 0.0f) actual) "the mask both drops and keeps"
        }

        test $"operations on {engineName} check their tensors' shapes and engines" {
            let e = engine.Value
            let o = e.Nn
            use a = e.Allocate(3, 4)
            use b = e.Allocate(5, 6)
            use c = e.Allocate(3, 6)
            throwsArgument "gemm inner sizes" [ "b"; "4 rows" ] (fun () -> o.Gemm(a, false, b, false, c))
            use managed = new ManagedEngine()
            use foreign = managed.Allocate(3, 4)
            throwsArgument "foreign tensor" [ "managed"; engineName ] (fun () -> o.Scale(foreign, 2.0f))
            use labels = e.FromHost(ReadOnlySpan<float32>([| 0.0f; 7.0f; 1.0f |]), [| 3 |])
            use p = e.Allocate(3, 4)
            use l = e.Allocate(3)
            throwsArgument "label out of range" [ "labels"; "element 1" ] (fun () -> o.SoftmaxCrossEntropy(a, labels, 0.0f, p, l, null, 1.0f))
        }

        test $"GEMM on {engineName} is deterministic run to run" {
            let run () = nn [ rnd 53 [| 45; 70 |]; rnd 54 [| 70; 37 |]; rnd 55 [| 45; 37 |] ] [ 2 ] (fun o ts -> o.Gemm(ts.[0], false, ts.[1], false, ts.[2])) engine.Value
            Expect.equal (run ()) (run ()) "same bits"
        }

        testPropertyWithConfig propertyConfig $"convolution forward and backward on {engineName} agree with managed on random geometries" (fun (seed: int) ->
            let name, run = randomConv (abs (seed % 100000))
            equivalent name run)

        testPropertyWithConfig propertyConfig $"pooling forward and backward on {engineName} agree with managed on random geometries" (fun (seed: int) ->
            let name, run = randomPool (abs (seed % 100000))
            equivalent name run)

        for (name, run) in cases do
            test $"{name} gives the same result on {engineName} as on managed within 1e-4" { equivalent name run }
    ]

[<Tests>]
let tests =
    ilgpuList "IlgpuNn" [
        test "the equivalence cases cover every operation of INnOps" {
            let ops = typeof<INnOps>.GetMethods() |> Array.filter (fun m -> not m.IsSpecialName) |> Array.map (fun m -> m.Name) |> Set.ofArray
            Expect.isEmpty (Set.difference ops covered) "operations without an equivalence case"
        }

        test "the fused cases cover every operation of INnDeviceTraining" {
            let ops = typeof<INnDeviceTraining>.GetMethods() |> Array.filter (fun m -> not m.IsSpecialName) |> Array.map (fun m -> m.Name) |> Set.ofArray
            Expect.isEmpty (Set.difference ops fusedCovered) "operations without a test"
        }

        for engineName, engine in ilgpuEngines do
            testList engineName (onEngine engineName engine)

        for engineName in ilgpuEngines |> List.map fst |> List.filter (fun n -> n <> "cuda") do
          test $"the register-blocked GEMM of 256-thread groups agrees with managed on {engineName}, convolutions included" {
            // A CPU accelerator shaped like a GPU (32-thread warps, 8 warps per group), or the OpenCL CPU device with
            // 256-thread groups (it runs 64 by default), selects the kernel GPUs run.
            use wide =
                if engineName = "opencl" then
                    let context = Hybrid.Dsp.Ilgpu.OpenClPlatform.CreateContext()
                    let struct (index, failure) = Hybrid.Dsp.Ilgpu.OpenClPlatform.Pick(context, true)
                    if index < 0 then failtest failure
                    new Hybrid.Dsp.Ilgpu.IlgpuEngine("opencl", context, ILGPU.Runtime.OpenCL.CLContextExtensions.CreateCLAccelerator(context, index), 256)
                else
                    let context = ILGPU.Context.Create(fun b -> CPUContextExtensions.CPU(b, CPUDevice(32, 8, 1)) |> ignore)
                    new Hybrid.Dsp.Ilgpu.IlgpuEngine("ilgpu-cpu", context, CPUContextExtensions.CreateCPUAccelerator(context, 0))
            Expect.isTrue (Hybrid.Dsp.Ilgpu.NnGemmKernels.UsesBlocked wide) "256-thread groups select the blocked kernel"
            let check = equivalentOn wide
            for (m, n, k) in [ 65, 63, 17; 1, 70, 33 ] do
                for ta in [ false; true ] do
                    for tb in [ false; true ] do
                        let a = rnd 56 (if ta then [| k; m |] else [| m; k |])
                        let b = rnd 57 (if tb then [| n; k |] else [| k; n |])
                        check $"Gemm m={m} n={n} k={k} transA={ta} transB={tb}"
                            (nn [ a; b; rnd 58 [| m; n |] ] [ 2 ] (fun o ts -> o.Gemm(ts.[0], ta, ts.[1], tb, ts.[2], 0.5f, 0.25f)))
            let g = convGeometry 2 3 5 9 4 3 3 1 1 1 1 1 1 true
            let xs, ws, ys = [| 2; 3; 5; 9 |], [| 4; 3; 3; 3 |], [| 2; 4; 5; 9 |]
            check "Conv2D 3x3 same"
                (nn [ rnd 59 xs; rnd 60 ws; rnd 61 [| 4 |]; rnd 62 ys; rnd 63 ys; rnd 64 xs; rnd 65 ws; rnd 66 [| 4 |] ] [ 3; 5; 6; 7 ]
                    (fun o ts ->
                        convForward o g ts.[0] ts.[1] ts.[2] ts.[3]
                        convBackward o g ts.[0] ts.[1] ts.[4] ts.[5] ts.[6] ts.[7]))
          }
    ]
