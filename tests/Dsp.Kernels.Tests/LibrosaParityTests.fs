/// Parity of the managed and ilgpu-cpu engines with every array of the librosa 0.10.2 reference files.
module Hybrid.DspKernelsTests.LibrosaParityTests

open Expecto
open Hybrid.Dsp
open Hybrid.TestSupport
open Hybrid.TestSupport.TestData
open Hybrid.DspKernelsTests.Reference

/// Every |actual - expected| within atol, naming the array, the case and the first offending index.
let private within (atol: float) (expected: float32[]) (actual: float32[]) what =
    Assertions.allClose 0.0 atol expected actual what

/// Features computed on engine `e` from one case's signal with the case's configuration.
let private features (e: Engine) (case: Case) =
    let dsp = e.Dsp
    let tensor (data: float32[]) (shape: int list) = e.FromHost(System.ReadOnlySpan<float32>(data), Array.ofList shape)
    let zeros (shape: int list) = e.Allocate(Array.ofList shape)
    let sr = case.Int "sr"
    let nFft = case.Int "n_fft"
    let hop = case.Int "hop_length"
    let stft = StftConfig(nFft, hop, case.Int "win_length", WindowKind.Hann, true, PadMode.Constant)
    let n = case.Signal.Length
    let frames = stft.FrameCount n
    let bins = stft.Bins
    let clip = tensor case.Signal [ 1; n ]
    let power = zeros [ 1; bins; frames ]
    dsp.Stft(stft, clip, power, SpectrumKind.Power)
    let magnitude = zeros [ 1; bins; frames ]
    dsp.Stft(stft, clip, magnitude, SpectrumKind.Magnitude)
    let nMels = case.Int "n_mels"
    let melConfig = MelConfig(sr, nMels, 0.0, case.Config.GetProperty("fmax").GetDouble())
    let mel = zeros [ 1; nMels; frames ]
    dsp.Mel(melConfig, nFft, power, mel)
    let db = zeros [ 1; nMels; frames ]
    dsp.PowerToDb(DbConfig(), mel, db)
    let nMfcc = case.Int "n_mfcc"
    let mfcc = zeros [ 1; nMfcc; frames ]
    dsp.Mfcc(nMfcc, 0.0f, db, mfcc)
    let perFrame (f: Tensor -> Tensor -> unit) source =
        let out = zeros [ 1; frames ]
        f source out
        out.ToArray()
    let chroma = zeros [ 1; 12; frames ]
    dsp.Chroma(sr, nFft, 12, 0.0f, power, chroma)
    dict
        [ "power_spectrogram", power.ToArray()
          "mel_spectrogram", mel.ToArray()
          "log_mel_db", db.ToArray()
          "mfcc", mfcc.ToArray()
          "spectral_centroid", perFrame (fun s o -> dsp.SpectralCentroid(sr, nFft, s, o)) magnitude
          "spectral_bandwidth", perFrame (fun s o -> dsp.SpectralBandwidth(sr, nFft, 2.0f, s, o)) magnitude
          "spectral_rolloff", perFrame (fun s o -> dsp.SpectralRolloff(sr, nFft, 0.85f, s, o)) magnitude
          "zero_crossing_rate", perFrame (fun c o -> dsp.ZeroCrossingRate(nFft, hop, true, c, o)) clip
          "rms", perFrame (fun c o -> dsp.Rms(nFft, hop, true, PadMode.Constant, c, o)) clip
          "chroma_stft", chroma.ToArray()
          "mel_filterbank", Filters.Mel(melConfig, nFft) ]

/// Scalar features: within 1e-3 relative to each value (plus a floor of 1e-3 of the array's maximum for values near zero).
let private relative (expected: float32[]) (actual: float32[]) what =
    let floor = 1e-3 * float (maxAbs expected)
    Assertions.allClose 1e-3 (floor * 1e-3 + 1e-9) expected actual what

let private check (case: Case) (key: string) (actual: float32[]) =
    let shape, expected = case.Array key
    let what = sprintf "%s/%s" case.Name key
    Expect.equal actual.Length expected.Length (sprintf "%s: expected %A elements" what shape)
    match key with
    | "power_spectrogram" | "mel_spectrogram" | "mel_filterbank" -> within (1e-4 * float (maxAbs expected)) expected actual what
    | "log_mel_db" -> within 0.01 expected actual what
    | "mfcc" -> within 1e-3 expected actual what
    | _ -> relative expected actual what

/// Compares every array of one reference case computed on `e`; returns how many were compared.
let private checkCase (e: Engine) (case: Case) =
    let computed = features e case
    let mutable compared = 0
    for p in case.Root.EnumerateObject() do
        if p.Value.ValueKind = System.Text.Json.JsonValueKind.Object && p.Value.TryGetProperty("shape") |> fst then
            match computed.TryGetValue p.Name with
            | true, actual ->
                check case p.Name actual
                compared <- compared + 1
            | _ -> failtestf "%s: no computation for reference array %s" case.Name p.Name
    compared

/// The reference signals named in the folder's README (one test each, so a failure names its signal).
let private signals =
    [ "0_jackson_0"; "3_theo_12"; "7_nicolas_31"; "9_yweweler_44"; "tone440_8k"; "chirp_8k"; "noise_8k"; "mix_22k" ]

let private caseOf (folder: string) (name: string) = loadCase folder (System.IO.Path.Combine(folder, name + ".json"))

[<Tests>]
let tests =
    testList
        "LibrosaParity"
        [ for name in signals do
              yield
                  testWithReference (sprintf "every array of %s matches librosa 0.10.2 within the issue's tolerances" name) (fun folder ->
                      Expect.isGreaterThanOrEqual (checkCase engine (caseOf folder name)) 11 "expected the eleven arrays of the README")
          yield
              testWithReference "the reference folder holds no case this suite does not check" (fun folder ->
                  let names = System.IO.Directory.GetFiles(folder, "*.json") |> Array.map (fun f -> System.IO.Path.GetFileNameWithoutExtension f |> nonNull) |> Array.sort
                  Expect.sequenceEqual names (List.sort signals) "reference cases")
          yield
              IlgpuFixture.ilgpuList "on ILGPU" [
                  for (name, ilgpu) in IlgpuFixture.ilgpuEngines do
                      testList name [
                          testWithReference $"every array of every reference file matches librosa 0.10.2 on {name} within the issue's tolerances" (fun folder ->
                              Expect.equal ilgpu.Value.Name name "engine created (not a fallback to managed)"
                              for s in signals do
                                  Expect.isGreaterThanOrEqual (checkCase ilgpu.Value (caseOf folder s)) 11 $"expected the eleven arrays of {s}") ] ] ]
