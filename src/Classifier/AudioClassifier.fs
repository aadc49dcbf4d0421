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

/// Classifies recordings with a model file written by `train`, preparing audio exactly as training did: resampled
/// to the model's rate, cut or zero-padded (centred) to its clip length, features of its schema, per-utterance and
/// stored normalisation, and test-time speed averaging when the model records it. Load once, then call from any
/// number of threads (calls are serialised on the model's engine). Dispose to release the engine.
[<Sealed>]
type AudioClassifier private (path: string, engine: Engine, model: Model, labels: string[], extractor: Pipeline.Extractor,
                              prepare: float32[][] -> float32[], speeds: (float * float) list) =
    let gate = obj ()
    let mutable disposed = false

    /// Loads `modelPath` onto an engine (`device`: auto, managed, cuda, opencl or ilgpu-cpu). The file is fully
    /// validated (magic, version, sizes, checksum, architecture, schema fingerprint) before any weight is allocated.
    /// Raises ModelFileException for a damaged or hostile file and SchemaMismatchException when the schema the model
    /// was trained on has another fingerprint in this library.
    static member Load(modelPath: string, device: string) : AudioClassifier =
        if isNull (box modelPath) then nullArg "modelPath"
        let trained = Experiment.trainedInput modelPath
        let engine = Engines.Create(device, ignore)
        try
            let model, info = ModelFile.load engine trained.Schema.Fingerprint modelPath
            let stats = Experiment.storedStats modelPath trained.Schema info
            let extractor = Extraction.extractor engine trained.Extraction
            new AudioClassifier(modelPath, engine, model, Array.ofList info.Labels, extractor,
                                Experiment.prepare engine trained.Extraction trained.PerUtterance stats, trained.TestSpeeds)
        with _ ->
            engine.Dispose()
            reraise ()

    /// Loads `modelPath` on the managed engine (see the overload taking a device).
    static member Load(modelPath: string) = AudioClassifier.Load(modelPath, "managed")

    /// Class names, in the order of every Classification's Probabilities.
    member _.Labels: IReadOnlyList<string> = Array.AsReadOnly labels
    /// The rate the model works at, in Hz (other rates are resampled).
    member _.SampleRate = extractor.SampleRate
    /// Samples per clip at SampleRate (recordings are cut or zero-padded, centred, to this length; 0: the whole
    /// recording, for schemas of statistics over any length).
    member _.ClipSamples = extractor.ClipSamples

    /// Classifies mono clips (each a float32 buffer of any length) recorded at `sampleRate` Hz, as one batch.
    member _.ClassifyBatch(clips: IReadOnlyList<float32[]>, sampleRate: int) : Classification[] =
        if isNull (box clips) then nullArg "clips"
        if sampleRate <= 0 then raise (ArgumentOutOfRangeException("sampleRate", sampleRate, "the sample rate must be positive"))
        let clips = Array.ofSeq clips
        clips |> Array.iteri (fun i c -> if isNull (box c) then invalidArg "clips" (sprintf "clip %d is null" i))
        if clips.Length = 0 then [||]
        else
            let atRate = clips |> Array.Parallel.map (fun c -> if sampleRate = extractor.SampleRate then c else Resample.resample sampleRate extractor.SampleRate c)
            let probabilities =
                lock gate (fun () ->
                    if disposed then raise (ObjectDisposedException(path))
                    Experiment.predictAveraged model prepare speeds atRate)
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
    member c.ClassifyFiles(paths: IReadOnlyList<string>) : Classification[] =
        if isNull (box paths) then nullArg "paths"
        let audio = paths |> Seq.map AudioFile.readMono |> Array.ofSeq
        let groups = audio |> Array.mapi (fun i a -> i, a) |> Array.groupBy (fun (_, a) -> a.SampleRate)
        let result = Array.zeroCreate audio.Length
        for rate, members in groups do
            let classified = c.ClassifyBatch(members |> Array.map (fun (_, a) -> a.Samples[0]), rate)
            members |> Array.iteri (fun j (i, _) -> result[i] <- classified[j])
        result

    /// Classifies one WAV file.
    member c.ClassifyFile(path: string) : Classification = (c.ClassifyFiles [| path |])[0]

    interface IDisposable with
        member _.Dispose() =
            lock gate (fun () ->
                if not disposed then
                    disposed <- true
                    engine.Dispose())
