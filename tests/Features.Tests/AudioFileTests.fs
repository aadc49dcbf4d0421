module Hybrid.FeaturesTests.AudioFileTests

open System
open System.IO
open Expecto
open Hybrid.Features
open Hybrid.TestSupport
open Hybrid.FeaturesTests.DatasetFixtures

/// The committed format fixtures (tests/Features.Tests/audio, made by make_fixtures.sh) and their references.
let private fixtureDir () =
    match TestData.repositoryRoot () with
    | Some root -> Path.Combine(root, "tests", "Features.Tests", "audio")
    | None -> failtest "repository root (Hybrid.sln) not found above the test binaries"

let private fixture name = Path.Combine(fixtureDir (), name)

/// Every channel at the file's own rate (soundfile.read transposed).
let private all = { AudioFile.defaults with Mono = false }

/// The reference decode (soundfile / libsndfile) of a fixture, stored as float32 WAV.
let private reference name = AudioFile.read all (fixture (name + ".ref.wav"))

let private libsndfilePresent () = SndFile.api.Value.IsSome

/// Skips (or, with HYBRID_REQUIRE_DATA, fails) a test that needs libsndfile when it is absent.
let private needLibsndfile () =
    if not (libsndfilePresent ()) then
        let message = "libsndfile not found (install libsndfile1); FLAC tests skipped"
        if TestData.requireData () then failtestf "%s and %s is set" message TestData.RequireDataVariable
        else skiptest message

let private maxDiff (a: float32[]) (b: float32[]) =
    Array.fold2 (fun m (x: float32) y -> max m (abs (float x - float y))) 0.0 a b

/// The lag (0..maxLag) at which b best matches a delayed copy of a (b.[i + lag] ~ a.[i]).
let private bestLag (a: float32[]) (b: float32[]) (maxLag: int) =
    let score lag =
        let n = min a.Length (b.Length - lag)
        let mutable s = 0.0
        for i in 0 .. n - 1 do
            s <- s + float a.[i] * float b.[i + lag]
        s
    [ 0 .. maxLag ] |> List.maxBy score

let private uncompressed =
    [ "s16.au"; "stereo-s16.au"; "s8.au"; "s24.au"; "s32.au"; "f32.au"; "f64.au"; "mulaw.au"; "alaw.au"
      "s16.aiff"; "stereo-s24.aiff"; "s8.aiff"; "f32.aifc"; "mulaw.aifc"; "alaw.aifc" ]

let private copyWith (name: string) (change: byte[] -> byte[]) (body: string -> unit) =
    use temp = new TempFolder()
    let path = temp.Combine(nonNull (Path.GetFileName name))
    File.WriteAllBytes(path, change (File.ReadAllBytes(fixture name)))
    body path

[<Tests>]
let tests =
    testList
        "AudioFile"
        [ testList
              "uncompressed formats equal soundfile's decode"
              [ for name in uncompressed ->
                    test (sprintf "%s reads like soundfile within 1e-4, with its header's rate, channels and frames" name) {
                        let expected = reference name
                        let info = AudioFile.readInfo (fixture name)
                        Expect.equal (info.SampleRate, info.Channels, info.Frames) (expected.SampleRate, expected.Samples.Length, int64 expected.Frames) "header"
                        Expect.isNone info.Warning "no warning"
                        let audio = AudioFile.read all (fixture name)
                        Expect.equal audio.Samples.Length expected.Samples.Length "channels"
                        for c in 0 .. expected.Samples.Length - 1 do
                            Assertions.allClose 0.0 1e-4 expected.Samples.[c] audio.Samples.[c] (sprintf "%s channel %d" name c)
                    } ]
          test "an AIFF written to a pipe (0 or 0xFFFFFFFF frame count and SSND size) reads to the end of the file" {
              let name = "s16.aiff"
              let expected = reference name
              let indexOf (b: byte[]) (tag: string) =
                  let t = Text.Encoding.ASCII.GetBytes tag
                  seq { 0 .. b.Length - 4 } |> Seq.find (fun i -> b.[i] = t.[0] && b.[i + 1] = t.[1] && b.[i + 2] = t.[2] && b.[i + 3] = t.[3])
              for placeholder in [ [| 0uy; 0uy; 0uy; 0uy |]; [| 255uy; 255uy; 255uy; 255uy |] ] do
                  let patch (b: byte[]) =
                      let c = Array.copy b
                      Array.blit placeholder 0 c 4 4                       // FORM size
                      Array.blit placeholder 0 c (indexOf b "COMM" + 10) 4 // numSampleFrames
                      Array.blit placeholder 0 c (indexOf b "SSND" + 4) 4  // SSND size
                      c
                  copyWith name patch (fun path ->
                      let info = AudioFile.readInfo path
                      Expect.equal info.Frames (int64 expected.Frames) (sprintf "%A: every frame up to the end of the file" placeholder)
                      Expect.isNone info.Warning "no truncation warning"
                      Assertions.allClose 0.0 1e-4 expected.Samples.[0] (AudioFile.read all path).Samples.[0] "samples")
          }
          test "the container and encoding are named" {
              let named = [ "s16.au", "Sun AU", "16-bit PCM"; "mulaw.au", "Sun AU", "mu-law"; "f32.aifc", "AIFC", "32-bit float"; "s16.aiff", "AIFF", "16-bit PCM" ]
              for name, container, encoding in named do
                  let info = AudioFile.readInfo (fixture name)
                  Expect.equal (info.Container, info.Encoding) (container, encoding) name
          }
          test "FLAC reads through libsndfile like soundfile (skipped without libsndfile)" {
              needLibsndfile ()
              let expected = reference "stereo.flac"
              let info = AudioFile.readInfo (fixture "stereo.flac")
              Expect.equal (info.Container, info.SampleRate, info.Channels, info.Frames) ("FLAC", 8000, 2, int64 expected.Frames) "header"
              let audio = AudioFile.read all (fixture "stereo.flac")
              for c in 0..1 do
                  Assertions.allClose 0.0 1e-4 expected.Samples.[c] audio.Samples.[c] (sprintf "channel %d" c)
              let range = AudioFile.read { all with Offset = 0.05; Duration = Some 0.02 } (fixture "stereo.flac")
              Expect.equal range.Samples.[1] audio.Samples.[1].[400..559] "a range read gives those frames (decoded straight through)"
          }
          test "a FLAC file without libsndfile would say how to install it or convert the file" {
              let e = SndFile.missing "x.flac" "FLAC"
              Expect.stringContains e.Message "x.flac: reading FLAC needs the system library libsndfile" "names the file and the need"
              Expect.stringContains e.Message "apt-get install libsndfile1" "how to install it"
              Expect.stringContains e.Message "ffmpeg -i in.flac out.wav" "how to convert"
          }
          test "MP3 decodes with NLayer like mpg123, the LAME tag's encoder delay and padding trimmed as mpg123 trims them" {
              let expected = (reference "mono-22k.mp3").Samples.[0]
              let info = AudioFile.readInfo (fixture "mono-22k.mp3")
              Expect.equal (info.Container, info.Encoding, info.SampleRate, info.Channels) ("MP3", "MPEG-2 layer III", 22050, 1) "header"
              let audio = (AudioFile.read all (fixture "mono-22k.mp3")).Samples.[0]
              Expect.equal (int64 audio.Length) info.Frames "frames as the header walk said"
              Expect.equal audio.Length expected.Length "mpg123's length"
              Expect.equal (bestLag expected audio 3000) 0 "no lag: the encoder and decoder delays are trimmed"
              let diff = maxDiff expected audio
              printfn "MP3: max |diff| from mpg123 %.2e over %d samples" diff audio.Length
              Expect.isLessThan diff 2e-3 "within the codec's tolerance"
          }
          test "Ogg Vorbis decodes with NVorbis like libvorbis" {
              let expected = reference "stereo-16k.ogg"
              let info = AudioFile.readInfo (fixture "stereo-16k.ogg")
              Expect.equal (info.Container, info.SampleRate, info.Channels, info.Frames) ("Ogg Vorbis", 16000, 2, int64 expected.Frames) "header"
              let audio = AudioFile.read all (fixture "stereo-16k.ogg")
              for c in 0..1 do
                  let lag = bestLag expected.Samples.[c] audio.Samples.[c] 100
                  let n = expected.Frames - lag
                  let diff = maxDiff expected.Samples.[c].[.. n - 1] audio.Samples.[c].[lag .. lag + n - 1]
                  printfn "Ogg channel %d: lag %d, max |diff| %.2e" c lag diff
                  Expect.isLessThan diff 1e-4 (sprintf "channel %d within 1e-4" c)
          }
          test "range reads, mono mix and resampling work the same for every format" {
              for name in [ "stereo-s16.au"; "stereo-s24.aiff"; "stereo-16k.ogg" ] do
                  let path = fixture name
                  let whole = AudioFile.read all path
                  let sr = whole.SampleRate
                  let range = AudioFile.read { all with Offset = 0.01; Duration = Some 0.05 } path
                  let start, count = int (Math.Round(0.01 * float sr)), int (Math.Round(0.05 * float sr))
                  for c in 0..1 do
                      Assertions.allClose 0.0 1e-6 whole.Samples.[c].[start .. start + count - 1] range.Samples.[c] (sprintf "%s range channel %d" name c)
                  let mono = AudioFile.read AudioFile.defaults path
                  let mean = Array.map2 (fun (a: float32) b -> (a + b) * 0.5f) whole.Samples.[0] whole.Samples.[1]
                  Assertions.allClose 0.0 1e-6 mean mono.Samples.[0] (sprintf "%s mono" name)
                  let loaded = AudioFile.read { AudioFile.defaults with SampleRate = Some 4000 } path
                  Expect.equal loaded.SampleRate 4000 (sprintf "%s: the result's rate" name)
                  Expect.equal loaded.Samples.[0] (Resample.resample sr 4000 mono.Samples.[0]) (sprintf "%s resampled to 4 kHz" name)
          }
          test "a truncated AU file gives its whole frames and a warning; strict reading refuses it" {
              copyWith "s16.au" (fun b -> b.[.. b.Length - 102]) (fun path ->
                  // 101 bytes cut: 1,819 of the 1,920 data bytes remain, 909 whole frames and half of one.
                  let info, audio = AudioFile.readWithInfo all path
                  Expect.equal audio.Frames 909 "whole frames present"
                  Expect.stringContains (Option.defaultValue "" info.Warning) "truncated file" "warning"
                  Assertions.allClose 0.0 0.0 (reference "s16.au").Samples.[0].[.. 908] audio.Samples.[0] "samples"
                  Expect.throwsT<AudioFormatException> (fun () -> AudioFile.readWithInfo { all with Strict = true } path |> ignore) "strict")
          }
          test "an AU file whose data size is unknown (0xFFFFFFFF) reads to the end" {
              copyWith "s16.au" (fun b -> Array.concat [ b.[.. 7]; [| 0xFFuy; 0xFFuy; 0xFFuy; 0xFFuy |]; b.[12..] ]) (fun path ->
                  let info, audio = AudioFile.readWithInfo { all with Strict = true } path
                  Expect.equal (audio.Frames, info.Warning) (960, None) "every frame, no warning")
          }
          test "NaN in a float AU or AIFC file raises AudioFormatException with 'non-finite samples', and the scan skips it" {
              for name in [ "f32.au"; "f32.aifc" ] do
                  copyWith name (fun b ->
                      let c = Array.copy b
                      // The last sample becomes a big-endian quiet NaN.
                      Array.blit [| 0x7Fuy; 0xC0uy; 0uy; 0uy |] 0 c (c.Length - 4) 4
                      c) (fun path ->
                      try
                          AudioFile.read all path |> ignore
                          failtestf "%s: expected AudioFormatException" name
                      with :? AudioFormatException as e ->
                          Expect.equal e.Path path "names the file"
                          Expect.stringContains e.Message "non-finite samples: NaN at frame 959, channel 0" "says what and where"
                      Expect.throwsT<AudioFormatException> (fun () -> AudioFile.inspect false path |> ignore) "inspect finds it")
          }
          test "malformed AU and AIFF headers raise AudioFormatException naming the file" {
              for name, change, text in
                  [ "s16.au", (fun (b: byte[]) -> Array.concat [ b.[.. 11]; [| 0uy; 0uy; 0uy; 23uy |]; b.[16..] ]), "unsupported AU encoding 23"
                    "s16.au", (fun (b: byte[]) -> b.[.. 10]), "too short for a Sun AU header"
                    "s16.aiff", (fun (b: byte[]) -> b.[.. 40]), "no SSND chunk" ] do
                  copyWith name change (fun path ->
                      try
                          AudioFile.read all path |> ignore
                          failtestf "%s: expected AudioFormatException" name
                      with :? AudioFormatException as e ->
                          Expect.stringStarts e.Message path "names the file"
                          Expect.stringContains e.Message text "says why")
          }
          test "dataset scans pick AU, AIFF, FLAC, MP3 and Ogg files by extension" {
              use temp = new TempFolder()
              let copies = [ "blues/blues.00000.au", "s16.au"; "blues/blues.00001.aiff", "s16.aiff"; "rock/rock.00000.mp3", "mono-22k.mp3"; "rock/rock.00001.ogg", "stereo-16k.ogg" ]
              let copies = if libsndfilePresent () then ("jazz/jazz.00000.flac", "stereo.flac") :: copies else copies
              for target, source in copies do
                  write (temp.Combine target) (File.ReadAllBytes(fixture source))
              write (temp.Combine "rock/notes.txt") [| 1uy |]
              let d = Dataset.openFolder false temp.Path
              Expect.isEmpty d.Skipped "nothing skipped"
              Expect.equal d.Items.Length copies.Length "every audio file is an item, the text file is not"
              Expect.isTrue (d.Items |> Array.forall (fun i -> i.Index.IsSome)) "GTZAN numbers read from any extension"
              let ogg = d.Items |> Array.find (fun i -> i.Path.EndsWith ".ogg")
              Expect.equal (ogg.SampleRate, ogg.Channels) (16000, 2) "header of the Ogg file"
              Expect.equal (Dataset.loadMono 8000 ogg).Length (int (Math.Round(float ogg.Frames * 0.5))) "loaded at 8 kHz"
          } ]
