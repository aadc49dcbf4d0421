/// Fuzzing of every non-WAV reader (WAV's own is in WavTests): seeded mutants of the committed fixtures (header
/// fields, sizes, truncation, byte flips, inserted garbage, tags in front), each read under a time and an allocation
/// bound, must give a clip that keeps every invariant or a clean AudioFormatException naming the file.
module Hybrid.FeaturesTests.AudioFuzzTests

open System
open System.Buffers.Binary
open System.Diagnostics
open System.IO
open System.Threading
open Expecto
open Hybrid.TestSupport.Speed
open Hybrid.Features
open Hybrid.FeaturesTests.AudioFixtures
open Hybrid.FeaturesTests.DatasetFixtures

/// A format the fuzzing covers: the file it mutates and where its header fields lie.
type private Subject =
    { Name: string
      Extension: string
      Bytes: unit -> byte[]
      NeedsLibsndfile: bool }

let private rf64Bytes () =
    let source = reference "stereo-s24.aiff"
    use ms = new MemoryStream()
    Wav.writeStreamWith { Format = Pcm24; Extensible = false; Rf64 = true } ms source
    ms.ToArray()

let private subjects =
    [ { Name = "MP3"; Extension = ".mp3"; Bytes = (fun () -> fixtureBytes "mono-22k.mp3"); NeedsLibsndfile = false }
      { Name = "MP2"; Extension = ".mp2"; Bytes = (fun () -> fixtureBytes "mono-22k.mp2"); NeedsLibsndfile = false }
      { Name = "Ogg Vorbis"; Extension = ".ogg"; Bytes = (fun () -> fixtureBytes "stereo-16k.ogg"); NeedsLibsndfile = false }
      { Name = "FLAC"; Extension = ".flac"; Bytes = (fun () -> fixtureBytes "stereo.flac"); NeedsLibsndfile = true }
      { Name = "AIFF"; Extension = ".aiff"; Bytes = (fun () -> fixtureBytes "stereo-s24.aiff"); NeedsLibsndfile = false }
      { Name = "AIFC"; Extension = ".aifc"; Bytes = (fun () -> fixtureBytes "f32.aifc"); NeedsLibsndfile = false }
      { Name = "Sun AU"; Extension = ".au"; Bytes = (fun () -> fixtureBytes "stereo-s16.au"); NeedsLibsndfile = false }
      { Name = "RF64"; Extension = ".wav"; Bytes = rf64Bytes; NeedsLibsndfile = false } ]

let private pick (rng: Random) (xs: 'a[]) = xs.[rng.Next xs.Length]

let private absurd32 (rng: Random) = pick rng [| 0u; 1u; 0x7FFFFFFFu; 0xFFFFFFFFu; 0x80000000u; 0x10000u; uint32 (rng.Next()) |]

let private offsetOf (bytes: byte[]) (pattern: byte[]) = bytes.AsSpan().IndexOf(ReadOnlySpan<byte> pattern)

/// One header field of the subject's format set to an absurd or edge value (Ogg pages re-signed, so the decoder sees it).
let private fieldMutant (subject: Subject) (rng: Random) (bytes: byte[]) : string * byte[] =
    let b = Array.copy bytes
    let put32 (at: int) (big: bool) =
        if at >= 0 && at + 4 <= b.Length then
            let v = absurd32 rng
            if big then BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan at, v) else BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan at, v)
    let put16 (at: int) (big: bool) =
        if at >= 0 && at + 2 <= b.Length then
            let v = pick rng [| 0us; 1us; 3us; 1024us; 0x7FFFus; 0xFFFFus |]
            if big then BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan at, v) else BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan at, v)
    match subject.Name with
    | "FLAC" ->
        match rng.Next 4 with
        | 0 -> "STREAMINFO total", flacWithTotal b (pick rng [| 0L; 1L; (1L <<< 36) - 1L; rng.NextInt64(1L <<< 36) |])
        | 1 -> put16 10 true; "STREAMINFO max block size", b
        | 2 -> put16 8 true; "STREAMINFO min block size", b
        | _ ->
            let rate = pick rng [| 0; 1; 0xFFFFF; 768001; 96000 |]
            b.[18] <- byte (rate >>> 12)
            b.[19] <- byte (rate >>> 4)
            b.[20] <- (b.[20] &&& 0x0Fuy) ||| byte ((rate &&& 15) <<< 4)
            "STREAMINFO rate", b
    | "Ogg Vorbis" ->
        let pages = oggPages b
        let vorbis = offsetOf b "\001vorbis"B
        let label =
            match rng.Next 6 with
            | 0 ->
                let at, _ = List.last pages
                BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(at + 6), pick rng [| 0xFFFFFFFFL; 0L; -1L; 1L <<< 40; 1L |])
                "last page granule"
            | 1 ->
                let at, _ = pick rng (Array.ofList pages)
                BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(at + 6), pick rng [| 0xFFFFFFFFL; 0L; 1L <<< 40; 1L |])
                "page granule"
            | 2 ->
                b.[vorbis + 11] <- pick rng [| 0uy; 1uy; 3uy; 255uy |]
                "identification channels"
            | 3 -> put32 (vorbis + 12) false; "identification rate"
            | 4 -> put32 (offsetOf b "\003vorbis"B + 7 + rng.Next 2 * 4) false; "comment lengths"
            | _ ->
                let book = offsetOf b "BCV"B
                put16 (book + 3) false
                b.[book + 5 + rng.Next 3] <- byte (rng.Next 256)
                "codebook dimensions and entries"
        label, (if rng.Next 4 = 0 then b else oggResign b)
    | "MP3" | "MP2" ->
        let xing = max (offsetOf b "Xing"B) (offsetOf b "Info"B)
        let sync = [| for i in 0 .. b.Length - 2 do if b.[i] = 0xFFuy && b.[i + 1] &&& 0xE0uy = 0xE0uy then yield i |]
        match rng.Next 4 with
        | 0 when xing > 0 -> put32 (xing + 8 + 4 * rng.Next 2) true; "Xing frame or byte count", b
        | 1 when sync.Length > 0 ->
            let vbri = Array.concat [ "VBRI"B; [| 0uy; 1uy; 0uy; 0uy; 0uy; 0uy; 0x7Fuy; 0xFFuy; 0xFFuy; 0xFFuy |]; BitConverter.GetBytes(absurd32 rng); [| 0xFFuy; 0xFFuy; 0uy; 1uy; 0uy; 4uy; 0uy; 1uy |] ]
            Array.blit vbri 0 b (min (sync.[0] + 36) (b.Length - vbri.Length)) vbri.Length
            "VBRI table of 65535 entries", b
        | 2 when sync.Length > 0 -> b.[sync.[0] + 1 + rng.Next 3] <- byte (rng.Next 256); "first frame header", b
        | _ when sync.Length > 0 -> b.[pick rng sync + 1 + rng.Next 3] <- byte (rng.Next 256); "a frame header", b
        | _ -> "none", b
    | "Sun AU" -> put32 (4 * (1 + rng.Next 5)) true; "AU header field", b
    | "AIFF" | "AIFC" ->
        let comm = offsetOf b "COMM"B
        let ssnd = offsetOf b "SSND"B
        match rng.Next 6 with
        | 0 -> put16 (comm + 8) true; "COMM channels", b
        | 1 -> put32 (comm + 10) true; "COMM frames", b
        | 2 -> put16 (comm + 14) true; "COMM bits", b
        | 3 -> put16 (comm + 16) true; "COMM rate exponent", b
        | 4 -> put32 (ssnd + 4 + 4 * rng.Next 2) true; "SSND size or offset", b
        | _ -> put32 4 true; "FORM size", b
    | _ ->
        // RF64: the ds64 sizes, the fmt fields, the data size.
        match rng.Next 4 with
        | 0 -> put32 (20 + 4 * rng.Next 6) false; "ds64 sizes", b
        | 1 -> put16 (offsetOf b "fmt "B + 8 + 2 * rng.Next 8) false; "fmt field", b
        | 2 -> put32 (offsetOf b "fmt "B + 12) false; "fmt rate", b
        | _ -> put32 (offsetOf b "data"B + 4) false; "data size", b

/// One seeded mutant of the subject's file: a header field, a truncation, bit or byte changes, inserted garbage or
/// an ID3v2 tag in front.
let private mutant (subject: Subject) (bytes: byte[]) (seed: int) : string * byte[] =
    let rng = Random seed
    match rng.Next 8 with
    | 0 | 1 | 2 -> fieldMutant subject rng bytes
    | 3 -> "truncated", bytes.[.. rng.Next(1, bytes.Length) - 1]
    | 4 ->
        let b = Array.copy bytes
        let i = rng.Next b.Length
        b.[i] <- b.[i] ^^^ byte (1 <<< rng.Next 8)
        "one bit flipped", b
    | 5 ->
        let b = Array.copy bytes
        for _ in 1 .. rng.Next(2, 17) do
            b.[rng.Next b.Length] <- byte (rng.Next 256)
        "bytes overwritten", b
    | 6 ->
        let at = rng.Next bytes.Length
        "garbage inserted", Array.concat [ bytes.[.. at - 1]; Array.init (rng.Next(1, 400)) (fun _ -> byte (rng.Next 256)); bytes.[at..] ]
    | _ -> "ID3v2 tag in front", Array.append (id3v2 (rng.Next 300)) bytes

type private Outcome =
    | Read of AudioFileInfo * Audio
    | Refused of AudioFormatException
    | Escaped of exn
    | Hung

/// Reads path on a thread of its own (a hang fails the test instead of stopping the suite): outcome, milliseconds and
/// bytes allocated by the read.
let private timedRead (read: string -> AudioFileInfo * Audio) (path: string) (timeoutMs: int) =
    let mutable result = Hung, 0.0, 0L
    let worker =
        Thread(
            (fun () ->
                let before = GC.GetAllocatedBytesForCurrentThread()
                let clock = Stopwatch.StartNew()
                let outcome =
                    try Read(read path)
                    with
                    | :? AudioFormatException as e -> Refused e
                    | e -> Escaped e
                result <- outcome, clock.Elapsed.TotalMilliseconds, GC.GetAllocatedBytesForCurrentThread() - before),
            16 * 1024 * 1024)
    worker.IsBackground <- true
    worker.Start()
    if worker.Join timeoutMs then result else Hung, float timeoutMs, 0L

/// The per-file bounds: 2 s, and at most four times the decoded float32 samples plus 24 times the file plus 8 MiB
/// (the decoders' tables) allocated.
let private timeoutMs = 2000

let private allocationBound (fileBytes: int) (samples: int64) = 4L * 4L * samples + 24L * int64 fileBytes + 8L * 1024L * 1024L

/// HYBRID_FUZZ_VERBOSE=1 prints every mutant's outcome.
let private verbose = Environment.GetEnvironmentVariable "HYBRID_FUZZ_VERBOSE" = "1"

/// Checks one mutant; returns a failure message, or None and whether it was read.
let private check (subject: Subject) (seed: int) (label: string) (path: string) (fileBytes: int) : string option * bool =
    let what = sprintf "%s seed %d (%s)" subject.Name seed label
    let outcome, ms, allocated = timedRead (AudioFile.readWithInfo all) path timeoutMs
    if verbose then
        match outcome with
        | Refused e -> printfn "%s: refused: %s" what e.Problem
        | Read(info, _) -> printfn "%s: read %d frames%s" what info.Frames (match info.Warning with Some w -> ", " + w | None -> "")
        | _ -> ()
    let samples = match outcome with Read(_, a) -> int64 a.Frames * int64 a.Samples.Length | _ -> 0L
    match outcome with
    | Hung -> Some(sprintf "%s: the read took more than %d ms" what timeoutMs), false
    | Escaped e -> Some(sprintf "%s: %s escaped: %s" what (e.GetType().Name) e.Message), false
    | _ when ms > float timeoutMs -> Some(sprintf "%s: the read took %.0f ms" what ms), false
    | _ when allocated > allocationBound fileBytes samples ->
        Some(sprintf "%s: allocated %d bytes for a %d-byte file decoding to %d samples" what allocated fileBytes samples), false
    | Refused e when e.Path <> path || not (e.Message.StartsWith(path + ": ", StringComparison.Ordinal)) ->
        Some(sprintf "%s: the exception does not name the file: %s" what e.Message), false
    | Read(info, audio) when
        info.SampleRate < AudioLimits.MinSampleRate || info.SampleRate > AudioLimits.MaxSampleRate || info.Channels < 1
        || audio.Samples.Length <> info.Channels || audio.SampleRate <> info.SampleRate
        || audio.Samples |> Array.exists (fun c -> c.Length <> audio.Frames) || int64 audio.Frames <> info.Frames ->
        Some(sprintf "%s: inconsistent clip: %A, %d channels of %d frames" what info audio.Samples.Length audio.Frames), false
    | Read(_, audio) when audio.Samples |> Array.exists (Array.exists (Single.IsFinite >> not)) -> Some(sprintf "%s: non-finite samples were returned" what), false
    | Read(_, audio) when samples > 2048L * int64 fileBytes -> Some(sprintf "%s: %d samples from %d bytes" what samples fileBytes), false
    | _ ->
        // The dataset scan's inspect must come to the same answer as the read.
        let scanned, _, _ = timedRead (fun p -> AudioFile.inspect false p, { SampleRate = 1; Samples = [||] }) path timeoutMs
        match outcome, scanned with
        | Read(info, _), Read(scan, _) when scan.Frames = info.Frames -> None, true
        | Refused _, Refused _ -> None, false
        | _, Escaped e -> Some(sprintf "%s: inspect let %s escape: %s" what (e.GetType().Name) e.Message), false
        | _ -> Some(sprintf "%s: read and inspect disagree: %A against %A" what outcome scanned), false

/// Mutants per format in the suite (eight formats: 3,200 files, about 20 s on two cores).
let private perFormat = 400

/// Seeds that once failed, kept as regression tests (format, seed): an Ogg last page granule that hung NVorbis's
/// own end trimming; an MP3 frame on which NLayer raised IndexOutOfRangeException.
let private regressions: (string * int) list = [ "Ogg Vorbis", 1000002; "MP3", 331 ]

let private runSeeds (subject: Subject) (seeds: int seq) =
    if subject.NeedsLibsndfile then needLibsndfile ()
    let original = subject.Bytes()
    use temp = new TempFolder()
    let mutable read = 0
    let mutable refused = 0
    let failures = Collections.Generic.List<string>()
    for seed in seeds do
        let label, bytes = mutant subject original seed
        let path = temp.Combine(sprintf "mutant-%d%s" seed subject.Extension)
        File.WriteAllBytes(path, bytes)
        match check subject seed label path bytes.Length with
        | Some failure, _ -> failures.Add failure
        | None, true -> read <- read + 1
        | None, false -> refused <- refused + 1
        File.Delete path
    if failures.Count > 0 then failtestf "%d of %d mutants failed; the first: %s" failures.Count (Seq.length seeds) failures.[0]
    read, refused

[<Tests>]
let tests =
    testList
        "Audio fuzzing"
        [ for subject in subjects do
              yield slow <| testCase (sprintf "%d seeded %s mutants each give a consistent clip or AudioFormatException, within 2 s and bounded allocation" perFormat subject.Name) (fun () ->
                  // Warm the code paths so that JIT compilation is not timed.
                  let _warm = runSeeds subject [ 1_000_000 .. 1_000_004 ]
                  let clock = Stopwatch.StartNew()
                  let read, refused = runSeeds subject [ 0 .. perFormat - 1 ]
                  printfn "%s fuzz: %d mutants read, %d refused, %.1f s" subject.Name read refused clock.Elapsed.TotalSeconds
                  Expect.isGreaterThan read (perFormat / 10) "the mutants include readable files"
                  Expect.isGreaterThan refused 0 "the mutants include refused files")
          yield test "a frame NLayer fails on (MP3 seed 331: IndexOutOfRangeException) is silence of its length, listed in the warning" {
              let subject = subjects |> List.find (fun s -> s.Name = "MP3")
              let _, bytes = mutant subject (subject.Bytes()) 331
              withBytes "seed-331.mp3" bytes (fun path ->
                  let info, audio = AudioFile.readWithInfo all path
                  Expect.equal audio.Frames (AudioFile.read all (fixture "mono-22k.mp3")).Frames "every frame, the damaged one as silence"
                  Expect.stringContains (Option.defaultValue "" info.Warning) "damaged MPEG frames decoded as silence: 1 (the MPEG audio decoder, NLayer, failed first on frame 2" "the warning names the codec and the frame"
                  Expect.stringContains (formatError (fun () -> AudioFile.read { all with Strict = true } path)).Message "strict reading refuses it" "strict")
          }
          yield testList
              "failing seeds kept as regression tests"
              [ for name, seed in regressions ->
                    testCase (sprintf "%s seed %d gives a clip or AudioFormatException" name seed) (fun () ->
                        runSeeds (subjects |> List.find (fun s -> s.Name = name)) [ seed ] |> ignore) ] ]
