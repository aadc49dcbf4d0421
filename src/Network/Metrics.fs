namespace Hybrid.Classifier

open System
open System.Text

/// Classification metrics of predicted probabilities against true labels.
type Metrics =
    { /// Number of samples.
      Count: int
      /// Mean log-loss (cross-entropy of the probabilities, each clipped to [1e-15, 1] as scikit-learn's log_loss), nats.
      LogLoss: float
      /// Fraction of samples whose most probable class is the true one.
      Accuracy: float
      /// Per-class precision: correct predictions of k / predictions of k (0 when k is never predicted).
      Precision: float[]
      /// Per-class recall: correct predictions of k / samples of class k (0 when k never occurs).
      Recall: float[]
      /// Per-class F1: harmonic mean of precision and recall (0 when both are 0).
      F1: float[]
      /// Per-class support: samples of class k (the confusion matrix's row sums; scikit-learn's classification_report).
      Support: int[]
      /// Confusion matrix [true class, predicted class] of counts.
      Confusion: int[,] }

/// Computing and printing metrics.
[<RequireQualifiedAccess>]
module Metrics =
    /// Index of the largest value of row i (first one on ties).
    let argmaxRow (probabilities: float32[,]) (i: int) =
        let mutable best = 0
        for j in 1 .. Array2D.length2 probabilities - 1 do
            if probabilities[i, j] > probabilities[i, best] then best <- j
        best

    /// Metrics of probabilities [samples, classes] against labels (class indices, one per sample).
    let compute (probabilities: float32[,]) (labels: int[]) : Metrics =
        let n = Array2D.length1 probabilities
        let k = Array2D.length2 probabilities
        if labels.Length <> n then
            invalidArg "labels" (sprintf "Expected %d labels (one per row of probabilities), was %d." n labels.Length)
        let confusion = Array2D.zeroCreate k k
        let mutable logLoss = 0.0
        for i in 0 .. n - 1 do
            let y = labels[i]
            if y < 0 || y >= k then invalidArg "labels" (sprintf "Label %d of sample %d is outside 0..%d." y i (k - 1))
            let predicted = argmaxRow probabilities i
            confusion[y, predicted] <- confusion[y, predicted] + 1
            logLoss <- logLoss - log (min 1.0 (max 1e-15 (float probabilities[i, y])))
        let correct = Seq.sum (seq { for j in 0 .. k - 1 -> confusion[j, j] })
        let ratio a b = if b = 0 then 0.0 else float a / float b
        let precision = Array.init k (fun j -> ratio confusion[j, j] (Seq.sum (seq { for i in 0 .. k - 1 -> confusion[i, j] })))
        let recall = Array.init k (fun j -> ratio confusion[j, j] (Seq.sum (seq { for c in 0 .. k - 1 -> confusion[j, c] })))
        let f1 = Array.init k (fun j -> let p, r = precision[j], recall[j] in if p + r = 0.0 then 0.0 else 2.0 * p * r / (p + r))
        { Count = n
          LogLoss = (if n = 0 then 0.0 else logLoss / float n)
          Accuracy = ratio correct n
          Precision = precision
          Recall = recall
          F1 = f1
          Support = Array.init k (fun j -> Seq.sum (seq { for c in 0 .. k - 1 -> confusion[j, c] }))
          Confusion = confusion }

    /// Unweighted mean of the per-class F1 scores.
    let macroF1 (m: Metrics) = if m.F1.Length = 0 then 0.0 else Array.average m.F1

    /// A plain-text report: accuracy, log-loss, a per-class precision/recall/F1 table and the confusion matrix.
    /// `labelNames` may be empty (class indices are printed instead).
    let format (labelNames: string list) (m: Metrics) : string =
        let k = m.Precision.Length
        let names = Array.ofList labelNames
        let name j = if j < names.Length then names[j] else string j
        let width = max 8 (Seq.init k (fun j -> (name j).Length + 1) |> Seq.fold max 0)
        let sb = StringBuilder()
        sb.AppendLine(sprintf "samples %d, accuracy %.4f, log-loss %.4f, macro F1 %.4f" m.Count m.Accuracy m.LogLoss (macroF1 m)) |> ignore
        sb.AppendLine("class".PadRight(width) + " precision    recall        F1") |> ignore
        for j in 0 .. k - 1 do
            sb.AppendLine(sprintf "%s %9.4f %9.4f %9.4f" ((name j).PadRight(width)) m.Precision[j] m.Recall[j] m.F1[j]) |> ignore
        sb.AppendLine("confusion (rows: true, columns: predicted)") |> ignore
        for i in 0 .. k - 1 do
            sb.Append((name i).PadRight(width)) |> ignore
            for j in 0 .. k - 1 do
                sb.Append(sprintf " %5d" m.Confusion[i, j]) |> ignore
            sb.AppendLine() |> ignore
        sb.ToString().TrimEnd()
