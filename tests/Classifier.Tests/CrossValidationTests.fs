/// Cross-validation's pooled report and refit epochs (CrossValidation), and class weights of the training loss
/// (ClassWeighting, Trainer): the weighted loss and gradient against hand-computed ones on both training paths, and
/// balanced weights raising a minority class's recall.
module Hybrid.ClassifierTests.CrossValidationTests

open System
open Expecto
open Hybrid.TestSupport.Speed
open Hybrid.Dsp
open Hybrid.Dsp.Managed
open Hybrid.Features
open Hybrid.Classifier
open Hybrid.ClassifierTests.Support

/// A fold result whose test part has these probabilities and labels (every other field a plain value).
let private foldOf (name: string) (probabilities: float32[,]) (labels: int[]) =
    let metrics = Metrics.compute probabilities labels
    { FoldResult.Name = name; NTrain = 0; NValidation = 0; NTest = labels.Length; TestAccuracy = metrics.Accuracy; TrainAccuracy = nan
      ValidationAccuracy = None; Metrics = metrics; History = []; BestEpoch = None; StoppedEarly = false; ResumedAfterEpochs = 0
      TrainSeconds = 0.0; PerSource = []; TestProbabilities = probabilities; TestLabels = labels; ModelFile = "" }

/// One-hot-ish probabilities [rows, 3] predicting `predicted`.
let private predicting (predicted: int[]) =
    Array2D.init predicted.Length 3 (fun i k -> if k = predicted[i] then 0.8f else 0.1f)

/// A linear classifier (one dense layer) over `inputs` features.
let private linear (inputs: int) (classes: int) = Net.sequential [ inputs ] [ Layers.dense classes ]

/// Every parameter's gradient, parameter after parameter.
let private gradients (model: Model) =
    model.Parameters |> Array.collect (fun p -> let a = Array.zeroCreate<float32> (int p.Grad.Length) in p.Grad.CopyTo(Span<float32>(a), 0L); a)

/// Two overlapping Gaussian classes in 2-D: `major` rows of class 0 around (-0.5, 0), `minor` rows of class 1 around
/// (0.5, 0), from a seeded generator.
let private unbalanced (seed: int) (major: int) (minor: int) =
    let rng = Random(seed)
    let gauss () = float32 (sqrt (-2.0 * log (1.0 - rng.NextDouble())) * cos (2.0 * Math.PI * rng.NextDouble()))
    let rows = [| for i in 0 .. major + minor - 1 -> (if i < major then 0 else 1) |]
    { Inputs = [| for y in rows do yield (if y = 0 then -0.5f else 0.5f) + gauss (); yield gauss () |]; Labels = rows }

[<Tests>]
let tests =
    testList "CrossValidation" [
        testList "isCrossValidation" [
            test "folds, loso and kfold are cross-validation; single splits are not" {
                for spec in [ "folds"; "loso"; "kfold:5" ] do
                    Expect.isTrue (CrossValidation.isCrossValidation (Split.parse spec)) spec
                for spec in [ "official"; "speaker:george"; "fold:3"; "random:0.2" ] do
                    Expect.isFalse (CrossValidation.isCrossValidation (Split.parse spec)) spec
            }
        ]

        testList "pooled" [
            test "the pooled confusion matrix is the sum of the folds' and the accuracy counts every recording once" {
                // Fold a: 3 recordings, 2 right; fold b: 1 recording, right. Mean of fold accuracies 0.8333, pooled 0.75.
                let a = foldOf "a" (predicting [| 0; 1; 0 |]) [| 0; 1; 2 |]
                let b = foldOf "b" (predicting [| 2 |]) [| 2 |]
                let pooled = CrossValidation.pooled [ a; b ]
                Expect.equal pooled.Count 4 "every out-of-fold recording"
                Expect.floatClose Accuracy.veryHigh pooled.Accuracy 0.75 "3 of 4 right"
                let expected = Array2D.init 3 3 (fun r c -> a.Metrics.Confusion[r, c] + b.Metrics.Confusion[r, c])
                Expect.equal pooled.Confusion expected "the folds' confusion matrices summed"
                Expect.equal pooled.Support [| 1; 1; 2 |] "support: recordings of each class"
                // Class 2: 2 recordings, 1 predicted 2 (precision 1 of 1 prediction), recall 1/2.
                Expect.floatClose Accuracy.veryHigh pooled.Recall[2] 0.5 "recall of class 2"
                Expect.floatClose Accuracy.veryHigh pooled.Precision[2] 1.0 "precision of class 2"
                Expect.floatClose Accuracy.veryHigh pooled.Precision[0] 0.5 "class 0 predicted twice, once right"
            }

            test "folds with different class counts are refused" {
                let a = foldOf "a" (predicting [| 0 |]) [| 0 |]
                let b = foldOf "b" (Array2D.create 1 2 0.5f) [| 1 |]
                Expect.throwsT<ArgumentException> (fun () -> CrossValidation.pooled [ a; b ] |> ignore) "class counts differ"
                Expect.throwsT<ArgumentException> (fun () -> CrossValidation.pooled [] |> ignore) "no folds"
            }
        ]

        testList "refitEpochs" [
            test "the run's epochs without early stopping, else the rounded mean of the folds' best epochs" {
                Expect.equal (CrossValidation.refitEpochs 30 []) 30 "no epochs chosen"
                Expect.equal (CrossValidation.refitEpochs 30 [ 3; 4 ]) 4 "3.5 rounds half away from zero"
                Expect.equal (CrossValidation.refitEpochs 30 [ 2; 2; 3 ]) 2 "2.33 rounds to 2"
                Expect.equal (CrossValidation.refitEpochs 30 [ 10; 12; 17 ]) 13 "the mean"
            }
        ]

        testList "ClassWeighting" [
            test "balanced weights are n_rows / (n_present_classes * count), 0 for a class without rows" {
                Expect.equal (ClassWeighting.weights Unweighted 3 [| 0; 1 |]) None "unweighted"
                let w = (ClassWeighting.weights Balanced 3 [| 0; 0; 0; 1 |]).Value
                Expect.floatClose Accuracy.veryHigh w[0] (4.0 / (2.0 * 3.0)) "class 0: 3 of 4 rows"
                Expect.floatClose Accuracy.veryHigh w[1] (4.0 / (2.0 * 1.0)) "class 1: 1 of 4 rows"
                Expect.equal w[2] 0.0 "class 2 has no rows"
                Expect.throwsT<ArgumentException> (fun () -> ClassWeighting.weights Balanced 2 [| 2 |] |> ignore) "label outside the classes"
            }

            test "parse and format read none and balanced back, and refuse anything else" {
                for w in [ Unweighted; Balanced ] do Expect.equal (ClassWeighting.parse (ClassWeighting.format w)) w "round trip"
                Expect.throwsT<ArgumentException> (fun () -> ClassWeighting.parse "auto" |> ignore) "unknown"
            }

            test "the weighted loss and gradient are the class-weighted sums of the rows' own (Trainer.Gradients)" {
                use engine = new ManagedEngine(1)
                let rng = Random 3
                let n, features = 6, 4
                let inputs = uniform rng (n * features)
                let labels = [| 0; 1; 2; 0; 0; 1 |]
                let weights = [| 0.5; 2.0; 3.0 |]
                let model = Model.create engine 7 (linear features 3)
                let order = Array.init n id
                let plain = Trainer(model, Optimizer.sgd 0.1, None, 0.0, None)
                // Each row's own loss and gradient (a global batch of one row).
                let rows =
                    [ for i in 0 .. n - 1 ->
                        let loss, _ = plain.Gradients(inputs, labels, order, i, 1, 1, 0UL)
                        loss, gradients model ]
                // By hand from the probabilities too: loss_i = -log p_i[y_i].
                let p = Model.predict model inputs
                for i in 0 .. n - 1 do
                    Expect.floatClose { absolute = 1e-5; relative = 1e-5 } (fst rows[i]) (-log (float p[i, labels[i]])) (sprintf "row %d's loss" i)
                let weighted = Trainer(model, Optimizer.sgd 0.1, None, 0.0, Some weights)
                let total, _ = weighted.Gradients(inputs, labels, order, 0, n, n, 0UL)
                let expectedTotal = List.sum [ for i in 0 .. n - 1 -> weights[labels[i]] * fst rows[i] ]
                Expect.floatClose { absolute = 1e-5; relative = 1e-5 } total expectedTotal "summed loss: sum of w[y_i] * loss_i"
                let got = gradients model
                let expected = Array.init got.Length (fun j -> List.sum [ for i in 0 .. n - 1 -> weights[labels[i]] * float (snd rows[i]).[j] ] / float n)
                for j in 0 .. got.Length - 1 do
                    Expect.floatClose { absolute = 1e-5; relative = 1e-4 } (float got[j]) expected[j] (sprintf "gradient %d: sum of w[y_i] * g_i / n" j)
                Expect.throwsT<ArgumentException> (fun () -> Trainer(model, Optimizer.sgd 0.1, None, 0.0, Some [| 1.0 |]) |> ignore) "one weight per class"
                Expect.throwsT<ArgumentException> (fun () -> Trainer(model, Optimizer.sgd 0.1, None, 0.0, Some [| 1.0; -1.0; 1.0 |]) |> ignore) "no negative weight"
            }

            testList "a weighted epoch reports the weighted loss and steps along the weighted gradient on every engine" [
                // The shared ilgpu-cpu engine's tests run in its sequenced group (onEngine): another test counts its transfers.
                for name, lease in engines |> List.filter (fun (n, _) -> n = "managed" || n = "ilgpu-cpu") ->
                    onEngine name <| test name {
                        use lease = lease ()
                        let data = unbalanced 5 12 4
                        let weights = [| 0.25; 4.0 |]
                        let fitOne (engine: Engine) classWeights =
                            let model = Model.create engine 9 (linear 2 2)
                            let history = Training.fit { FitOptions.defaults with Epochs = 1; BatchSize = 16; Optimizer = Optimizer.sgd 0.5; ClassWeights = classWeights } model data None
                            model, history.History.Head.TrainLoss
                        // The loss of the one batch is measured before its step: from the initial model's probabilities.
                        use reference = new ManagedEngine(1)
                        let p = Model.predict (Model.create reference 9 (linear 2 2)) data.Inputs
                        let expected = List.average [ for i in 0 .. 15 -> weights[data.Labels[i]] * -log (float p[i, data.Labels[i]]) ]
                        let weightedModel, loss = fitOne lease.Engine (Some weights)
                        Expect.floatClose { absolute = 1e-5; relative = 1e-5 } loss expected "mean of w[y_i] * loss_i"
                        // The same step on the managed engine, and different from the unweighted step.
                        let managedModel, _ = fitOne reference (Some weights)
                        let plainModel, _ = fitOne reference None
                        let a, b, c = Model.predict weightedModel data.Inputs, Model.predict managedModel data.Inputs, Model.predict plainModel data.Inputs
                        for i in 0 .. 15 do
                            Expect.floatClose { absolute = 1e-5; relative = 1e-4 } (float a[i, 1]) (float b[i, 1]) (sprintf "row %d agrees with managed" i)
                        Expect.isTrue (Seq.exists (fun i -> abs (a[i, 1] - c[i, 1]) > 1e-3f) [ 0 .. 15 ]) "the weights change the step"
                    }
            ]

            slow <| test "balanced weights raise the minority class's recall on unbalanced data" {
                use engine = new ManagedEngine(1)
                let train, test = unbalanced 1 180 20, unbalanced 2 180 20
                let recallOf weighting =
                    let model = Model.create engine 4 (linear 2 2)
                    let weights = ClassWeighting.weights weighting 2 train.Labels
                    Training.fit { FitOptions.defaults with Epochs = 30; BatchSize = 40; Optimizer = Optimizer.adam 0.05; Seed = 3; ClassWeights = weights } model train None |> ignore
                    (Model.evaluate model test).Recall
                let plain, balanced = recallOf Unweighted, recallOf Balanced
                Expect.isGreaterThan balanced[1] (plain[1] + 0.2) (sprintf "minority recall: balanced %.3f, unweighted %.3f" balanced[1] plain[1])
                Expect.isGreaterThan balanced[1] 0.5 "the balanced model finds most of the minority class"
            }
        ]
    ]
