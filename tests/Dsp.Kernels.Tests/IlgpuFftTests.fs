/// FFT properties of the ILGPU kernels on every ILGPU engine of the machine (one list each): agreement with a
/// double-precision DFT, inverse, Parseval, Hermitian symmetry of real input, linearity, real FFT round trip; lengths
/// straddle warp, power-of-two, shared-memory (2048) and Bluestein boundaries.
module Hybrid.DspKernelsTests.IlgpuFftTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Hybrid.Dsp
open Hybrid.TestSupport
open Hybrid.TestSupport.Assertions
open Hybrid.DspKernelsTests.IlgpuFixture

let private sizes = [ 2; 3; 5; 16; 31; 32; 33; 255; 256; 257; 400; 1000; 1024; 2048; 2049; 4096 ]

let private fft (e: Engine) (inverse: bool) (batch: int) (n: int) (x: float32[]) =
    use input = upload e x [| batch; n; 2 |]
    use output = e.Allocate(batch, n, 2)
    e.Dsp.Fft(input, output, inverse)
    output.ToArray()

let private rfft (e: Engine) (batch: int) (n: int) (x: float32[]) =
    use input = upload e x [| batch; n |]
    use output = e.Allocate(batch, n / 2 + 1, 2)
    e.Dsp.Rfft(input, output)
    output.ToArray()

let private irfft (e: Engine) (batch: int) (n: int) (x: float32[]) =
    use input = upload e x [| batch; n / 2 + 1; 2 |]
    use output = e.Allocate(batch, n)
    e.Dsp.Irfft(input, output)
    output.ToArray()

/// Transform b of a batch of interleaved complex transforms of length n.
let private transform (n: int) (b: int) (xs: float32[]) = Array.sub xs (2 * n * b) (2 * n)

let private lengthGen = Gen.elements sizes |> Arb.fromGen

/// The FFT tests on one ILGPU engine.
let private onEngine (engine: Lazy<Engine>) =
    let fft inverse batch n x = fft engine.Value inverse batch n x
    let rfft batch n x = rfft engine.Value batch n x
    let irfft batch n x = irfft engine.Value batch n x
    [
        for n in sizes do
            test $"a forward FFT of length {n} matches a double-precision DFT for every transform of the batch" {
                let batch = 2
                let x = randomSignal n (batch * n * 2)
                let y = fft false batch n x
                for b in 0 .. batch - 1 do
                    let expected = naiveDft false n (transform n b x)
                    let tol = 3e-6 * maxAbs64 expected * (log (float n) + 1.0)
                    allClose64 0.0 tol expected (transform n b y |> Array.map float) $"fft n={n} transform {b}"
            }

        test "an inverse FFT matches numpy.fft.ifft (a double-precision inverse DFT divided by n) for lengths 33, 256 and 400" {
            for n in [ 33; 256; 400 ] do
                let x = randomSignal (7 * n) (n * 2)
                let y = fft true 1 n x
                let expected = naiveDft true n x |> Array.map (fun v -> v / float n)
                allClose64 0.0 (1e-6 * (log (float n) + 1.0)) expected (y |> Array.map float) $"ifft n={n}"
        }

        testPropertyWithConfig (Properties.config 12) "inverse(FFT x) returns x for any supported length and signal" <|
            Prop.forAll lengthGen (fun n ->
                let x = randomSignal (n * 13) (2 * n)
                let back = fft true 1 n (fft false 1 n x)
                allClose 0.0 (2e-6 * (log (float n) + 1.0)) x back $"round trip n={n}")

        testPropertyWithConfig (Properties.config 12) "Parseval: the spectrum's energy is n times the signal's" <|
            Prop.forAll lengthGen (fun n ->
                let x = randomSignal (n * 17) (2 * n)
                let y = fft false 1 n x
                let energy (a: float32[]) = a |> Array.sumBy (fun v -> float v * float v)
                let ex, ey = energy x, energy y / float n
                Expect.floatClose { absolute = 0.0; relative = 1e-5 } ey ex $"energy n={n}")

        test "the FFT is linear: FFT(a x + b y) = a FFT(x) + b FFT(y)" {
            for n in [ 31; 256; 257 ] do
                let x = randomSignal 1 (2 * n)
                let y = randomSignal 2 (2 * n)
                let mix = Array.map2 (fun u v -> 0.75f * u - 1.5f * v) x y
                let fx, fy, fm = fft false 1 n x, fft false 1 n y, fft false 1 n mix
                let expected = Array.map2 (fun u v -> 0.75f * u - 1.5f * v) fx fy
                allClose 0.0 (1e-4 * float (Array.max (Array.map abs expected))) expected fm $"linearity n={n}"
        }

        test "a circular shift keeps the FFT magnitudes" {
            let n = 257
            let x = randomSignal 3 (2 * n)
            let shifted = Array.init (2 * n) (fun i -> x.[(i + 2 * 5) % (2 * n)])
            let mags (a: float32[]) = Array.init n (fun k -> sqrt (a.[2 * k] * a.[2 * k] + a.[2 * k + 1] * a.[2 * k + 1]))
            allClose 0.0 1e-4 (mags (fft false 1 n x)) (mags (fft false 1 n shifted)) "shifted magnitudes"
        }

        for n in [ 2; 31; 32; 33; 256; 400; 4096 ] do
            test $"a real FFT of length {n} equals the first n/2+1 bins of the complex FFT of the same signal" {
                let batch = 3
                let x = randomSignal (n + 5) (batch * n)
                let complex = Array.init (2 * batch * n) (fun i -> if i % 2 = 0 then x.[i / 2] else 0.0f)
                let full = fft false batch n complex
                let half = rfft batch n x
                let bins = n / 2 + 1
                let expected = Array.init (batch * bins * 2) (fun i -> full.[(i / (2 * bins)) * 2 * n + i % (2 * bins)])
                allClose 0.0 (1e-5 * float (Array.max (Array.map abs expected))) expected half $"rfft n={n}"
                // Hermitian symmetry of the complex FFT of a real signal: X[n-k] = conj X[k]
                let mirrored = Array.init (2 * n) (fun i -> let k = i / 2 in let m = 2 * ((n - k) % n) in if i % 2 = 0 then full.[m] else -full.[m + 1])
                allClose 0.0 (1e-5 * float (Array.max (Array.map abs full))) (Array.sub full 0 (2 * n)) mirrored $"Hermitian symmetry n={n}"
            }

        for n in [ 2; 33; 256; 257; 400 ] do
            test $"irfft(rfft x) returns x for length {n}" {
                let x = randomSignal (n + 11) (2 * n)
                let back = irfft 2 n (rfft 2 n x)
                allClose 0.0 (1e-5 * (log (float n) + 1.0)) x back $"irfft round trip n={n}"
            }

        test "an FFT whose length is outside 2..16384 is rejected with the parameter named" {
            let e = engine.Value
            use input = e.Allocate(1, 1, 2)
            use output = e.Allocate(1, 1, 2)
            throwsArgument "length-1 FFT" [ "input"; "2..16384" ] (fun () -> e.Dsp.Fft(input, output, false))
        }
    ]

[<Tests>]
let tests = ilgpuList "IlgpuFft" [ for name, engine in ilgpuEngines -> testList name (onEngine engine) ]
