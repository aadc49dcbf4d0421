module Hybrid.FeaturesTests.WavTests

open System
open System.Buffers.Binary
open System.Diagnostics
open System.IO
open System.Text
open Expecto
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

let formats = [ PcmU8; Pcm16; Pcm24; Pcm32; Float32; Float64 ]

/// A sample value that the format represents exactly, drawn from the format's full range.
let representable (rng: Random) (format: SampleFormat) : float32 =
    match format with
    | PcmU8 -> float32 (rng.Next(0, 256) - 128) / 128.0f
    | Pcm16 -> float32 (rng.Next(-32768, 32768)) / 32768.0f
    | Pcm24 -> float32 (rng.Next(-8388608, 8388608)) / 8388608.0f
    | Pcm32 -> float32 (rng.NextInt64(-2147483648L, 2147483648L)) / 2147483648.0f
    | Float32
    | Float64 -> float32 (rng.NextDouble() * 4.0 - 2.0) * (if rng.Next 8 = 0 then 1e-30f else 1.0f)

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

let decodeBytes (name: string) (bytes: byte[]) =
    use ms = new MemoryStream(bytes, false)
    Wav.readStream name ms

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

/// Decodes a file: Ok with the audio, or Error with the AudioFormatException's message; any other
/// exception escapes. Also returns the elapsed time in milliseconds and the bytes allocated.
let timedDecode (name: string) (bytes: byte[]) =
    let before = GC.GetAllocatedBytesForCurrentThread()
    let sw = Stopwatch.StartNew()
    let outcome =
        try Ok(decodeBytes name bytes)
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
                testProperty "any format, channel count and length round-trips bit for bit" (fun (seed: int) (formatIndex: byte) (channels: byte) (frames: uint16) (ext: bool) (rf: bool) ->
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
                        let back = Wav.read path
                        Expect.equal (back.Frames, back.Duration) (16000, 2.0) "frames and duration of the audio"
                        for c in 0..1 do
                            sameBits "channel" audio.Samples.[c] back.Samples.[c]
                        let mono = Wav.readMono path
                        Expect.equal mono.Samples.Length 1 "one channel"
                        let mean = Array.map2 (fun (a: float32) b -> (a + b) * 0.5f) audio.Samples.[0] audio.Samples.[1]
                        Assertions.allClose 0.0 1e-7 mean mono.Samples.[0] "mean of channels"
                        let range = Wav.readRange path 0.25 (Some 0.5)
                        sameBits "range" audio.Samples.[1].[2000..5999] range.Samples.[1]
                        let tail = Wav.readRange path 1.5 None
                        sameBits "range to the end" audio.Samples.[0].[12000..] tail.Samples.[0]
                        let past = Wav.readRange path 3.0 (Some 1.0)
                        Expect.equal past.Samples.[0].Length 0 "a range past the end is empty"
                        let far = Wav.readRange path 1e300 (Some 1e300)
                        Expect.equal far.Samples.[0].Length 0 "a range far past the end is empty"
                        let clipped = Wav.readRangeMono path 1.9 (Some 5.0)
                        Assertions.allClose 0.0 1e-7 mean.[15200..] clipped.Samples.[0] "a range is clipped to the file"
                    finally
                        File.Delete path
                }
                test "reading a range of a long file reads the header and the range, not the whole file" {
                    let audio = randomAudio (Random 3) Pcm16 2 2_000_000 16000
                    let bytes = encode { Format = Pcm16; Extensible = false; Rf64 = false } audio
                    use stream = new CountingStream(bytes)
                    let range = Wav.readRangeStream "long.wav" stream 100.0 (Some 0.5)
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
                    Expect.equal (Wav.readStream "gz.wav" unzip).Samples.[0] (decodeBytes "plain.wav" bytes).Samples.[0] "same samples"
                } ]
          testList
              "malformed files"
              [ let fmt = WavBytes.pcm16Fmt 1 8000u
                let data = WavBytes.pcm16Data [ 1; 2; 3; 4 ]
                let fmtWith tag channels rate bits align = WavBytes.chunk "fmt " (WavBytes.fmtBody tag channels rate bits align)
                let cases =
                    [ "an empty file", [||], "too short for a RIFF/WAVE header"
                      "a big-endian RIFX file", WavBytes.riffOf "RIFX" "WAVE" [ fmt; data ], "big-endian RIFX"
                      "an Ogg file", WavBytes.riffOf "OggS" "WAVE" [ fmt; data ], "not a WAV file: starts with 'OggS'"
                      "an AVI file", WavBytes.riffOf "RIFF" "AVI " [ fmt; data ], "form type is 'AVI ', expected 'WAVE'"
                      "a file with no fmt chunk", WavBytes.riff [ data ], "no fmt chunk"
                      "a file with no data chunk", WavBytes.riff [ fmt ], "no data chunk"
                      "an ADPCM file", WavBytes.riff [ fmtWith 2 1 8000u 4 256; data ], "unsupported format tag 0x0002 (Microsoft ADPCM)"
                      "an MP3-in-WAV file", WavBytes.riff [ fmtWith 0x55 2 44100u 0 1; data ], "unsupported format tag 0x0055 (MPEG Layer 3)"
                      "a mu-law file", WavBytes.riff [ fmtWith 7 1 8000u 8 1; data ], "(mu-law)"
                      "an extensible file with an unknown sub-format",
                      WavBytes.riff [ WavBytes.chunk "fmt " (WavBytes.extensibleBody 1 1 8000u 16 16 (Array.create 14 1uy)); data ],
                      "is not PCM or IEEE float"
                      "an extensible fmt chunk that is too short", WavBytes.riff [ WavBytes.chunk "fmt " (WavBytes.fmtBody 0xFFFE 1 8000u 16 2); data ], "expected at least 40"
                      "an extensible file with more valid bits than its container",
                      WavBytes.riff [ WavBytes.chunk "fmt " (WavBytes.extensibleBody 1 1 8000u 16 24 WavBytes.guidTail); data ],
                      "24 valid bits in a 16-bit container"
                      "a short fmt chunk", WavBytes.riff [ WavBytes.chunk "fmt " (Array.zeroCreate 14); data ], "fmt chunk is 14 bytes, expected at least 16"
                      "zero channels", WavBytes.riff [ fmtWith 1 0 8000u 16 0; data ], "zero channels"
                      "too many channels", WavBytes.riff [ fmtWith 1 5000 8000u 8 5000; data ], "declares 5000 channels, more than the 1024 supported"
                      "a zero sample rate", WavBytes.riff [ fmtWith 1 1 0u 16 2; data ], "sample rate of 0 Hz"
                      "a sample rate beyond int32", WavBytes.riff [ fmtWith 1 1 3000000000u 16 2; data ], "impossible sample rate of 3000000000 Hz"
                      "a block-align mismatch", WavBytes.riff [ fmtWith 1 2 8000u 16 3; data ], "block align is 3 bytes, expected 4 (2 channels x 2 bytes per sample)"
                      "12-bit PCM", WavBytes.riff [ fmtWith 1 1 8000u 12 2; data ], "PCM with 12 bits per sample"
                      "16-bit float", WavBytes.riff [ fmtWith 3 1 8000u 16 2; data ], "IEEE float with 16 bits per sample"
                      "truncated data", (WavBytes.riff [ fmt; data ]).[.. 49], "data chunk declares 8 bytes but only 6 remain (truncated file)"
                      "an absurd data size", WavBytes.riff [ fmt; WavBytes.chunkDeclaring "data" UInt32.MaxValue [| 1uy; 2uy |] ], "declares 4294967295 bytes"
                      "an absurd unknown chunk size", WavBytes.riff [ WavBytes.chunkDeclaring "LIST" 0x7FFFFFF0u [| 0uy; 0uy |]; fmt; data ], "chunk 'LIST' at byte 12 declares 2147483632 bytes"
                      "an RF64 file without ds64", WavBytes.riffOf "RF64" "WAVE" [ fmt; data ], "does not start with a ds64 chunk"
                      "an RF64 file with an absurd ds64 data size",
                      WavBytes.rf64 UInt64.MaxValue [ fmt; WavBytes.chunkDeclaring "data" UInt32.MaxValue [| 0uy; 0uy |] ],
                      "declares 18446744073709551615 bytes but only 2 remain" ]
                for what, bytes, expected in cases do
                    test (sprintf "%s raises AudioFormatException saying so" what) {
                        expectFormatError (sprintf "%s.wav" (what.Replace(' ', '-'))) expected bytes
                    }
                test "a missing file raises FileNotFoundException, not a format error" {
                    Expect.throwsT<FileNotFoundException> (fun () -> Wav.read (Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString "N" + ".wav")) |> ignore) "missing file"
                }
                test "negative offsets and durations are argument errors" {
                    let path = Path.Combine(Path.GetTempPath(), sprintf "hybrid-wav-%s.wav" (Guid.NewGuid().ToString "N"))
                    try
                        Wav.write path Pcm16 { SampleRate = 8000; Samples = [| Array.zeroCreate 10 |] }
                        Expect.throwsT<ArgumentOutOfRangeException> (fun () -> Wav.readRange path -1.0 None |> ignore) "offset"
                        Expect.throwsT<ArgumentOutOfRangeException> (fun () -> Wav.readRange path 0.0 (Some -1.0) |> ignore) "duration"
                    finally
                        File.Delete path
                }
                testSequenced <| test "10,000 generated and mutated files each decode or raise AudioFormatException within 50 ms" {
                    // Warm the code paths so JIT compilation is not timed.
                    for format in formats do
                        encode { Format = format; Extensible = false; Rf64 = false } (randomAudio (Random 1) format 2 64 8000)
                        |> decodeBytes "warm.wav"
                        |> ignore
                    for seed in 0..200 do
                        timedDecode "warm.wav" (fuzzFile (Random seed)) |> ignore
                    let mutable worst = 0.0
                    let mutable decoded = 0
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
                            | Ok audio ->
                                decoded <- decoded + 1
                                let n = audio.Samples.[0].Length
                                audio.Samples.Length >= 1
                                && audio.SampleRate > 0
                                && audio.Samples |> Array.forall (fun s -> s.Length = n)
                                && int64 n * int64 audio.Samples.Length <= int64 bytes.Length
                            | Error message ->
                                rejected <- rejected + 1
                                message.StartsWith(name + ": ", StringComparison.Ordinal))
                    Check.One(Config.QuickThrowOnFailure.WithMaxTest(10000).WithQuietOnSuccess(true), prop)
                    printfn "Wav fuzz: %d decoded, %d rejected, slowest %.2f ms" decoded rejected worst
                    Expect.equal (decoded + rejected) 10000 "every file was tried"
                    Expect.isGreaterThan decoded 500 "the generator also produces valid files"
                    Expect.isGreaterThan rejected 500 "the generator produces malformed files"
                    Expect.isLessThan worst 50.0 "the slowest file took under 50 ms"
                } ]
          testList
              "FSDD"
              [ TestData.testWithFsdd "every FSDD recording reads as 8 kHz mono with 1,148 to 18,262 samples, equal to a naive decode" (fun dir ->
                    let files = fsddRecordings dir
                    Expect.isGreaterThan files.Length 0 "recordings present"
                    let sw = Stopwatch.StartNew()
                    let clips = files |> Array.map Wav.readMono
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
