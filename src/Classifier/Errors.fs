namespace Hybrid.Classifier

open System

/// Raised when a model cannot be exported to ONNX as asked, e.g. `--frontend` for a feature schema whose extraction
/// an ONNX graph cannot express (chroma, spectral statistics). The message names the model file and the reason.
type OnnxExportException(path: string, problem: string) =
    inherit Exception(sprintf "%s: %s" path problem)
    /// The model file.
    member _.Path = path
    /// Why it cannot be exported.
    member _.Problem = problem
