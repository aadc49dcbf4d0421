namespace Hybrid.Classifier

open System
open System.Collections.Generic
open System.IO
open Hybrid.Dsp
open Hybrid.Features

/// One recording's classification.
[<Sealed>]
type Classification internal (labels: string[], probabilities: float32[]) =
    let best = if probabilities.Length = 0 then -1 else Array.IndexOf(probabilities, Array.max probabilities)
    /// The most probable label.
    member _.Label = labels[best]
    /// Its probability.
    member _.Confidence = probabilities[best]
    /// The probability of each label, in the classifier's `Labels` order (they sum to 1).
    member _.Probabilities: IReadOnlyList<float32> = Array.AsReadOnly(Array.copy probabilities)
    /// The probability of `label`; raises ArgumentException for a label the model does not know.
    member _.ProbabilityOf(label: string) =
        match Array.IndexOf(labels, label) with
        | -1 -> invalidArg "label" (sprintf "unknown label '%s'; the model's labels are %s" label (String.Join(", ", labels)))
        | i -> probabilities[i]
    override _.ToString() = sprintf "%s (%.3f)" labels[best] probabilities[best]

/// Classifies recordings with a model file written by `train` through the one inference path (Inference.classify),
/// preparing audio exactly as training did and as `predict` and `evaluate` do: resampled to the model's rate, cut into
/// the model's windows (each cut or zero-padded, centred, to its clip length), features of its schema, per-utterance
/// and stored normalisation, test-time speed averaging when the model records it, window probabilities averaged. Load once, then call from any
/// number of threads (calls are serialised on the model's engine). Dispose to release the engine.
[<Sealed>]
type AudioClassifier private (path: string, trained: TrainedModel) =
    let gate = obj ()
    let mutable disposed = false
    let labels = trained.Labels

    /// Loads `modelPath` onto an engine (`device`: auto, managed, cuda, opencl or ilgpu-cpu), reading it once. The file
    /// is fully validated (magic, version, sizes, checksum, architecture, settings, schema fingerprint) before any
    /// weight is allocated. Raises ModelFileException for a damaged or hostile file, SchemaMismatchException when the
    /// schema the model was trained on has another fingerprint in this library, and ArgumentException for an engine
    /// that cannot be used; FileNotFoundException or IOException when the file cannot be opened.
    static member Load(modelPath: string, device: string) : AudioClassifier =
        if isNull (box modelPath) then nullArg "modelPath"
        let engine = Engines.Create(device, ignore)
        try new AudioClassifier(modelPath, Inference.load engine modelPath)
        with _ ->
            engine.Dispose()
            reraise ()

    /// Loads `modelPath` on the managed engine (see the overload taking a device).
    static member Load(modelPath: string) = AudioClassifier.Load(modelPath, "managed")

    /// Class names, in the order of every Classification's Probabilities.
    member _.Labels: IReadOnlyList<string> = Array.AsReadOnly labels
    /// The rate the model works at, in Hz (other rates are resampled).
    member _.SampleRate = trained.Preparation.Clips.SampleRate
    /// Samples per model input clip at SampleRate (each window of a recording is cut or zero-padded, centred, to this
    /// length).
    member _.ClipSamples = trained.Preparation.Clips.ClipSamples

    /// Classifies mono clips (each a float32 buffer of any length) recorded at `sampleRate` Hz, as one batch. Raises
    /// ArgumentNullException for null clips, ArgumentOutOfRangeException for a rate outside AudioLimits (1 Hz .. 768 kHz)
    /// or one Resample.resample does not down-sample to SampleRate, ObjectDisposedException after Dispose.
    member _.ClassifyBatch(clips: IReadOnlyList<float32[]>, sampleRate: int) : Classification[] =
        if isNull (box clips) then nullArg "clips"
        if sampleRate < AudioLimits.MinSampleRate || sampleRate > AudioLimits.MaxSampleRate then
            raise (ArgumentOutOfRangeException("sampleRate", sampleRate, sprintf "the sample rate must lie in %d .. %d Hz" AudioLimits.MinSampleRate AudioLimits.MaxSampleRate))
        let clips = Array.ofSeq clips
        clips |> Array.iteri (fun i c -> if isNull (box c) then invalidArg "clips" (sprintf "clip %d is null" i))
        if clips.Length = 0 then [||]
        else
            let atRate = clips |> Hybrid.Features.Threads.map (fun c -> if sampleRate = trained.Preparation.Clips.SampleRate then c else Resample.resample sampleRate trained.Preparation.Clips.SampleRate c)
            let probabilities =
                lock gate (fun () ->
                    if disposed then raise (ObjectDisposedException(path))
                    Inference.classify trained atRate)
            Array.init clips.Length (fun i -> Classification(labels, Array.init labels.Length (fun k -> probabilities[i, k])))

    /// Classifies one mono clip recorded at `sampleRate` Hz.
    member c.Classify(samples: float32[], sampleRate: int) : Classification = (c.ClassifyBatch([| samples |], sampleRate))[0]

    /// Classifies a WAV stream (any rate; channels are averaged). `name` labels errors (AudioFormatException).
    member c.ClassifyStream(stream: Stream, name: string) : Classification =
        if isNull (box stream) then nullArg "stream"
        let audio = Wav.readStreamMono name stream
        c.Classify(audio.Samples[0], audio.SampleRate)

    /// Classifies a WAV stream.
    member c.ClassifyStream(stream: Stream) = c.ClassifyStream(stream, "stream")

    /// Classifies audio files (every format AudioFile reads: WAV, AIFF, .au, FLAC, MP3, Ogg) as one batch (raises
    /// AudioFormatException naming a file that cannot be read).
    member _.ClassifyFiles(paths: IReadOnlyList<string>) : Classification[] =
        if isNull (box paths) then nullArg "paths"
        let recordings = paths |> Seq.map (ClipPlan.load trained.Preparation.Clips) |> Array.ofSeq
        let probabilities =
            lock gate (fun () ->
                if disposed then raise (ObjectDisposedException(path))
                Inference.classify trained recordings)
        Array.init recordings.Length (fun i -> Classification(labels, Array.init labels.Length (fun k -> probabilities[i, k])))

    /// Classifies one WAV file.
    member c.ClassifyFile(path: string) : Classification = (c.ClassifyFiles [| path |])[0]

    /// Releases the model's engine (GPU memory on a GPU engine). Calls after Dispose raise ObjectDisposedException;
    /// a second Dispose does nothing.
    member _.Dispose() =
        lock gate (fun () ->
            if not disposed then
                disposed <- true
                trained.Model.Engine.Dispose())

    interface IDisposable with
        member this.Dispose() = this.Dispose()
