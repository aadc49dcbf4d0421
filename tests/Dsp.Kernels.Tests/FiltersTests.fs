/// Plans shared by every engine (Filters): windows, mel and chroma banks, DCT matrix, twiddles, delta weights.
module Hybrid.DspKernelsTests.FiltersTests

open System
open System.Text.Json
open Expecto
open FsCheck
open Hybrid.Dsp
open Hybrid.TestSupport
open Hybrid.DspKernelsTests.Reference

let config = Properties.config 40

[<Tests>]
let tests =
    testList
        "Filters"
        [ testCase "the periodic Hann window of length N is 0.5 - 0.5 cos(2 pi n / N)" (fun () ->
              let w = Filters.Window(WindowKind.Hann, 256, 256)
              for i in 0..255 do
                  Expect.floatClose Accuracy.high (float w.[i]) (0.5 - 0.5 * cos (2.0 * Math.PI * float i / 256.0)) (sprintf "w[%d]" i))

          testCase "a window shorter than n_fft is centred with (n_fft - win_length) / 2 zeros on the left" (fun () ->
              let w = Filters.Window(WindowKind.Hamming, 5, 10)
              let inner = Filters.Window(WindowKind.Hamming, 5, 5)
              Expect.sequenceEqual w [| 0.0f; 0.0f; inner.[0]; inner.[1]; inner.[2]; inner.[3]; inner.[4]; 0.0f; 0.0f; 0.0f |] "pad_center layout")

          testCase "Blackman and rectangular windows have their closed forms" (fun () ->
              let b = Filters.Window(WindowKind.Blackman, 8, 8)
              Expect.floatClose Accuracy.high (float b.[2]) (0.42 - 0.5 * cos (Math.PI / 2.0) + 0.08 * cos Math.PI) "blackman[2]"
              Expect.allEqual (Filters.Window(WindowKind.Rectangular, 7, 7)) 1.0f "boxcar")

          testPropertyWithConfig config "mel filters are non-negative and peak in increasing bin order" (fun (melPick: int) (htk: bool) (slaney: bool) ->
              let nMels = 10 + abs melPick % 60
              let c = MelConfig(16000, nMels, 0.0, Nullable 8000.0, htk, (if slaney then MelNorm.Slaney else MelNorm.None))
              let nFft = 2048
              let bins = nFft / 2 + 1
              let w = Filters.Mel(c, nFft)
              Expect.equal w.Length (nMels * bins) "shape [n_mels, bins]"
              Expect.isTrue (w |> Array.forall (fun v -> v >= 0.0f)) "non-negative"
              let peaks = Array.init nMels (fun m -> Array.init bins (fun k -> w.[m * bins + k]) |> Array.indexed |> Array.maxBy snd |> fst)
              for m in 1 .. nMels - 1 do
                  Expect.isGreaterThanOrEqual peaks.[m] peaks.[m - 1] (sprintf "peak of filter %d after filter %d" m (m - 1)))

          testCase "unnormalised mel triangles peak at most 1 and the mel scale round-trips" (fun () ->
              let w = Filters.Mel(MelConfig(22050, 64, 0.0, Nullable(), false, MelNorm.None), 4096)
              Expect.isLessThanOrEqual (Array.max w) 1.0f "peak"
              for htk in [ false; true ] do
                  for hz in [ 0.0; 300.0; 1000.0; 4321.0 ] do
                      Expect.floatClose Accuracy.high (Filters.MelToHz(Filters.HzToMel(hz, htk), htk)) hz (sprintf "round trip %g Hz" hz))

          testCase "an invalid mel configuration is rejected naming the parameter" (fun () ->
              Expect.throwsT<ArgumentOutOfRangeException> (fun () -> Filters.Mel(MelConfig(8000, 40, 5000.0, Nullable 4000.0), 256) |> ignore) "fmin above fmax")

          testPropertyWithConfig config "the DCT-II ortho matrix is orthonormal" (fun (pick: int) ->
              let n = 1 + abs pick % 64
              let d = Filters.DctOrtho(n, n)
              for a in 0 .. n - 1 do
                  for b in 0 .. n - 1 do
                      let dot = Seq.sum (seq { for i in 0 .. n - 1 -> float d.[a * n + i] * float d.[b * n + i] })
                      Expect.floatClose { absolute = 1e-5; relative = 0.0 } dot (if a = b then 1.0 else 0.0) (sprintf "row %d . row %d" a b))

          testCase "chroma filters are non-negative and each bin's strongest class is its pitch class" (fun () ->
              let sr, nFft = 22050, 4096
              let bins = nFft / 2 + 1
              let w = Filters.Chroma(sr, nFft, 12, 0.0f)
              Expect.isTrue (w |> Array.forall (fun v -> v >= 0.0f)) "non-negative"
              // A4 = 440 Hz is pitch class A = index 9 with base C.
              let k = int (Math.Round(440.0 * float nFft / float sr))
              let column = Array.init 12 (fun c -> w.[c * bins + k])
              Expect.equal (Array.findIndex ((=) (Array.max column)) column) 9 "440 Hz maps to A")

          testCase "chroma filter banks equal librosa.filters.chroma for every parameter (ctroct, octwidth incl. none, norm, base_c)" (fun () ->
              for b in chromaReference.Value.GetProperty("banks").EnumerateArray() do
                  let norm =
                      match b.GetProperty("norm").ValueKind with
                      | JsonValueKind.Null -> Nullable()
                      | JsonValueKind.String when b.GetProperty("norm").GetString() = "inf" -> Nullable Double.PositiveInfinity
                      | JsonValueKind.String -> Nullable Double.NegativeInfinity
                      | _ -> Nullable(b.GetProperty("norm").GetDouble())
                  let octwidth = if b.GetProperty("octwidth").ValueKind = JsonValueKind.Null then Nullable() else Nullable(b.GetProperty("octwidth").GetDouble())
                  let sr, nFft, nChroma = b.GetProperty("sr").GetInt32(), b.GetProperty("n_fft").GetInt32(), b.GetProperty("n_chroma").GetInt32()
                  let tuning, ctroct, baseC = b.GetProperty("tuning").GetDouble(), b.GetProperty("ctroct").GetDouble(), b.GetProperty("base_c").GetBoolean()
                  let expected = [| for v in b.GetProperty("data").EnumerateArray() -> float32 (v.GetDouble()) |]
                  let actual = Filters.Chroma(sr, nFft, nChroma, float32 tuning, ctroct, octwidth, norm, baseC)
                  let what = sprintf "sr %d n_fft %d n_chroma %d tuning %g ctroct %g octwidth %A norm %A base_c %b" sr nFft nChroma tuning ctroct octwidth norm baseC
                  Assertions.allClose 1e-5 1e-7 expected actual what)

          testCase "the default chroma bank is the full bank with librosa's defaults, and bad parameters are refused" (fun () ->
              Expect.equal (Filters.Chroma(22050, 512, 12, 0.1f)) (Filters.Chroma(22050, 512, 12, 0.1f, 5.0, Nullable 2.0, Nullable 2.0, true)) "defaults"
              Expect.throwsT<ArgumentOutOfRangeException> (fun () -> Filters.Chroma(22050, 512, 12, 0.0f, 5.0, Nullable 0.0, Nullable 2.0, true) |> ignore) "octwidth 0"
              Expect.throwsT<ArgumentOutOfRangeException> (fun () -> Filters.Chroma(22050, 512, 12, 0.0f, 5.0, Nullable 2.0, Nullable -1.0, true) |> ignore) "negative norm"
              Expect.throwsT<ArgumentOutOfRangeException> (fun () -> Filters.Chroma(22050, 512, 12, nanf, 5.0, Nullable 2.0, Nullable 2.0, true) |> ignore) "NaN tuning")

          testCase "twiddles are exp(-2 pi i k / n), exact at quarter turns" (fun () ->
              let t = Filters.Twiddles 16
              Expect.sequenceEqual t.[0..1] [| 1.0f; 0.0f |] "k = 0"
              Expect.sequenceEqual t.[8..9] [| 0.0f; -1.0f |] "k = n/4"
              Expect.floatClose Accuracy.high (float t.[2]) (cos (Math.PI / 8.0)) "cos k = 1")

          testCase "delta weights differentiate polynomials of their order exactly at every window position" (fun () ->
              for width in [ 3; 5; 9 ] do
                  for order in [ 1; 2 ] do
                      let w = Filters.DeltaWeights(width, order)
                      let poly x = 0.5 + 2.0 * x + 3.0 * x * x
                      let derivative x = if order = 1 then 2.0 + 6.0 * x else 6.0
                      for p in 0 .. width - 1 do
                          let value = Seq.sum (seq { for j in 0 .. width - 1 -> float w.[p * width + j] * (if order = 1 then 0.5 + 2.0 * float j else poly (float j)) })
                          let expected = if order = 1 then 2.0 else derivative (float p)
                          Expect.floatClose { absolute = 1e-4; relative = 1e-4 } value expected (sprintf "width %d order %d position %d" width order p)) ]
