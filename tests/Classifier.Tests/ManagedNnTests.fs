/// The managed INnOps kernels against straightforward reference loops.
module Hybrid.ClassifierTests.ManagedNnTests

open System
open Expecto
open Hybrid.Dsp
open Hybrid.Dsp.Managed
open Hybrid.TestSupport
open Hybrid.ClassifierTests.Support

let private config = Properties.config 40

let private naiveGemm m n k (alpha: float32) (a: float32[]) transA (b: float32[]) transB (beta: float32) (c: float32[]) =
    Array.init (m * n) (fun idx ->
        let i, j = idx / n, idx % n
        let mutable s = 0.0
        for p in 0 .. k - 1 do
            let av = if transA then a[p * m + i] else a[i * k + p]
            let bv = if transB then b[j * k + p] else b[p * n + j]
            s <- s + float av * float bv
        float32 (float alpha * s + (if beta = 0.0f then 0.0 else float beta * float c[idx])))

let private checkGemm (engine: Engine) m n k transA transB alpha beta seed =
    let rng = Random(seed: int)
    let a = uniform rng (m * k)
    let b = uniform rng (k * n)
    let c = uniform rng (m * n)
    let ta = tensor engine a (if transA then [| k; m |] else [| m; k |])
    let tb = tensor engine b (if transB then [| n; k |] else [| k; n |])
    let tc = tensor engine c [| m; n |]
    engine.Nn.Gemm(ta, transA, tb, transB, tc, alpha, beta)
    let result = tc.ToArray()
    Assertions.allClose 1e-4 1e-4 (naiveGemm m n k alpha a transA b transB beta c) result (sprintf "gemm %dx%dx%d tA=%b tB=%b" m n k transA transB)
    result

let private naiveConv (g: ConvGeometry) (x: float32[]) (w: float32[]) (bias: float32[]) =
    Array.init (g.Batch * g.OutChannels * g.OutHeight * g.OutWidth) (fun idx ->
        let ow = idx % g.OutWidth
        let oh = (idx / g.OutWidth) % g.OutHeight
        let co = (idx / (g.OutWidth * g.OutHeight)) % g.OutChannels
        let n = idx / (g.OutWidth * g.OutHeight * g.OutChannels)
        let mutable s = float bias[co]
        for ci in 0 .. g.InChannels - 1 do
            for kh in 0 .. g.KernelHeight - 1 do
                for kw in 0 .. g.KernelWidth - 1 do
                    let ih = oh * g.StrideH - g.PadTop + kh * g.DilationH
                    let iw = ow * g.StrideW - g.PadLeft + kw * g.DilationW
                    if ih >= 0 && ih < g.InHeight && iw >= 0 && iw < g.InWidth then
                        s <- s + float x[((n * g.InChannels + ci) * g.InHeight + ih) * g.InWidth + iw]
                                 * float w[((co * g.InChannels + ci) * g.KernelHeight + kh) * g.KernelWidth + kw]
        float32 s)

/// The managed engine with its operations behind a plain INnOps proxy (no optional interface): a Model on it runs
/// BatchNorm, activation and pooling as separate layers, as on an engine without INnBatchNormPoolFusion.
let private plainEngine (inner: Engine) =
    let proxy = Reflection.DispatchProxy.Create<INnOps, NnForwardingProxy>()
    (proxy :?> NnForwardingProxy).Inner <- (inner.Nn :> obj)
    new ForwardingEngine(inner, proxy)

[<Tests>]
let tests =
    testList "ManagedNn" [
        testPropertyWithConfig config "GEMM matches the reference product for every transpose, alpha and beta" (fun (seed: int) ->
            let rng = Random(seed)
            use engine = new ManagedEngine(2)
            checkGemm engine (rng.Next(1, 40)) (rng.Next(1, 40)) (rng.Next(1, 40)) (rng.Next 2 = 0) (rng.Next 2 = 0)
                (float32 (rng.NextDouble() * 2.0)) (if rng.Next 2 = 0 then 0.0f else 0.5f) seed |> ignore)

        testCase "a large GEMM split over threads and K blocks matches the reference product" (fun () ->
            use engine = new ManagedEngine(2)
            checkGemm engine 70 301 600 false true 1.0f 0.0f 3 |> ignore
            checkGemm engine 301 70 520 true false 0.5f 1.0f 4 |> ignore)

        testCase "a product with few outputs and a long K is split along K: the reference product, the same floats at 1, 2 and 3 threads" (fun () ->
            for (m, n, k, ta, tb, beta, seed) in [ 64, 128, 2500, false, false, 0.0f, 11; 17, 30, 3000, true, false, 1.0f, 12
                                                   40, 9, 2048, false, true, 0.5f, 13; 5, 7, 4100, true, true, 0.0f, 14 ] do
                // (ParallelismTests checks that these shapes take the split.)
                let results =
                    [ for threads in [ 1; 2; 3 ] ->
                        use engine = new ManagedEngine(threads)
                        checkGemm engine m n k ta tb 0.75f beta seed ]
                for other in List.tail results do bitEqual (sprintf "%dx%dx%d at 1 thread and more" m n k) (List.head results) other
            use engine = new ManagedEngine(2)
            let a = tensor engine (Array.create (8 * 4096) 0.5f) [| 8; 4096 |]
            let b = tensor engine (Array.create (4096 * 3) 0.25f) [| 4096; 3 |]
            let c = tensor engine (Array.create 24 nanf) [| 8; 3 |]
            engine.Nn.Gemm(a, false, b, false, c)
            Expect.equal (c.ToArray()) (Array.create 24 512.0f) "beta 0 ignores NaN in C on the split path too")

        testCase "beta zero ignores NaN in C" (fun () ->
            use engine = new ManagedEngine(1)
            let a = tensor engine [| 1.0f; 2.0f |] [| 1; 2 |]
            let b = tensor engine [| 3.0f; 4.0f |] [| 2; 1 |]
            let c = tensor engine [| nanf |] [| 1; 1 |]
            engine.Nn.Gemm(a, false, b, false, c)
            Expect.equal (c.ToArray()) [| 11.0f |] "1*3 + 2*4")

        testPropertyWithConfig config "Conv2D forward matches direct convolution with strides, dilation and padding, 1 to 9 output channels" (fun (seed: int) ->
            let rng = Random(seed)
            use engine = new ManagedEngine(2)
            let n, ci, h, w, co = rng.Next(1, 3), rng.Next(1, 6), rng.Next(1, 9), rng.Next(1, 12), rng.Next(1, 10)
            let kh, kw, sh, sw, dh, dw = rng.Next(1, 4), rng.Next(1, 4), rng.Next(1, 3), rng.Next(1, 4), rng.Next(1, 3), rng.Next(1, 3)
            let pt, pl = rng.Next(0, 3), rng.Next(0, 3)
            let oh = max 1 ((h + 2 * pt - ((kh - 1) * dh + 1)) / sh + 1)
            let ow = max 1 ((w + 2 * pl - ((kw - 1) * dw + 1)) / sw + 1)
            let g = ConvGeometry(n, ci, h, w, co, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)
            let x, wt, b = uniform rng (n * ci * h * w), uniform rng (co * ci * kh * kw), uniform rng co
            let y = engine.Allocate(n, co, oh, ow)
            engine.Nn.Conv2DForward(&g, tensor engine x [| n; ci; h; w |], tensor engine wt [| co; ci; kh; kw |], tensor engine b [| co |], y)
            Assertions.allClose 1e-4 1e-5 (naiveConv g x wt b) (y.ToArray()) (sprintf "conv %A" g))

        testCase "convolution weight gradients are bit-identical on one, two and three threads" (fun () ->
            // 13 samples and 180 weights; then 40 samples (more than the 16 fixed chunks) and 64 x 8 x 3 x 3 = 4,608
            // weights (the chunks' partials summed in two ranges of weights), and a 1-channel input (direct path).
            for (n, ci, co) in [ 13, 4, 5; 40, 8, 64; 20, 1, 32 ] do
                let run threads =
                    use engine = new ManagedEngine(Nullable threads)
                    let rng = Random 5
                    let g = ConvGeometry(n, ci, 9, 11, co, 3, 3, 1, 1, 1, 1, 1, 1, 9, 11)
                    let x = tensor engine (uniform rng (n * ci * 99)) [| n; ci; 9; 11 |]
                    let w = tensor engine (uniform rng (co * ci * 9)) [| co; ci; 3; 3 |]
                    let dy = tensor engine (uniform rng (n * co * 99)) [| n; co; 9; 11 |]
                    let dx, dw, db = engine.Allocate(n, ci, 9, 11), engine.Allocate(co, ci, 3, 3), engine.Allocate co
                    engine.Nn.Conv2DBackward(&g, x, w, dy, dx, dw, db)
                    dx.ToArray(), dw.ToArray(), db.ToArray()
                let dx1, dw1, db1 = run 1
                for threads in [ 2; 3 ] do
                    let dx2, dw2, db2 = run threads
                    let what = sprintf "%d samples, %d -> %d channels, %d threads" n ci co threads
                    bitEqual ("dx, " + what) dx1 dx2
                    bitEqual ("dw, " + what) dw1 dw2
                    bitEqual ("db, " + what) db1 db2)

        testCase "training batch norm's saved mean and inverse std match a double-precision reference, also far from zero" (fun () ->
            use engine = new ManagedEngine(2)
            let rng = Random 21
            let n, c, s = 7, 3, 517
            // Channel 0 near zero, channel 1 at 1000 with std 0.01 (the one-pass sum-of-squares formula loses it all),
            // channel 2 constant.
            let x =
                Array.init (n * c * s) (fun i ->
                    match (i / s) % c with
                    | 0 -> float32 (rng.NextDouble() - 0.5)
                    | 1 -> 1000.0f + float32 (0.01 * (rng.NextDouble() - 0.5) * 3.46)
                    | _ -> 2.5f)
            let t v (sh: int[]) = tensor engine v sh
            let sm, si, y = engine.Allocate c, engine.Allocate c, engine.Allocate(n, c, s)
            let rm, rv = t (Array.zeroCreate c) [| c |], t (Array.create c 1.0f) [| c |]
            engine.Nn.BatchNormTrainingForward(t x [| n; c; s |], t (Array.create c 1.0f) [| c |], t (Array.zeroCreate c) [| c |],
                                               0.9f, 1e-5f, rm, rv, sm, si, y)
            for ch in 0 .. c - 1 do
                let values = [| for i in 0 .. n - 1 do for j in 0 .. s - 1 -> float x[(i * c + ch) * s + j] |]
                let mean = Array.average values
                let var = values |> Array.averageBy (fun v -> (v - mean) * (v - mean))
                let invStd = 1.0 / sqrt (var + 1e-5)
                Expect.floatClose { absolute = 1e-6; relative = 1e-6 } (float (sm.ToArray()[ch])) mean (sprintf "mean of channel %d" ch)
                Expect.floatClose { absolute = 1e-6; relative = 1e-4 } (float (si.ToArray()[ch])) invStd (sprintf "inverse std of channel %d" ch)
                Expect.floatClose { absolute = 1e-6; relative = 1e-4 } (float (rv.ToArray()[ch])) (0.9 + 0.1 * var) (sprintf "running variance of channel %d" ch))

        testCase "max pooling routes a tied window's gradient to its first cell, on the 2x2 and the general path" (fun () ->
            use engine = new ManagedEngine(1)
            let ops = engine.Nn
            for geometry in [ PoolGeometry(1, 1, 2, 2, 2, 2, 2, 2, 0, 0, 1, 1); PoolGeometry(1, 1, 2, 2, 2, 2, 1, 1, 0, 0, 1, 1); PoolGeometry(1, 1, 2, 3, 2, 3, 2, 3, 0, 0, 1, 1) ] do
                let mutable g = geometry
                let x = tensor engine (Array.create (g.InHeight * g.InWidth) 0.5f) [| 1; 1; g.InHeight; g.InWidth |]
                let y = engine.Allocate(1, 1, 1, 1)
                let dx = tensor engine (Array.create (g.InHeight * g.InWidth) 9.0f) [| 1; 1; g.InHeight; g.InWidth |]
                ops.Pool2DForward(&g, PoolKind.Max, x, y)
                ops.Pool2DBackward(&g, PoolKind.Max, x, y, tensor engine [| 3.0f |] [| 1; 1; 1; 1 |], dx)
                let expected = Array.init (g.InHeight * g.InWidth) (fun i -> if i = 0 then 3.0f else 0.0f)
                Expect.equal (dx.ToArray()) expected (sprintf "gradient of %A" g))

        testCase "softmax cross-entropy stays finite for huge logits" (fun () ->
            use engine = new ManagedEngine(1)
            let logits = tensor engine [| 1000.0f; -1000.0f; 0.0f; 1000.0f |] [| 2; 2 |]
            let labels = tensor engine [| 1.0f; 0.0f |] [| 2 |]
            let p, l, d = engine.Allocate(2, 2), engine.Allocate 2, engine.Allocate(2, 2)
            engine.Nn.SoftmaxCrossEntropy(logits, labels, 0.0f, p, l, d, 0.5f)
            Assertions.allClose 1e-6 1e-6 [| 2000.0f; 1000.0f |] (l.ToArray()) "losses"
            Assertions.allClose 1e-6 1e-6 [| 0.5f; -0.5f; -0.5f; 0.5f |] (d.ToArray()) "gradient")

        testCase "labels outside the class range are refused with the offending element named" (fun () ->
            use engine = new ManagedEngine(1)
            let logits = engine.Allocate(2, 3)
            let labels = tensor engine [| 0.0f; 3.0f |] [| 2 |]
            try
                engine.Nn.SoftmaxCrossEntropy(logits, labels, 0.0f, engine.Allocate(2, 3), engine.Allocate 2, null, 1.0f)
                failtest "expected ArgumentException"
            with :? ArgumentException as e ->
                Expect.stringContains e.Message "element 1" "offending element named")

        testCase "the managed engine's Nn is its own, created once and kept" (fun () ->
            use engine = new ManagedEngine(1)
            use other = new ManagedEngine(1)
            let ops = engine.Nn
            Expect.isTrue (obj.ReferenceEquals(ops.Engine, engine)) "the ops belong to the engine"
            Expect.isTrue (obj.ReferenceEquals(ops, engine.Nn)) "the same ops on every call"
            Expect.isFalse (obj.ReferenceEquals(ops, other.Nn)) "another engine has its own ops")

        testPropertyWithConfig config "BatchNorm with leaky ReLU fused equals BatchNorm then LeakyRelu bit for bit, forward (training and inference) and backward" (fun (seed: int) ->
            let rng = Random seed
            // Spatial sizes straddle the vector width (scalar tails), 1 for feature vectors; slopes 0 (ReLU) or random.
            let n, c, s = rng.Next(1, 6), rng.Next(1, 7), [| 1; 3; 7; 8; 9; 17; 40 |].[rng.Next 7]
            let slope = if rng.Next 2 = 0 then 0.0f else float32 (rng.NextDouble())
            let shape = if s = 1 then [| n; c |] else [| n; c; s |]
            let count = n * c * s
            // Some exact zeros in x and dy, so the selection's boundary is exercised too.
            let withZeros (v: float32[]) = v |> Array.map (fun x -> if rng.Next 8 = 0 then 0.0f else x)
            let x = uniform rng count |> Array.map (fun v -> 2.0f * v + 0.5f) |> withZeros
            let gamma, beta, mean = uniform rng c, uniform rng c, uniform rng c
            let var = uniform rng c |> Array.map (fun v -> abs v + 0.1f)
            let dy = uniform rng count |> withZeros
            use engine = new ManagedEngine(2)
            let ops = engine.Nn
            let run (fused: bool) =
                let t v sh = tensor engine v sh
                let tx, tg, tb, trm, trv = t x shape, t gamma [| c |], t beta [| c |], t mean [| c |], t var [| c |]
                let sm, si, y = engine.Allocate c, engine.Allocate c, engine.Allocate shape
                let tdy, dx, dg, db, yi = t dy shape, engine.Allocate shape, engine.Allocate c, engine.Allocate c, engine.Allocate shape
                if fused then
                    ops.BatchNormLeakyReluTrainingForward(tx, tg, tb, slope, 0.9f, 1e-3f, trm, trv, sm, si, y)
                    ops.BatchNormLeakyReluBackward(tx, y, slope, tg, sm, si, tdy, dx, dg, db)
                    ops.BatchNormLeakyReluInferenceForward(tx, tg, tb, slope, trm, trv, 1e-3f, yi)
                else
                    let normalised, masked = engine.Allocate shape, engine.Allocate shape
                    ops.BatchNormTrainingForward(tx, tg, tb, 0.9f, 1e-3f, trm, trv, sm, si, normalised)
                    ops.LeakyReluForward(normalised, slope, y)
                    ops.LeakyReluBackward(y, slope, tdy, masked)
                    ops.BatchNormBackward(tx, tg, sm, si, masked, dx, dg, db)
                    ops.BatchNormInferenceForward(tx, tg, tb, trm, trv, 1e-3f, normalised)
                    ops.LeakyReluForward(normalised, slope, yi)
                [ "running mean", trm; "running variance", trv; "saved mean", sm; "saved inverse std", si; "training output", y
                  "dx", dx; "dGamma", dg; "dBeta", db; "inference output", yi ]
                |> List.map (fun (name, t) -> name, t.ToArray())
            let what = sprintf "shape %A slope %g" shape slope
            List.iter2 (fun (name, expected) (_, actual) -> bitEqual (sprintf "%s, %s" name what) expected actual) (run false) (run true))

        testPropertyWithConfig config "BatchNorm, leaky ReLU and 2x2 max pooling fused equal the three operations apart bit for bit, at 1-3 threads" (fun (seed: int) ->
            let rng = Random seed
            // Odd heights and widths (the last row or column outside every window), widths past 16 (the 8-output
            // vector blocks) and below, values on a coarse grid so that windows hold ties and exact zeros.
            let n, c = rng.Next(1, 6), rng.Next(1, 6)
            let h, w = rng.Next(2, 12), [| 2; 3; 5; 16; 17; 33; 40; 65 |].[rng.Next 8]
            let oh, ow = h / 2, w / 2
            let slope = if rng.Next 2 = 0 then 0.0f else float32 (rng.NextDouble())
            let threads = rng.Next(1, 4)
            let g = PoolGeometry(n, c, h, w, 2, 2, 2, 2, 0, 0, oh, ow)
            let shape, pooledShape = [| n; c; h; w |], [| n; c; oh; ow |]
            let grid (v: float32[]) = v |> Array.map (fun x -> float32 (Math.Round(float x * 4.0)) / 4.0f)
            let x = uniform rng (n * c * h * w) |> Array.map (fun v -> 2.0f * v + 0.25f) |> grid
            let gamma, beta, mean = uniform rng c, uniform rng c, uniform rng c
            let var = uniform rng c |> Array.map (fun v -> abs v + 0.1f)
            let dy = uniform rng (n * c * oh * ow)
            use engine = new ManagedEngine(threads)
            let ops = engine.Nn
            let fusion = ops :?> INnBatchNormPoolFusion
            let run (fused: bool) =
                let t v sh = tensor engine v sh
                let tx, tg, tb, trm, trv = t x shape, t gamma [| c |], t beta [| c |], t mean [| c |], t var [| c |]
                let sm, si, y = engine.Allocate c, engine.Allocate c, engine.Allocate pooledShape
                let tdy, dx, dg, db = t dy pooledShape, engine.Allocate shape, engine.Allocate c, engine.Allocate c
                // dx starts as garbage: every cell must be written.
                dx.CopyFrom(ReadOnlySpan<float32>(Array.create (n * c * h * w) nanf), 0L)
                if fused then
                    fusion.BatchNormLeakyReluMaxPoolTrainingForward(&g, tx, tg, tb, slope, 0.9f, 1e-3f, trm, trv, sm, si, y)
                    fusion.BatchNormLeakyReluMaxPoolBackward(&g, tx, slope, tg, tb, sm, si, tdy, dx, dg, db)
                else
                    let activated, pooledGrad = engine.Allocate shape, engine.Allocate shape
                    ops.BatchNormLeakyReluTrainingForward(tx, tg, tb, slope, 0.9f, 1e-3f, trm, trv, sm, si, activated)
                    ops.Pool2DForward(&g, PoolKind.Max, activated, y)
                    ops.Pool2DBackward(&g, PoolKind.Max, activated, y, tdy, pooledGrad)
                    ops.BatchNormLeakyReluBackward(tx, activated, slope, tg, sm, si, pooledGrad, dx, dg, db)
                [ "running mean", trm; "running variance", trv; "saved mean", sm; "saved inverse std", si; "pooled output", y
                  "dx", dx; "dGamma", dg; "dBeta", db ]
                |> List.map (fun (name, t) -> name, t.ToArray())
            let what = sprintf "x %A slope %g, %d thread(s)" shape slope threads
            List.iter2 (fun (name, expected) (_, actual) -> bitEqual (sprintf "%s, %s" name what) expected actual) (run false) (run true))

        testCase "a Model fuses BatchNorm, ReLU and 2x2 max pooling on the managed engine and trains bit for bit as the layers apart" (fun () ->
            let net () =
                Hybrid.Classifier.Net.sequential
                    [ 1; 9; 13 ]
                    [ Hybrid.Classifier.Layers.conv2d 4 (3, 3) Hybrid.Classifier.Same
                      Hybrid.Classifier.Layers.batchNorm
                      Hybrid.Classifier.Layers.relu
                      Hybrid.Classifier.Layers.maxPool2d 2
                      Hybrid.Classifier.Layers.conv2d 3 (3, 3) Hybrid.Classifier.Same
                      Hybrid.Classifier.Layers.batchNorm
                      Hybrid.Classifier.Layers.leakyRelu 0.1
                      Hybrid.Classifier.Layers.maxPool2d 2
                      Hybrid.Classifier.Layers.flatten
                      Hybrid.Classifier.Layers.dense 3 ]
            let rng = Random 11
            let count = 40
            let inputs = uniform rng (count * 9 * 13)
            let labels = Array.init count (fun i -> i % 3)
            use managed = new ManagedEngine(2)
            let plain = plainEngine managed
            let train (engine: Engine) =
                let model = Hybrid.Classifier.Model.create engine 7 (net ())
                let trainer = Hybrid.Classifier.Trainer(model, Hybrid.Classifier.Optimizer.adam 1e-2, None, 0.0, None)
                for epoch in 0..2 do
                    let order = Hybrid.Classifier.Training.permutation 0 epoch count
                    trainer.Run(inputs, labels, order, count, 16, (fun _ -> 1e-2), uint64, (fun _ _ _ -> ()))
                let logits = model.Forward(tensor engine (Array.sub inputs 0 (8 * 9 * 13)) [| 8; 1; 9; 13 |], false, 0UL)
                let logitValues = logits.ToArray()
                // An input gradient after that inference pass (saliency): the fused layer runs its operations apart.
                let dInput = model.BackwardFrom(tensor engine (Array.init 24 (fun i -> float32 (i % 5) - 2.0f)) [| 8; 3 |], true)
                model, (model.Tensors |> Array.map (fun (_, t) -> t.ToArray())), Array.append logitValues (dInput.Value.ToArray())
            let fusedModel, fusedWeights, fusedLogits = train managed
            let pools = fusedModel.Runtimes |> Array.choose (function :? Hybrid.Classifier.PoolRuntime as p -> Some p.Fused | _ -> None)
            Expect.equal pools [| true; true |] "both pools fused on the managed engine"
            let plainModel, plainWeights, plainLogits = train plain
            let plainPools = plainModel.Runtimes |> Array.choose (function :? Hybrid.Classifier.PoolRuntime as p -> Some p.Fused | _ -> None)
            Expect.equal plainPools [| false; false |] "no pool fused without the fusion interface"
            Array.iteri2 (fun i expected actual -> bitEqual (sprintf "saved tensor %d after 3 epochs" i) expected actual) plainWeights fusedWeights
            bitEqual "inference logits, then the input gradient after the inference pass" plainLogits fusedLogits)

        testCase "a forwarding engine reads, gathers and scatters its inner engine's tensors as lists, and a model on it snapshots" (fun () ->
            use managed = new ManagedEngine(2)
            use other = new ManagedEngine(1)
            let forwarding = plainEngine managed
            let a = tensor forwarding [| 1.0f; 2.0f; 3.0f |] [| 3 |]
            let b = tensor managed [| 4.0f; 5.0f |] [| 2 |]
            Expect.equal (forwarding.ReadTensors [| a; b |]) [| 1.0f; 2.0f; 3.0f; 4.0f; 5.0f |] "read as one list"
            let flat = forwarding.Allocate 6
            flat.CopyFrom(Array.zeroCreate<float32> 6)
            forwarding.Gather([| b; a |], flat, 1L)
            Expect.equal (flat.ToArray()) [| 0.0f; 4.0f; 5.0f; 1.0f; 2.0f; 3.0f |] "gathered from offset 1"
            forwarding.Scatter(flat, 0L, [| a; b |])
            Expect.equal (a.ToArray(), b.ToArray()) ([| 0.0f; 4.0f; 5.0f |], [| 1.0f; 2.0f |]) "scattered back"
            let foreign = tensor other [| 9.0f |] [| 1 |]
            let e = Expect.throwsC (fun () -> forwarding.ReadTensors [| a; foreign |] |> ignore) id
            Expect.isTrue (e :? ArgumentException && e.Message.Contains "tensors[1]") (sprintf "another engine's tensor refused by position: %s" e.Message)
            let net =
                Hybrid.Classifier.Net.sequential [ 4 ] [ Hybrid.Classifier.Layers.dense 3; Hybrid.Classifier.Layers.dense 2 ]
            let model = Hybrid.Classifier.Model.create forwarding 5 net
            let snapshot = model.Snapshot()
            Expect.equal snapshot (model.Tensors |> Array.map (fun (_, t) -> t.ToArray())) "a model's snapshot through the wrapper")

        testCase "a 2x2 max pool with same padding over an odd size is not fused (a window past the edge) and trains as apart" (fun () ->
            let net =
                Hybrid.Classifier.Net.sequential
                    [ 1; 9; 13 ]
                    [ Hybrid.Classifier.Layers.conv2d 3 (3, 3) Hybrid.Classifier.Same
                      Hybrid.Classifier.Layers.batchNorm
                      Hybrid.Classifier.Layers.relu
                      Hybrid.Classifier.PoolingLayers.Pool2D(PoolKind.Max, 2, 2, 2, 2, Hybrid.Classifier.Same)
                      Hybrid.Classifier.Layers.flatten
                      Hybrid.Classifier.Layers.dense 2 ]
            let rng = Random 4
            let inputs = uniform rng (16 * 9 * 13)
            let labels = Array.init 16 (fun i -> i % 2)
            use managed = new ManagedEngine(2)
            let train (engine: Engine) =
                let model = Hybrid.Classifier.Model.create engine 3 net
                let trainer = Hybrid.Classifier.Trainer(model, Hybrid.Classifier.Optimizer.adam 1e-2, None, 0.0, None)
                trainer.Run(inputs, labels, Hybrid.Classifier.Training.permutation 0 0 16, 16, 8, (fun _ -> 1e-2), uint64, (fun _ _ _ -> ()))
                model
            let fused = train managed
            let pools = fused.Runtimes |> Array.choose (function :? Hybrid.Classifier.PoolRuntime as p -> Some p.Fused | _ -> None)
            Expect.equal pools [| false |] "5 x 7 windows over 9 x 13 reach past the edge: not fused"
            let plain = train (plainEngine managed)
            Array.iter2 (fun (name, a: Tensor) (_, b: Tensor) -> bitEqual name (a.ToArray()) (b.ToArray())) plain.Tensors fused.Tensors)

        testCase "the fused BatchNorm and pooling refuse another pool geometry and a wrong pooled shape, naming them" (fun () ->
            use engine = new ManagedEngine(1)
            let fusion = engine.Nn :?> INnBatchNormPoolFusion
            let x, c4 = engine.Allocate(2, 4, 6, 6), engine.Allocate 4
            let refused (name: string) (call: unit -> unit) =
                let e = Expect.throwsC call id
                Expect.isTrue (e :? ArgumentException) (sprintf "ArgumentException, was %s" (e.GetType().Name))
                Expect.equal (e :?> ArgumentException).ParamName name (sprintf "names %s: %s" name e.Message)
            let three = PoolGeometry(2, 4, 6, 6, 3, 3, 3, 3, 0, 0, 2, 2)
            refused "g" (fun () -> fusion.BatchNormLeakyReluMaxPoolTrainingForward(&three, x, c4, c4, 0.0f, 0.9f, 1e-3f, c4, c4, c4, c4, engine.Allocate(2, 4, 2, 2)))
            let two = PoolGeometry(2, 4, 6, 6, 2, 2, 2, 2, 0, 0, 3, 3)
            refused "y" (fun () -> fusion.BatchNormLeakyReluMaxPoolTrainingForward(&two, x, c4, c4, 0.0f, 0.9f, 1e-3f, c4, c4, c4, c4, engine.Allocate(2, 4, 3, 2)))
            refused "dy" (fun () -> fusion.BatchNormLeakyReluMaxPoolBackward(&two, x, 0.0f, c4, c4, c4, c4, engine.Allocate(2, 4, 2, 3), engine.Allocate(2, 4, 6, 6), c4, c4))
            refused "beta" (fun () -> fusion.BatchNormLeakyReluMaxPoolBackward(&two, x, 0.0f, c4, engine.Allocate 3, c4, c4, engine.Allocate(2, 4, 3, 3), engine.Allocate(2, 4, 6, 6), c4, c4)))

        testCase "dropout masks depend only on the seed and keep about 1 - rate of the elements" (fun () ->
            use e1 = new ManagedEngine(1)
            use e2 = new ManagedEngine(2)
            let mask (engine: Engine) =
                let x = tensor engine (Array.create 100000 1.0f) [| 100; 1000 |]
                let m, y = engine.Allocate(100, 1000), engine.Allocate(100, 1000)
                engine.Nn.DropoutForward(x, 0.3f, 99UL, m, y)
                m.ToArray()
            let a, b = mask e1, mask e2
            bitEqual "mask" a b
            let kept = a |> Array.filter (fun v -> v > 0.0f) |> Array.length
            Expect.isTrue (abs (float kept / 100000.0 - 0.7) < 0.01) (sprintf "kept fraction %g" (float kept / 100000.0))
            Expect.isTrue (a |> Array.forall (fun v -> v = 0.0f || abs (v - 1.0f / 0.7f) < 1e-6f)) "scaled by 1/(1-rate)")
    ]
