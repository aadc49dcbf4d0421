/// PCEN (Hybrid.Dsp.Pcen, FeatureParameters.Pcen): librosa 0.10.2's librosa.pcen on a small spectrogram and on the
/// logmel-fsdd front end of the cnn2d recipe (reference/pcen-librosa-0.10.2.json, made by
/// reference/make_pcen_reference.py), the pcen parameter's text, validation and fingerprint, and properties of the filter.
module Hybrid.FeaturesTests.PcenTests

open System
open System.IO
open System.Text.Json
open Expecto
open FsCheck
open Hybrid.Dsp
open Hybrid.Dsp.Managed
open Hybrid.Features
open Hybrid.Features.Schemas
open Hybrid.TestSupport

let private reference () =
    match TestData.repositoryRoot () with
    | Some root -> JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "tests", "Features.Tests", "reference", "pcen-librosa-0.10.2.json")))
    | None -> failtest "repository root not found"

let private doubles (e: JsonElement) = [| for v in e.EnumerateArray() -> v.GetDouble() |]

/// The synthetic clip of make_pcen_reference.py: LCG noise (0.02 amplitude) plus a decaying 440 Hz tone, 8,000 samples.
let private toneNoise () =
    let mutable state = 12345L
    Array.init 8000 (fun n ->
        state <- (1103515245L * state + 12345L) % 2147483648L
        let lcg = float state / 2147483648.0 - 0.5
        let tone = if n >= 1600 && n < 4000 then 0.5 * sin (2.0 * Math.PI * 440.0 * float n / 8000.0) * exp (-(float (n - 1600)) / 2400.0) else 0.0
        float32 (tone + 0.02 * lcg))

/// The cnn2d recipe's front end (logmel-fsdd with n_fft 512) with PCEN at librosa's defaults.
let private pcenSchema () =
    Extraction.variant (Schemas.ByName "logmel-fsdd") { Extraction.noOverrides with NFft = Some 512; Other = [ "pcen", "true" ] }

/// PCEN of one row of float32 energies with `config` at sr 8000, hop 128.
let private pcenRow (config: PcenConfig) (x: float32[]) =
    let out = Array.zeroCreate<float32> x.Length
    Pcen.Apply(config, 8000, 128, ReadOnlySpan x, Span out, 1, x.Length)
    out

let private defaults = PcenConfig()

[<Tests>]
let tests =
    testList "Pcen" [
        test "the kernel equals librosa 0.10.2's pcen at default and other settings (power 0, bias 0) to 1e-6 relative" {
            use doc = reference ()
            let kernel = doc.RootElement.GetProperty "kernel"
            let shape = doubles (kernel.GetProperty "shape") |> Array.map int
            let input = doubles (kernel.GetProperty "input") |> Array.map float32
            let sr, hop = kernel.GetProperty("sr").GetInt32(), kernel.GetProperty("hop_length").GetInt32()
            Expect.equal (kernel.GetProperty("cases").GetArrayLength()) 4 "four settings"
            for c in kernel.GetProperty("cases").EnumerateArray() do
                let config = PcenConfig(c.GetProperty("time_constant").GetDouble(), c.GetProperty("gain").GetDouble(), c.GetProperty("bias").GetDouble(), c.GetProperty("power").GetDouble())
                let expected = doubles (c.GetProperty "output")
                let actual = Array.zeroCreate<float32> input.Length
                Pcen.Apply(config, sr, hop, ReadOnlySpan input, Span actual, shape[0], shape[1])
                Array.iteri2 (fun i (e: float) (a: float32) ->
                    // float32 output: half an ulp is 6e-8 relative.
                    if abs (float a - e) > 1e-6 * abs e + 1e-12 then failtestf "%A: value %d expected %.9g, was %.9g" config i e a) expected actual
        }

        testCase "the cnn2d front end with pcen=true equals librosa.pcen(melspectrogram * 2**31) on FSDD and tone-in-noise clips (2e-5 of each clip's peak)" (fun () ->
            use doc = reference ()
            let features = doc.RootElement.GetProperty "features"
            let schema = pcenSchema ()
            Expect.equal (List.ofSeq schema.Shape) [ 40; 65 ] "[n_mels, frames]"
            use engine = new ManagedEngine(2)
            let mutable worst = 0.0
            for c in features.GetProperty("clips").EnumerateArray() do
                let name = nonNull (c.GetProperty("signal").GetString())
                let clip =
                    if name = "tone-noise" then toneNoise ()
                    else
                        match TestData.fsddFolder () with
                        | Some fsdd -> (AudioFile.read AudioFile.defaults (Path.Combine(fsdd, "recordings", name + ".wav"))).Samples[0]
                        | None -> skiptest "FSDD folder not found"
                Expect.equal clip.Length (c.GetProperty("length").GetInt32()) (sprintf "%s: length" name)
                let expected = doubles (c.GetProperty "pcen")
                let actual = Extraction.rows engine schema [| clip |]
                Expect.equal actual.Length expected.Length (sprintf "%s: values" name)
                let peak = expected |> Array.map abs |> Array.max
                Expect.isGreaterThan peak 0.1 (sprintf "%s: PCEN has content" name)
                let difference = Array.map2 (fun (e: float) (a: float32) -> abs (float a - e)) expected actual |> Array.max
                worst <- max worst (difference / peak)
                Expect.isLessThan (difference / peak) 2e-5 (sprintf "%s: max |Hybrid - librosa| = %g with peak %g" name difference peak)
            eprintfn "pcen parity: worst max |Hybrid - librosa| / peak = %.3g" worst)

        test "the pcen parameter reads none, true and TIME_CONSTANT:GAIN:BIAS:POWER and writes them back" {
            let declared = (Schemas.ByName "logmel-fsdd").Parameters
            Expect.equal (declared.ValueText "pcen") "none" "no PCEN by default"
            let on = declared.With "pcen=true"
            Expect.equal on.Pcen (PcenConfig(InputScale = 2147483648.0)) "librosa's defaults, scaled by 2^31"
            Expect.equal (on.ValueText "pcen") "true" "true"
            Expect.equal (on.DifferencesFrom declared) "pcen=true" "recorded as a difference"
            let custom = declared.With "pcen=0.06:0.8:10:0.25"
            Expect.equal (custom.ValueText "pcen") "0.06:0.8:10:0.25" "four numbers"
            Expect.equal (declared.With(custom.DifferencesFrom declared)) custom "round trip"
            Expect.isNull (declared.With "pcen=none").Pcen "none"
            Expect.throwsT<FormatException> (fun () -> declared.With "pcen=0.4:0.98" |> ignore) "two numbers"
            Expect.throwsT<FormatException> (fun () -> declared.With "pcen=yes" |> ignore) "a word"
        }

        test "a pcen variant has its own fingerprint and describes itself; invalid settings and schemas without dB mel bands are refused naming pcen" {
            let declared = Schemas.ByName "logmel-fsdd"
            let variant = pcenSchema ()
            let plain = Extraction.variant declared { Extraction.noOverrides with NFft = Some 512 }
            Expect.notEqual variant.Fingerprint plain.Fingerprint "PCEN changes the rows"
            Expect.stringContains (variant.Describe()) "pcen true" "described"
            Expect.equal (Extraction.replay "logmel-fsdd" variant.Variant).Fingerprint variant.Fingerprint "replayed from its recorded parameters"
            let refused (schema: FeatureSchemaInfo) (text: string) =
                try
                    schema.WithParameters(schema.Parameters.With text) |> ignore
                    failtestf "expected %s to be refused" text
                with :? ArgumentException as e -> Expect.equal e.ParamName "pcen" (sprintf "%s: names pcen (%s)" text e.Message)
            refused declared "pcen=0:0.98:2:0.5"
            refused declared "pcen=0.4:-1:2:0.5"
            refused declared "pcen=0.4:0.98:-2:0.5"
            refused (Schemas.ByName "mfcc-mean40") "pcen=true"
        }

        test "every engine gets the same PCEN: a tensor on the managed engine equals the span form" {
            use engine = new ManagedEngine(1)
            let x = Array.init (2 * 3 * 50) (fun i -> float32 (1e-4 * float ((i * 7919) % 1000)))
            use s = engine.FromHost(ReadOnlySpan x, 2, 3, 50)
            use d = engine.Allocate(2, 3, 50)
            Pcen.Apply(defaults, 8000, 128, s, d)
            let expected = Array.zeroCreate<float32> x.Length
            Pcen.Apply(defaults, 8000, 128, ReadOnlySpan x, Span expected, 6, 50)
            Expect.equal (d.ToArray()) expected "tensor == span"
        }

        testPropertyWithConfig Properties.defaults "an input equal to the filter's initial energy (1) gives the steady-state value in every frame" (fun (frames: PositiveInt) (gain: NormalFloat) ->
            let gain = abs gain.Get % 2.0
            let config = PcenConfig(Gain = gain)
            let out = pcenRow config (Array.create (min frames.Get 500) 1f)
            let steady = Math.Pow(1.0 * Math.Pow(1.0 + 1e-6, -gain) + 2.0, 0.5) - Math.Sqrt 2.0
            out |> Array.forall (fun v -> abs (float v - steady) <= 1e-6 * abs steady + 1e-9))

        testPropertyWithConfig Properties.defaults "a constant input c converges to the steady state (c (eps + c)^-gain + bias)^power - bias^power" (fun (c: PositiveInt) ->
            let c = float32 c.Get
            // A time constant of 0.05 s is 3.1 frames at 8 kHz / 128: 1,000 frames leave (1 - b)^1000 < 1e-100 of the start.
            let config = PcenConfig(TimeConstant = 0.05)
            let out = pcenRow config (Array.create 1000 c)
            let steady = Math.Pow(float c * Math.Pow(1e-6 + float c, -0.98) + 2.0, 0.5) - Math.Sqrt 2.0
            abs (float out[999] - steady) <= 1e-6 * abs steady + 1e-9)

        testPropertyWithConfig Properties.defaults "PCEN is causal, non-negative and row by row: frames after t and other rows leave frame t alone" (fun (seed: int) ->
            let rng = Random seed
            let frames = 40
            let a = Array.init (2 * frames) (fun _ -> float32 (rng.NextDouble() * 1e6))
            let b = Array.copy a
            let cut = rng.Next(1, frames)
            for t in cut .. frames - 1 do b[t] <- float32 (rng.NextDouble() * 1e9)
            let run (x: float32[]) = let out = Array.zeroCreate x.Length in Pcen.Apply(defaults, 8000, 128, ReadOnlySpan x, Span out, 2, frames); out
            let ra, rb = run a, run b
            ra[.. cut - 1] = rb[.. cut - 1] && ra[frames ..] = rb[frames ..] && Array.forall (fun v -> v >= 0f) ra
            && ra[frames ..] = pcenRow defaults a[frames ..])
    ]
