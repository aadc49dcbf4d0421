/// STFT and iSTFT on the managed engine: agreement with a direct windowed DFT for every pad mode, window and
/// win_length, output kinds, reconstruction for COLA pairs, and batch consistency.
module Hybrid.DspKernelsTests.StftTests

open System
open Expecto
open FsCheck
open Hybrid.Dsp
open Hybrid.TestSupport
open Hybrid.DspKernelsTests.Reference

/// numpy.pad of one clip by `pad` samples per side in the given mode.
let padded (mode: PadMode) (pad: int) (x: float32[]) =
    let n = x.Length
    Array.init (n + 2 * pad) (fun i ->
        let p = i - pad
        if p >= 0 && p < n then x.[p]
        else
            match mode with
            | PadMode.Constant -> 0.0f
            | PadMode.Edge -> if p < 0 then x.[0] else x.[n - 1]
            | _ -> x.[if p < 0 then -p else 2 * (n - 1) - p])

/// Complex STFT by a direct DFT in double precision: [bins, frames, 2].
let directStft (c: StftConfig) (x: float32[]) =
    let signal = if c.Center then padded c.PadMode (c.NFft / 2) x else x
    let window = Filters.Window(c.Window, c.Win, c.NFft)
    let frames = c.FrameCount x.Length
    let out = Array.zeroCreate<float32> (c.Bins * frames * 2)
    for t in 0 .. frames - 1 do
        for k in 0 .. c.Bins - 1 do
            let mutable re = 0.0
            let mutable im = 0.0
            for j in 0 .. c.NFft - 1 do
                let v = float signal.[t * c.Hop + j] * float window.[j]
                let a = -2.0 * Math.PI * float ((k * j) % c.NFft) / float c.NFft
                re <- re + v * cos a
                im <- im + v * sin a
            out.[2 * (k * frames + t)] <- float32 re
            out.[2 * (k * frames + t) + 1] <- float32 im
    out

let stft (c: StftConfig) (kind: SpectrumKind) (batch: int) (x: float32[]) =
    let samples = x.Length / batch
    let frames = c.FrameCount samples
    let y = if kind = SpectrumKind.Complex then zeros [ batch; c.Bins; frames; 2 ] else zeros [ batch; c.Bins; frames ]
    dsp.Stft(c, tensor x [ batch; samples ], y, kind)
    y.ToArray()

let config = Properties.config 30

let windows = [| WindowKind.Hann; WindowKind.Hamming; WindowKind.Blackman; WindowKind.Rectangular |]
let nFfts = [| 16; 31; 32; 33; 64; 100; 255; 256; 257; 400 |]

/// Checks iSTFT(STFT x) against x for the case the four picks choose. The inverse divides by the window sum-square,
/// so where a sample is covered only by the tapered tail of one frame (the last samples of a clip whose length is not
/// a multiple of hop) float32 rounding of the frame is amplified by 1 / w, as in librosa: the 1e-5 relative tolerance
/// grows by sqrt(max sum-square / sum-square) there.
let reconstructs (pick: int) (windowPick: int) (quarter: bool) (lengthPick: int) =
    let nFft = nFfts.[abs pick % nFfts.Length]
    let window = windows.[abs windowPick % windows.Length]
    let hop = if quarter then nFft / 4 else nFft / 2
    let length = nFft + abs lengthPick % 3000
    let batch = 3
    let x = noise pick (batch * length)
    let c = StftConfig(nFft, hop, nFft, window, true, PadMode.Constant)
    let spectrum = stft c SpectrumKind.Complex batch x
    let frames = c.FrameCount length
    let y = zeros [ batch; length ]
    dsp.Istft(c, tensor spectrum [ batch; c.Bins; frames; 2 ], y)
    let w = Filters.Window(window, nFft, nFft)
    let sumSquare = Array.zeroCreate<float> length
    for t in 0 .. frames - 1 do
        for j in 0 .. nFft - 1 do
            let p = t * hop + j - nFft / 2
            if p >= 0 && p < length then sumSquare.[p] <- sumSquare.[p] + float w.[j] * float w.[j]
    let peak = Array.max sumSquare
    let actual = y.ToArray()
    let scale = float (maxAbs x)
    for i in 0 .. x.Length - 1 do
        let s = sumSquare.[i % length]
        let tolerance = 1e-5 * scale * (if s > 0.0 then max 1.0 (sqrt (peak / s)) else infinity)
        let error = abs (float actual.[i] - float x.[i])
        if not (error <= tolerance) then
            failtestf "%A n_fft=%d hop=%d length=%d: at index %d expected %g, was %g (tolerance %g, window sum-square %g of %g)"
                window nFft hop length i x.[i] actual.[i] tolerance s peak

[<Tests>]
let tests =
    testList
        "Stft"
        [ testCase "the complex STFT equals a direct windowed DFT for every pad mode, window and a shorter win_length" (fun () ->
              let x = noise 7 777
              for mode in [ PadMode.Constant; PadMode.Reflect; PadMode.Edge ] do
                  for window in windows do
                      for (nFft, win, hop) in [ (64, 64, 16); (33, 20, 7); (100, 80, 25) ] do
                          let c = StftConfig(nFft, hop, win, window, true, mode)
                          let expected = directStft c x
                          let what = sprintf "%A %A n_fft=%d win=%d" mode window nFft win
                          Assertions.allClose 0.0 (1e-5 * float (maxAbs expected)) expected (stft c SpectrumKind.Complex 1 x) what)

          testCase "without centring, frames start at t * hop of the unpadded clip" (fun () ->
              let x = noise 8 500
              let c = StftConfig(64, 20, 64, WindowKind.Hann, false, PadMode.Constant)
              let expected = directStft c x
              Assertions.allClose 0.0 (1e-5 * float (maxAbs expected)) expected (stft c SpectrumKind.Complex 1 x) "center=false")

          testCase "power is |X|^2 and magnitude |X| of the complex STFT" (fun () ->
              let x = noise 9 2000
              let c = StftConfig(256, 64)
              let complex = stft c SpectrumKind.Complex 1 x
              let power = Array.init (complex.Length / 2) (fun i -> complex.[2 * i] * complex.[2 * i] + complex.[2 * i + 1] * complex.[2 * i + 1])
              Assertions.allClose 1e-5 1e-6 power (stft c SpectrumKind.Power 1 x) "power"
              Assertions.allClose 1e-5 1e-6 (Array.map sqrt power) (stft c SpectrumKind.Magnitude 1 x) "magnitude")

          testCase "a wrongly shaped output is rejected naming the expected shape" (fun () ->
              let c = StftConfig(256, 128)
              Expect.throwsT<ArgumentException> (fun () -> dsp.Stft(c, tensor (Array.zeroCreate 1024) [ 1; 1024 ], zeros [ 1; 129; 8 ])) "9 frames expected")

          testPropertyWithConfig config "iSTFT of the STFT reconstructs the clip within 1e-5 relative for COLA pairs, scaled by the window sum-square's conditioning" reconstructs

          testCase "iSTFT reconstructs a Blackman clip whose last samples only the tail of one frame covers (n_fft 100, hop 50, 147 samples)" (fun () ->
              reconstructs 45 58 false 47)

          testPropertyWithConfig config "a batch's STFT equals its clips' STFTs stacked" (fun (pick: int) (Properties.BatchSize batch) (kindPick: int) (seed: int) ->
              let nFft = nFfts.[abs pick % nFfts.Length]
              let samples = 2 * nFft + abs pick % 1000
              let kind = [| SpectrumKind.Power; SpectrumKind.Magnitude; SpectrumKind.Complex |].[abs kindPick % 3]
              let c = StftConfig(nFft, max 1 (nFft / 3), nFft, WindowKind.Hann, true, PadMode.Reflect)
              let x = noise seed (batch * samples)
              let all = stft c kind batch x
              let per = all.Length / batch
              for b in 0 .. batch - 1 do
                  let one = stft c kind 1 x.[b * samples .. (b + 1) * samples - 1]
                  Expect.sequenceEqual all.[b * per .. (b + 1) * per - 1] one (sprintf "clip %d of %d" b batch)) ]
