/// Shared helpers of the DSP tests: a tiny WAV reader (16-bit PCM and 32-bit float, mono), the librosa
/// reference JSON files, and shortcuts for running managed operations on host arrays.
module Hybrid.DspKernelsTests.Reference

open System
open System.IO
open System.Text.Json
open Hybrid.Dsp
open Hybrid.Dsp.Managed

/// Reads a mono WAV as float32 samples in [-1, 1) (16-bit PCM divided by 32768, as soundfile does) and its rate.
let readWav (path: string) =
    let bytes = File.ReadAllBytes path
    let text i = Text.Encoding.ASCII.GetString(bytes, i, 4)
    if bytes.Length < 12 || text 0 <> "RIFF" || text 8 <> "WAVE" then failwithf "%s: not a RIFF/WAVE file" path
    let mutable pos = 12
    let mutable format = 0
    let mutable bits = 0
    let mutable channels = 0
    let mutable rate = 0
    let mutable samples: float32[] option = None
    while pos + 8 <= bytes.Length && samples.IsNone do
        let id = text pos
        let size = BitConverter.ToInt32(bytes, pos + 4)
        let body = pos + 8
        if id = "fmt " then
            format <- int (BitConverter.ToUInt16(bytes, body))
            channels <- int (BitConverter.ToUInt16(bytes, body + 2))
            rate <- BitConverter.ToInt32(bytes, body + 4)
            bits <- int (BitConverter.ToUInt16(bytes, body + 14))
        elif id = "data" then
            if channels <> 1 then failwithf "%s: expected mono, had %d channels" path channels
            let size = min size (bytes.Length - body)
            samples <-
                match format, bits with
                | 1, 16 -> Some(Array.init (size / 2) (fun i -> float32 (BitConverter.ToInt16(bytes, body + 2 * i)) / 32768.0f))
                | 3, 32 -> Some(Array.init (size / 4) (fun i -> BitConverter.ToSingle(bytes, body + 4 * i)))
                | f, b -> failwithf "%s: unsupported WAV format %d with %d bits" path f b
        pos <- body + size + (size &&& 1)
    match samples with
    | Some s -> s, rate
    | None -> failwithf "%s: no data chunk" path

/// One reference JSON file: its parsed document and signal.
type Case =
    { Name: string
      Config: JsonElement
      Root: JsonElement
      Signal: float32[] }

    /// The array named `key` as (shape, row-major values).
    member c.Array(key: string) =
        let a = c.Root.GetProperty key
        let shape = [| for d in a.GetProperty("shape").EnumerateArray() -> d.GetInt32() |]
        let data = [| for v in a.GetProperty("data").EnumerateArray() -> float32 (v.GetDouble()) |]
        shape, data

    member c.Int(key: string) = c.Config.GetProperty(key).GetInt32()

/// Loads one reference case of the folder (its signal from signals/ or the FSDD folder the JSON names).
let loadCase (folder: string) (file: string) =
    let doc = JsonDocument.Parse(File.ReadAllText file)
    let root = doc.RootElement
    let relative = root.GetProperty("wav").GetString() |> nonNull
    let wav =
        // FSDD recordings are named relative to the shared folder; find them in the FSDD folder instead.
        if relative.Contains "fsdd/recordings/" then
            match Hybrid.TestSupport.TestData.fsddFolder () with
            | Some fsdd -> Path.Combine(fsdd, "recordings", Path.GetFileName relative |> nonNull)
            | None ->
                let message = sprintf "FSDD folder not found (set %s)" Hybrid.TestSupport.TestData.FsddVariable
                if Hybrid.TestSupport.TestData.requireData () then Expecto.Tests.failtest message
                else Expecto.Tests.skiptest message
        else
            Path.GetFullPath(Path.Combine(folder, relative))
    let signal, _ = readWav wav
    { Name = Path.GetFileNameWithoutExtension file |> nonNull
      Config = root.GetProperty "config"
      Root = root
      Signal = signal }

/// The managed engine every test uses (2 threads to mirror the target machine and exercise parallel paths).
let engine = new ManagedEngine(2)

let dsp = engine.Dsp

/// Wraps a host array as a managed tensor.
let tensor (data: float32[]) (shape: int list) = engine.Wrap(data, Array.ofList shape) :> Tensor

/// Allocates a zero tensor.
let zeros (shape: int list) = engine.Allocate(Array.ofList shape)

/// Largest absolute value of an array.
let maxAbs (a: float32[]) = a |> Array.fold (fun m v -> max m (abs v)) 0.0f

/// A deterministic pseudo-random signal in [-1, 1).
let noise (seed: int) (length: int) =
    let rng = Random seed
    Array.init length (fun _ -> float32 (rng.NextDouble() * 2.0 - 1.0))

/// librosa 0.10.2's chroma reference (TestData.chromaReference) and the 30 s harmonic signal it was made from.
let chromaReference = Hybrid.TestSupport.TestData.chromaReference
let harmonicSignal = Hybrid.TestSupport.TestData.harmonicSignal
