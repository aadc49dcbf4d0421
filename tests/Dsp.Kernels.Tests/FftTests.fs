/// The managed FFT (ComplexFftPlan / RealFftPlan through IDspOps.Fft, Rfft, Irfft): direct-DFT agreement
/// for power-of-two, mixed-radix and Bluestein lengths, and FsCheck properties.
module Hybrid.DspKernelsTests.FftTests

open System
open Expecto
open FsCheck
open Hybrid.TestSupport
open Hybrid.DspKernelsTests.Reference

/// Lengths straddling power-of-two and warp boundaries, mixed-radix and Bluestein cases (shared with the FsCheck
/// FftLength generator).
let sizes = Properties.fftBoundaryLengths

/// Direct DFT in double precision of interleaved complex rows: [batch, n, 2] -> [batch, n, 2].
let dft (inverse: bool) (batch: int) (n: int) (x: float32[]) =
    let out = Array.zeroCreate<float32> (batch * n * 2)
    let sign = if inverse then 1.0 else -1.0
    let cosT = Array.init n (fun m -> cos (2.0 * Math.PI * float m / float n))
    let sinT = Array.init n (fun m -> sign * sin (2.0 * Math.PI * float m / float n))
    for b in 0 .. batch - 1 do
        for k in 0 .. n - 1 do
            let mutable re = 0.0
            let mutable im = 0.0
            for j in 0 .. n - 1 do
                let m = int ((int64 j * int64 k) % int64 n)
                let xr = float x.[2 * (b * n + j)]
                let xi = float x.[2 * (b * n + j) + 1]
                re <- re + xr * cosT.[m] - xi * sinT.[m]
                im <- im + xr * sinT.[m] + xi * cosT.[m]
            let scale = if inverse then 1.0 / float n else 1.0
            out.[2 * (b * n + k)] <- float32 (re * scale)
            out.[2 * (b * n + k) + 1] <- float32 (im * scale)
    out

let fft inverse batch n (x: float32[]) =
    let y = zeros [ batch; n; 2 ]
    dsp.Fft(tensor (Array.copy x) [ batch; n; 2 ], y, inverse)
    y.ToArray()

let rfft batch n (x: float32[]) =
    let y = zeros [ batch; n / 2 + 1; 2 ]
    dsp.Rfft(tensor (Array.copy x) [ batch; n ], y)
    y.ToArray()

let irfft batch n (x: float32[]) =
    let y = zeros [ batch; n ]
    dsp.Irfft(tensor (Array.copy x) [ batch; n / 2 + 1; 2 ], y)
    y.ToArray()

/// Real rows embedded as complex rows.
let complexOfReal (x: float32[]) = Array.init (2 * x.Length) (fun i -> if i % 2 = 0 then x.[i / 2] else 0.0f)

/// The first n/2+1 bins of each complex row.
let halfSpectrum batch n (full: float32[]) =
    let bins = n / 2 + 1
    Array.init (batch * bins * 2) (fun i ->
        let b = i / (2 * bins)
        let r = i % (2 * bins)
        full.[b * 2 * n + r])

let closeTo (scale: float32) (expected: float32[]) (actual: float32[]) what =
    Assertions.allClose 0.0 (2e-5 * float (max scale 1.0f)) expected actual what

/// An FsCheck case: a length from `sizes` (or 2..2048), a batch of 1..11 rows and batch complex rows of noise.
let caseOf (Properties.FftLength n) (Properties.BatchSize batch) (seed: int) = n, batch, noise seed (batch * n * 2)

let config = Properties.config 40

[<Tests>]
let tests =
    testList
        "Fft"
        [ testCase "the complex FFT equals a direct DFT for every listed length" (fun () ->
              for n in sizes do
                  let batch = 3
                  let x = noise n (batch * n * 2)
                  let expected = dft false batch n x
                  closeTo (maxAbs expected) expected (fft false batch n x) (sprintf "fft n=%d" n)
                  let expectedInverse = dft true batch n x
                  closeTo (maxAbs expectedInverse) expectedInverse (fft true batch n x) (sprintf "ifft n=%d" n))

          testCase "the real FFT equals the first n/2+1 bins of a direct DFT for every listed length" (fun () ->
              for n in sizes do
                  let batch = 9
                  let x = noise (n + 1) (batch * n)
                  let expected = dft false batch n (complexOfReal x) |> halfSpectrum batch n
                  closeTo (maxAbs expected) expected (rfft batch n x) (sprintf "rfft n=%d" n))

          testCase "large power-of-two, mixed-radix and Bluestein lengths agree with a direct DFT" (fun () ->
              for n in [ 2048; 4000; 16384; 16381 ] do
                  let x = noise n n
                  let expected = dft false 1 n (complexOfReal x) |> halfSpectrum 1 n
                  closeTo (maxAbs expected) expected (rfft 1 n x) (sprintf "rfft n=%d" n))

          testCase "lengths outside 2..16384 are rejected naming n_fft" (fun () ->
              let ex = Expect.throwsT<ArgumentOutOfRangeException> (fun () -> rfft 1 16385 (Array.zeroCreate 16385) |> ignore)
              ignore ex)

          yield!
              Properties.testProperty
                  config
                  "inverse(FFT x) = x"
                  [ Properties.regression 840UL 0x9E3779B97F4A7C15UL (Some 20) "n = 2 (the smallest length), 11 rows"
                    Properties.regression 3UL 0x9E3779B97F4A7C15UL (Some 20) "n = 1873 (a Bluestein prime above 1024), 6 rows" ]
                  (fun length batch seed ->
                    let n, batch, x = caseOf length batch seed
                    let back = fft true batch n (fft false batch n x)
                    Assertions.allClose 0.0 1e-5 x back (sprintf "n=%d batch=%d" n batch))

          yield!
              Properties.testProperty
                  config
                  "irfft(rfft x) = x"
                  [ Properties.regression 7UL 0x9E3779B97F4A7C15UL (Some 20) "n = 3 (odd: no Nyquist bin), 2 rows"
                    Properties.regression 27UL 0x9E3779B97F4A7C15UL (Some 20) "n = 862 (twice the prime 431), 9 rows"
                    Properties.regression 760UL 0x9E3779B97F4A7C15UL (Some 20) "n = 1024 (the largest listed power of two), 11 rows" ]
                  (fun length batch seed ->
                    let n, batch, x = caseOf length batch seed
                    let x = x.[0 .. batch * n - 1]
                    let back = irfft batch n (rfft batch n x)
                    Assertions.allClose 0.0 1e-5 x back (sprintf "n=%d batch=%d" n batch))

          testPropertyWithConfig config "Parseval: sum |x|^2 = sum |X|^2 / n" (fun length batch seed ->
              let n, batch, x = caseOf length batch seed
              let y = fft false batch n x
              let energy (a: float32[]) = a |> Array.sumBy (fun v -> float v * float v)
              let ex = energy x
              let ey = energy y / float n
              Expect.floatClose { absolute = 1e-9; relative = 1e-5 } ey ex (sprintf "n=%d batch=%d" n batch))

          testPropertyWithConfig config "the FFT is linear" (fun length batch seed ->
              let n, batch, x = caseOf length batch seed
              let z = noise (seed + 1) x.Length
              let a, b = 0.75f, -1.5f
              let combined = fft false batch n (Array.map2 (fun p q -> a * p + b * q) x z)
              let separate = Array.map2 (fun p q -> a * p + b * q) (fft false batch n x) (fft false batch n z)
              closeTo (maxAbs separate) separate combined (sprintf "n=%d batch=%d" n batch))

          testPropertyWithConfig config "real input gives a Hermitian spectrum" (fun length batch seed ->
              let n, batch, x = caseOf length batch seed
              let y = fft false batch n (complexOfReal x.[0 .. batch * n - 1])
              let tol = 2e-5 * float (max (maxAbs y) 1.0f)
              for b in 0 .. batch - 1 do
                  for k in 1 .. n - 1 do
                      let i = 2 * (b * n + k)
                      let j = 2 * (b * n + n - k)
                      Expect.floatClose { absolute = tol; relative = 0.0 } (float y.[i]) (float y.[j]) "real parts"
                      Expect.floatClose { absolute = tol; relative = 0.0 } (float y.[i + 1]) (-(float y.[j + 1])) "imaginary parts")

          testPropertyWithConfig config "a circular shift keeps the magnitudes" (fun length batch seed (shiftPick: int) ->
              let n, batch, x = caseOf length batch seed
              let x = x.[0 .. batch * n - 1]
              let shift = abs shiftPick % n
              let shifted = Array.init x.Length (fun i -> let b, j = i / n, i % n in x.[b * n + (j + shift) % n])
              let mags (s: float32[]) = Array.init (s.Length / 2) (fun i -> sqrt (s.[2 * i] * s.[2 * i] + s.[2 * i + 1] * s.[2 * i + 1]))
              let a = mags (rfft batch n x)
              closeTo (maxAbs a) a (mags (rfft batch n shifted)) (sprintf "n=%d shift=%d" n shift))

          testPropertyWithConfig config "a batch equals its rows transformed one by one" (fun length batch seed ->
              let n, batch, x = caseOf length batch seed
              let x = x.[0 .. batch * n - 1]
              let all = rfft batch n x
              let bins = n / 2 + 1
              for b in 0 .. batch - 1 do
                  let one = rfft 1 n x.[b * n .. (b + 1) * n - 1]
                  Expect.sequenceEqual all.[b * 2 * bins .. (b + 1) * 2 * bins - 1] one (sprintf "row %d of %d, n=%d" b batch n)) ]
