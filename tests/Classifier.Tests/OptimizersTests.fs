/// Optimizers on a convex quadratic, schedules and gradient clipping.
module Hybrid.ClassifierTests.OptimizersTests

open System
open Expecto
open Hybrid.Dsp
open Hybrid.Dsp.Managed
open Hybrid.Classifier
open Hybrid.ClassifierTests.Support

/// Minimises f(p) = 1/2 sum a_i (p_i - t_i)^2 with `steps` optimizer steps under a cosine schedule; returns p.
let private minimise (engine: Engine) (optimizer: Optimizer) (steps: int) (a: float32[]) (t: float32[]) =
    let n = a.Length
    let p = { Name = "p"; Value = engine.Allocate n; Grad = engine.Allocate n }
    let state = OptimizerState(engine, optimizer, [| p |])
    let ops = engine.Nn
    for s in 0 .. steps - 1 do
        let v = p.Value.ToArray()
        let g = Array.init n (fun i -> a[i] * (v[i] - t[i]))
        p.Grad.CopyFrom(ReadOnlySpan<float32>(g), 0L)
        let rate = Optimizer.learningRate optimizer * Schedule.factor (Cosine 0.0) s steps steps
        Optimizers.step ops optimizer rate state [| p |]
    p.Value.ToArray()

let private a = [| 1.0f; 2.0f; 0.5f; 4.0f; 1.5f |]
let private t = [| 1.0f; -2.0f; 3.0f; 0.5f; -1.0f |]

[<Tests>]
let tests =
    testList "Optimizers" [
        for name, optimizer, decay in
            [ "SGD", Optimizer.sgd 0.2, 0.0
              "SGD with momentum", Optimizer.sgdMomentum 0.05 0.9 false, 0.0
              "SGD with Nesterov momentum", Optimizer.sgdMomentum 0.05 0.9 true, 0.0
              "SGD with weight decay", Sgd { LearningRate = 0.1; Momentum = 0.5; Nesterov = false; WeightDecay = 0.3 }, 0.3
              "Adam", Optimizer.adam 0.1, 0.0
              "Adam with L2 weight decay", Adam { LearningRate = 0.1; Beta1 = 0.9; Beta2 = 0.999; Epsilon = 1e-7; WeightDecay = 0.3 }, 0.3
              "AdamW", Optimizer.adamW 0.1 0.0, 0.0 ] do
            testCase (sprintf "%s reaches the optimum of a convex quadratic" name) (fun () ->
                use engine = new ManagedEngine(1)
                let p = minimise engine optimizer 1500 a t
                // With an L2 penalty d/2 |p|^2 the optimum is a t / (a + d).
                let optimum = Array.map2 (fun ai ti -> ai * ti / (ai + float32 decay)) a t
                Hybrid.TestSupport.Assertions.allClose 0.0 2e-3 optimum p "optimum")

        testCase "AdamW's decoupled decay shrinks weights towards zero when the gradient is zero" (fun () ->
            use engine = new ManagedEngine(1)
            let p = minimise engine (Optimizer.adamW 0.1 0.5) 200 [| 0.0f |] [| 0.0f |]
            Expect.equal p [| 0.0f |] "zero stays zero"
            let engine2 = new ManagedEngine(1)
            let q = { Name = "q"; Value = tensor engine2 [| 2.0f |] [| 1 |]; Grad = engine2.Allocate 1 }
            let state = OptimizerState(engine2, Optimizer.adamW 0.1 0.5, [| q |])
            Optimizers.step engine2.Nn (Optimizer.adamW 0.1 0.5) 0.1 state [| q |]
            Hybrid.TestSupport.Assertions.allClose 1e-6 0.0 [| 2.0f * (1.0f - 0.05f) |] (q.Value.ToArray()) "p * (1 - lr * wd)")

        testCase "Adam and AdamW updates match the bias-corrected formula element by element" (fun () ->
            use engine = new ManagedEngine(2)
            let rng = Random 8
            let n = 37
            for decoupled in [ false; true ] do
                let p0, g, m0, v0 = uniform rng n, uniform rng n, uniform rng n, uniform rng n |> Array.map abs
                let p, m, v = tensor engine p0 [| n |], tensor engine m0 [| n |], tensor engine v0 [| n |]
                let lr, b1, b2, eps, wd, step = 0.01f, 0.9f, 0.999f, 1e-7f, 0.1f, 3
                engine.Nn.AdamUpdate(p, tensor engine g [| n |], m, v, lr, b1, b2, eps, wd, decoupled, step)
                let c1 = 1.0f / (1.0f - MathF.Pow(b1, float32 step))
                let c2 = 1.0f / (1.0f - MathF.Pow(b2, float32 step))
                let expected =
                    Array.init n (fun i ->
                        let gi = if decoupled then g[i] else g[i] + wd * p0[i]
                        let mi = b1 * m0[i] + (1.0f - b1) * gi
                        let vi = b2 * v0[i] + (1.0f - b2) * gi * gi
                        let pi = if decoupled then p0[i] * (1.0f - lr * wd) else p0[i]
                        pi - lr * (mi * c1) / (MathF.Sqrt(vi * c2) + eps))
                Hybrid.TestSupport.Assertions.allClose 1e-6 1e-7 expected (p.ToArray()) (sprintf "parameters (decoupled %b)" decoupled))

        testCase "schedules give the documented factors" (fun () ->
            let near what (e: float) (v: float) = Expect.isTrue (abs (e - v) < 1e-9) (sprintf "%s: expected %g, was %g" what e v)
            near "step decay epoch 0" 1.0 (Schedule.factor (StepDecay(2, 0.5)) 9 100 10)
            near "step decay epoch 2" 0.5 (Schedule.factor (StepDecay(2, 0.5)) 20 100 10)
            near "step decay epoch 5" 0.25 (Schedule.factor (StepDecay(2, 0.5)) 55 100 10)
            near "cosine start" 1.0 (Schedule.factor (Cosine 0.1) 0 101 10)
            near "cosine middle" 0.55 (Schedule.factor (Cosine 0.1) 50 101 10)
            near "cosine end" 0.1 (Schedule.factor (Cosine 0.1) 100 101 10)
            near "one-cycle start" (1.0 / 25.0) (Schedule.factor (OneCycle(0.3, 25.0, 1e4)) 0 101 10)
            near "one-cycle peak" 1.0 (Schedule.factor (OneCycle(0.3, 25.0, 1e4)) 30 101 10)
            near "one-cycle end" (1.0 / 25.0 / 1e4) (Schedule.factor (OneCycle(0.3, 25.0, 1e4)) 100 101 10))

        testCase "clipping by norm rescales all gradients together to the maximum norm" (fun () ->
            use engine = new ManagedEngine(2)
            let make (g: float32[]) = { Name = "p"; Value = engine.Allocate g.Length; Grad = tensor engine g [| g.Length |] }
            let ps = [| make [| 3.0f; 0.0f |]; make [| 0.0f; 4.0f; 0.0f |] |]
            let norm = Optimizers.clipByNorm engine.Nn ps 1.0
            Expect.floatClose Accuracy.high norm 5.0 "norm before clipping"
            Hybrid.TestSupport.Assertions.allClose 1e-6 1e-7 [| 0.6f; 0.0f |] (ps[0].Grad.ToArray()) "first"
            Hybrid.TestSupport.Assertions.allClose 1e-6 1e-7 [| 0.0f; 0.8f; 0.0f |] (ps[1].Grad.ToArray()) "second"
            let norm2 = Optimizers.clipByNorm engine.Nn ps 10.0
            Expect.floatClose Accuracy.medium norm2 1.0 "already below the maximum: unchanged")
    ]
