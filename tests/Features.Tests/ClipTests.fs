module Hybrid.FeaturesTests.ClipTests

open System
open System.IO
open System.Text.Json
open Expecto
open Hybrid.Features
open Hybrid.TestSupport

let tone (rate: int) (freq: float) (amplitude: float) (count: int) =
    Array.init count (fun n -> float32 (amplitude * sin (2.0 * Math.PI * freq * float n / float rate)))

let randomClip (seed: int) (n: int) =
    let rng = Random seed
    Array.init n (fun _ -> float32 (rng.NextDouble() * 2.0 - 1.0))

/// librosa.feature.rms written the slow way: pad frameLength/2 zeros on both sides, frame, mean of squares.
let naiveFrameRms (frameLength: int) (hop: int) (x: float32[]) =
    let half = frameLength / 2
    let padded = Array.concat [ Array.zeroCreate half; x; Array.zeroCreate half ]
    let frames = 1 + (padded.Length - frameLength) / hop
    Array.init frames (fun t ->
        let mutable s = 0.0
        for k in 0 .. frameLength - 1 do
            s <- s + float padded.[t * hop + k] ** 2.0
        sqrt (s / float frameLength))

/// The reference file's signal: FSDD paths are resolved in the FSDD folder, others beside the JSON.
let referenceSignal (referenceDir: string) (wav: string) =
    let candidates =
        [ Path.Combine(referenceDir, wav)
          Path.Combine(referenceDir, "..", wav)
          match TestData.fsddFolder () with
          | Some fsdd -> Path.Combine(fsdd, "recordings", Path.GetFileName(wav: string) |> string)
          | None -> "" ]
    candidates |> List.tryFind (fun p -> p <> "" && File.Exists p)

/// The synthetic signals of reference/make_trim_reference.py: a decaying 440 Hz tone from 0.2 s to 0.5 s of a 1 s clip
/// at 8 kHz, alone ("burst"), in the script's low-level linear-congruential noise ("noisy"), and zeros ("silent").
let private trimSignal (name: string) =
    let tone = Array.init 8000 (fun n -> if n >= 1600 && n < 4000 then 0.5 * sin (2.0 * Math.PI * 440.0 * float n / 8000.0) * exp (-(float (n - 1600)) / 2400.0) else 0.0)
    match name with
    | "burst" -> Some(tone |> Array.map float32)
    | "noisy" ->
        let mutable state = 12345L
        let noise = Array.init 8000 (fun _ ->
            state <- (1103515245L * state + 12345L) % 2147483648L
            float state / 2147483648.0 - 0.5)
        Some(Array.map2 (fun t n -> float32 (t + 1e-3 * n)) tone noise)
    | "silent" -> Some(Array.zeroCreate 8000)
    | recording -> TestData.fsddFolder () |> Option.map (fun fsdd -> (AudioFile.read AudioFile.defaults (Path.Combine(fsdd, "recordings", recording + ".wav"))).Samples.[0])

[<Tests>]
let tests =
    testList
        "Clip"
        [ testList
              "fit"
              [ testPropertyWithConfig Properties.defaults "the result has the requested length and keeps the start-aligned content" (fun (seed: int) (n: uint16) (t: uint16) ->
                    let x = randomClip seed (int n % 3000)
                    let t = int t % 3000
                    let y = Clip.fit t Clip.Start x
                    let kept = min t x.Length
                    y.Length = t && y.[.. kept - 1] = x.[.. kept - 1] && Array.forall ((=) 0.0f) y.[kept..])
                testPropertyWithConfig Properties.defaults "centred fitting pads or cuts floor(difference / 2) at the front" (fun (seed: int) (n: uint16) (t: uint16) ->
                    let x = randomClip seed (int n % 3000)
                    let t = int t % 3000
                    let y = Clip.fit t Clip.Center x
                    if x.Length >= t then
                        let cut = (x.Length - t) / 2
                        y = x.[cut .. cut + t - 1]
                    else
                        let pad = (t - x.Length) / 2
                        y.Length = t
                        && y.[pad .. pad + x.Length - 1] = x
                        && Array.forall ((=) 0.0f) y.[.. pad - 1]
                        && Array.forall ((=) 0.0f) y.[pad + x.Length ..])
                test "centring three samples in eight puts two zeros in front, like kymatio's FSDD example" {
                    Expect.equal (Clip.fit 8 Clip.Center [| 1.0f; 2.0f; 3.0f |]) [| 0.0f; 0.0f; 1.0f; 2.0f; 3.0f; 0.0f; 0.0f; 0.0f |] "padded"
                    Expect.equal (Clip.fit 2 Clip.Center [| 1.0f; 2.0f; 3.0f; 4.0f; 5.0f |]) [| 2.0f; 3.0f |] "cut"
                }
                test "a negative length is an argument error" {
                    Expect.throwsT<ArgumentOutOfRangeException> (fun () -> Clip.fit -1 Clip.Start [||] |> ignore) "negative"
                } ]
          testList
              "normalisation"
              [ testPropertyWithConfig Properties.defaults "peak normalisation makes the largest magnitude 1 and keeps the shape" (fun (seed: int) (n: byte) (scale: float) ->
                    let scale = 1e-3 + abs (if Double.IsFinite scale then scale % 100.0 else 1.0)
                    let x = randomClip seed (1 + int n) |> Array.map (fun v -> v * float32 scale)
                    let y = Clip.peakNormalize x
                    let peakX = x |> Array.map abs |> Array.max
                    let peak = y |> Array.map abs |> Array.max
                    abs (peak - 1.0f) < 1e-6f && Array.forall2 (fun (a: float32) b -> abs (a / peakX - b) < 1e-6f) x y)
                testPropertyWithConfig Properties.defaults "RMS normalisation reaches the target level" (fun (seed: int) (n: byte) (target: int16) ->
                    let target = float (int target % 60) - 30.0
                    let y = Clip.rmsNormalize target (randomClip seed (1 + int n))
                    abs (20.0 * log10 (Clip.rms y) - target) < 1e-4)
                test "silent and empty clips are returned unchanged" {
                    Expect.equal (Clip.peakNormalize (Array.zeroCreate 4)) (Array.zeroCreate 4) "peak of zeros"
                    Expect.equal (Clip.rmsNormalize -20.0 (Array.zeroCreate 4)) (Array.zeroCreate 4) "rms of zeros"
                    Expect.equal (Clip.peakNormalize [||]) [||] "empty"
                }
                test "normalising leaves the input untouched" {
                    let x = [| 0.5f; -0.25f |]
                    Clip.peakNormalize x |> ignore
                    Clip.rmsNormalize -3.0 x |> ignore
                    Expect.equal x [| 0.5f; -0.25f |] "input"
                } ]
          testList
              "trim"
              [ testPropertyWithConfig Properties.defaults "frame RMS equals librosa's padded framing" (fun (seed: int) (n: uint16) (f: byte) (h: byte) ->
                    let frameLength = 1 + int f
                    let hop = 1 + int h % 64
                    let x = randomClip seed (int n % 2000)
                    let expected = if x.Length + 2 * (frameLength / 2) < frameLength then [||] else naiveFrameRms frameLength hop x
                    let actual = Clip.frameRms frameLength hop x
                    actual.Length = expected.Length && Array.forall2 (fun (a: float) b -> abs (a - b) < 1e-9) expected actual)
                TestData.testWithReference "frame RMS matches librosa 0.10.2's feature.rms on the reference signals" (fun dir ->
                    let files = Directory.GetFiles(dir, "*.json")
                    Expect.isGreaterThan files.Length 0 "reference files"
                    let mutable compared = 0
                    for file in files do
                        use doc = JsonDocument.Parse(File.ReadAllText file)
                        let root = doc.RootElement
                        let config = root.GetProperty("config").GetProperty("rms")
                        let frameLength = config.GetProperty("frame_length").GetInt32()
                        let hop = config.GetProperty("hop_length").GetInt32()
                        let expected = [| for v in root.GetProperty("rms").GetProperty("data").EnumerateArray() -> float32 (v.GetDouble()) |]
                        let wavName =
                            match root.GetProperty("wav").GetString() with
                            | null -> ""
                            | s -> s
                        match referenceSignal dir wavName with
                        | Some wav ->
                            let actual = Clip.frameRms frameLength hop (AudioFile.read AudioFile.defaults wav).Samples.[0] |> Array.map float32
                            Assertions.allClose 1e-4 2e-7 expected actual file
                            compared <- compared + 1
                        | None -> ()
                    Expect.isGreaterThanOrEqual compared 4 "signals found")
                testPropertyWithConfig Properties.defaults "a tone padded with silence is trimmed to its interval widened by half a frame, within a hop" (fun (a: uint16) (b: uint16) (len: uint16) ->
                    // librosa's frames are centred, so a frame whose window just reaches the tone is loud:
                    // the interval starts about frame_length/2 before the tone and ends as far after it.
                    let lead = int a % 20000
                    let trail = int b % 20000
                    let length = 4000 + int len % 16000
                    let x = Array.concat [ Array.zeroCreate lead; tone 8000 440.0 0.5 length; Array.zeroCreate trail ]
                    let start, stop = Clip.trimInterval 60.0 2048 512 x
                    let expectedStart = max 0 (lead - 1024)
                    let expectedStop = min x.Length (lead + length + 1024)
                    abs (start - expectedStart) <= 512 && abs (stop - expectedStop) <= 512 && start <= lead && stop >= lead + length)
                test "a lead-in 80 dB down is trimmed, one 40 dB down is kept" {
                    let body = tone 8000 440.0 0.5 16000
                    let quiet = tone 8000 440.0 5e-5 16000
                    let soft = tone 8000 440.0 5e-3 16000
                    let start, _ = Clip.trimInterval 60.0 2048 512 (Array.append quiet body)
                    Expect.isGreaterThanOrEqual start (16000 - 1024 - 512) "quiet lead-in cut"
                    let start, _ = Clip.trimInterval 60.0 2048 512 (Array.append soft body)
                    Expect.equal start 0 "soft lead-in kept"
                }
                test "trim returns the samples of the interval, an all-zero clip whole and an empty clip empty" {
                    let x = Array.concat [ Array.zeroCreate 10000; tone 8000 300.0 0.5 8000; Array.zeroCreate 10000 ]
                    let start, stop = Clip.trimInterval 60.0 2048 512 x
                    Expect.equal (Clip.trim 60.0 x) x.[start .. stop - 1] "interval"
                    Expect.isLessThan (Clip.trim 60.0 x).Length x.Length "silence removed"
                    Expect.equal (Clip.trim 60.0 (Array.zeroCreate 3000)).Length 3000 "zeros kept, as librosa does"
                    Expect.equal (Clip.trim 60.0 [||]) [||] "empty"
                }

                TestData.testWithFsdd "trimInterval keeps librosa 0.10.2's effects.trim interval for every reference case" (fun _ ->
                    let path =
                        match TestData.repositoryRoot () with
                        | Some root -> Path.Combine(root, "tests", "Features.Tests", "reference", "trim-librosa-0.10.2.json")
                        | None -> failtest "repository root not found"
                    use doc = JsonDocument.Parse(File.ReadAllText path)
                    let cases = doc.RootElement.GetProperty("cases")
                    Expect.isGreaterThan (cases.GetArrayLength()) 30 "the reference cases"
                    for c in cases.EnumerateArray() do
                        let name = nonNull (c.GetProperty("signal").GetString())
                        let x = match trimSignal name with Some x -> x | None -> failtestf "signal %s not found" name
                        Expect.equal x.Length (c.GetProperty("length").GetInt32()) (sprintf "%s: length" name)
                        let topDb, frame, hop = c.GetProperty("top_db").GetDouble(), c.GetProperty("frame_length").GetInt32(), c.GetProperty("hop_length").GetInt32()
                        Expect.equal (Clip.trimInterval topDb frame hop x) (c.GetProperty("start").GetInt32(), c.GetProperty("end").GetInt32())
                            (sprintf "%s at top_db %g, frame_length %d, hop_length %d" name topDb frame hop)) ] ]
