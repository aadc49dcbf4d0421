namespace Hybrid.Classifier

open System

/// Raised when a model or checkpoint file cannot be used: wrong magic number or format version, bad checksum,
/// truncated content, absurd sizes or a malformed header. The message names the file and what was expected.
type ModelFileException(path: string, problem: string, inner: exn | null) =
    inherit Exception(sprintf "%s: %s" path problem, inner)
    /// The exception without an inner exception.
    new(path, problem) = ModelFileException(path, problem, null)
    /// The file that could not be used.
    member _.Path = path
    /// What was wrong with it.
    member _.Problem = problem

/// Raised when the features offered to a model do not match the input schema it was trained on. `detail` (may be
/// empty) says which schema and which of its parameters differ; the message ends with both fingerprints.
type SchemaMismatchException(path: string, expected: string, found: string, detail: string) =
    inherit Exception(
        if String.IsNullOrEmpty detail then
            sprintf "%s: the model was trained on input schema '%s', but the features offered have schema '%s'." path found expected
        else sprintf "%s: %s (input schema fingerprints: model file %s, features offered %s)." path detail found expected)
    /// Without a detail: the message names the two fingerprints only.
    new(path, expected, found) = SchemaMismatchException(path, expected, found, "")
    /// The model file.
    member _.Path = path
    /// Which schema and parameters differ, in words ("" when unknown).
    member _.Detail = detail
    /// The fingerprint the caller expected (of the features it offers).
    member _.Expected = expected
    /// The fingerprint stored in the model file.
    member _.Found = found

/// Raised when training cannot go on, e.g. a loss that became NaN or infinite (the message names epoch and batch).
type TrainingException(message: string) =
    inherit Exception(message)
