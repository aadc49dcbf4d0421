/// Whole-network checks of Model's forward/backward composition: finite-difference gradients of a CNN with
/// BatchNorm at realistic sizes, and gradients that depend only on the weights and the batch (no state carried
/// between steps, batch-size changes included).
module Hybrid.ClassifierTests.ModelTests

open System
open Expecto
open Hybrid.Dsp
open Hybrid.Classifier
open Hybrid.ClassifierTests.Support

/// Conv2D -> BatchNorm -> pooling twice, Flatten, two Dense layers, on [8; 16; 16] inputs. Average pooling and no
/// ReLU keep the loss smooth, so central differences are exact up to rounding (kinks are covered per layer).
let private smoothCnn () =
    Net.sequential [ 8; 16; 16 ]
        [ Layers.conv2d 8 (3, 3) Same; Layers.batchNorm; Layers.avgPool2d 2
          Layers.conv2d 16 (3, 3) Same; Layers.batchNorm; Layers.avgPool2d 2
          Layers.flatten; Layers.dense 32; Layers.dense 10 ]

/// The reference CNN's layer kinds (BatchNorm, ReLU, max pooling, dropout) at a small input size.
let private fullCnn () =
    Net.sequential [ 1; 20; 24 ]
        [ Layers.conv2d 8 (3, 3) Same; Layers.batchNorm; Layers.relu; Layers.maxPool2d 2
          Layers.conv2d 16 (3, 3) Same; Layers.batchNorm; Layers.relu; Layers.maxPool2d 2
          Layers.flatten; Layers.dense 32; Layers.relu; Layers.dropout 0.3; Layers.dense 10 ]

/// Forward (training mode) and backward of L = sum(logits * r); returns every parameter gradient and dL/dx.
let private gradients (engine: Engine) (model: Model) (xs: float32[]) (r: float32[]) (batch: int) =
    let net = model.Net
    let x = tensor engine xs (Array.append [| batch |] net.InputShape)
    model.Forward(x, true, 42UL) |> ignore
    let dx = (model.BackwardFrom(tensor engine r [| batch; Model.classes model |], true)).Value.ToArray()
    model.Parameters |> Array.map (fun p -> p.Grad.ToArray()), dx, x

[<Tests>]
let tests =
    testList "Model" [
        testCase "the default cnn2d on the managed engine applies each ReLU inside the BatchNorm before it" (fun () ->
            use engine = new Hybrid.Dsp.Managed.ManagedEngine(2)
            let recipe = Recipes.all |> List.find (fun r -> r.Name = "cnn2d")
            let model = Model.build engine 0 (recipe.Build [ 1; 40; 32 ] 10)
            let pairs =
                model.Runtimes
                |> Array.pairwise
                |> Array.choose (fun (a, b) ->
                    match a, b with
                    | (:? BatchNormRuntime as norm), (:? LeakyReluRuntime as activation) -> Some(norm.FusedSlope, activation.Fusion)
                    | _ -> None)
            Expect.equal pairs (Array.create 3 (Some 0.0f, Whole)) "three BatchNorm + ReLU pairs, each fused with slope 0"
            let others =
                model.Runtimes |> Array.filter (function :? LeakyReluRuntime as a -> a.Fusion <> Whole | _ -> false)
            Expect.isEmpty others "no activation left to run on its own")
        testCase "a CNN with BatchNorm has the gradients of central differences for every parameter and the input" (fun () ->
            use engine = new Hybrid.Dsp.Managed.ManagedEngine(2)
            let net = smoothCnn ()
            let batch = 8
            let rng = Random 5
            let model = Model.build engine 3 net
            let xs = uniform rng (batch * net.SampleSize)
            let r = uniform rng (batch * 10)
            let grads, dx, x = gradients engine model xs r batch
            let loss () =
                let y = (model.Forward(x, true, 42UL)).ToArray()
                Array.fold2 (fun acc (a: float32) (b: float32) -> acc + float a * float b) 0.0 y r
            let h = 1e-2f
            let check (what: string) (t: Tensor) (analytic: float32[]) =
                let values = t.ToArray()
                for _ in 1 .. 6 do
                    let i = rng.Next values.Length
                    let set (v: float32) = t.CopyFrom(ReadOnlySpan<float32>([| v |]), int64 i)
                    set (values[i] + h)
                    let plus = loss ()
                    set (values[i] - h)
                    let minus = loss ()
                    set values[i]
                    let numeric = (plus - minus) / (2.0 * float h)
                    let a = float analytic[i]
                    if not (abs (numeric - a) <= 2e-3 + 1e-2 * max (abs numeric) (abs a)) then
                        failwithf "%s[%d]: central difference %g, backward %g" what i numeric a
            check "x" x dx
            model.Parameters |> Array.iteri (fun k p -> check p.Name p.Value grads[k]))

        testCase "gradients depend only on the weights and the batch, across optimizer steps and batch-size changes" (fun () ->
            use engine = new Hybrid.Dsp.Managed.ManagedEngine(2)
            let net = fullCnn ()
            let rng = Random 9
            let trained = Model.build engine 1 net
            let optimizer = Optimizer.adam 1e-3
            let state = OptimizerState(engine, optimizer, trained.Parameters)
            for step, batch in List.indexed [ 16; 16; 5; 16; 5 ] do
                let xs = uniform rng (batch * net.SampleSize)
                let r = uniform rng (batch * 10)
                let g, dx, _ = gradients engine trained xs r batch
                let fresh = Model.build engine 2 net
                fresh.Restore(trained.Snapshot())
                let g', dx', _ = gradients engine fresh xs r batch
                bitEqual (sprintf "step %d dL/dx" step) dx' dx
                Array.iteri2 (fun k expected actual -> bitEqual (sprintf "step %d %s" step trained.Parameters[k].Name) expected actual) g' g
                Optimizers.step trained.Ops optimizer 1e-3 state trained.Parameters) ]
