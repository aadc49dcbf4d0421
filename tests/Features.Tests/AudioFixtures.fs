/// The committed audio fixtures (tests/Features.Tests/audio, made by make_fixtures.sh) and byte-level edits of them:
/// what the reader tests and the fuzzing build their files from.
module Hybrid.FeaturesTests.AudioFixtures

open System
open System.Buffers.Binary
open System.IO
open System.Text
open Expecto
open Hybrid.Features
open Hybrid.TestSupport
open Hybrid.FeaturesTests.DatasetFixtures

let fixtureDir () =
    match TestData.repositoryRoot () with
    | Some root -> Path.Combine(root, "tests", "Features.Tests", "audio")
    | None -> failtest "repository root (Hybrid.sln) not found above the test binaries"

let fixture name = Path.Combine(fixtureDir (), name)

let fixtureBytes name = File.ReadAllBytes(fixture name)

/// Every channel at the file's own rate (soundfile.read transposed).
let all = { AudioFile.defaults with Mono = false }

/// The reference decode (soundfile / libsndfile) of a fixture, stored as float32 WAV.
let reference name = AudioFile.read all (fixture (name + ".ref.wav"))

let libsndfilePresent () = SndFile.api.Value.IsSome

/// Skips (or, with HYBRID_REQUIRE_DATA, fails) a test that needs libsndfile when it is absent.
let needLibsndfile () =
    if not (libsndfilePresent ()) then
        let message = "libsndfile not found (install libsndfile1); FLAC tests skipped"
        if TestData.requireData () then failtestf "%s and %s is set" message TestData.RequireDataVariable
        else skiptest message

/// Writes bytes under `name` in a fresh temporary folder and runs body on the path.
let withBytes (name: string) (bytes: byte[]) (body: string -> 'T) : 'T =
    use temp = new TempFolder()
    let path = temp.Combine name
    File.WriteAllBytes(path, bytes)
    body path

/// The AudioFormatException reading path raises, or a failure when it reads.
let formatError (read: unit -> 'a) : AudioFormatException =
    try
        read () |> ignore
        failtest "expected AudioFormatException, the file was read"
    with :? AudioFormatException as e -> e

let private indexOf (bytes: byte[]) (text: string) = bytes.AsSpan().IndexOf(ReadOnlySpan<byte>(Encoding.ASCII.GetBytes text))

/// Offset of the first occurrence of an ASCII tag, or a failure.
let find (bytes: byte[]) (text: string) =
    match indexOf bytes text with
    | -1 -> failtestf "the fixture holds no '%s'" text
    | i -> i

/// An ID3v2.4 tag of `size` zero bytes of padding.
let id3v2 (size: int) =
    Array.concat [ "ID3"B; [| 4uy; 0uy; 0uy; byte ((size >>> 21) &&& 127); byte ((size >>> 14) &&& 127); byte ((size >>> 7) &&& 127); byte (size &&& 127) |]; Array.zeroCreate size ]

let private oggCrc =
    Array.init 256 (fun i ->
        let mutable r = uint32 i <<< 24
        for _ in 0..7 do
            r <- if r &&& 0x80000000u <> 0u then (r <<< 1) ^^^ 0x04C11DB7u else r <<< 1
        r)

/// The offsets and lengths of the Ogg pages in bytes (found by their capture pattern and segment tables).
let oggPages (bytes: byte[]) =
    let mutable at = indexOf bytes "OggS"
    [ while at >= 0 && at + 27 <= bytes.Length do
          let n = int bytes.[at + 26]
          let size = 27 + n + (if at + 27 + n <= bytes.Length then Array.sum [| for i in 0 .. n - 1 -> int bytes.[at + 27 + i] |] else 0)
          yield at, size
          let next = bytes.AsSpan(at + 1).IndexOf("OggS"B)
          at <- if next < 0 then -1 else at + 1 + next ]

/// A copy with every whole Ogg page's CRC recomputed, so that an edited field reaches the decoder instead of the
/// page being dropped as damaged.
let oggResign (bytes: byte[]) =
    let b = Array.copy bytes
    for at, size in oggPages b do
        if at + size <= b.Length then
            Array.fill b (at + 22) 4 0uy
            let mutable crc = 0u
            for i in at .. at + size - 1 do
                crc <- (crc <<< 8) ^^^ oggCrc.[int ((crc >>> 24) ^^^ uint32 b.[i])]
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at + 22), crc)
    b

/// A copy of a FLAC file with STREAMINFO's total sample count (36 bits) set to total.
let flacWithTotal (bytes: byte[]) (total: int64) =
    let b = Array.copy bytes
    b.[21] <- (b.[21] &&& 0xF0uy) ||| byte (total >>> 32)
    BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan 22, uint32 (total &&& 0xFFFFFFFFL))
    b

/// A copy with the big-endian 32-bit value at `at` replaced.
let withU32BigEndian (bytes: byte[]) (at: int) (value: uint32) =
    let b = Array.copy bytes
    BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan at, value)
    b

/// The frames each channel of `audio` holds, checking that they are equal.
let framesOf (audio: Audio) =
    let n = audio.Frames
    for c in audio.Samples do
        Expect.equal c.Length n "every channel holds the same frames"
    n
