module Hybrid.FeaturesTests.ResampleTests

open System
open System.Diagnostics
open Expecto
open Hybrid.Features
open Hybrid.TestSupport

let rates = [ 8000; 16000; 22050; 44100; 48000 ]

let pairs = [ for a in rates do for b in rates do if a <> b then a, b ]

let tone (rate: int) (freq: float) (amplitude: float) (seconds: float) =
    Array.init (int (seconds * float rate)) (fun n -> float32 (amplitude * sin (2.0 * Math.PI * freq * float n / float rate)))

/// Amplitude of the component at freq (Hz) in x.[first .. first+count-1], by a Blackman-Harris windowed
/// DFT normalised by the window's sum (side lobes below -92 dB, so other components barely leak in).
let amplitudeAt (x: float32[]) (rate: int) (freq: float) (first: int) (count: int) =
    let mutable re = 0.0
    let mutable im = 0.0
    let mutable wsum = 0.0
    for k in 0 .. count - 1 do
        let t = 2.0 * Math.PI * float k / float (count - 1)
        let w = 0.35875 - 0.48829 * cos t + 0.14128 * cos (2.0 * t) - 0.01168 * cos (3.0 * t)
        let phase = 2.0 * Math.PI * freq * float (first + k) / float rate
        re <- re + w * float x.[first + k] * cos phase
        im <- im - w * float x.[first + k] * sin phase
        wsum <- wsum + w
    2.0 * sqrt (re * re + im * im) / wsum

/// The middle of a signal, away from the ends where the zero extension makes the filter ring.
let middle (rate: int) (x: float32[]) =
    let skip = rate / 10
    skip, x.Length - 2 * skip

let rms (x: float32[]) (first: int) (count: int) =
    let mutable s = 0.0
    for i in first .. first + count - 1 do
        s <- s + float x.[i] * float x.[i]
    sqrt (s / float count)

let db (ratio: float) = 20.0 * log10 ratio

[<Tests>]
let tests =
    testList
        "Resample"
        [ testList
              "pass band"
              [ for from, too in pairs do
                    let nyquist = float (min from too) / 2.0
                    for fraction in [ 0.05; 0.3; 0.6; 0.85 ] do
                        let freq = Math.Round(fraction * nyquist)
                        test (sprintf "%d Hz to %d Hz keeps a %g Hz tone's frequency and level within 0.1 dB" from too freq) {
                            let amplitude = 0.5
                            let y = Resample.resample from too (tone from freq amplitude 0.5)
                            let first, count = middle too y
                            let level = amplitudeAt y too freq first count
                            let errorDb = db (level / amplitude)
                            if abs errorDb > 0.1 then failtestf "expected the level within 0.1 dB, was %+.4f dB" errorDb
                            // The strongest component near the tone sits at the tone's frequency.
                            let peak = [ -2.0 .. 0.25 .. 2.0 ] |> List.maxBy (fun d -> amplitudeAt y too (freq + d) first count)
                            if abs peak > 0.25 then failtestf "expected the peak at %g Hz, was at %g Hz" freq (freq + peak)
                            // Nothing else: the output is the ideal tone at the new rate, up to -60 dB.
                            let ideal = tone too freq amplitude (float y.Length / float too + 1.0)
                            let residual = Array.init count (fun i -> y.[first + i] - ideal.[first + i])
                            let residualDb = db (rms residual 0 count / (amplitude / sqrt 2.0))
                            if residualDb > -60.0 then failtestf "expected the output within -60 dB of the ideal tone, was %.1f dB" residualDb
                        } ]
          testList
              "stop band"
              [ for from, too in pairs do
                    if from > too then
                        let newNyquist = float too / 2.0
                        let oldNyquist = float from / 2.0
                        for freq in [ newNyquist * 1.01; newNyquist * 1.3; oldNyquist * 0.97 ] |> List.filter (fun f -> f < oldNyquist * 0.98) |> List.map Math.Round |> List.distinct do
                            test (sprintf "%d Hz to %d Hz attenuates a %g Hz tone above the new Nyquist by at least 60 dB" from too freq) {
                                let amplitude = 0.5
                                let y = Resample.resample from too (tone from freq amplitude 0.5)
                                let first, count = middle too y
                                let attenuation = db (rms y first count / (amplitude / sqrt 2.0))
                                if attenuation > -60.0 then failtestf "expected at most -60 dB, was %.1f dB" attenuation
                            }
                    else
                        let oldNyquist = float from / 2.0
                        test (sprintf "%d Hz to %d Hz adds no images above the old Nyquist" from too) {
                            let freq = Math.Round(0.85 * oldNyquist)
                            let y = Resample.resample from too (tone from freq 0.5 0.5)
                            let first, count = middle too y
                            let newNyquist = float too / 2.0
                            for image in [ float from - freq; float from + freq ] do
                                if image < newNyquist * 0.99 then
                                    let level = db (amplitudeAt y too image first count / 0.5)
                                    if level > -60.0 then failtestf "expected the image at %g Hz below -60 dB, was %.1f dB" image level
                        } ]
          testList
              "properties"
              [ testPropertyWithConfig Properties.defaults "the output has ceil(n * to / from) samples" (fun (n: uint16) (i: byte) (j: byte) ->
                    let from = rates.[int i % rates.Length]
                    let too = rates.[int j % rates.Length]
                    let n = int n % 3000
                    (Resample.resample from too (Array.zeroCreate n)).Length = int ((int64 n * int64 too + int64 from - 1L) / int64 from))
                testPropertyWithConfig Properties.defaults "resampling is linear" (fun (seed: int) (i: byte) (j: byte) ->
                    let rng = Random seed
                    let from = rates.[int i % rates.Length]
                    let too = rates.[int j % rates.Length]
                    let x = Array.init 500 (fun _ -> float32 (rng.NextDouble() - 0.5))
                    let y = Array.init 500 (fun _ -> float32 (rng.NextDouble() - 0.5))
                    let a, b = 0.75f, -1.5f
                    let combined = Resample.resample from too (Array.map2 (fun p q -> a * p + b * q) x y)
                    let separate = Array.map2 (fun p q -> a * p + b * q) (Resample.resample from too x) (Resample.resample from too y)
                    Array.forall2 (fun (p: float32) q -> abs (p - q) < 1e-5f) combined separate)
                test "a constant signal stays constant away from the ends" {
                    for from, too in pairs do
                        let y = Resample.resample from too (Array.create from 0.25f)
                        let first, count = middle too y
                        for k in first .. first + count - 1 do
                            if abs (y.[k] - 0.25f) > 1e-5f then failtestf "%d->%d: at %d expected 0.25, was %g" from too k y.[k]
                }
                test "upsampling then downsampling returns a band-limited signal" {
                    let x = Array.init 8000 (fun n -> float32 (0.3 * sin (2.0 * Math.PI * 440.0 * float n / 8000.0) + 0.2 * sin (2.0 * Math.PI * 2900.0 * float n / 8000.0 + 1.0)))
                    let back = Resample.resample 48000 8000 (Resample.resample 8000 48000 x)
                    Expect.equal back.Length x.Length "length"
                    Assertions.allClose 0.0 1e-3 x.[800..7199] back.[800..7199] "round trip"
                }
                for from, too in [ 8000, 8001; 44100, 44101 ] do
                    test (sprintf "%d Hz to %d Hz (a large reduced ratio) keeps a tone and adds nothing" from too) {
                        // 8001/8000 keeps a phase table; 44101/44100 interpolates a fine kernel table instead.
                        let freq = 1000.0
                        let y = Resample.resample from too (tone from freq 0.5 0.5)
                        let first, count = middle too y
                        let errorDb = db (amplitudeAt y too freq first count / 0.5)
                        if abs errorDb > 0.1 then failtestf "expected the level within 0.1 dB, was %+.4f dB" errorDb
                        let ideal = tone too freq 0.5 (float y.Length / float too + 1.0)
                        let residual = Array.init count (fun i -> y.[first + i] - ideal.[first + i])
                        let residualDb = db (rms residual 0 count / (0.5 / sqrt 2.0))
                        if residualDb > -60.0 then failtestf "expected the output within -60 dB of the ideal tone, was %.1f dB" residualDb
                    }
                for factor in [ 0.9; 1.1; 1.25 ] do
                    test (sprintf "speed %g moves a tone to %g times its frequency and scales the length" factor factor) {
                        let x = tone 8000 500.0 0.5 0.5
                        let y = Resample.speed factor x
                        Expect.equal y.Length (int (ceil (float x.Length / factor - 1e-9))) "length"
                        let first, count = middle 8000 y
                        let moved = db (amplitudeAt y 8000 (500.0 * factor) first count / 0.5)
                        let original = db (amplitudeAt y 8000 500.0 first count / 0.5)
                        if abs moved > 0.1 then failtestf "expected the tone at %g Hz within 0.1 dB, was %+.3f dB" (500.0 * factor) moved
                        if original > -60.0 then failtestf "expected nothing left at 500 Hz, was %.1f dB" original
                    }
                test "polyphase gives the filter resample applies: its phases' sums reproduce resample's samples, edges and length" {
                    let rng = Random 3
                    let x = Array.init 301 (fun _ -> float32 (rng.NextDouble() - 0.5))
                    for fromRate, toRate in [ 7200, 8000; 8800, 8000; 44100, 8000; 8000, 22050 ] do
                        let l, m, phases = Resample.polyphase fromRate toRate
                        let k = phases.[0].Length / 2
                        Expect.equal phases.Length l "one phase per output position within a period"
                        let y = Resample.resample fromRate toRate x
                        Expect.equal y.Length ((x.Length * l + m - 1) / m) "ceil(n L / M) samples"
                        for n in 0 .. y.Length - 1 do
                            let i = int (int64 n * int64 m / int64 l)
                            let taps = phases.[int (int64 n * int64 m % int64 l)]
                            let mutable sum = 0.0
                            for j in 0 .. 2 * k - 1 do
                                let t = i + j - (k - 1)
                                if t >= 0 && t < x.Length then sum <- sum + float taps.[j] * float x.[t]
                            if abs (sum - float y.[n]) > 1e-6 then
                                failtestf "%d -> %d Hz: sample %d is %g, the phases' sum %g" fromRate toRate n y.[n] sum
                    Expect.throwsT<ArgumentException> (fun () -> Resample.polyphase 8000 8000 |> ignore) "equal rates have no filter"
                }
                test "equal rates return a copy and the empty signal stays empty" {
                    let x = [| 1.0f; 2.0f |]
                    let y = Resample.resample 8000 8000 x
                    Expect.equal y x "same values"
                    Expect.isFalse (obj.ReferenceEquals(x, y)) "a copy"
                    Expect.equal (Resample.resample 8000 16000 [||]).Length 0 "empty"
                }
                test "non-positive rates are argument errors" {
                    Expect.throwsT<ArgumentOutOfRangeException> (fun () -> Resample.resample 0 8000 [| 1.0f |] |> ignore) "from"
                    Expect.throwsT<ArgumentOutOfRangeException> (fun () -> Resample.resample 8000 -1 [| 1.0f |] |> ignore) "to"
                }
                test "rates above 768 kHz and down-sampling beyond 1000:1 are argument errors, not an out-of-memory filter design" {
                    let before = GC.GetAllocatedBytesForCurrentThread()
                    Expect.throwsT<ArgumentOutOfRangeException> (fun () -> Resample.resample Int32.MaxValue 8000 [| 1.0f |] |> ignore) "2^31-1 Hz"
                    Expect.throwsT<ArgumentOutOfRangeException> (fun () -> Resample.resample 768001 8000 [| 1.0f |] |> ignore) "just above 768 kHz"
                    Expect.throwsT<ArgumentOutOfRangeException> (fun () -> Resample.resample 8000 768001 [| 1.0f |] |> ignore) "to just above 768 kHz"
                    Expect.throwsT<ArgumentOutOfRangeException> (fun () -> Resample.resample 768000 700 [| 1.0f |] |> ignore) "1097:1"
                    Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - before) 1_000_000L "nothing designed"
                    Expect.equal (Resample.resample 768000 768 [| 1.0f |]).Length 1 "1000:1 is designed and run"
                } ] ]
