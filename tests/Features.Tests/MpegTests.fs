/// MPEG audio (Mpeg.fs): frames found by Hybrid and decoded by NLayer; header counts never trusted.
module Hybrid.FeaturesTests.MpegTests

open System
open System.Buffers.Binary
open Expecto
open Hybrid.Features
open Hybrid.TestSupport
open Hybrid.FeaturesTests.AudioFixtures

/// Bytes allocated on this thread by f, and its result.
let private allocation (f: unit -> 'a) =
    let before = GC.GetAllocatedBytesForCurrentThread()
    let result = f ()
    result, GC.GetAllocatedBytesForCurrentThread() - before

[<Tests>]
let tests =
    testList
        "MPEG audio"
        [ test "MPEG layer II reads like libsndfile's mpg123 decode, by its frames, under any extension" {
              let expected = (reference "mono-22k.mp2").Samples.[0]
              for name in [ "a.mp2"; "a.wav"; "a.bin" ] do
                  withBytes name (fixtureBytes "mono-22k.mp2") (fun path ->
                      let info, audio = AudioFile.readWithInfo all path
                      Expect.equal (info.Container, info.Encoding, info.SampleRate) ("MP2", "MPEG-2 layer II", 22050) (sprintf "%s: recognised by content" name)
                      Expect.equal audio.Frames expected.Length "mpg123's length"
                      Assertions.allClose 0.0 1e-4 expected audio.Samples.[0] "samples")
          }
          test "a Xing frame count of 2^32-1 in a 3 KB file gives the frames present, allocating no more than a few times their size" {
              let bytes = fixtureBytes "mono-22k.mp3"
              let info = find bytes "Info"
              let forged = withU32BigEndian bytes (info + 8) UInt32.MaxValue
              let expected = AudioFile.read all (fixture "mono-22k.mp3")
              withBytes "forged.mp3" forged (fun path ->
                  let audio, allocated = allocation (fun () -> AudioFile.read all path)
                  // The frames present; the end is not trimmed, since the tag's count cannot be met.
                  Expect.isGreaterThanOrEqual audio.Frames expected.Frames "at least the frames of the honest file"
                  Expect.isLessThan audio.Frames (expected.Frames + 1152) "no more than the frames present"
                  Expect.isLessThan allocated (16L * int64 audio.Frames + 4_000_000L) (sprintf "allocated %d bytes" allocated))
          }
          test "a VBRI frame whose table claims 65535 entries of 65535 bytes is never handed to the decoder, so nothing is allocated for it" {
              let bytes = fixtureBytes "mono-22k.mp3"
              let info = find bytes "Info"
              let first = info - 4 - 9
              let forged = Array.copy bytes
              let vbri = Array.concat [ "VBRI"B; [| 0uy; 1uy; 0uy; 0uy; 0uy; 0uy |]; [| 0x7Fuy; 0xFFuy; 0xFFuy; 0xFFuy |]; [| 0x7Fuy; 0xFFuy; 0xFFuy; 0xFFuy |]; [| 0xFFuy; 0xFFuy; 0uy; 1uy; 0xFFuy; 0xFFuy; 0uy; 1uy |] ]
              Array.blit vbri 0 forged (first + 36) vbri.Length
              withBytes "vbri.mp3" forged (fun path ->
                  let audio, allocated = allocation (fun () -> AudioFile.read all path)
                  Expect.isGreaterThan audio.Frames 0 "the audio frames are read"
                  Expect.isLessThan allocated 8_000_000L (sprintf "allocated %d bytes, not the 4 GB the table claims" allocated))
          }
          test "a damaged first frame header does not make the stream start on garbage at another rate" {
              let bytes = fixtureBytes "mono-22k.mp3"
              let first = find bytes "Info" - 4 - 9
              // Garbage that holds a 44.1 kHz MPEG-1 header, then the stream with its first header destroyed.
              let garbage = Array.concat [ [| 0xFFuy; 0xFBuy; 0x90uy; 0x64uy |]; Array.init 200 (fun i -> byte (i * 37)) ]
              let damaged = Array.copy bytes
              damaged.[first + 1] <- 0x00uy
              let forged = Array.concat [ damaged.[.. first - 1]; garbage; damaged.[first..] ]
              withBytes "damaged.mp3" forged (fun path ->
                  let info = AudioFile.readInfo path
                  Expect.equal (info.SampleRate, info.Channels) (22050, 1) "the stream's own rate and channels")
          }
          test "a cut-off last frame is dropped with a warning; strict reading refuses it" {
              let bytes = fixtureBytes "mono-22k.mp3"
              let whole = AudioFile.read all (fixture "mono-22k.mp3")
              withBytes "cut.mp3" bytes.[.. bytes.Length - 50] (fun path ->
                  let info, audio = AudioFile.readWithInfo all path
                  Expect.stringContains (Option.defaultValue "" info.Warning) "the last MPEG frame" "the warning"
                  Expect.isLessThan audio.Frames whole.Frames "fewer frames"
                  Assertions.allClose 0.0 0.0 whole.Samples.[0].[.. audio.Frames - 1] audio.Samples.[0] "the same samples before the cut"
                  let e = formatError (fun () -> AudioFile.readWithInfo { all with Strict = true } path)
                  Expect.stringContains e.Message "strict reading refuses it" "strict")
          }
          test "without its Xing/LAME frame an MP3 keeps the decoder's delay, as mpg123 does without gapless information" {
              let bytes = fixtureBytes "mono-22k.mp3"
              let info = find bytes "Info"
              let first = info - 4 - 9
              let length = (AudioFile.readInfo (fixture "mono-22k.mp3")).Frames
              let frameLength = (Mpeg.tryHeader bytes first).Value.Length
              let untagged = Array.append bytes.[.. first - 1] bytes.[first + frameLength ..]
              withBytes "untagged.mp3" untagged (fun path ->
                  let frames = (AudioFile.readInfo path).Frames
                  Expect.equal (frames % 576L) 0L "whole frames of 576 samples"
                  Expect.isGreaterThan frames length "longer than the trimmed stream")
          }
          test "a file that is one MPEG frame cut short is refused, naming the problem" {
              let bytes = fixtureBytes "mono-22k.mp2"
              withBytes "short.mp2" bytes.[.. 100] (fun path ->
                  let e = formatError (fun () -> AudioFile.read all path)
                  Expect.stringContains e.Message "holds no whole MPEG frame" "why")
          } ]
