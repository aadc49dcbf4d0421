/// Engine equivalence: every IDspOps operation gives the same result on ilgpu-cpu (and opencl and cuda where present)
/// as on managed (the reference engine) within 1e-4, on sizes straddling warp and power-of-two boundaries. One list of cases, each a function
/// that runs an operation on a given engine from the same host inputs.
module Hybrid.DspKernelsTests.EngineEquivalenceTests

open System
open Expecto
open Hybrid.Dsp
open Hybrid.Dsp.Managed
open Hybrid.DspKernelsTests.IlgpuFixture

/// Runs one operation on an engine: inputs are host arrays with shapes, the output shape is given, the result comes back to the host.
let private op (inputs: (float32[] * int[]) list) (outShape: int[]) (f: IDspOps -> Tensor list -> Tensor -> unit) (e: Engine) =
    let tensors = inputs |> List.map (fun (data, shape) -> upload e data shape)
    use out = e.Allocate outShape
    try
        f e.Dsp tensors out
        out.ToArray()
    finally
        for t in tensors do t.Dispose()

let private positive seed count = randomSignal seed count |> Array.map (fun v -> abs v + 1e-3f)

/// A positive spectrogram [batch, n_fft/2+1, frames] with a dynamic range like real audio's.
let private spectrogram seed batch nFft frames =
    let bins = nFft / 2 + 1
    positive seed (batch * bins * frames) |> Array.mapi (fun i v -> v * v * float32 (Math.Exp(-3.0 * float ((i / frames) % bins) / float bins)))

let private cases : (string * (Engine -> float32[])) list =
    [
        for n in [ 31; 32; 33; 256; 257; 400 ] do
            for inverse in [ false; true ] do
                $"Fft n={n} inverse={inverse}", op [ randomSignal n (3 * n * 2), [| 3; n; 2 |] ] [| 3; n; 2 |] (fun d ts o -> d.Fft(ts.[0], o, inverse))
            $"Rfft n={n}", op [ randomSignal n (3 * n), [| 3; n |] ] [| 3; n / 2 + 1; 2 |] (fun d ts o -> d.Rfft(ts.[0], o))
            $"Irfft n={n}", op [ randomSignal n (3 * (n / 2 + 1) * 2), [| 3; n / 2 + 1; 2 |] ] [| 3; n |] (fun d ts o -> d.Irfft(ts.[0], o))

        for (config, kind) in
            [ StftConfig(256, 128), SpectrumKind.Power
              StftConfig(400, 160, 320, WindowKind.Hamming, true, PadMode.Reflect), SpectrumKind.Magnitude
              StftConfig(33, 8, 31, WindowKind.Blackman, true, PadMode.Edge), SpectrumKind.Complex
              StftConfig(64, 16, Center = false), SpectrumKind.Power ] do
            let samples = 1000
            let frames = config.FrameCount samples
            let shape = if kind = SpectrumKind.Complex then [| 2; config.Bins; frames; 2 |] else [| 2; config.Bins; frames |]
            $"Stft n_fft={config.NFft} hop={config.Hop} win={config.Win} {config.Window} center={config.Center} {config.PadMode} {kind}",
            op [ randomSignal 4 (2 * samples), [| 2; samples |] ] shape (fun d ts o -> d.Stft(config, ts.[0], o, kind))

        for config in [ StftConfig(256, 64); StftConfig(400, 100, Window = WindowKind.Hamming); StftConfig(32, 8, Center = false) ] do
            let frames = 12
            $"Istft n_fft={config.NFft} hop={config.Hop} center={config.Center}",
            op [ randomSignal 5 (2 * config.Bins * frames * 2), [| 2; config.Bins; frames; 2 |] ] [| 2; config.Hop * (frames - 1) |] (fun d ts o -> d.Istft(config, ts.[0], o))

        for (mel, nFft) in [ MelConfig(8000, 40, FMax = Nullable 4000.0), 256; MelConfig(22050, 128), 2048; MelConfig(16000, 33, 50.0, Nullable 7000.0, true, MelNorm.None), 400 ] do
            $"Mel n_mels={mel.NMels} n_fft={nFft} htk={mel.Htk} norm={mel.Norm}",
            op [ spectrogram 6 2 nFft 17, [| 2; nFft / 2 + 1; 17 |] ] [| 2; mel.NMels; 17 |] (fun d ts o -> d.Mel(mel, nFft, ts.[0], o))

        for top in [ Nullable 80.0; Nullable() ] do
            $"PowerToDb top_db={top}", op [ spectrogram 7 3 64 31, [| 3; 33; 31 |] ] [| 3; 33; 31 |] (fun d ts o -> d.PowerToDb(DbConfig(Ref = 0.5, TopDb = top), ts.[0], o))
            $"AmplitudeToDb top_db={top}", op [ randomSignal 8 (3 * 33 * 31), [| 3; 33; 31 |] ] [| 3; 33; 31 |] (fun d ts o -> d.AmplitudeToDb(DbConfig(TopDb = top), ts.[0], o))

        for lifter in [ 0.0f; 22.0f ] do
            $"Mfcc lifter={lifter}", op [ randomSignal 9 (2 * 40 * 33) |> Array.map (fun v -> 40.0f * v), [| 2; 40; 33 |] ] [| 2; 13; 33 |] (fun d ts o -> d.Mfcc(13, lifter, ts.[0], o))

        // Nine clips: enough for the managed engine's fused pass on the two-core machines the suite runs on.
        for (stft, mel, kind) in
            [ StftConfig(256, 128), MelConfig(8000, 40, FMax = Nullable 4000.0), SpectrumKind.Power
              StftConfig(255, 77, 200, WindowKind.Hamming, true, PadMode.Reflect), MelConfig(16000, 33, 50.0, Nullable 7000.0), SpectrumKind.Magnitude ] do
            let samples = 1001
            let frames = stft.FrameCount samples
            let input = [ randomSignal 15 (9 * samples), [| 9; samples |] ]
            $"LogMelSpectrogram n_fft={stft.NFft} hop={stft.Hop} n_mels={mel.NMels} {kind}",
            op input [| 9; mel.NMels; frames |] (fun d ts o -> d.LogMelSpectrogram(stft, mel, DbConfig(Ref = 0.5, TopDb = Nullable 60.0), ts.[0], o, kind))
            $"Mfcc from clips n_fft={stft.NFft} hop={stft.Hop} n_mels={mel.NMels} {kind}",
            op input [| 9; 13; frames |] (fun d ts o -> d.Mfcc(stft, mel, DbConfig(), 13, 22.0f, ts.[0], o, null, kind))

        for width in [ 3; 9 ] do
            for order in [ 1; 2 ] do
                $"Delta width={width} order={order}", op [ randomSignal 10 (2 * 13 * 32), [| 2; 13; 32 |] ] [| 2; 13; 32 |] (fun d ts o -> d.Delta(width, order, ts.[0], o))

        for nFft in [ 62; 256; 400 ] do
            let s = spectrogram 11 2 nFft 33
            let input = [ s, [| 2; nFft / 2 + 1; 33 |] ]
            $"SpectralCentroid n_fft={nFft}", op input [| 2; 33 |] (fun d ts o -> d.SpectralCentroid(16000, nFft, ts.[0], o))
            for p in [ 1.0f; 2.0f; 3.0f ] do
                $"SpectralBandwidth n_fft={nFft} p={p}", op input [| 2; 33 |] (fun d ts o -> d.SpectralBandwidth(16000, nFft, p, ts.[0], o))
            $"SpectralRolloff n_fft={nFft}", op input [| 2; 33 |] (fun d ts o -> d.SpectralRolloff(16000, nFft, 0.85f, ts.[0], o))
            $"SpectralFlatness n_fft={nFft}", op input [| 2; 33 |] (fun d ts o -> d.SpectralFlatness(1e-10f, 2.0f, ts.[0], o))
            for tuning in [ 0.0f; -0.3f ] do
                $"Chroma n_fft={nFft} tuning={tuning}", op input [| 2; 12; 33 |] (fun d ts o -> d.Chroma(16000, nFft, 12, tuning, ts.[0], o))

        for (frameLength, hop, center) in [ 32, 8, true; 33, 16, false; 256, 64, true ] do
            let samples = 1000
            let padded = if center then samples + 2 * (frameLength / 2) else samples
            let frames = 1 + (padded - frameLength) / hop
            let clip = randomSignal 12 (2 * samples) |> Array.mapi (fun i v -> if i % 7 = 0 then 0.0f else v)
            $"ZeroCrossingRate frame={frameLength} hop={hop} center={center}",
            op [ clip, [| 2; samples |] ] [| 2; frames |] (fun d ts o -> d.ZeroCrossingRate(frameLength, hop, center, ts.[0], o))
            for pad in [ PadMode.Constant; PadMode.Reflect; PadMode.Edge ] do
                $"Rms frame={frameLength} hop={hop} center={center} {pad}",
                op [ clip, [| 2; samples |] ] [| 2; frames |] (fun d ts o -> d.Rms(frameLength, hop, center, pad, ts.[0], o))

        for config in [ ScatteringConfig(4, 2); ScatteringConfig(5, 4, 16, 1) ] do
            let samples = 300
            let bank = Filters.Scattering1D(config, samples)
            $"Scattering1D J={config.J} Q={config.Q} T={config.Averaging} max_order={config.MaxOrder}",
            op [ randomSignal 13 (3 * samples), [| 3; samples |] ] [| 3; bank.Paths.Count; bank.Frames |] (fun d ts o -> d.Scattering1D(config, ts.[0], o))
            $"ScatteringLogMean J={config.J} Q={config.Q} T={config.Averaging} max_order={config.MaxOrder}",
            op [ randomSignal 14 (3 * samples), [| 3; samples |] ] [| 3; bank.Paths.Count - 1 |] (fun d ts o -> d.ScatteringLogMean(config, 1e-6, ts.[0], o))
    ]

/// The ops of IDspOps that the cases cover, to keep the list complete when the interface grows.
let private covered = cases |> List.map (fun (name, _) -> name.Split(' ').[0]) |> Set.ofList

[<Tests>]
let tests =
    ilgpuList "EngineEquivalence" [
        test "the equivalence cases cover every operation of IDspOps" {
            let ops = typeof<IDspOps>.GetMethods() |> Array.map (fun m -> m.Name) |> Set.ofArray
            Expect.isEmpty (Set.difference ops covered) "operations without an equivalence case"
        }

        for (engineName, ilgpu) in ilgpuEngines do
          testList engineName [
            for (name, run) in cases do
              test $"{name} gives the same result on {engineName} as on managed within 1e-4" {
                Expect.equal ilgpu.Value.Name engineName "engine created (a fallback to managed would compare managed with itself)"
                use managed = new ManagedEngine()
                let expected = run managed
                let actual = run ilgpu.Value
                let scale = expected |> Array.fold (fun m v -> max m (abs (float v))) 1.0
                Hybrid.TestSupport.Assertions.allClose 1e-4 (1e-4 * scale) expected actual name
              } ]
    ]
