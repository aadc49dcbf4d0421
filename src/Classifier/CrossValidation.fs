namespace Hybrid.Classifier

open System
open Hybrid.Features

/// Cross-validation's own results (scikit-learn's cross_val_predict and GridSearchCV's refit): the out-of-fold
/// predictions of every fold pooled into one report, and the epochs a final model trained on all the data takes.
[<RequireQualifiedAccess>]
module CrossValidation =
    /// True for the splits whose folds' test parts together cover the data once each: `folds` (predefined folds),
    /// `loso` (one fold per speaker) and `kfold:K`; false for single splits (official, speaker:, fold:, random:).
    let isCrossValidation (split: SplitSpec) : bool =
        match split with
        | LeaveOneSpeakerOut | PredefinedFolds | StratifiedKFold _ -> true
        | Official | HoldOutSpeakers _ | PredefinedFold _ | StratifiedRandom _ -> false

    /// The metrics of every fold's test recordings pooled (scikit-learn's cross_val_predict, then
    /// classification_report and confusion_matrix): the folds' out-of-fold probabilities stacked in fold order and
    /// scored once by Metrics.compute, so the confusion matrix is the sum of the folds' and the accuracy is correct
    /// recordings over all recordings (which weighs folds by size, unlike the mean of the folds' accuracies). Raises
    /// ArgumentException for no folds or folds with different class counts.
    let pooled (folds: FoldResult list) : Metrics =
        match folds with
        | [] -> invalidArg "folds" "No folds to pool."
        | first :: _ ->
            let classes = Array2D.length2 first.TestProbabilities
            match folds |> List.tryFind (fun f -> Array2D.length2 f.TestProbabilities <> classes) with
            | Some f -> invalidArg "folds" (sprintf "Fold %s has %d classes, fold %s has %d." f.Name (Array2D.length2 f.TestProbabilities) first.Name classes)
            | None -> ()
            let total = folds |> List.sumBy (fun f -> Array2D.length1 f.TestProbabilities)
            let probabilities = Array2D.zeroCreate<float32> total classes
            let mutable row = 0
            for f in folds do
                for i in 0 .. Array2D.length1 f.TestProbabilities - 1 do
                    for k in 0 .. classes - 1 do
                        probabilities[row, k] <- f.TestProbabilities[i, k]
                    row <- row + 1
            Metrics.compute probabilities (folds |> Seq.collect (fun f -> f.TestLabels) |> Array.ofSeq)

    /// The epochs a refit on all the data trains: `epochs` (the run's) when no fold chose its own, else the mean of the
    /// folds' chosen epochs (early stopping's best epochs) rounded half away from zero, at least 1 (as Keras users
    /// refit with the mean of the early-stopped epochs, and scikit-learn refits with the chosen setting).
    let refitEpochs (epochs: int) (chosen: int list) : int =
        match chosen with
        | [] -> epochs
        | chosen -> max 1 (int (Math.Round(List.averageBy float chosen, MidpointRounding.AwayFromZero)))
