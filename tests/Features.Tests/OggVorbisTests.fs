/// Ogg Vorbis (OggVorbis.fs): pages read by Hybrid, headers bounded before NVorbis, lengths from decoding.
module Hybrid.FeaturesTests.OggVorbisTests

open System
open System.Buffers.Binary
open System.Diagnostics
open Expecto
open Hybrid.Features
open Hybrid.TestSupport
open Hybrid.FeaturesTests.AudioFixtures

let private ogg () = fixtureBytes "stereo-16k.ogg"

/// The fixture with its last page's granule position set to `granule`, pages re-signed.
let private withLastGranule (granule: int64) =
    let b = ogg ()
    let at, _ = List.last (oggPages b)
    BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(at + 6), granule)
    oggResign b

/// A one-page Ogg stream whose only packet is `packet`.
let private onePage (packet: byte[]) =
    let header = Array.concat [ "OggS"B; [| 0uy; 2uy |]; Array.zeroCreate 8; [| 1uy; 2uy; 3uy; 4uy |]; Array.zeroCreate 8; [| 1uy; byte packet.Length |] ]
    oggResign (Array.append header packet)

[<Tests>]
let tests =
    testList
        "Ogg Vorbis"
        [ test "a last page claiming granule 0xFFFFFFFF reads the frames decoded, at once" {
              let expected = AudioFile.read all (fixture "stereo-16k.ogg")
              withBytes "granule.ogg" (withLastGranule 0xFFFFFFFFL) (fun path ->
                  let clock = Stopwatch.StartNew()
                  let info, audio = AudioFile.readWithInfo all path
                  Expect.isLessThan clock.Elapsed.TotalSeconds 2.0 "no decoding block by block from an ended decoder"
                  Expect.isGreaterThanOrEqual audio.Frames expected.Frames "every frame decoded"
                  Expect.isLessThan audio.Frames (expected.Frames + 1024) "no padding up to the header's count"
                  Expect.equal info.Frames (int64 audio.Frames) "the length is the decoded one")
          }
          for granule in [ 0L; 1L; 1000L ] do
              test (sprintf "a final granule of %d, below the frames decoded, trims to it as libsndfile does, without hanging" granule) {
                  withBytes "short-granule.ogg" (withLastGranule granule) (fun path ->
                      let clock = Stopwatch.StartNew()
                      let audio = AudioFile.read all path
                      Expect.isLessThan clock.Elapsed.TotalSeconds 2.0 "finished"
                      Expect.equal audio.Frames (int granule) "trimmed to the granule, within the last page")
              }
          test "a final granule below the previous page's is ignored: the trim stays within the last page" {
              let b = ogg ()
              let pages = oggPages b
              let at, _ = pages.[List.length pages - 2]
              BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(at + 6), 3000L) // the page before claims 3000 frames
              let last, _ = List.last pages
              BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(last + 6), 1000L)
              let whole = AudioFile.read all (fixture "stereo-16k.ogg")
              withBytes "backwards.ogg" (oggResign b) (fun path ->
                  Expect.equal (AudioFile.read all path).Frames (whole.Frames + 960) "not trimmed: the granules contradict each other")
          }
          test "the end-of-stream granule trims the last packet as libvorbis does" {
              let whole = AudioFile.read all (fixture "stereo-16k.ogg")
              withBytes "trim.ogg" (withLastGranule (int64 whole.Frames - 100L)) (fun path ->
                  let audio = AudioFile.read all path
                  Expect.equal audio.Frames (whole.Frames - 100) "100 frames fewer"
                  Assertions.allClose 0.0 0.0 whole.Samples.[1].[.. audio.Frames - 1] audio.Samples.[1] "the same samples before")
          }
          test "a comment header claiming 2^31 comments is read without its comments, allocating nothing for them" {
              let b = ogg ()
              let at = find b "\003vorbis"
              let vendor = BinaryPrimitives.ReadInt32LittleEndian(ReadOnlySpan<byte>(b, at + 7, 4))
              BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at + 11 + vendor), 0x7FFFFFFFu)
              let whole = AudioFile.read all (fixture "stereo-16k.ogg")
              withBytes "comments.ogg" (oggResign b) (fun path ->
                  let before = GC.GetAllocatedBytesForCurrentThread()
                  let audio = AudioFile.read all path
                  Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - before) 4_000_000L "no allocation for the claimed comments"
                  Expect.equal audio.Samples whole.Samples "the audio, as libsndfile reads it")
          }
          test "a codebook claiming 2^24 - 1 entries of 65535 dimensions is refused with libvorbis's limit" {
              let b = ogg ()
              let book = find b "BCV"
              BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(book + 3), 0xFFFFus)
              b.[book + 5] <- 0xFFuy
              b.[book + 6] <- 0xFFuy
              b.[book + 7] <- 0xFFuy
              withBytes "codebook.ogg" (oggResign b) (fun path ->
                  let e = formatError (fun () -> AudioFile.read all path)
                  Expect.stringContains e.Message "codebook 0 declares 16777215 entries of 65535 dimensions" "why")
          }
          test "headers NVorbis refuses become AudioFormatException naming the codec" {
              let b = ogg ()
              b.[find b "\001vorbis" + 11] <- 3uy // three channels: the setup header's mapping no longer fits
              withBytes "channels.ogg" (oggResign b) (fun path ->
                  let e = formatError (fun () -> AudioFile.read all path)
                  Expect.stringContains e.Message "NVorbis" "the codec library is named")
          }
          test "a page whose CRC fails is lost, as libogg loses it: the headers' page refuses the file, the audio page its audio" {
              let pages = oggPages (ogg ())
              let damaged (page: int) =
                  let b = ogg ()
                  let at, size = pages.[page]
                  b.[at + size - 10] <- b.[at + size - 10] ^^^ 0xFFuy
                  b
              withBytes "headers.ogg" (damaged 1) (fun path ->
                  Expect.stringContains (formatError (fun () -> AudioFile.read all path)).Message "comment header is missing" "headers lost")
              withBytes "audio.ogg" (damaged 2) (fun path ->
                  Expect.equal (AudioFile.read all path).Frames 0 "the only audio page is lost")
          }
          test "an Ogg file holding Opus or Theora is refused naming the codec (Opus through libsndfile where it is present)" {
              let opus = onePage (Array.concat [ "OpusHead"B; [| 1uy; 1uy; 0uy; 0uy; 0x80uy; 0xBBuy; 0uy; 0uy; 0uy; 0uy; 0uy |] ])
              withBytes "opus.ogg" opus (fun path ->
                  let e = formatError (fun () -> AudioFile.read all path)
                  Expect.stringContains e.Message (if libsndfilePresent () then "libsndfile" else "Opus") "names the codec or the library that refused it")
              let theora = onePage (Array.concat [ [| 0x80uy |]; "theora"B; Array.zeroCreate 35 ])
              withBytes "video.ogg" theora (fun path ->
                  let e = formatError (fun () -> AudioFile.read all path)
                  Expect.stringContains e.Message "holds Theora video, not Vorbis" "names the codec")
          }
          test "an ID3v2 tag in front of an Ogg file is skipped over by the page search" {
              let whole = AudioFile.read all (fixture "stereo-16k.ogg")
              withBytes "tagged.ogg" (Array.append (id3v2 200) (ogg ())) (fun path ->
                  Expect.equal (AudioFile.read all path).Samples.[0] whole.Samples.[0] "the same samples")
          } ]
