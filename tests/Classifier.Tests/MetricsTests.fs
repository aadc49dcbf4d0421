/// Accuracy, per-class precision/recall/F1, confusion matrix and log-loss.
module Hybrid.ClassifierTests.MetricsTests

open Expecto
open Hybrid.Classifier

[<Tests>]
let tests =
    testList "Metrics" [
        testCase "a hand-computed example gives its confusion matrix, precision, recall, F1 and log-loss" (fun () ->
            let p =
                array2D [ [ 0.8f; 0.1f; 0.1f ]; [ 0.2f; 0.7f; 0.1f ]; [ 0.6f; 0.3f; 0.1f ]; [ 0.1f; 0.1f; 0.8f ] ]
            let m = Metrics.compute p [| 0; 1; 1; 2 |]
            Expect.equal m.Confusion (array2D [ [ 1; 0; 0 ]; [ 1; 1; 0 ]; [ 0; 0; 1 ] ]) "confusion"
            Expect.floatClose Accuracy.high m.Accuracy 0.75 "accuracy"
            Expect.floatClose Accuracy.high m.Precision[0] 0.5 "precision 0"
            Expect.floatClose Accuracy.high m.Recall[1] 0.5 "recall 1"
            Expect.floatClose Accuracy.high m.F1[0] (2.0 * 0.5 / 1.5) "F1 0"
            let expected = -(log 0.8 + log 0.7 + log 0.3 + log 0.8) / 4.0
            Expect.floatClose Accuracy.medium m.LogLoss expected "log-loss"
            Expect.stringContains (Metrics.format [ "zero"; "one"; "two" ] m) "accuracy 0.7500" "report")

        testCase "a class never predicted has precision 0 rather than NaN" (fun () ->
            let m = Metrics.compute (array2D [ [ 0.9f; 0.1f ]; [ 0.6f; 0.4f ] ]) [| 0; 1 |]
            Expect.equal m.Precision[1] 0.0 "no predictions of class 1"
            Expect.equal m.F1[1] 0.0 "F1")
    ]
