namespace Hybrid.Features

open System

/// Raised when an audio file cannot be read: the message names the file and what was wrong with it.
type AudioFormatException(path: string, problem: string, inner: exn | null) =
    inherit Exception(sprintf "%s: %s" path problem, inner)
    new(path, problem) = AudioFormatException(path, problem, null)
    /// The file that could not be read.
    member _.Path = path
    /// What was wrong with it.
    member _.Problem = problem

/// Raised when a dataset folder, manifest or split specification is unusable.
type DatasetException(message: string, inner: exn | null) =
    inherit Exception(message, inner)
    new(message) = DatasetException(message, null)
