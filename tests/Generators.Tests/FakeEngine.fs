/// A deterministic stand-in engine for testing the extraction plan's wiring without real DSP: every IDspOps
/// operation writes a simple, input-dependent formula (keeping the properties the plan relies on: power is
/// magnitude squared, MFCC row c does not depend on the count) and counts its calls.
module Hybrid.GeneratorsTests.FakeEngine

open System
open System.Collections.Generic
open Hybrid.Dsp

/// A row-major float32 tensor in a host array.
type HostTensor(engine: Engine, shape: int[], data: float32[]) =
    inherit Tensor(engine, shape)
    /// The elements.
    member _.Data = data
    override _.CopyFrom(source: ReadOnlySpan<float32>, offset: int64) = source.CopyTo(Span<float32>(data, int offset, source.Length))
    override _.CopyTo(destination: Span<float32>, offset: int64) =
        ReadOnlySpan<float32>(data, int offset, destination.Length).CopyTo(destination)
    override _.Reshape(newShape: int[]) = new HostTensor(engine, newShape, data) :> Tensor
    override _.Dispose() = ()

let private data (t: Tensor) = (t :?> HostTensor).Data

/// The fake operations; `Calls` counts invocations by operation name.
type FakeDsp() =
    let calls = Dictionary<string, int>()
    let count name =
        calls.[name] <- (match calls.TryGetValue name with | true, n -> n + 1 | _ -> 1)
    let notUsed name : unit = raise (NotSupportedException(sprintf "the fake engine does not implement %s" name))
    /// Calls per operation name since the last reset.
    member _.Calls(name: string) = match calls.TryGetValue name with | true, n -> n | _ -> 0
    /// Forgets the counts.
    member _.Reset() = calls.Clear()
    interface IDspOps with
        member _.Fft(_, _, _) = notUsed "Fft"
        member _.Rfft(_, _) = notUsed "Rfft"
        member _.Irfft(_, _) = notUsed "Irfft"
        member _.Istft(_, _, _) = notUsed "Istft"
        member _.AmplitudeToDb(_, _, _) = notUsed "AmplitudeToDb"
        member _.Scattering1D(_, _, _) = notUsed "Scattering1D"
        member _.Stft(config, clips, output, kind) =
            count "Stft"
            let b, n = clips.Shape.[0], clips.Shape.[1]
            let frames = config.FrameCount n
            output.RequireShape("output", b, config.Bins, frames)
            let x, y = data clips, data output
            for i in 0 .. b - 1 do
                for k in 0 .. config.Bins - 1 do
                    for t in 0 .. frames - 1 do
                        let mag = abs x.[i * n + (t * config.Hop + k) % n] + 0.01f * float32 k
                        y.[(i * config.Bins + k) * frames + t] <-
                            match kind with
                            | SpectrumKind.Power -> mag * mag
                            | SpectrumKind.Magnitude -> mag
                            | _ -> nanf
        member _.Mel(config, nFft, s, output) =
            count "Mel"
            let b, bins, frames = s.Shape.[0], s.Shape.[1], s.Shape.[2]
            output.RequireShape("output", b, config.NMels, frames)
            let x, y = data s, data output
            for i in 0 .. b - 1 do
                for m in 0 .. config.NMels - 1 do
                    for t in 0 .. frames - 1 do
                        y.[(i * config.NMels + m) * frames + t] <- x.[(i * bins + m % bins) * frames + t] * (1.0f + 0.1f * float32 m) + float32 nFft * 1e-4f
        member _.PowerToDb(_, input, output) =
            count "PowerToDb"
            let x, y = data input, data output
            for i in 0 .. x.Length - 1 do y.[i] <- 10.0f * log10 (max 1e-10f x.[i])
        member _.Mfcc(nMfcc, lifter, logMel, output) =
            count "Mfcc"
            let b, mels, frames = logMel.Shape.[0], logMel.Shape.[1], logMel.Shape.[2]
            output.RequireShape("output", b, nMfcc, frames)
            let x, y = data logMel, data output
            for i in 0 .. b - 1 do
                for c in 0 .. nMfcc - 1 do
                    for t in 0 .. frames - 1 do
                        y.[(i * nMfcc + c) * frames + t] <- x.[(i * mels + c % mels) * frames + t] - 0.5f * float32 c + lifter
        member _.Delta(width, order, input, output) =
            count "Delta"
            let b, rows, frames = input.Shape.[0], input.Shape.[1], input.Shape.[2]
            let x, y = data input, data output
            for r in 0 .. b * rows - 1 do
                for t in 0 .. frames - 1 do
                    y.[r * frames + t] <- (x.[r * frames + t] - x.[r * frames + max 0 (t - 1)]) * float32 order + 0.001f * float32 width
        member _.SpectralCentroid(sampleRate, nFft, s, output) =
            count "SpectralCentroid"
            let b, bins, frames = s.Shape.[0], s.Shape.[1], s.Shape.[2]
            let x, y = data s, data output
            for i in 0 .. b - 1 do
                for t in 0 .. frames - 1 do
                    let mutable num = 0.0f
                    let mutable den = 1e-6f
                    for k in 0 .. bins - 1 do
                        let v = x.[(i * bins + k) * frames + t]
                        num <- num + v * float32 k * float32 sampleRate / float32 nFft
                        den <- den + v
                    y.[i * frames + t] <- num / den
        member _.SpectralBandwidth(_, _, p, s, output) =
            count "SpectralBandwidth"
            let b, bins, frames = s.Shape.[0], s.Shape.[1], s.Shape.[2]
            let x, y = data s, data output
            for i in 0 .. b - 1 do
                for t in 0 .. frames - 1 do y.[i * frames + t] <- x.[(i * bins + 2) * frames + t] * p
        member _.SpectralRolloff(_, _, rollPercent, s, output) =
            count "SpectralRolloff"
            let b, bins, frames = s.Shape.[0], s.Shape.[1], s.Shape.[2]
            let x, y = data s, data output
            for i in 0 .. b - 1 do
                for t in 0 .. frames - 1 do y.[i * frames + t] <- x.[(i * bins + 3) * frames + t] * rollPercent
        member _.SpectralFlatness(_, _, s, output) =
            count "SpectralFlatness"
            let b, bins, frames = s.Shape.[0], s.Shape.[1], s.Shape.[2]
            let x, y = data s, data output
            for i in 0 .. b - 1 do
                for t in 0 .. frames - 1 do
                    let v = x.[(i * bins) * frames + t]
                    y.[i * frames + t] <- v / (1.0f + v)
        member _.ZeroCrossingRate(frameLength, hopLength, _, clips, output) =
            count "ZeroCrossingRate"
            let b, n, frames = clips.Shape.[0], clips.Shape.[1], output.Shape.[1]
            let x, y = data clips, data output
            for i in 0 .. b - 1 do
                for t in 0 .. frames - 1 do y.[i * frames + t] <- x.[i * n + (t * hopLength) % n] * 0.5f + float32 frameLength * 1e-4f
        member _.Rms(frameLength, hopLength, _, _, clips, output) =
            count "Rms"
            let b, n, frames = clips.Shape.[0], clips.Shape.[1], output.Shape.[1]
            let x, y = data clips, data output
            for i in 0 .. b - 1 do
                for t in 0 .. frames - 1 do y.[i * frames + t] <- abs x.[i * n + (t * hopLength + 1) % n] + float32 frameLength * 1e-4f
        member _.Chroma(_, _, nChroma, tuning, s, output) =
            count "Chroma"
            let b, bins, frames = s.Shape.[0], s.Shape.[1], s.Shape.[2]
            output.RequireShape("output", b, nChroma, frames)
            let x, y = data s, data output
            for i in 0 .. b - 1 do
                for c in 0 .. nChroma - 1 do
                    for t in 0 .. frames - 1 do y.[(i * nChroma + c) * frames + t] <- x.[(i * bins + c % bins) * frames + t] + tuning

/// The fake engine: host tensors and <see cref="FakeDsp"/>.
type FakeEngine() =
    inherit Engine()
    let dsp = FakeDsp()
    /// The operations with their call counts.
    member _.Fake = dsp
    override _.Name = "fake"
    override _.DeviceName = "deterministic test formulas"
    override this.Allocate(shape: int[]) =
        let length = shape |> Array.fold (fun acc d -> acc * d) 1
        new HostTensor(this, shape, Array.zeroCreate length) :> Tensor
    override _.Dsp = dsp :> IDspOps
    override _.Nn = raise (NotSupportedException "the fake engine has no network operations")
    override _.Synchronize() = ()
    override _.Dispose() = ()
