module Hybrid.FeaturesTests.WavTests

open System
open System.Buffers.Binary
open System.Diagnostics
open System.IO
open System.Text
open Expecto
open Hybrid.TestSupport.Speed
open FsCheck
open FsCheck.FSharp
open Hybrid.Features
open Hybrid.TestSupport

/// Builds WAV files byte by byte, independently of Wav.write, so the reader is tested against the format
/// as documented rather than against its own writer.
module WavBytes =
    let u16 (v: int) = BitConverter.GetBytes(uint16 v)
    let u32 (v: uint32) = BitConverter.GetBytes v
    let u64 (v: uint64) = BitConverter.GetBytes v
    let id (s: string) = Encoding.ASCII.GetBytes s

    /// A chunk whose size field is the body's length, followed by a pad byte when that length is odd.
    let chunk (name: string) (body: byte[]) =
        Array.concat [ id name; u32 (uint32 body.Length); body; (if body.Length % 2 = 1 then [| 0uy |] else [||]) ]

    /// A chunk with an arbitrary declared size and no pad byte.
    let chunkDeclaring (name: string) (declared: uint32) (body: byte[]) = Array.concat [ id name; u32 declared; body ]

    let riffOf (magic: string) (form: string) (chunks: byte[] list) =
        let body = Array.concat chunks
        Array.concat [ id magic; u32 (uint32 (4 + body.Length)); id form; body ]

    let riff chunks = riffOf "RIFF" "WAVE" chunks

    let fmtBody (tag: int) (channels: int) (rate: uint32) (bits: int) (blockAlign: int) =
        Array.concat [ u16 tag; u16 channels; u32 rate; u32 (rate * uint32 blockAlign); u16 blockAlign; u16 bits ]

    let guidTail = [| 0uy; 0uy; 0uy; 0uy; 0x10uy; 0uy; 0x80uy; 0uy; 0uy; 0xAAuy; 0uy; 0x38uy; 0x9Buy; 0x71uy |]

    let extensibleBody (subCode: int) (channels: int) (rate: uint32) (bits: int) (validBits: int) (tail: byte[]) =
        Array.concat [ fmtBody 0xFFFE channels rate bits (channels * bits / 8); u16 22; u16 validBits; u32 0u; u16 subCode; tail ]

    let pcm16Fmt channels rate = chunk "fmt " (fmtBody 1 channels rate 16 (2 * channels))

    let pcm16Data (values: int list) = chunk "data" (values |> List.map (fun v -> u16 (v &&& 0xFFFF)) |> Array.concat)

    let rf64 (dataSize: uint64) (chunks: byte[] list) =
        let ds64 = chunk "ds64" (Array.concat [ u64 0UL; u64 dataSize; u64 0UL; u32 0u ])
        let body = Array.concat (ds64 :: chunks)
        Array.concat [ id "RF64"; u32 UInt32.MaxValue; id "WAVE"; body ]

let formats = [ PcmU8; Pcm16; Pcm24; Pcm32; Float32; Float64; MuLaw; ALaw ]

/// A sample value that the format represents exactly, drawn from the format's full range.
let representable (rng: Random) (format: SampleFormat) : float32 =
    match format with
    | PcmU8 -> float32 (rng.Next(0, 256) - 128) / 128.0f
    | Pcm16 -> float32 (rng.Next(-32768, 32768)) / 32768.0f
    | Pcm24 -> float32 (rng.Next(-8388608, 8388608)) / 8388608.0f
    | Pcm32 -> float32 (rng.NextInt64(-2147483648L, 2147483648L)) / 2147483648.0f
    | Float32
    | Float64 -> float32 (rng.NextDouble() * 4.0 - 2.0) * (if rng.Next 8 = 0 then 1e-30f else 1.0f)
    | MuLaw -> SampleCodec.muLawTable.[rng.Next 256]
    | ALaw -> SampleCodec.aLawTable.[rng.Next 256]

let randomAudio (rng: Random) format channels frames rate : Audio =
    { SampleRate = rate
      Samples = Array.init channels (fun _ -> Array.init frames (fun _ -> representable rng format)) }

let sameBits (what: string) (expected: float32[]) (actual: float32[]) =
    Expect.equal actual.Length expected.Length (sprintf "%s: frame count" what)
    for i in 0 .. expected.Length - 1 do
        if BitConverter.SingleToInt32Bits expected.[i] <> BitConverter.SingleToInt32Bits actual.[i] then
            failtestf "%s: at frame %d expected %.9g, was %.9g" what i expected.[i] actual.[i]

let encode (options: WavWriteOptions) (audio: Audio) =
    use ms = new MemoryStream()
    Wav.writeStreamWith options ms audio
    ms.ToArray()

/// Every channel of a WAV file held in a stream (the read AudioFile.read does for a WAV file, without mixing).
let readStream (name: string) (stream: Stream) = snd (Wav.readStreamWith false false 0.0 None name stream)

/// Frames [offset, offset + duration) of every channel of a WAV file held in a stream.
let readRangeStream (name: string) (stream: Stream) (offset: float) (duration: float option) = snd (Wav.readStreamWith false false offset duration name stream)

/// Frames [offset, offset + duration) of every channel (or their mean, when mono) of the WAV file at path.
let readRange (mono: bool) (path: string) (offset: float) (duration: float option) = snd (Wav.readFile false mono offset duration path)

let decodeBytes (name: string) (bytes: byte[]) =
    use ms = new MemoryStream(bytes, false)
    readStream name ms

let infoOfBytes (name: string) (bytes: byte[]) =
    use ms = new MemoryStream(bytes, false)
    Wav.readInfoStream name ms

let expectFormatError (name: string) (expectedText: string) (bytes: byte[]) =
    try
        let a = decodeBytes name bytes
        failtestf "%s: expected AudioFormatException mentioning %A, decoded %d channels" name expectedText a.Samples.Length
    with :? AudioFormatException as e ->
        Expect.equal e.Path name "the exception names the file"
        Expect.stringStarts e.Message name "the message starts with the file name"
        if not (e.Message.Contains(expectedText, StringComparison.Ordinal)) then
            failtestf "%s: expected a message mentioning %A, was %A" name expectedText e.Message

/// A random WAV-like file: plausible or absurd header fields, optional odd-sized chunks, RIFF or RF64,
/// then zero to three mutations (truncation, byte flips, absurd 32/64-bit values written anywhere).
let fuzzFile (rng: Random) : byte[] =
    let pick (xs: 'a[]) = xs.[rng.Next xs.Length]
    let absurd32 () = pick [| UInt32.MaxValue; 0x7FFFFFFFu; 0x80000000u; uint32 (rng.Next()); 0u; 1u |]
    // Half the files start from a valid header, the other half from arbitrary field values.
    let sane = rng.Next 2 = 0
    let tag, bits =
        if sane then pick [| 1, 8; 1, 16; 1, 24; 1, 32; 3, 32; 3, 64; 0xFFFE, 16; 0xFFFE, 32 |]
        else pick [| 1; 1; 3; 0xFFFE; 2; 6; 7; 0x55; rng.Next 65536 |], pick [| 8; 16; 24; 32; 64; 0; 12; rng.Next 65536 |]
    let channels = if sane then pick [| 1; 1; 2; 2; 3; 6 |] else pick [| 1; 2; 3; 0; 2000; rng.Next 65536 |]
    let rate = if sane then pick [| 8000u; 16000u; 44100u |] else pick [| 8000u; 0u; UInt32.MaxValue; uint32 (rng.Next()) |]
    let blockAlign = if not sane && rng.Next 3 = 0 then rng.Next 65536 else channels * bits / 8
    let fmtBody =
        if tag = 0xFFFE then
            let code = if sane then (if bits = 16 then 1 else pick [| 1; 3 |]) else pick [| 1; 3; 2; rng.Next 65536 |]
            let tail = if not sane && rng.Next 3 = 0 then Array.init 14 (fun _ -> byte (rng.Next 256)) else WavBytes.guidTail
            let body = WavBytes.extensibleBody code channels rate bits (if sane then bits else pick [| bits; 0; bits + 1 |]) tail
            Array.concat [ body.[0..11]; WavBytes.u16 blockAlign; body.[14..] ]
        else WavBytes.fmtBody tag channels rate bits blockAlign
    let fmtBody = if not sane && rng.Next 5 = 0 then fmtBody.[0 .. rng.Next fmtBody.Length - 1] else fmtBody
    let dataLength = rng.Next(0, 3000)
    let data = Array.init dataLength (fun _ -> byte (rng.Next 256))
    let dataChunk =
        if not sane && rng.Next 2 = 0 then WavBytes.chunkDeclaring "data" (absurd32 ()) data
        else WavBytes.chunk "data" data
    let extra () =
        let n = rng.Next(0, 40)
        let name = pick [| "LIST"; "fact"; "cue "; "JUNK"; "bext" |]
        if not sane && rng.Next 4 = 0 then WavBytes.chunkDeclaring name (absurd32 ()) (Array.zeroCreate n)
        else WavBytes.chunk name (Array.init n (fun _ -> byte (rng.Next 256)))
    let chunks =
        [ if rng.Next 3 = 0 then extra ()
          if sane || rng.Next 6 <> 0 then WavBytes.chunk "fmt " fmtBody
          if rng.Next 3 = 0 then extra ()
          if sane || rng.Next 6 <> 0 then dataChunk
          if rng.Next 4 = 0 then extra () ]
    let chunks = if rng.Next 10 = 0 then List.rev chunks else chunks
    let file =
        match rng.Next 10 with
        | 0 | 1 when sane -> WavBytes.rf64 (uint64 dataLength) chunks
        | 0 | 1 ->
            let size = pick [| uint64 dataLength; UInt64.MaxValue; uint64 Int64.MaxValue; uint64 (rng.NextInt64()); 0UL |]
            WavBytes.rf64 size chunks
        | 2 when not sane -> WavBytes.riffOf (pick [| "RIFX"; "RIFF"; "OggS"; "fLaC" |]) (pick [| "WAVE"; "AVI "; "WAV " |]) chunks
        | _ -> WavBytes.riff chunks
    let mutable file = file
    for _ in 1 .. (if sane then rng.Next 3 else rng.Next 4) do
        match rng.Next 3 with
        | 0 when file.Length > 0 -> file <- file.[0 .. rng.Next file.Length - 1]
        | 1 when file.Length > 0 ->
            for _ in 1 .. rng.Next(1, 5) do
                file.[rng.Next file.Length] <- byte (rng.Next 256)
        | _ when file.Length >= 8 ->
            let at = rng.Next(file.Length - 7)
            if rng.Next 2 = 0 then BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan at, absurd32 ())
            else BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan at, pick [| UInt64.MaxValue; uint64 Int64.MaxValue; uint64 (rng.NextInt64()) |])
        | _ -> ()
    file

/// Decodes a file: Ok with its header and audio (a warning-tagged clip when the header has a Warning), or Error with the AudioFormatException's message; any other
/// exception escapes. Also returns the elapsed time in milliseconds and the bytes allocated.
let timedDecode (name: string) (bytes: byte[]) =
    let before = GC.GetAllocatedBytesForCurrentThread()
    let sw = Stopwatch.StartNew()
    let outcome =
        try
            use ms = new MemoryStream(bytes, false)
            Ok(Wav.readStreamWith false false 0.0 None name ms)
        with :? AudioFormatException as e -> Error e.Message
    sw.Stop()
    outcome, sw.Elapsed.TotalMilliseconds, GC.GetAllocatedBytesForCurrentThread() - before

/// A read-only view of a byte array that counts the bytes handed out.
type CountingStream(bytes: byte[]) =
    inherit MemoryStream(bytes, false)
    member val BytesRead = 0L with get, set
    override this.Read(buffer: byte[], offset: int, count: int) =
        let n = base.Read(buffer, offset, count)
        this.BytesRead <- this.BytesRead + int64 n
        n
    // Read(Span) of a derived MemoryStream goes through Read(byte[], int, int), so it is counted there.


/// The fmt chunk of a plain (non-extensible) file in the given format.
let fmtChunkOf (format: SampleFormat) (channels: int) (rate: uint32) =
    let tag, bits =
        match format with
        | PcmU8 -> 1, 8
        | Pcm16 -> 1, 16
        | Pcm24 -> 1, 24
        | Pcm32 -> 1, 32
        | Float32 -> 3, 32
        | Float64 -> 3, 64
        | ALaw -> 6, 8
        | MuLaw -> 7, 8
    WavBytes.chunk "fmt " (WavBytes.fmtBody tag channels rate bits (channels * bits / 8))

let bytesPerSample format =
    match format with
    | PcmU8 | MuLaw | ALaw -> 1
    | Pcm16 -> 2
    | Pcm24 -> 3
    | Pcm32
    | Float32 -> 4
    | Float64 -> 8

/// The data-chunk payload of audio (interleaved samples) as Wav's writer encodes it; the round-trip tests above
/// check that encoding against the format, so these files test the reader's chunk handling, not its codec.
let payloadOf (format: SampleFormat) (audio: Audio) =
    let bytes = encode { Format = format; Extensible = false; Rf64 = false } audio
    let info = infoOfBytes "payload.wav" bytes
    bytes.[int info.DataOffset .. int (info.DataOffset + info.DataBytes) - 1]

/// A file whose RIFF and data sizes are placeholders a streaming writer leaves, with the audio it holds.
type PlaceholderFile =
    { Layout: string
      Format: SampleFormat
      Audio: Audio
      Bytes: byte[] }
    override this.ToString() =
        sprintf "%s %A %d ch x %d frames, %d bytes" this.Layout this.Format this.Audio.Samples.Length this.Audio.Frames this.Bytes.Length

/// Placeholder-size files of every format: RIFF size 0xFFFFFFFF, 0 or ending at the data chunk, data size
/// 0xFFFFFFFF or 0; RF64 with a ds64 data size of 0 or all ones; optional chunks before the data, and a
/// partial frame at the end.
let genPlaceholder : Gen<PlaceholderFile> =
    gen {
        let! format = Gen.elements formats
        let! channels = Gen.choose (1, 3)
        let! frames = Gen.choose (0, 60)
        let! seed = Gen.choose (0, Int32.MaxValue)
        let! partial = Gen.choose (0, channels * bytesPerSample format - 1)
        let! leading = Gen.elements [ false; true ]
        let! layout = Gen.elements [ "RIFF ffffffff"; "RIFF 0"; "RIFF ending at data"; "RF64 ds64 0"; "RF64 ds64 ffffffffffffffff" ]
        let! dataSize = Gen.elements [ UInt32.MaxValue; 0u ]
        let audio = randomAudio (Random seed) format channels frames 8000
        let data = Array.append (payloadOf format audio) (Array.create partial 0x5Auy)
        let before =
            [ fmtChunkOf format channels 8000u
              if leading then WavBytes.chunk "LIST" (Array.concat [ WavBytes.id "INFOISFT"; WavBytes.u32 5u; Array.create 5 65uy ]) ]
        let bytes =
            if layout.StartsWith "RF64" then
                let ds64 = if layout.EndsWith " 0" then 0UL else UInt64.MaxValue
                WavBytes.rf64 ds64 (before @ [ WavBytes.chunkDeclaring "data" UInt32.MaxValue data ])
            else
                let head = Array.concat before
                let riffSize =
                    match layout with
                    | "RIFF ffffffff" -> UInt32.MaxValue
                    | "RIFF 0" -> 0u
                    | _ -> uint32 (4 + head.Length + 8)
                Array.concat [ WavBytes.id "RIFF"; WavBytes.u32 riffSize; WavBytes.id "WAVE"; head; WavBytes.id "data"; WavBytes.u32 dataSize; data ]
        let layout = if layout.StartsWith "RF64" then layout else sprintf "%s, data %x" layout dataSize
        return { Layout = layout; Format = format; Audio = audio; Bytes = bytes }
    }

/// A recording cut off mid-write: a whole file (chunks before and after the data) cut at Cut, a byte inside the
/// data chunk.
type CutFile =
    { Format: SampleFormat
      Audio: Audio
      Whole: byte[]
      DataStart: int
      Cut: int }
    member this.Bytes = this.Whole.[.. this.Cut - 1]
    member this.BlockAlign = this.Audio.Samples.Length * bytesPerSample this.Format
    override this.ToString() =
        sprintf "%A %d ch x %d frames cut at byte %d (data from %d)" this.Format this.Audio.Samples.Length this.Audio.Frames this.Cut this.DataStart

/// Builds a clean file with an optional LIST chunk before fmt and a LIST chunk after the data; returns the bytes
/// and where the samples start.
let fileWithTrailer (format: SampleFormat) (audio: Audio) (leading: bool) =
    let before =
        Array.concat [ (if leading then WavBytes.chunk "LIST" (Array.create 6 1uy) else [||]); fmtChunkOf format audio.Samples.Length 8000u ]
    let file = WavBytes.riff [ before; WavBytes.chunk "data" (payloadOf format audio); WavBytes.chunk "LIST" (Array.create 9 2uy) ]
    file, 12 + before.Length + 8

/// Truncated files of every format: the cut falls anywhere inside the data chunk (a partial last frame or none).
let genTruncated : Gen<CutFile> =
    gen {
        let! format = Gen.elements formats
        let! channels = Gen.choose (1, 3)
        let! frames = Gen.choose (1, 40)
        let! seed = Gen.choose (0, Int32.MaxValue)
        let! leading = Gen.elements [ false; true ]
        let audio = randomAudio (Random seed) format channels frames 8000
        let whole, start = fileWithTrailer format audio leading
        let! cut = Gen.choose (start, start + frames * channels * bytesPerSample format - 1)
        return { Format = format; Audio = audio; Whole = whole; DataStart = start; Cut = cut }
    }

/// A float file holding NaN, infinities or (64-bit) values beyond single precision at some positions.
type NonFiniteFile =
    { Format: SampleFormat
      Channels: int
      Frames: int
      /// (frame, channel, value) of each bad sample.
      Bad: (int * int * float) list
      Bytes: byte[] }
    /// The first bad sample in file order, as (frame, channel).
    member this.First = this.Bad |> List.map (fun (f, c, _) -> f, c) |> List.min
    override this.ToString() = sprintf "%A %d ch x %d frames, bad %A" this.Format this.Channels this.Frames this.Bad

/// NaN, +inf and -inf in float32 and float64 data, and 64-bit values that overflow single precision.
let genNonFinite : Gen<NonFiniteFile> =
    gen {
        let! format = Gen.elements [ Float32; Float64 ]
        let! channels = Gen.choose (1, 3)
        let! frames = Gen.choose (1, 40)
        let values = [ nan; infinity; -infinity ] @ (if format = Float64 then [ 1e300; -3.5e38 * 10.0 ] else [])
        let! bad =
            Gen.listOfLength 3 (Gen.zip3 (Gen.choose (0, frames - 1)) (Gen.choose (0, channels - 1)) (Gen.elements values))
            |> Gen.map (List.truncate 3)
        let! count = Gen.choose (1, 3)
        let bad = List.truncate count bad |> List.distinctBy (fun (f, c, _) -> f, c)
        let! seed = Gen.choose (0, Int32.MaxValue)
        let rng = Random seed
        let samples = Array2D.init frames channels (fun _ _ -> rng.NextDouble() - 0.5)
        for f, c, v in bad do
            samples.[f, c] <- v
        let data =
            [| for f in 0 .. frames - 1 do
                   for c in 0 .. channels - 1 do
                       yield! (if format = Float32 then BitConverter.GetBytes(float32 samples.[f, c]) else BitConverter.GetBytes samples.[f, c]) |]
        let bytes = WavBytes.riff [ fmtChunkOf format channels 8000u; WavBytes.chunk "data" data ]
        return { Format = format; Channels = channels; Frames = frames; Bad = bad; Bytes = bytes }
    }

/// Checks a property over generated values with FsCheck (failures name the shrunk value).
let checkProperty (count: int) (gen: Gen<'a>) (property: 'a -> bool) =
    Check.One(Config.QuickThrowOnFailure.WithMaxTest(count).WithQuietOnSuccess(true), Prop.forAll (Arb.fromGen gen) property)

let readWithInfoBytes (strict: bool) (name: string) (bytes: byte[]) =
    use ms = new MemoryStream(bytes, false)
    Wav.readStreamWith strict false 0.0 None name ms

let formatErrorOf (f: unit -> 'a) =
    try
        f () |> ignore
        None
    with :? AudioFormatException as e -> Some e

let fsddRecordings dir =
    let folder = Path.Combine(dir, "recordings")
    Directory.GetFiles(folder, "*.wav") |> Array.sort

/// Decodes a canonical 16-bit PCM WAV without the library: finds the data chunk by walking chunks.
let naivePcm16 (path: string) =
    let bytes = File.ReadAllBytes path
    let rec find pos =
        let name = Encoding.ASCII.GetString(bytes, pos, 4)
        let size = BitConverter.ToInt32(bytes, pos + 4)
        if name = "data" then pos + 8, size else find (pos + 8 + size + (size &&& 1))
    let start, size = find 12
    Array.init (size / 2) (fun i -> float32 (BitConverter.ToInt16(bytes, start + 2 * i)) / 32768.0f)

[<Tests>]
let tests =
    testList
        "Wav"
        [ testList
              "round trip"
              [ for format in formats do
                    for channels in [ 1; 2; 3; 6 ] do
                        for layout in [ "RIFF"; "extensible"; "RF64" ] do
                            test (sprintf "%A with %d channels as %s reads back exactly what was written" format channels layout) {
                                let rng = Random(channels * 31 + formats.Length)
                                let audio = randomAudio rng format channels 257 22050
                                let options = { Format = format; Extensible = (layout = "extensible"); Rf64 = (layout = "RF64") }
                                let bytes = encode options audio
                                let info = infoOfBytes "memory.wav" bytes
                                Expect.equal info.Format format "format"
                                Expect.equal info.Channels channels "channels"
                                Expect.equal info.Frames 257L "frames"
                                Expect.equal info.SampleRate 22050 "sample rate"
                                Expect.equal info.IsRf64 (layout = "RF64") "RF64 flag"
                                let back = decodeBytes "memory.wav" bytes
                                Expect.equal back.SampleRate 22050 "sample rate"
                                Expect.equal back.Samples.Length channels "channel count"
                                for c in 0 .. channels - 1 do
                                    sameBits (sprintf "channel %d" c) audio.Samples.[c] back.Samples.[c]
                            }
                testPropertyWithConfig Properties.defaults "any format, channel count and length round-trips bit for bit" (fun (seed: int) (formatIndex: byte) (channels: byte) (frames: uint16) (ext: bool) (rf: bool) ->
                    let rng = Random seed
                    let format = formats.[int formatIndex % formats.Length]
                    let channels = 1 + int channels % 5
                    let audio = randomAudio rng format channels (int frames % 700) (1 + abs seed % 200000)
                    let back = decodeBytes "p.wav" (encode { Format = format; Extensible = ext; Rf64 = rf } audio)
                    back.SampleRate = audio.SampleRate
                    && Array.forall2 (fun (a: float32[]) (b: float32[]) ->
                        a.Length = b.Length
                        && Array.forall2 (fun (x: float32) y -> BitConverter.SingleToInt32Bits x = BitConverter.SingleToInt32Bits y) a b) audio.Samples back.Samples)
                test "writing to a file and reading it back gives the same audio, mono mix and ranges" {
                    let path = Path.Combine(Path.GetTempPath(), sprintf "hybrid-wav-%s.wav" (Guid.NewGuid().ToString "N"))
                    try
                        let rng = Random 7
                        let audio = randomAudio rng Pcm16 2 16000 8000
                        Wav.write path Pcm16 audio
                        let info = Wav.readInfo path
                        Expect.equal info.DataOffset 44L "canonical 44-byte header"
                        Expect.equal info.DataBytes 64000L "data bytes"
                        Expect.equal info.Duration 2.0 "duration of the header"
                        let back = readRange false path 0.0 None
                        Expect.equal (back.Frames, back.Duration) (16000, 2.0) "frames and duration of the audio"
                        for c in 0..1 do
                            sameBits "channel" audio.Samples.[c] back.Samples.[c]
                        let mono = AudioFile.read AudioFile.defaults path
                        Expect.equal mono.Samples.Length 1 "one channel"
                        let mean = Array.map2 (fun (a: float32) b -> (a + b) * 0.5f) audio.Samples.[0] audio.Samples.[1]
                        Assertions.allClose 0.0 1e-7 mean mono.Samples.[0] "mean of channels"
                        let range = readRange false path 0.25 (Some 0.5)
                        sameBits "range" audio.Samples.[1].[2000..5999] range.Samples.[1]
                        let tail = readRange false path 1.5 None
                        sameBits "range to the end" audio.Samples.[0].[12000..] tail.Samples.[0]
                        let past = readRange false path 3.0 (Some 1.0)
                        Expect.equal past.Samples.[0].Length 0 "a range past the end is empty"
                        let far = readRange false path 1e300 (Some 1e300)
                        Expect.equal far.Samples.[0].Length 0 "a range far past the end is empty"
                        let clipped = readRange true path 1.9 (Some 5.0)
                        Assertions.allClose 0.0 1e-7 mean.[15200..] clipped.Samples.[0] "a range is clipped to the file"
                    finally
                        File.Delete path
                }
                test "reading a range of a long file reads the header and the range, not the whole file" {
                    let audio = randomAudio (Random 3) Pcm16 2 2_000_000 16000
                    let bytes = encode { Format = Pcm16; Extensible = false; Rf64 = false } audio
                    use stream = new CountingStream(bytes)
                    let range = readRangeStream "long.wav" stream 100.0 (Some 0.5)
                    sameBits "range" audio.Samples.[0].[1_600_000 .. 1_607_999] range.Samples.[0]
                    let rangeBytes = 8000L * 4L
                    if stream.BytesRead > 65536L + rangeBytes then
                        failtestf "expected at most %d bytes read (64 KiB of header buffer and the range), was %d of %d" (65536L + rangeBytes) stream.BytesRead bytes.Length
                }
                test "odd-sized data is followed by a pad byte and still reads back" {
                    let audio = { SampleRate = 8000; Samples = [| [| 0.5f; -0.25f; 0.0f |] |] }
                    let bytes = encode { Format = PcmU8; Extensible = false; Rf64 = false } audio
                    Expect.equal (bytes.Length % 2) 0 "padded to an even length"
                    sameBits "u8" audio.Samples.[0] (decodeBytes "odd.wav" bytes).Samples.[0]
                }
                test "values outside [-1, 1) are clipped when written as PCM" {
                    let audio = { SampleRate = 8000; Samples = [| [| 1.5f; -3.0f; 1.0f; nanf |] |] }
                    let back = decodeBytes "clip.wav" (encode { Format = Pcm16; Extensible = false; Rf64 = false } audio)
                    Expect.equal back.Samples.[0] [| 32767.0f / 32768.0f; -1.0f; 32767.0f / 32768.0f; 0.0f |] "clipped"
                } ]
          testList
              "decoding"
              [ test "16-bit samples are scaled by 1/32768 like soundfile" {
                    let bytes = WavBytes.riff [ WavBytes.pcm16Fmt 1 8000u; WavBytes.pcm16Data [ -32768; -1; 0; 1; 32767 ] ]
                    let a = decodeBytes "s16.wav" bytes
                    Expect.equal a.Samples.[0] [| -1.0f; -1.0f / 32768.0f; 0.0f; 1.0f / 32768.0f; 32767.0f / 32768.0f |] "scaled"
                }
                test "unsigned 8-bit samples are centred on 128 and scaled by 1/128" {
                    let bytes = WavBytes.riff [ WavBytes.chunk "fmt " (WavBytes.fmtBody 1 1 8000u 8 1); WavBytes.chunk "data" [| 0uy; 128uy; 255uy |] ]
                    Expect.equal (decodeBytes "u8.wav" bytes).Samples.[0] [| -1.0f; 0.0f; 127.0f / 128.0f |] "scaled"
                }
                test "24-bit samples are sign-extended and scaled by 1/2^23" {
                    let data = [| 0x00uy; 0x00uy; 0x80uy; 0xFFuy; 0xFFuy; 0xFFuy; 0xFFuy; 0xFFuy; 0x7Fuy |]
                    let bytes = WavBytes.riff [ WavBytes.chunk "fmt " (WavBytes.fmtBody 1 1 8000u 24 3); WavBytes.chunk "data" data ]
                    Expect.equal (decodeBytes "s24.wav" bytes).Samples.[0] [| -1.0f; -1.0f / 8388608.0f; float32 (8388607.0 / 8388608.0) |] "scaled"
                }
                test "32-bit samples are scaled by 1/2^31 and 64-bit floats rounded to single precision" {
                    let pcm = Array.concat [ WavBytes.u32 0x80000000u; WavBytes.u32 0x40000000u ]
                    let bytes = WavBytes.riff [ WavBytes.chunk "fmt " (WavBytes.fmtBody 1 1 8000u 32 4); WavBytes.chunk "data" pcm ]
                    Expect.equal (decodeBytes "s32.wav" bytes).Samples.[0] [| -1.0f; 0.5f |] "pcm32"
                    let f64 = Array.concat [ BitConverter.GetBytes 0.1; BitConverter.GetBytes -2.5 ]
                    let bytes = WavBytes.riff [ WavBytes.chunk "fmt " (WavBytes.fmtBody 3 1 8000u 64 8); WavBytes.chunk "data" f64 ]
                    Expect.equal (decodeBytes "f64.wav" bytes).Samples.[0] [| 0.1f; -2.5f |] "float64"
                }
                test "WAVE_FORMAT_EXTENSIBLE with a PCM sub-format and fewer valid bits reads the container" {
                    let bytes = WavBytes.riff [ WavBytes.chunk "fmt " (WavBytes.extensibleBody 1 2 48000u 24 20 WavBytes.guidTail); WavBytes.chunk "data" (Array.zeroCreate 12) ]
                    let info = infoOfBytes "ext.wav" bytes
                    Expect.equal (info.Format, info.Channels, info.Frames) (Pcm24, 2, 2L) "format, channels, frames"
                }
                test "unknown chunks of odd size are skipped with their pad byte, before and after fmt" {
                    let bytes =
                        WavBytes.riff
                            [ WavBytes.chunk "LIST" (Array.create 13 7uy)
                              WavBytes.pcm16Fmt 2 16000u
                              WavBytes.chunk "fact" (WavBytes.u32 2u)
                              WavBytes.chunk "cue " (Array.create 1 9uy)
                              WavBytes.pcm16Data [ 100; -100; 200; -200 ]
                              WavBytes.chunk "LIST" (Array.create 3 1uy) ]
                    let a = decodeBytes "chunks.wav" bytes
                    Expect.equal a.SampleRate 16000 "rate"
                    Expect.equal a.Samples.[0] [| 100.0f / 32768.0f; 200.0f / 32768.0f |] "left"
                    Expect.equal a.Samples.[1] [| -100.0f / 32768.0f; -200.0f / 32768.0f |] "right"
                }
                test "a data chunk placed before the fmt chunk is still found" {
                    let bytes = WavBytes.riff [ WavBytes.pcm16Data [ 5; 6; 7 ]; WavBytes.pcm16Fmt 1 8000u ]
                    Expect.equal (decodeBytes "order.wav" bytes).Samples.[0].Length 3 "frames"
                }
                test "an RF64 data chunk takes its size from ds64" {
                    let data = WavBytes.chunkDeclaring "data" UInt32.MaxValue (Array.concat [ WavBytes.u16 16384; WavBytes.u16 0xC000 ])
                    let bytes = WavBytes.rf64 4UL [ WavBytes.pcm16Fmt 1 8000u; data ]
                    let info = infoOfBytes "rf64.wav" bytes
                    Expect.isTrue info.IsRf64 "RF64"
                    Expect.equal info.DataBytes 4L "size from ds64"
                    Expect.equal (decodeBytes "rf64.wav" bytes).Samples.[0] [| 0.5f; -0.5f |] "samples"
                }
                test "a trailing partial frame is ignored" {
                    let bytes = WavBytes.riff [ WavBytes.pcm16Fmt 2 8000u; WavBytes.chunk "data" (Array.zeroCreate 10) ]
                    Expect.equal (infoOfBytes "partial.wav" bytes).Frames 2L "two whole stereo frames in 10 bytes"
                }
                test "a non-seekable stream is read like a seekable one" {
                    let bytes = WavBytes.riff [ WavBytes.pcm16Fmt 1 8000u; WavBytes.pcm16Data [ 1; 2; 3 ] ]
                    use gz = new MemoryStream()
                    let compress () =
                        use z = new Compression.GZipStream(gz, Compression.CompressionLevel.Fastest, true)
                        z.Write(bytes, 0, bytes.Length)
                    compress ()
                    gz.Position <- 0L
                    use unzip = new Compression.GZipStream(gz, Compression.CompressionMode.Decompress)
                    Expect.isFalse unzip.CanSeek "the stream cannot seek"
                    Expect.equal (readStream "gz.wav" unzip).Samples.[0] (decodeBytes "plain.wav" bytes).Samples.[0] "same samples"
                } ]
          testList
              "malformed files"
              [ let fmt = WavBytes.pcm16Fmt 1 8000u
                let data = WavBytes.pcm16Data [ 1; 2; 3; 4 ]
                let fmtWith tag channels rate bits align = WavBytes.chunk "fmt " (WavBytes.fmtBody tag channels rate bits align)
                let cases =
                    [ "an empty file", [||], "too short for a RIFF/WAVE header"
                      "an Ogg file", WavBytes.riffOf "OggS" "WAVE" [ fmt; data ], "not a WAV file: starts with 'OggS'"
                      "an AVI file", WavBytes.riffOf "RIFF" "AVI " [ fmt; data ], "form type is 'AVI ', expected 'WAVE'"
                      "a file with no fmt chunk", WavBytes.riff [ data ], "no fmt chunk"
                      "a file with no data chunk", WavBytes.riff [ fmt ], "no data chunk"
                      "an ADPCM file", WavBytes.riff [ fmtWith 2 1 8000u 4 256; data ], "unsupported format tag 0x0002 (Microsoft ADPCM)"
                      "an MP3-in-WAV file", WavBytes.riff [ fmtWith 0x55 2 44100u 0 1; data ], "unsupported format tag 0x0055 (MPEG Layer 3)"
                      "a GSM 6.10 file", WavBytes.riff [ fmtWith 0x31 1 8000u 0 65; data ], "unsupported format tag 0x0031 (GSM 6.10)"
                      "an extensible file with an unknown sub-format",
                      WavBytes.riff [ WavBytes.chunk "fmt " (WavBytes.extensibleBody 1 1 8000u 16 16 (Array.create 14 1uy)); data ],
                      "is not PCM or IEEE float"
                      "an extensible fmt chunk that is too short", WavBytes.riff [ WavBytes.chunk "fmt " (WavBytes.fmtBody 0xFFFE 1 8000u 16 2); data ], "expected at least 40"
                      "a short fmt chunk", WavBytes.riff [ WavBytes.chunk "fmt " (Array.zeroCreate 14); data ], "fmt chunk is 14 bytes, expected at least 16"
                      "zero channels", WavBytes.riff [ fmtWith 1 0 8000u 16 0; data ], "zero channels"
                      "too many channels", WavBytes.riff [ fmtWith 1 5000 8000u 8 5000; data ], "declares 5000 channels, more than the 1024 supported"
                      "a zero sample rate", WavBytes.riff [ fmtWith 1 1 0u 16 2; data ], "sample rate of 0 Hz, outside the 1 Hz .. 768 kHz"
                      "a sample rate of 2^31-1 Hz", WavBytes.riff [ fmtWith 1 1 0x7FFFFFFFu 16 2; data ], "sample rate of 2147483647 Hz, outside the 1 Hz .. 768 kHz"
                      "a sample rate beyond int32", WavBytes.riff [ fmtWith 1 1 3000000000u 16 2; data ], "sample rate of 3000000000 Hz, outside"
                      "a sample rate just above 768 kHz", WavBytes.riff [ fmtWith 1 1 768001u 16 2; data ], "sample rate of 768001 Hz"
                      "33-bit PCM", WavBytes.riff [ fmtWith 1 1 8000u 33 5; data ], "PCM with 33 bits per sample is not supported (expected 1 to 32)"
                      "16-bit float", WavBytes.riff [ fmtWith 3 1 8000u 16 2; data ], "IEEE float with 16 bits per sample"
                      "an absurd unknown chunk size", WavBytes.riff [ WavBytes.chunkDeclaring "LIST" 0x7FFFFFF0u [| 0uy; 0uy |]; fmt; data ], "chunk 'LIST' at byte 12 declares 2147483632 bytes"
                      "an RF64 file without ds64", WavBytes.riffOf "RF64" "WAVE" [ fmt; data ], "does not start with a ds64 chunk" ]

                for what, bytes, expected in cases do
                    test (sprintf "%s raises AudioFormatException saying so" what) {
                        expectFormatError (sprintf "%s.wav" (what.Replace(' ', '-'))) expected bytes
                    }
                test "a missing file raises FileNotFoundException, not a format error" {
                    Expect.throwsT<FileNotFoundException> (fun () -> readRange false (Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString "N" + ".wav")) 0.0 None |> ignore) "missing file"
                }
                test "negative offsets and durations are argument errors" {
                    let path = Path.Combine(Path.GetTempPath(), sprintf "hybrid-wav-%s.wav" (Guid.NewGuid().ToString "N"))
                    try
                        Wav.write path Pcm16 { SampleRate = 8000; Samples = [| Array.zeroCreate 10 |] }
                        Expect.throwsT<ArgumentOutOfRangeException> (fun () -> readRange false path -1.0 None |> ignore) "offset"
                        Expect.throwsT<ArgumentOutOfRangeException> (fun () -> readRange false path 0.0 (Some -1.0) |> ignore) "duration"
                    finally
                        File.Delete path
                }
                testSequenced << slow <| test "10,000 generated and mutated files each give a clip, a warning-tagged clip or AudioFormatException within 50 ms" {
                    // Warm the code paths so JIT compilation is not timed.
                    for format in formats do
                        encode { Format = format; Extensible = false; Rf64 = false } (randomAudio (Random 1) format 2 64 8000)
                        |> decodeBytes "warm.wav"
                        |> ignore
                    for seed in 0..200 do
                        timedDecode "warm.wav" (fuzzFile (Random seed)) |> ignore
                    let mutable worst = 0.0
                    let mutable decoded = 0
                    let mutable warned = 0
                    let mutable rejected = 0
                    let prop =
                        Prop.forAll (Arb.fromGen (Gen.choose (0, Int32.MaxValue))) (fun seed ->
                            let bytes = fuzzFile (Random seed)
                            let name = sprintf "fuzz-%d.wav" seed
                            let outcome, ms, allocated =
                                try timedDecode name bytes
                                with e -> failtestf "seed %d: %s escaped: %s" seed (e.GetType().Name) e.Message
                            // A slow outlier (GC pause, busy machine) is timed again; the best of three counts.
                            let ms = if ms > 10.0 then [ 1..2 ] |> List.map (fun _ -> let _, t, _ = timedDecode name bytes in t) |> List.fold min ms else ms
                            worst <- max worst ms
                            if allocated > 8L * int64 bytes.Length + 300_000L then
                                failtestf "seed %d: allocated %d bytes for a %d-byte file" seed allocated bytes.Length
                            match outcome with
                            | Ok (info, audio) ->
                                decoded <- decoded + 1
                                if info.Warning.IsSome then warned <- warned + 1
                                let n = audio.Samples.[0].Length
                                audio.Samples.Length >= 1
                                && audio.SampleRate > 0
                                && audio.Samples |> Array.forall (fun s -> s.Length = n)
                                && int64 n * int64 audio.Samples.Length <= int64 bytes.Length
                                && int64 n = info.Frames
                                && audio.Samples |> Array.forall (fun s -> s |> Array.forall Single.IsFinite)
                            | Error message ->
                                rejected <- rejected + 1
                                message.StartsWith(name + ": ", StringComparison.Ordinal))
                    Check.One(Config.QuickThrowOnFailure.WithMaxTest(10000).WithQuietOnSuccess(true), prop)
                    printfn "Wav fuzz: %d decoded (%d of them with a warning), %d rejected, slowest %.2f ms" decoded warned rejected worst
                    Expect.equal (decoded + rejected) 10000 "every file was tried"
                    Expect.isGreaterThan warned 100 "the generator also produces truncated files"
                    Expect.isGreaterThan decoded 500 "the generator also produces valid files"
                    Expect.isGreaterThan rejected 500 "the generator produces malformed files"
                    Expect.isLessThan worst 50.0 "the slowest file took under 50 ms"
                } ]
          testList
              "byte orders and sample widths libsndfile reads"
              [ let be16 (v: int) = [| byte (v >>> 8); byte v |]
                let be32 (v: uint32) = [| byte (v >>> 24); byte (v >>> 16); byte (v >>> 8); byte v |]
                let values = [ 0; 1; -1; 32767; -32768; 1234; -4321 ]
                let littleEndian = decodeBytes "le.wav" (WavBytes.riff [ WavBytes.pcm16Fmt 1 8000u; WavBytes.pcm16Data values ])
                test "a big-endian RIFX file reads like its little-endian twin" {
                    let body = Array.concat [ values |> List.map (fun v -> be16 (v &&& 0xFFFF)) |> Array.concat ]
                    let fmt = Array.concat [ WavBytes.id "fmt "; be32 16u; be16 1; be16 1; be32 8000u; be32 16000u; be16 2; be16 16 ]
                    let data = Array.concat [ WavBytes.id "data"; be32 (uint32 body.Length); body ]
                    let bytes = Array.concat [ WavBytes.id "RIFX"; be32 (uint32 (4 + fmt.Length + data.Length)); WavBytes.id "WAVE"; fmt; data ]
                    let header, audio = Wav.readStreamWith false false 0.0 None "rifx.wav" (new MemoryStream(bytes))
                    Expect.isTrue header.BigEndian "big-endian"
                    sameBits "samples" littleEndian.Samples.[0] audio.Samples.[0]
                }
                for bits, width in [ 12, 2; 16, 2; 20, 3; 5, 1 ] do
                    test (sprintf "%d-bit PCM is read from %d-byte words, as libsndfile reads it" bits width) {
                        let data = Array.init (width * 4) (fun i -> byte (i * 37 + 11))
                        let bytes = WavBytes.riff [ WavBytes.chunk "fmt " (WavBytes.fmtBody 1 1 8000u bits width); WavBytes.chunk "data" data ]
                        let asWords = WavBytes.riff [ WavBytes.chunk "fmt " (WavBytes.fmtBody 1 1 8000u (8 * width) width); WavBytes.chunk "data" data ]
                        sameBits (sprintf "%d bits" bits) (decodeBytes "words.wav" asWords).Samples.[0] (decodeBytes "bits.wav" bytes).Samples.[0]
                    }
                test "a block align that contradicts the channels and bits is not relied on (the frame is channels x bytes per sample)" {
                    let data = Array.init 45 (fun i -> byte (i * 7))
                    let bytes = WavBytes.riff [ WavBytes.chunk "fmt " (WavBytes.fmtBody 1 3 8000u 24 4); WavBytes.chunk "data" data ]
                    let audio = decodeBytes "align.wav" bytes
                    Expect.equal (audio.Samples.Length, audio.Frames) (3, 5) "5 frames of 3 channels x 3 bytes"
                }
                for tag, table, name in [ 7, SampleCodec.muLawTable, "mu-law"; 6, SampleCodec.aLawTable, "A-law" ] do
                    test (sprintf "%s WAV data decodes every code as G.711 does, and round-trips through the writer" name) {
                        let bytes = WavBytes.riff [ WavBytes.chunk "fmt " (WavBytes.fmtBody tag 1 8000u 8 1); WavBytes.chunk "data" (Array.init 256 byte) ]
                        let audio = decodeBytes "g711.wav" bytes
                        sameBits name table audio.Samples.[0]
                        let format = if tag = 7 then MuLaw else ALaw
                        sameBits "written and read back" audio.Samples.[0] (decodeBytes "back.wav" (encode { Format = format; Extensible = false; Rf64 = false } audio)).Samples.[0]
                    } ]
          testList
              "streaming placeholders"
              [ test "the layout ffmpeg writes to a pipe (RIFF and data sizes 0xFFFFFFFF, LIST before data) reads to the end" {
                    let audio = randomAudio (Random 11) Pcm16 1 800 8000
                    let info = Array.concat [ WavBytes.id "INFO"; WavBytes.id "ISFT"; WavBytes.u32 14u; WavBytes.id "Lavf59.27.100"; [| 0uy |] ]
                    let body = Array.concat [ WavBytes.id "WAVE"; fmtChunkOf Pcm16 1 8000u; WavBytes.chunk "LIST" info; WavBytes.chunkDeclaring "data" UInt32.MaxValue (payloadOf Pcm16 audio) ]
                    let bytes = Array.concat [ WavBytes.id "RIFF"; WavBytes.u32 UInt32.MaxValue; body ]
                    let header, back = readWithInfoBytes true "pipe.wav" bytes
                    Expect.equal (header.Frames, header.DataBytes, header.Warning) (800L, 1600L, None) "every frame to the end, no warning"
                    sameBits "samples" audio.Samples.[0] back.Samples.[0]
                }
                test "a genuine empty data chunk followed by a chunk the RIFF size covers reads as zero frames" {
                    let bytes = WavBytes.riff [ WavBytes.pcm16Fmt 1 8000u; WavBytes.chunk "data" [||]; WavBytes.chunk "LIST" (Array.create 8 3uy) ]
                    let header, back = readWithInfoBytes false "empty.wav" bytes
                    Expect.equal (header.Frames, back.Frames, header.Warning) (0L, 0, None) "empty"
                }
                testCase "placeholder sizes of every kind read every whole frame to the end of the file, allocating no more than the file holds" (fun () ->
                    checkProperty 300 genPlaceholder (fun file ->
                        let before = GC.GetAllocatedBytesForCurrentThread()
                        let header, back = readWithInfoBytes false "placeholder.wav" file.Bytes
                        let allocated = GC.GetAllocatedBytesForCurrentThread() - before
                        let _, strict = readWithInfoBytes true "placeholder.wav" file.Bytes
                        header.Warning.IsNone
                        && header.Frames = int64 file.Audio.Frames
                        && allocated <= 8L * int64 file.Bytes.Length + 300_000L
                        && Array.forall2 (fun (a: float32[]) (b: float32[]) ->
                            a.Length = b.Length && Array.forall2 (fun (x: float32) y -> BitConverter.SingleToInt32Bits x = BitConverter.SingleToInt32Bits y) a b) file.Audio.Samples back.Samples
                        && strict.Frames = file.Audio.Frames)) ]
          testList
              "truncated recordings"
              [ test "a data chunk declaring 32,000 bytes with 12,007 present gives 6,003 frames and a warning" {
                    let audio = randomAudio (Random 5) Pcm16 1 16000 8000
                    let whole = WavBytes.riff [ WavBytes.pcm16Fmt 1 8000u; WavBytes.chunk "data" (payloadOf Pcm16 audio) ]
                    let bytes = whole.[.. 44 + 12007 - 1]
                    let header, back = readWithInfoBytes false "cut.wav" bytes
                    Expect.equal header.Frames 6003L "whole frames"
                    sameBits "the frames present" audio.Samples.[0].[.. 6002] back.Samples.[0]
                    match header.Warning with
                    | Some w ->
                        Expect.stringContains w "declares 32000 bytes but only 12007 are present" "sizes"
                        Expect.stringContains w "a partial frame of 1 byte was dropped" "partial frame"
                    | None -> failtest "expected a warning"
                    match formatErrorOf (fun () -> readWithInfoBytes true "cut.wav" bytes) with
                    | Some e -> Expect.stringContains e.Message "cut.wav: data chunk declares 32000 bytes but only 12007 remain (truncated file" "strict refuses"
                    | None -> failtest "strict reading accepted a truncated file"
                }
                for format in formats do
                    for channels in [ 1; 2 ] do
                        test (sprintf "%A with %d channels cut at every byte gives an error before the data, whole frames and a warning inside it, the file after it" format channels) {
                            let audio = randomAudio (Random 9) format channels 5 8000
                            let whole, start = fileWithTrailer format audio true
                            let blockAlign = channels * bytesPerSample format
                            let stop = start + 5 * blockAlign
                            for cut in 0 .. whole.Length do
                                let bytes = whole.[.. cut - 1]
                                let name = sprintf "cut-%d.wav" cut
                                if cut < start then
                                    match formatErrorOf (fun () -> readWithInfoBytes false name bytes) with
                                    | Some e -> Expect.equal e.Path name "names the file"
                                    | None -> failtestf "cut at %d (before the samples at %d) was accepted" cut start
                                else
                                    let header, back = readWithInfoBytes false name bytes
                                    let frames = (min cut stop - start) / blockAlign
                                    Expect.equal back.Frames frames (sprintf "cut at %d: whole frames" cut)
                                    for c in 0 .. channels - 1 do
                                        sameBits (sprintf "cut at %d channel %d" cut c) audio.Samples.[c].[.. frames - 1] back.Samples.[c]
                                    Expect.equal header.Warning.IsSome (cut < stop) (sprintf "cut at %d: a warning exactly when the data is cut" cut)
                                    Expect.equal (formatErrorOf (fun () -> readWithInfoBytes true name bytes)).IsSome (cut < stop) (sprintf "cut at %d: strict refuses exactly the cut files" cut)
                        }
                testCase "a cut anywhere in the data of any file gives the whole frames present and a warning; strict refuses it" (fun () ->
                    checkProperty 300 genTruncated (fun file ->
                        let header, back = readWithInfoBytes false "cut.wav" file.Bytes
                        let frames = (file.Cut - file.DataStart) / file.BlockAlign
                        let strict = formatErrorOf (fun () -> readWithInfoBytes true "cut.wav" file.Bytes)
                        header.Warning |> Option.exists (fun w -> w.StartsWith "truncated file")
                        && back.Frames = frames
                        && Array.forall2 (fun (a: float32[]) (b: float32[]) -> a.[.. frames - 1] = b) file.Audio.Samples back.Samples
                        && strict |> Option.exists (fun e -> e.Message.Contains "(truncated file")
                        && (readStream "cut.wav" (new MemoryStream(file.Bytes))).Frames = frames)) ]
          testList
              "non-finite samples"
              [ testCase "NaN or an infinity anywhere in float32 or float64 data raises AudioFormatException naming the file, the value and where" (fun () ->
                    checkProperty 300 genNonFinite (fun file ->
                        let frame, channel = file.First
                        let expected = sprintf "at frame %d, channel %d" frame channel
                        let check (read: Stream -> unit) =
                            match formatErrorOf (fun () -> read (new MemoryStream(file.Bytes))) with
                            | Some e -> e.Path = "bad.wav" && e.Message.StartsWith "bad.wav: non-finite samples: " && e.Message.Contains expected
                            | None -> false
                        let before =
                            if frame = 0 then true
                            else (readRangeStream "bad.wav" (new MemoryStream(file.Bytes)) 0.0 (Some(float frame / 8000.0))).Frames = frame
                        check (fun s -> readStream "bad.wav" s |> ignore)
                        && check (fun s -> Wav.readStreamMono "bad.wav" s |> ignore)
                        && check (fun s -> Wav.inspectStream false "bad.wav" s |> ignore)
                        && (Wav.readInfoStream "bad.wav" (new MemoryStream(file.Bytes))).Frames = int64 file.Frames
                        && before))
                test "a 64-bit value beyond single precision is named as such" {
                    let bytes = WavBytes.riff [ fmtChunkOf Float64 1 8000u; WavBytes.chunk "data" (Array.collect (fun (v: float) -> BitConverter.GetBytes v) [| 0.5; 1e300 |]) ]
                    expectFormatError "big.wav" "non-finite samples: 1e+300 (a 64-bit value beyond single precision's range) at frame 1, channel 0" bytes
                }
                testCase "integer PCM data of any bytes decodes to finite values in [-1, 1)" (fun () ->
                    let gen =
                        gen {
                            let! format = Gen.elements [ PcmU8; Pcm16; Pcm24; Pcm32 ]
                            let! channels = Gen.choose (1, 3)
                            let! frames = Gen.choose (0, 50)
                            let! seed = Gen.choose (0, Int32.MaxValue)
                            let rng = Random seed
                            let data = Array.init (frames * channels * bytesPerSample format) (fun _ -> byte (rng.Next 256))
                            return WavBytes.riff [ fmtChunkOf format channels 8000u; WavBytes.chunk "data" data ]
                        }
                    checkProperty 300 gen (fun bytes ->
                        (decodeBytes "pcm.wav" bytes).Samples |> Array.forall (Array.forall (fun x -> Single.IsFinite x && x >= -1.0f && x < 1.0f)))) ]
          testList
              "FSDD"
              [ TestData.testWithFsdd "every FSDD recording reads as 8 kHz mono with 1,148 to 18,262 samples, equal to a naive decode" (fun dir ->
                    let files = fsddRecordings dir
                    Expect.isGreaterThan files.Length 0 "recordings present"
                    let sw = Stopwatch.StartNew()
                    let clips = files |> Array.map (AudioFile.read AudioFile.defaults)
                    sw.Stop()
                    printfn "Wav: read %d FSDD recordings in %.0f ms" files.Length sw.Elapsed.TotalMilliseconds
                    let lengths = clips |> Array.map (fun a -> a.Samples.[0].Length)
                    for path, clip in Array.zip files clips do
                        Expect.equal clip.SampleRate 8000 path
                        Expect.equal clip.Samples.Length 1 path
                        let info = Wav.readInfo path
                        Expect.equal (info.Format, info.Channels) (Pcm16, 1) path
                        sameBits path (naivePcm16 path) clip.Samples.[0]
                    Expect.isGreaterThanOrEqual (Array.min lengths) 1148 "shortest recording"
                    Expect.isLessThanOrEqual (Array.max lengths) 18262 "longest recording"
                    if files.Length = 2500 then
                        Expect.equal (Array.min lengths, Array.max lengths) (1148, 18262) "the full set spans 1,148..18,262 samples") ] ]
