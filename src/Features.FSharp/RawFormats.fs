namespace Hybrid.Features

open System
open System.Buffers
open System.Buffers.Binary
open System.IO
open System.Text
open Microsoft.Win32.SafeHandles

/// Byte-to-float conversion for RawEncoding (soundfile's scaling: integers divided by 2^(bits-1); G.711 codes
/// expanded to 16-bit values first, then divided by 32768).
module internal RawCodec =
    let bytesPerSample =
        function
        | S8 | U8 | MuLaw | ALaw -> 1
        | S16 _ -> 2
        | S24 _ -> 3
        | S32 _ | F32 _ -> 4
        | F64 _ -> 8

    let describe =
        function
        | S8 -> "8-bit PCM"
        | U8 -> "unsigned 8-bit PCM"
        | S16 _ -> "16-bit PCM"
        | S24 _ -> "24-bit PCM"
        | S32 _ -> "32-bit PCM"
        | F32 _ -> "32-bit float"
        | F64 _ -> "64-bit float"
        | MuLaw -> "mu-law"
        | ALaw -> "A-law"

    let private muTable = SampleCodec.muLawTable
    let private aTable = SampleCodec.aLawTable

    /// Decodes dst.Length samples from src.
    let decode (enc: RawEncoding) (src: ReadOnlySpan<byte>) (dst: Span<float32>) =
        let n = dst.Length
        match enc with
        | S8 -> for i in 0 .. n - 1 do dst.[i] <- float32 (sbyte src.[i]) / 128.0f
        | U8 -> for i in 0 .. n - 1 do dst.[i] <- (float32 src.[i] - 128.0f) / 128.0f
        | MuLaw -> for i in 0 .. n - 1 do dst.[i] <- muTable.[int src.[i]]
        | ALaw -> for i in 0 .. n - 1 do dst.[i] <- aTable.[int src.[i]]
        | S16 big ->
            for i in 0 .. n - 1 do
                let s = src.Slice(2 * i)
                let v = if big then BinaryPrimitives.ReadInt16BigEndian s else BinaryPrimitives.ReadInt16LittleEndian s
                dst.[i] <- float32 v / 32768.0f
        | S24 big ->
            for i in 0 .. n - 1 do
                let j = 3 * i
                let hi, mid, lo = if big then src.[j], src.[j + 1], src.[j + 2] else src.[j + 2], src.[j + 1], src.[j]
                let v = (int (sbyte hi) <<< 16) ||| (int mid <<< 8) ||| int lo
                dst.[i] <- float32 v / 8388608.0f
        | S32 big ->
            for i in 0 .. n - 1 do
                let s = src.Slice(4 * i)
                let v = if big then BinaryPrimitives.ReadInt32BigEndian s else BinaryPrimitives.ReadInt32LittleEndian s
                dst.[i] <- float32 v / 2147483648.0f
        | F32 big ->
            for i in 0 .. n - 1 do
                let s = src.Slice(4 * i)
                dst.[i] <- if big then BinaryPrimitives.ReadSingleBigEndian s else BinaryPrimitives.ReadSingleLittleEndian s
        | F64 big ->
            for i in 0 .. n - 1 do
                let s = src.Slice(8 * i)
                dst.[i] <- float32 (if big then BinaryPrimitives.ReadDoubleBigEndian s else BinaryPrimitives.ReadDoubleLittleEndian s)

/// Uncompressed samples at a fixed offset of a file (AU, AIFF/AIFC): `frames` frames, checked against the file's size.
[<Sealed>]
type internal RawDecoder(info: AudioFileInfo, handle: SafeFileHandle, dataOffset: int64, enc: RawEncoding) =
    inherit FrameDecoder(info)
    let channels = info.Channels
    let blockAlign = channels * RawCodec.bytesPerSample enc
    let mutable position = 0L
    override _.KnownFrames = ValueSome info.Frames
    override _.TrySeek frame =
        position <- max 0L (min frame info.Frames)
        true
    override _.Read dst =
        let frames = int (min (int64 (dst.Length / channels)) (info.Frames - position))
        if frames <= 0 then 0
        else
            let want = frames * blockAlign
            let bytes = ArrayPool<byte>.Shared.Rent want
            try
                let offset = dataOffset + position * int64 blockAlign
                let mutable got = 0
                let mutable finished = false
                while not finished && got < want do
                    let r = RandomAccess.Read(handle, Span<byte>(bytes, got, want - got), offset + int64 got)
                    if r <= 0 then finished <- true else got <- got + r
                if got < want then
                    raise (IOException(sprintf "%s: the file shrank while being read (wanted %d bytes at %d, got %d)" info.Path want offset got))
                RawCodec.decode enc (ReadOnlySpan<byte>(bytes, 0, want)) (dst.Slice(0, frames * channels))
            finally
                ArrayPool<byte>.Shared.Return bytes
            position <- position + int64 frames
            frames
    override _.Dispose() = handle.Dispose()

/// Sun/NeXT .au and AIFF/AIFC headers, read by Hybrid itself.
module internal RawFormats =
    let private fail path problem = raise (AudioFormatException(path, problem))

    let private readExactly (handle: SafeFileHandle) (offset: int64) (count: int) =
        let buf = Array.zeroCreate<byte> count
        let mutable got = 0
        let mutable finished = false
        while not finished && got < count do
            let r = RandomAccess.Read(handle, Span<byte>(buf, got, count - got), offset + int64 got)
            if r <= 0 then finished <- true else got <- got + r
        buf, got

    /// Frames of a raw data region and a warning when it is cut short.
    let private rawFrames (path: string) (strict: bool) (declared: int64 option) (available: int64) (blockAlign: int) =
        match declared with
        | Some d when d > available ->
            if strict then fail path (sprintf "sound data declares %d bytes but only %d remain (truncated file; strict reading refuses it)" d available)
            let frames = available / int64 blockAlign
            frames, Some(sprintf "truncated file: the sound data declares %d bytes but only %d are present; read the %d whole frames present" d available frames)
        | Some d -> d / int64 blockAlign, None
        | None -> available / int64 blockAlign, None

    /// Opens the file and runs body on its handle, closing the handle when body fails.
    let private withHandle (path: string) (body: SafeFileHandle -> FrameDecoder) : FrameDecoder =
        let handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read)
        try
            body handle
        with _ ->
            handle.Dispose()
            reraise ()

    /// Sun/NeXT .au, starting `start` bytes into the file (behind an ID3v2 tag, as libsndfile allows): a big-endian 24-byte header (magic, data offset, data size or 0xFFFFFFFF, encoding, rate,
    /// channels) then the samples.
    let openAu (start: int64) (strict: bool) (path: string) : FrameDecoder =
        withHandle path (fun handle ->
            let length = RandomAccess.GetLength handle - start
            let h, got = readExactly handle start 24
            if got < 24 then fail path (sprintf "file is %d bytes long, too short for a Sun AU header (24 bytes)" length)
            let be (i: int) = BinaryPrimitives.ReadUInt32BigEndian(ReadOnlySpan<byte>(h, i, 4))
            if be 0 <> 0x2e736e64u then fail path "not a Sun AU file: it does not start with '.snd'"
            let declaredOffset, size, code, rate, channels = be 4, be 8, be 12, be 16, be 20
            // As libsndfile takes it: the data start where the offset says, even inside the header; past the end, no samples.
            let offset = int64 declaredOffset
            let enc =
                match code with
                | 1u -> MuLaw
                | 2u -> S8
                | 3u -> S16 true
                | 4u -> S24 true
                | 5u -> S32 true
                | 6u -> F32 true
                | 7u -> F64 true
                | 27u -> ALaw
                | c -> fail path (sprintf "unsupported AU encoding %d: only mu-law (1), 8/16/24/32-bit PCM (2-5), float (6), double (7) and A-law (27) can be read" c)
            AudioLimits.checkChannels path "AU header" (int64 channels)
            AudioLimits.checkRate path "AU header" (int64 rate)
            let blockAlign = int channels * RawCodec.bytesPerSample enc
            let available = max 0L (length - offset)
            let declared = if size = UInt32.MaxValue then None else Some(int64 size)
            let frames, warning = rawFrames path strict declared available blockAlign
            let info =
                { Path = path; Container = "Sun AU"; Encoding = RawCodec.describe enc; SampleRate = int rate; Channels = int channels
                  Frames = frames; Warning = warning }
            new RawDecoder(info, handle, start + offset, enc))

    /// IEEE 754 80-bit extended (AIFF's sample rate) to a double.
    let private extended (b: ReadOnlySpan<byte>) =
        let exponent = (int (b.[0] &&& 0x7Fuy) <<< 8) ||| int b.[1]
        let mantissa = BinaryPrimitives.ReadUInt64BigEndian(b.Slice 2)
        if exponent = 0 && mantissa = 0UL then 0.0
        else
            let v = float mantissa * Math.Pow(2.0, float (exponent - 16383 - 63))
            if b.[0] &&& 0x80uy <> 0uy then -v else v

    /// AIFF and AIFC, starting `start` bytes into the file: big-endian FORM chunks; COMM gives channels, bits and the
    /// 80-bit rate (AIFC: the compression type), SSND the samples after its offset field and their length.
    let openAiff (start: int64) (strict: bool) (path: string) : FrameDecoder =
        withHandle path (fun handle ->
            let length = RandomAccess.GetLength handle - start
            let h, got = readExactly handle start 12
            let id (b: byte[]) (i: int) = Encoding.ASCII.GetString(b, i, 4)
            if got < 12 || id h 0 <> "FORM" then fail path "not an AIFF file: it does not start with 'FORM'"
            let form = id h 8
            if form <> "AIFF" && form <> "AIFC" then fail path (sprintf "FORM type is '%s', expected 'AIFF' or 'AIFC'" form)
            let mutable pos = 12L
            let mutable comm = None
            let mutable ssnd = None
            while (comm.IsNone || ssnd.IsNone) && pos + 8L <= length do
                let c, _ = readExactly handle (start + pos) 8
                let name = id c 0
                let size = int64 (BinaryPrimitives.ReadUInt32BigEndian(ReadOnlySpan<byte>(c, 4, 4)))
                let body = pos + 8L
                if name = "COMM" then
                    if size < 18L || body + size > length then fail path (sprintf "COMM chunk is %d bytes (at least 18 expected, within the file)" size)
                    let b, _ = readExactly handle (start + body) (int (min size 64L))
                    let channels = int (BinaryPrimitives.ReadInt16BigEndian(ReadOnlySpan<byte>(b, 0, 2)))
                    let frames = int64 (BinaryPrimitives.ReadUInt32BigEndian(ReadOnlySpan<byte>(b, 2, 4)))
                    let bits = int (BinaryPrimitives.ReadInt16BigEndian(ReadOnlySpan<byte>(b, 6, 2)))
                    let rate = extended (ReadOnlySpan<byte>(b, 8, 10))
                    let compression = if form = "AIFC" && size >= 22L then id b 18 else "NONE"
                    comm <- Some(channels, frames, bits, rate, compression)
                elif name = "SSND" then
                    let b, n = readExactly handle (start + body) 8
                    if n < 8 then fail path "SSND chunk is cut off before its offset field"
                    let offset = int64 (BinaryPrimitives.ReadUInt32BigEndian(ReadOnlySpan<byte>(b, 0, 4)))
                    ssnd <- Some(body + 8L + offset, size - 8L - offset, size)
                pos <- body + size + (size &&& 1L)
            match comm, ssnd with
            | None, _ -> fail path "no COMM chunk before the end of the file"
            | _, None -> fail path "no SSND chunk before the end of the file"
            | Some(channels, _commFrames, bits, rate, compression), Some(dataOffset, dataSize, ssndSize) ->
                let enc =
                    match compression, bits with
                    | ("NONE" | "twos"), 8 -> S8
                    | ("NONE" | "twos"), 16 -> S16 true
                    | ("NONE" | "twos"), 24 -> S24 true
                    | ("NONE" | "twos"), 32 -> S32 true
                    | "sowt", 16 -> S16 false
                    | "sowt", 24 -> S24 false
                    | "sowt", 32 -> S32 false
                    | "raw ", 8 -> U8
                    | ("fl32" | "FL32"), _ -> F32 true
                    | ("fl64" | "FL64"), _ -> F64 true
                    | ("ulaw" | "ULAW"), _ -> MuLaw
                    | ("alaw" | "ALAW"), _ -> ALaw
                    | c, b -> fail path (sprintf "unsupported AIFF sample format: compression '%s' with %d bits (PCM 8/16/24/32, sowt, fl32, fl64, ulaw and alaw can be read)" c b)
                AudioLimits.checkChannels path "COMM chunk" (int64 channels)
                // A fractional rate is taken in whole hertz, as libsndfile takes it (truncated).
                let rate = if Double.IsFinite rate then Math.Floor rate else -1.0
                AudioLimits.checkRate path "COMM chunk" (int64 (max -1.0 (min 1e12 rate)))
                let blockAlign = channels * RawCodec.bytesPerSample enc
                // The length is the SSND chunk's, as libsndfile takes it (COMM's frame count is not relied on). A streaming
                // writer (ffmpeg to a pipe) leaves 0 or 0xFFFFFFFF as the SSND size it could not fill in: the samples then
                // run to the end of the file, in whole frames, as WAV placeholders do.
                let placeholder = ssndSize = 0L || ssndSize = 0xFFFFFFFFL
                let available = max 0L (length - dataOffset)
                let declared = if placeholder then None else Some(max 0L dataSize)
                let frames, warning = rawFrames path strict declared available blockAlign
                let info =
                    { Path = path; Container = (if form = "AIFC" then "AIFC" else "AIFF"); Encoding = RawCodec.describe enc
                      SampleRate = int rate; Channels = channels; Frames = frames; Warning = warning }
                new RawDecoder(info, handle, start + dataOffset, enc))
