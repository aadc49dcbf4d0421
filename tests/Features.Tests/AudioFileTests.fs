module Hybrid.FeaturesTests.AudioFileTests

open System
open System.Buffers.Binary
open System.IO
open Expecto
open Hybrid.Features
open Hybrid.TestSupport
open Hybrid.FeaturesTests.DatasetFixtures
open Hybrid.FeaturesTests.AudioFixtures

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
              Expect.equal (AudioFile.read { AudioFile.defaults with SampleRate = Some 8000 } ogg.Path).Samples.[0].Length (int (Math.Round(float ogg.Frames * 0.5))) "loaded at 8 kHz"
          }
          test "AudioFile.defaults are librosa.load's sr=None, mono=True, offset=0, duration=None" {
              Expect.equal AudioFile.defaults { SampleRate = None; Mono = true; Offset = 0.0; Duration = None; Strict = false } "defaults"
              let audio = AudioFile.read AudioFile.defaults (fixture "stereo-s16.au")
              Expect.equal (audio.SampleRate, audio.Samples.Length) (8000, 1) "the file's rate, one channel"
          }
          test "offsets, durations and rates outside their ranges are argument errors, before the file is read" {
              let path = fixture "s16.au"
              for options in
                  [ { all with Offset = -0.1 }; { all with Offset = infinity }; { all with Offset = nan }; { all with Duration = Some -1.0 }
                    { all with SampleRate = Some 0 }; { all with SampleRate = Some 768001 } ] do
                  Expect.throwsT<ArgumentOutOfRangeException> (fun () -> AudioFile.read options path |> ignore) (sprintf "%A" options)
          }
          test "a range past AudioLimits.MaxSamples is refused with AudioFormatException saying to read a shorter range" {
              let e = formatError (fun () -> Wav.frameRangeOf "long.wav" 8000 2 (1L <<< 31) 0.0 None)
              Expect.stringContains e.Message "exceed the 1073741824 samples" "the cap"
              Expect.stringContains e.Message "read a range with an offset and a duration" "what to do"
              Expect.equal (Wav.frameRangeOf "long.wav" 8000 2 (1L <<< 31) 10.0 (Some 1.0)) (80000L, 8000) "a range of it is fine"
          }
          for name, patch in
              [ "AU", (fun (b: byte[]) -> withU32BigEndian b 16 0x7FFFFFFFu)
                "AIFF", (fun (b: byte[]) ->
                    // An 80-bit extended rate of 2^31 - 1: exponent 16383 + 30, mantissa 0xFFFFFFFE << 32.
                    let c = Array.copy b
                    let at = find c "COMM" + 16
                    BinaryPrimitives.WriteUInt16BigEndian(c.AsSpan at, uint16 (16383 + 30))
                    BinaryPrimitives.WriteUInt64BigEndian(c.AsSpan(at + 2), 0xFFFFFFFE00000000UL)
                    c) ] do
              test (sprintf "a sample rate of 2^31-1 Hz in %s is refused, naming the rate and the range" name) {
                  let source = if name = "AU" then "s16.au" else "s16.aiff"
                  withBytes source (patch (fixtureBytes source)) (fun path ->
                      let before = GC.GetAllocatedBytesForCurrentThread()
                      let e = formatError (fun () -> AudioFile.read { AudioFile.defaults with SampleRate = Some 8000 } path)
                      Expect.stringContains e.Message "sample rate of 2147483647 Hz, outside the 1 Hz .. 768 kHz" "why"
                      Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - before) 1_000_000L "no resampler designed")
              }
          test "an AU data offset inside the header is taken as it is, and one past the end gives no samples, as libsndfile takes them" {
              let whole = AudioFile.read all (fixture "s16.au")
              let bytes = withU32BigEndian (fixtureBytes "s16.au") 4 1u
              withBytes "offset.au" bytes (fun path ->
                  let audio = AudioFile.read all path
                  Expect.equal audio.Frames whole.Frames "the declared data size"
                  Expect.equal audio.Samples.[0].[0] (float32 (BinaryPrimitives.ReadInt16BigEndian(ReadOnlySpan<byte>(bytes, 1, 2))) / 32768.0f) "read from byte 1")
              withBytes "past.au" (withU32BigEndian (fixtureBytes "s16.au") 4 100000u) (fun path ->
                  Expect.equal (AudioFile.read all path).Frames 0 "no samples")
          }
          test "768 kHz is read and 768,001 Hz refused" {
              withBytes "fast.au" (withU32BigEndian (fixtureBytes "s16.au") 16 768000u) (fun path ->
                  Expect.equal (AudioFile.readInfo path).SampleRate 768000 "768 kHz")
              withBytes "faster.au" (withU32BigEndian (fixtureBytes "s16.au") 16 768001u) (fun path ->
                  Expect.stringContains (formatError (fun () -> AudioFile.readInfo path)).Message "768001 Hz" "refused")
          }
          for source in [ "stereo.flac"; "s16.au"; "s16.aiff"; "source-8k-mono.wav"; "mono-22k.mp3" ] do
              test (sprintf "an ID3v2 tag in front of %s is looked behind: the file reads as without it" source) {
                  if source.EndsWith ".flac" then needLibsndfile ()
                  let expected = AudioFile.read all (fixture source)
                  withBytes ("tagged" + IO.Path.GetExtension source) (Array.append (id3v2 300) (fixtureBytes source)) (fun path ->
                      let info, audio = AudioFile.readWithInfo all path
                      Expect.equal info.Container (AudioFile.readInfo (fixture source)).Container "the same container"
                      Expect.equal audio.Samples expected.Samples "the same samples")
              }
          test "a file of no known format is refused naming what it starts with and what is recognised" {
              withBytes "notes.xyz" "hello, world"B (fun path ->
                  let e = formatError (fun () -> AudioFile.read all path)
                  Expect.stringContains e.Message "not a recognised audio file: it starts with 'hell'" "what it is")
          }
          test "a FLAC file without a total sample count (unknown length) reads to its end" {
              needLibsndfile ()
              let expected = AudioFile.read all (fixture "stereo.flac")
              withBytes "unknown.flac" (flacWithTotal (fixtureBytes "stereo.flac") 0L) (fun path ->
                  let info, audio = AudioFile.readWithInfo all path
                  Expect.equal info.Frames (int64 expected.Frames) "every frame"
                  Expect.equal audio.Samples expected.Samples "the samples")
          }
          test "a FLAC STREAMINFO total far above or below the data reads the frames decoded, allocating for those only" {
              needLibsndfile ()
              let expected = AudioFile.read all (fixture "stereo.flac")
              for total in [ (1L <<< 36) - 1L; 100L ] do
                  withBytes "total.flac" (flacWithTotal (fixtureBytes "stereo.flac") total) (fun path ->
                      let before = GC.GetAllocatedBytesForCurrentThread()
                      let audio = AudioFile.read all path
                      Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - before) 4_000_000L (sprintf "total %d: nothing sized by the header" total)
                      Expect.isGreaterThanOrEqual audio.Frames (min (int total) expected.Frames) (sprintf "total %d: what libsndfile decodes" total))
          }
          test "a FLAC file with a wrong max block size is read straight through, never seeking" {
              needLibsndfile ()
              let expected = AudioFile.read all (fixture "stereo.flac")
              let b = fixtureBytes "stereo.flac"
              BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan 10, 16us)
              withBytes "blocks.flac" b (fun path ->
                  let range = AudioFile.read { all with Offset = 0.05; Duration = Some 0.02 } path
                  Expect.equal range.Samples.[0] expected.Samples.[0].[400..559] "a range read")
          }
          test "a dataset scan skips a file its decoder refuses, names the codec, and goes on" {
              use temp = new TempFolder()
              let b = fixtureBytes "stereo-16k.ogg"
              b.[find b "\001vorbis" + 11] <- 3uy
              write (temp.Combine "rock/rock.00000.ogg") (oggResign b)
              write (temp.Combine "rock/rock.00001.au") (fixtureBytes "s16.au")
              write (temp.Combine "jazz/jazz.00000.mp3") (fixtureBytes "mono-22k.mp3")
              write (temp.Combine "jazz/jazz.00001.mp2") (fixtureBytes "mono-22k.mp2").[.. 100]
              let d = Dataset.openFolder false temp.Path
              Expect.equal d.Items.Length 2 "the readable files are items"
              Expect.equal d.Skipped.Length 2 "the others are skipped"
              Expect.stringContains (d.Skipped |> Array.find (fun s -> s.Path.EndsWith ".ogg")).Reason "NVorbis" "the codec library is named"
              Expect.stringContains (d.Skipped |> Array.find (fun s -> s.Path.EndsWith ".mp2")).Reason "no whole MPEG frame" "why"
          } ]
