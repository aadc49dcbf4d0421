namespace Hybrid.Features

open System
open System.Buffers
open System.Buffers.Binary
open System.IO
open System.Numerics
open System.Runtime.InteropServices
open System.Text
open Microsoft.Win32.SafeHandles

/// Sample encoding of a WAV data chunk (the sub-format for WAVE_FORMAT_EXTENSIBLE files).
type SampleFormat =
    /// Unsigned 8-bit PCM, decoded as (x - 128) / 128.
    | PcmU8
    /// Signed 16-bit PCM, decoded as x / 32768.
    | Pcm16
    /// Signed 24-bit PCM (3 bytes), decoded as x / 2^23.
    | Pcm24
    /// Signed 32-bit PCM, decoded as x / 2^31.
    | Pcm32
    /// IEEE 754 single precision, passed through.
    | Float32
    /// IEEE 754 double precision, rounded to single precision.
    | Float64
    /// G.711 mu-law (8-bit codes), expanded to 16-bit values and divided by 32768, as soundfile does.
    | MuLaw
    /// G.711 A-law (8-bit codes), expanded to 16-bit values and divided by 32768, as soundfile does.
    | ALaw

/// What a WAV header declares, validated against the file's real length.
type WavInfo =
    { /// Frames per second (Hz), at least 1.
      SampleRate: int
      /// Interleaved channels per frame, at least 1.
      Channels: int
      /// Whole frames in the data chunk (a trailing partial frame is ignored, as soundfile does). For a
      /// placeholder or truncated data size, the whole frames present up to the end of the file.
      Frames: int64
      /// Sample encoding.
      Format: SampleFormat
      /// True for RF64/BW64 files (64-bit sizes in a ds64 chunk).
      IsRf64: bool
      /// True for big-endian RIFX files (sizes, fields and samples most significant byte first).
      BigEndian: bool
      /// Byte offset of the first sample in the file.
      DataOffset: int64
      /// Size of the data chunk in bytes as read: the declared size, or the bytes present up to the end of the
      /// file when the declared size is a placeholder or runs past the end (never more than the bytes present).
      DataBytes: int64
      /// A problem the reader worked around, for the caller to report: the data chunk was cut short (a
      /// recording stopped mid-write), so only the whole frames present are read. None for a clean file.
      /// Strict reading (readInfoWith true) raises AudioFormatException for such a file instead.
      Warning: string option }
    /// Length in seconds (Frames / SampleRate).
    member this.Duration = float this.Frames / float this.SampleRate

/// Decoded audio, channel-major: Samples.[channel].[frame], scaled to [-1, 1) the way soundfile does
/// (float files are passed through unchanged, so they may exceed that range).
type Audio =
    { /// Frames per second (Hz).
      SampleRate: int
      /// One array per channel, all of the same length.
      Samples: float32[][] }
    /// Frames per channel.
    member this.Frames = if this.Samples.Length = 0 then 0 else this.Samples.[0].Length
    /// Length in seconds (Frames / SampleRate).
    member this.Duration = float this.Frames / float this.SampleRate

/// How Wav.writeStreamWith lays out a file.
type WavWriteOptions =
    { /// Sample encoding of the data chunk.
      Format: SampleFormat
      /// Write a WAVE_FORMAT_EXTENSIBLE fmt chunk (always done for more than 2 channels).
      Extensible: bool
      /// Write an RF64 file with a ds64 chunk (always done when the data exceeds 4 GiB).
      Rf64: bool }

/// Random access to the bytes of a file or stream.
[<AbstractClass>]
type internal ByteSource() =
    /// Total length in bytes.
    abstract Length: int64
    /// Reads up to buffer.Length bytes at offset; returns how many were read (fewer only at the end).
    abstract ReadAt: offset: int64 * buffer: Span<byte> -> int

[<Sealed>]
type internal FileSource(handle: SafeFileHandle) =
    inherit ByteSource()
    let length = RandomAccess.GetLength handle
    override _.Length = length
    override _.ReadAt(offset, buffer) =
        let mutable total = 0
        let mutable finished = false
        while not finished && total < buffer.Length do
            let n = RandomAccess.Read(handle, buffer.Slice total, offset + int64 total)
            if n <= 0 then finished <- true else total <- total + n
        total

[<Sealed>]
type internal StreamSource(stream: Stream) =
    inherit ByteSource()
    let length = stream.Length
    override _.Length = length
    override _.ReadAt(offset, buffer) =
        if offset >= length then 0
        else
            stream.Position <- offset
            let mutable total = 0
            let mutable finished = false
            while not finished && total < buffer.Length do
                let n = stream.Read(buffer.Slice total)
                if n <= 0 then finished <- true else total <- total + n
            total

/// The bytes of a source from `start` on (a file behind an ID3v2 tag).
[<Sealed>]
type internal OffsetSource(source: ByteSource, start: int64) =
    inherit ByteSource()
    override _.Length = max 0L (source.Length - start)
    override _.ReadAt(offset, buffer) = source.ReadAt(start + offset, buffer)

/// A source with its first bytes (up to 64 KiB, often the whole file) held in a pooled buffer, so that
/// header parsing and small files cost a single read.
[<Sealed>]
type internal HeadedSource(source: ByteSource) =
    static let headCapacity = 65536
    let length = source.Length
    let head = ArrayPool<byte>.Shared.Rent(int (min length (int64 headCapacity)) |> max 1)
    let headLength = source.ReadAt(0L, Span<byte>(head, 0, int (min length (int64 headCapacity))))
    member _.Length = length
    /// Reads like ByteSource.ReadAt, from the head buffer when the range lies inside it.
    member _.ReadAt(offset: int64, buffer: Span<byte>) : int =
        if offset >= 0L && offset + int64 buffer.Length <= int64 headLength then
            ReadOnlySpan<byte>(head, int offset, buffer.Length).CopyTo buffer
            buffer.Length
        else
            source.ReadAt(offset, buffer)
    interface IDisposable with
        member _.Dispose() = ArrayPool<byte>.Shared.Return head

/// Sample conversion between bytes and float32 (hot loops: no allocation, vectorised where it pays).
module internal SampleCodec =
    let bytesPerSample format =
        match format with
        | PcmU8 | MuLaw | ALaw -> 1
        | Pcm16 -> 2
        | Pcm24 -> 3
        | Pcm32 -> 4
        | Float32 -> 4
        | Float64 -> 8

    let isFloat format =
        match format with
        | Float32
        | Float64 -> true
        | _ -> false

    /// G.711 mu-law code to a 16-bit linear value (ITU-T G.711).
    let muLawValue (code: byte) =
        let u = ~~~(int code) &&& 0xFF
        let t = (((u &&& 0x0F) <<< 3) + 0x84) <<< ((u &&& 0x70) >>> 4)
        if u &&& 0x80 <> 0 then 0x84 - t else t - 0x84

    /// G.711 A-law code to a 16-bit linear value (ITU-T G.711).
    let aLawValue (code: byte) =
        let a = int code ^^^ 0x55
        let seg = (a &&& 0x70) >>> 4
        let t =
            match seg with
            | 0 -> ((a &&& 0x0F) <<< 4) + 8
            | 1 -> ((a &&& 0x0F) <<< 4) + 0x108
            | s -> (((a &&& 0x0F) <<< 4) + 0x108) <<< (s - 1)
        if a &&& 0x80 <> 0 then t else -t

    /// Decoded value (/ 32768) of each mu-law and A-law code.
    let muLawTable = Array.init 256 (fun i -> float32 (muLawValue (byte i)) / 32768.0f)
    let aLawTable = Array.init 256 (fun i -> float32 (aLawValue (byte i)) / 32768.0f)

    /// The code whose value lies nearest a 16-bit linear value (G.711's encoder, by search over the 256 codes, so
    /// that decoding what was encoded is exact for every code's value).
    let private nearestCode (values: int[]) =
        let order = Array.init 256 id |> Array.sortBy (fun c -> values.[c], c)
        fun (v: int) ->
            let mutable lo = 0
            let mutable hi = 255
            while lo < hi do
                let mid = (lo + hi) / 2
                if values.[order.[mid]] < v then lo <- mid + 1 else hi <- mid
            let above = order.[lo]
            if lo > 0 && abs (values.[order.[lo - 1]] - v) <= abs (values.[above] - v) then byte order.[lo - 1] else byte above

    let private muLawEncode = nearestCode (Array.init 256 (fun i -> muLawValue (byte i)))
    let private aLawEncode = nearestCode (Array.init 256 (fun i -> aLawValue (byte i)))

    /// Reverses the bytes of each bps-byte sample of a big-endian block in place, so that it decodes as little-endian.
    let swapInPlace (bps: int) (bytes: Span<byte>) =
        if bps > 1 then
            let mutable i = 0
            while i + bps <= bytes.Length do
                bytes.Slice(i, bps).Reverse()
                i <- i + bps

    let private convertPcm16 (src: ReadOnlySpan<byte>) (dst: Span<float32>) =
        let n = dst.Length
        let scale = 1.0f / 32768.0f
        let mutable i = 0
        if Vector.IsHardwareAccelerated && BitConverter.IsLittleEndian then
            let s = MemoryMarshal.Cast<byte, int16>(src.Slice(0, 2 * n))
            let w = Vector<int16>.Count
            let vScale = Vector<float32>(scale)
            let half = Vector<int32>.Count
            while i + w <= n do
                let v = Vector<int16>(s.Slice i)
                (Vector.ConvertToSingle(Vector.WidenLower v) * vScale).CopyTo(dst.Slice i)
                (Vector.ConvertToSingle(Vector.WidenUpper v) * vScale).CopyTo(dst.Slice(i + half))
                i <- i + w
        while i < n do
            dst.[i] <- float32 (BinaryPrimitives.ReadInt16LittleEndian(src.Slice(2 * i))) * scale
            i <- i + 1

    let private convertPcm32 (src: ReadOnlySpan<byte>) (dst: Span<float32>) =
        let n = dst.Length
        let scale = 1.0f / 2147483648.0f
        let mutable i = 0
        if Vector.IsHardwareAccelerated && BitConverter.IsLittleEndian then
            let s = MemoryMarshal.Cast<byte, int32>(src.Slice(0, 4 * n))
            let w = Vector<int32>.Count
            let vScale = Vector<float32>(scale)
            while i + w <= n do
                (Vector.ConvertToSingle(Vector<int32>(s.Slice i)) * vScale).CopyTo(dst.Slice i)
                i <- i + w
        while i < n do
            dst.[i] <- float32 (BinaryPrimitives.ReadInt32LittleEndian(src.Slice(4 * i))) * scale
            i <- i + 1

    /// Decodes dst.Length consecutive samples from src (which holds at least that many).
    let decode (format: SampleFormat) (src: ReadOnlySpan<byte>) (dst: Span<float32>) =
        let n = dst.Length
        match format with
        | PcmU8 ->
            let scale = 1.0f / 128.0f
            for i in 0 .. n - 1 do
                dst.[i] <- (float32 src.[i] - 128.0f) * scale
        | Pcm16 -> convertPcm16 src dst
        | Pcm24 ->
            let scale = 1.0f / 8388608.0f
            for i in 0 .. n - 1 do
                let j = 3 * i
                let v = int src.[j] ||| (int src.[j + 1] <<< 8) ||| (int (sbyte src.[j + 2]) <<< 16)
                dst.[i] <- float32 v * scale
        | Pcm32 -> convertPcm32 src dst
        | Float32 ->
            if BitConverter.IsLittleEndian then
                MemoryMarshal.Cast<byte, float32>(src.Slice(0, 4 * n)).CopyTo dst
            else
                for i in 0 .. n - 1 do
                    dst.[i] <- BinaryPrimitives.ReadSingleLittleEndian(src.Slice(4 * i))
        | Float64 ->
            for i in 0 .. n - 1 do
                dst.[i] <- float32 (BinaryPrimitives.ReadDoubleLittleEndian(src.Slice(8 * i)))
        | MuLaw ->
            for i in 0 .. n - 1 do
                dst.[i] <- muLawTable.[int src.[i]]
        | ALaw ->
            for i in 0 .. n - 1 do
                dst.[i] <- aLawTable.[int src.[i]]

    /// Index of the first NaN or infinity in values, or -1 when all are finite (x - x is 0 exactly for finite x).
    let firstNonFinite (values: ReadOnlySpan<float32>) : int =
        let n = values.Length
        let mutable i = 0
        let mutable found = -1
        if Vector.IsHardwareAccelerated then
            let w = Vector<float32>.Count
            while found < 0 && i + w <= n do
                let v = Vector<float32>(values.Slice i)
                if not (Vector.EqualsAll(v - v, Vector<float32>.Zero)) then
                    for j in i .. i + w - 1 do
                        if found < 0 && not (Single.IsFinite values.[j]) then found <- j
                i <- i + w
        while found < 0 && i < n do
            if not (Single.IsFinite values.[i]) then found <- i
            i <- i + 1
        found

    let inline private quantise (x: float32) (scale: float) (lo: float) (hi: float) =
        if Single.IsNaN x then 0
        else int (Math.Clamp(Math.Round(float x * scale), lo, hi))

    /// Encodes src into dst (which holds src.Length * bytesPerSample bytes), rounding to nearest (ties
    /// to even) and clipping to the format's range; NaN becomes 0 in integer formats.
    let encode (format: SampleFormat) (src: ReadOnlySpan<float32>) (dst: Span<byte>) =
        let n = src.Length
        match format with
        | PcmU8 ->
            for i in 0 .. n - 1 do
                dst.[i] <- byte (quantise src.[i] 128.0 -128.0 127.0 + 128)
        | Pcm16 ->
            for i in 0 .. n - 1 do
                BinaryPrimitives.WriteInt16LittleEndian(dst.Slice(2 * i), int16 (quantise src.[i] 32768.0 -32768.0 32767.0))
        | Pcm24 ->
            for i in 0 .. n - 1 do
                let v = quantise src.[i] 8388608.0 -8388608.0 8388607.0
                let j = 3 * i
                dst.[j] <- byte v
                dst.[j + 1] <- byte (v >>> 8)
                dst.[j + 2] <- byte (v >>> 16)
        | Pcm32 ->
            for i in 0 .. n - 1 do
                BinaryPrimitives.WriteInt32LittleEndian(dst.Slice(4 * i), quantise src.[i] 2147483648.0 -2147483648.0 2147483647.0)
        | Float32 ->
            for i in 0 .. n - 1 do
                BinaryPrimitives.WriteSingleLittleEndian(dst.Slice(4 * i), src.[i])
        | Float64 ->
            for i in 0 .. n - 1 do
                BinaryPrimitives.WriteDoubleLittleEndian(dst.Slice(8 * i), float src.[i])
        | MuLaw ->
            for i in 0 .. n - 1 do
                dst.[i] <- muLawEncode (quantise src.[i] 32768.0 -32768.0 32767.0)
        | ALaw ->
            for i in 0 .. n - 1 do
                dst.[i] <- aLawEncode (quantise src.[i] 32768.0 -32768.0 32767.0)

/// Reading and writing WAV files (RIFF/RF64, PCM 8/16/24/32-bit, IEEE float 32/64, WAVE_FORMAT_EXTENSIBLE),
/// with soundfile's scaling. Every malformed or unsupported file raises AudioFormatException naming the
/// file and the problem, and so do NaN or infinite float samples; no buffer larger than the bytes actually
/// present is ever allocated. Streaming writers' placeholder sizes read to the end of the file; a truncated
/// data chunk reads its whole frames with a warning (WavInfo.Warning), or is refused when reading strictly.
module Wav =
    let private fail name problem = raise (AudioFormatException(name, problem))

    /// The most channels a file may declare (libsndfile's SF_MAX_CHANNELS; AudioLimits.MaxChannels).
    [<Literal>]
    let MaxChannels = AudioLimits.MaxChannels

    let private maxChannels = MaxChannels

    let private tagNames =
        dict
            [ 0x0002, "Microsoft ADPCM"
              0x0006, "A-law"
              0x0007, "mu-law"
              0x0011, "IMA ADPCM"
              0x0031, "GSM 6.10"
              0x0050, "MPEG"
              0x0055, "MPEG Layer 3"
              0x00FF, "AAC"
              0x0161, "Windows Media Audio"
              0x2000, "Dolby AC-3"
              0xF1AC, "FLAC" ]

    /// The 14 bytes that follow the format code in a KSDATAFORMAT_SUBTYPE_* GUID.
    let private guidTail = [| 0uy; 0uy; 0uy; 0uy; 0x10uy; 0uy; 0x80uy; 0uy; 0uy; 0xAAuy; 0uy; 0x38uy; 0x9Buy; 0x71uy |]

    /// The last 12 bytes of a KSDATAFORMAT_SUBTYPE_* GUID as a RIFX file stores it (Data2 and Data3 big-endian).
    let private guidTailBigEndian = [| 0uy; 0uy; 0uy; 0x10uy; 0x80uy; 0uy; 0uy; 0xAAuy; 0uy; 0x38uy; 0x9Buy; 0x71uy |]

    let private fourCc (bytes: ReadOnlySpan<byte>) =
        let sb = StringBuilder(4)
        for i in 0..3 do
            let b = bytes.[i]
            if b >= 32uy && b < 127uy then sb.Append(char b) |> ignore
            else sb.AppendFormat("\\x{0:X2}", b) |> ignore
        sb.ToString()

    let private isId (bytes: ReadOnlySpan<byte>) (id: string) =
        bytes.[0] = byte id.[0] && bytes.[1] = byte id.[1] && bytes.[2] = byte id.[2] && bytes.[3] = byte id.[3]

    type private Fmt =
        { Format: SampleFormat
          Channels: int
          SampleRate: int
          BlockAlign: int }

    let private u16 (big: bool) (b: ReadOnlySpan<byte>) = if big then BinaryPrimitives.ReadUInt16BigEndian b else BinaryPrimitives.ReadUInt16LittleEndian b
    let private u32 (big: bool) (b: ReadOnlySpan<byte>) = if big then BinaryPrimitives.ReadUInt32BigEndian b else BinaryPrimitives.ReadUInt32LittleEndian b

    /// The fmt chunk. As libsndfile does, the sample width comes from the bit depth rounded up to whole bytes (12-bit
    /// data in 16-bit words, 20-bit in 24-bit ones) and the block align field is not relied on.
    let private parseFmt name (big: bool) (body: ReadOnlySpan<byte>) (size: uint64) : Fmt =
        if size < 16UL then fail name (sprintf "fmt chunk is %d bytes, expected at least 16" size)
        let tag0 = int (u16 big body)
        let channels = int (u16 big (body.Slice 2))
        let rate = u32 big (body.Slice 4)
        let bits = int (u16 big (body.Slice 14))
        let tag =
            if tag0 <> 0xFFFE then tag0
            else
                if size < 40UL then
                    fail name (sprintf "WAVE_FORMAT_EXTENSIBLE fmt chunk is %d bytes, expected at least 40" size)
                // The valid-bits field is not relied on (libsndfile decodes the whole container too).
                // The sub-format GUID's numeric fields follow the file's byte order (RIFX: big-endian).
                let known =
                    if big then body.Slice(24, 2).SequenceEqual(ReadOnlySpan<byte>([| 0uy; 0uy |])) && body.Slice(28, 12).SequenceEqual(ReadOnlySpan<byte> guidTailBigEndian)
                    else body.Slice(26, 14).SequenceEqual(ReadOnlySpan<byte> guidTail)
                if not known then
                    fail name (sprintf "WAVE_FORMAT_EXTENSIBLE sub-format %O is not PCM or IEEE float" (Guid(body.Slice(24, 16))))
                int (if big then u16 big (body.Slice 26) else u16 big (body.Slice 24))
        let format =
            match tag, bits with
            | 1, b when b >= 1 && b <= 8 -> PcmU8
            | 1, b when b <= 16 -> Pcm16
            | 1, b when b <= 24 -> Pcm24
            | 1, b when b <= 32 -> Pcm32
            | 1, b -> fail name (sprintf "PCM with %d bits per sample is not supported (expected 1 to 32)" b)
            | 6, _ -> ALaw
            | 7, _ -> MuLaw
            | 3, 32 -> Float32
            | 3, 64 -> Float64
            | 3, b -> fail name (sprintf "IEEE float with %d bits per sample is not supported (expected 32 or 64)" b)
            | t, _ ->
                let known =
                    match tagNames.TryGetValue t with
                    | true, n -> sprintf " (%s)" n
                    | _ -> ""
                fail name (sprintf "unsupported format tag 0x%04X%s: only PCM (1), IEEE float (3), A-law (6), mu-law (7) and WAVE_FORMAT_EXTENSIBLE with those sub-formats can be read" t known)
        if channels = 0 then fail name "fmt chunk declares zero channels"
        if channels > maxChannels then
            fail name (sprintf "fmt chunk declares %d channels, more than the %d supported (libsndfile's limit)" channels maxChannels)
        AudioLimits.checkRate name "fmt chunk" (int64 rate)
        { Format = format; Channels = channels; SampleRate = int rate; BlockAlign = channels * SampleCodec.bytesPerSample format }

    /// Parses and validates the header of source (RIFF or RF64), scanning chunks until fmt and data are found.
    /// Placeholder data sizes (0xFFFFFFFF; in RF64 a ds64 data size of 0 or all ones; 0 when the RIFF size is a
    /// placeholder too or ends at the data chunk, as streaming writers leave them) read to the end of the file.
    /// A data size that runs past the end of the file is a truncated recording: the whole frames present are
    /// read with a Warning, or, when strict, AudioFormatException is raised.
    let private parse (strict: bool) (name: string) (source: HeadedSource) : WavInfo =
        let length = source.Length
        let buf = Array.zeroCreate<byte> 40
        // Reads count (<= 40) bytes at offset into buf; callers only ask for bytes known to exist.
        let read (offset: int64) (count: int) : byte[] =
            source.ReadAt(offset, Span<byte>(buf, 0, count)) |> ignore
            buf
        if length < 12L then
            fail name (sprintf "file is %d bytes long, too short for a RIFF/WAVE header (12 bytes)" length)
        let header = ReadOnlySpan<byte>(read 0L 12, 0, 12)
        let isRf64 =
            if isId header "RIFF" then false
            elif isId header "RF64" || isId header "BW64" then true
            elif isId header "RIFX" then false
            else fail name (sprintf "not a WAV file: starts with '%s', expected 'RIFF' or 'RF64'" (fourCc header))
        if not (isId (header.Slice 8) "WAVE") then
            fail name (sprintf "RIFF form type is '%s', expected 'WAVE'" (fourCc (header.Slice 8)))
        let big = isId header "RIFX"
        let mutable pos = 12L
        let riffSize = uint64 (u32 big (header.Slice 4))
        let mutable riffSize64 = riffSize
        let mutable ds64Data = 0UL
        let ds64Table = Collections.Generic.List<struct (int * uint64)>()
        if isRf64 then
            if length < 20L || not (isId (ReadOnlySpan<byte>(read 12L 8, 0, 8)) "ds64") then fail name "RF64 file does not start with a ds64 chunk"
            let size = uint64 (BinaryPrimitives.ReadUInt32LittleEndian(ReadOnlySpan<byte>(buf, 4, 4)))
            if size < 28UL then fail name (sprintf "ds64 chunk is %d bytes, expected at least 28" size)
            if size > uint64 (length - 20L) then
                fail name (sprintf "ds64 chunk declares %d bytes but only %d remain" size (length - 20L))
            let body = ReadOnlySpan<byte>(read 20L 28, 0, 28)
            riffSize64 <- BinaryPrimitives.ReadUInt64LittleEndian body
            ds64Data <- BinaryPrimitives.ReadUInt64LittleEndian(body.Slice 8)
            let entries = int64 (BinaryPrimitives.ReadUInt32LittleEndian(body.Slice 24))
            let room = (int64 size - 28L) / 12L
            for e in 0L .. (min entries room) - 1L do
                let entry = ReadOnlySpan<byte>(read (48L + 12L * e) 12, 0, 12)
                let id = BinaryPrimitives.ReadInt32LittleEndian entry
                ds64Table.Add(struct (id, BinaryPrimitives.ReadUInt64LittleEndian(entry.Slice 4)))
            pos <- 20L + int64 size + int64 (size &&& 1UL)
        let mutable fmt = ValueNone
        let mutable data = ValueNone
        let mutable short = ValueNone
        while (fmt.IsNone || data.IsNone) && pos + 8L <= length do
            let h = ReadOnlySpan<byte>(read pos 8, 0, 8)
            let isData = isId h "data"
            let isFmt = isId h "fmt "
            let size32 = u32 big (h.Slice 4)
            let size =
                if isRf64 && size32 = UInt32.MaxValue then
                    if isData then ds64Data
                    else
                        let id = BinaryPrimitives.ReadInt32LittleEndian h
                        match Seq.tryFind (fun (struct (i, _)) -> i = id) ds64Table with
                        | Some(struct (_, s)) -> s
                        | None -> uint64 size32
                else uint64 size32
            let bodyStart = pos + 8L
            let remaining = length - bodyStart
            let size =
                if not isData || data.IsSome then size
                else
                    let placeholder =
                        if isRf64 && size32 = UInt32.MaxValue then
                            ds64Data = 0UL || ds64Data = UInt64.MaxValue || ds64Data = uint64 UInt32.MaxValue
                        elif size32 = UInt32.MaxValue then true
                        elif size32 = 0u then
                            let outer = if isRf64 then riffSize64 else riffSize
                            remaining > 0L
                            && (outer = 0UL || outer = uint64 UInt32.MaxValue || outer = UInt64.MaxValue || outer + 8UL <= uint64 bodyStart)
                        else false
                    if placeholder then uint64 remaining
                    elif size > uint64 remaining then
                        if strict then
                            fail name (sprintf "data chunk declares %d bytes but only %d remain (truncated file; strict reading refuses it)" size remaining)
                        short <- ValueSome size
                        uint64 remaining
                    else size
            if size > uint64 remaining then
                fail name (sprintf "chunk '%s' at byte %d declares %d bytes but only %d remain" (fourCc h) pos size remaining)
            if isFmt && fmt.IsNone then
                let n = int (min size 40UL)
                fmt <- ValueSome(parseFmt name big (ReadOnlySpan<byte>(read bodyStart n, 0, n)) size)
            elif isData && data.IsNone then
                data <- ValueSome(struct (bodyStart, int64 size))
            pos <- bodyStart + int64 size + int64 (size &&& 1UL)
        match fmt, data with
        | ValueNone, _ -> fail name "no fmt chunk before the end of the file"
        | _, ValueNone -> fail name "no data chunk before the end of the file"
        | ValueSome f, ValueSome(struct (offset, bytes)) ->
            let frames = bytes / int64 f.BlockAlign
            let warning =
                match short with
                | ValueSome declared ->
                    let partial = bytes % int64 f.BlockAlign
                    Some(
                        sprintf "truncated file: the data chunk declares %d bytes but only %d are present; read the %d whole frames present%s"
                            declared bytes frames (if partial > 0L then sprintf " (a partial frame of %d byte%s was dropped)" partial (if partial = 1L then "" else "s") else ""))
                | ValueNone -> None
            { SampleRate = f.SampleRate
              Channels = f.Channels
              Frames = frames
              Format = f.Format
              IsRf64 = isRf64
              BigEndian = big
              DataOffset = offset
              DataBytes = bytes
              Warning = warning }

    /// Raises AudioFormatException naming the first NaN or infinity among decoded (interleaved samples of the
    /// block that starts at frame firstFrame, decoded from raw), with its frame and channel. A 64-bit float too
    /// large for single precision (it would become an infinity) counts as non-finite too.
    let private checkFinite (name: string) (info: WavInfo) (raw: ReadOnlySpan<byte>) (decoded: ReadOnlySpan<float32>) (firstFrame: int64) =
        let i = SampleCodec.firstNonFinite decoded
        if i >= 0 then
            let value = decoded.[i]
            let what =
                if info.Format = Float64 then
                    let d = BinaryPrimitives.ReadDoubleLittleEndian(raw.Slice(8 * i))
                    if Double.IsFinite d then sprintf "%g (a 64-bit value beyond single precision's range)" d
                    elif Double.IsNaN d then "NaN"
                    elif d > 0.0 then "+inf"
                    else "-inf"
                elif Single.IsNaN value then "NaN"
                elif value > 0.0f then "+inf"
                else "-inf"
            fail name
                (sprintf "non-finite samples: %s at frame %d, channel %d (features of NaN or infinite audio are meaningless; repair or drop the file)"
                    what (firstFrame + int64 (i / info.Channels)) (i % info.Channels))

    /// Decodes frames [start, start + count) into fresh arrays: one per channel, or one holding the mean
    /// of the channels when mix is true. Reads the data in blocks of at most 64 KiB. Raises
    /// AudioFormatException ("non-finite samples") when a float sample in the range is NaN or infinite.
    let private decode (name: string) (source: HeadedSource) (info: WavInfo) (start: int64) (count: int) (mix: bool) : Audio =
        let channels = info.Channels
        let outputs = if mix || channels = 1 then 1 else channels
        let samples = Array.init outputs (fun _ -> Array.zeroCreate<float32> count)
        // Integer PCM always decodes to finite values; float data is checked block by block as it is decoded.
        let isFloat = SampleCodec.isFloat info.Format
        if count > 0 then
            let bps = SampleCodec.bytesPerSample info.Format
            let blockAlign = channels * bps
            let framesPerBlock = max 1 (65536 / blockAlign)
            let bytes = ArrayPool<byte>.Shared.Rent(framesPerBlock * blockAlign)
            let scratch = if channels = 1 then [||] else ArrayPool<float32>.Shared.Rent(framesPerBlock * channels)
            try
                let mutable done' = 0
                while done' < count do
                    let frames = min framesPerBlock (count - done')
                    let byteCount = frames * blockAlign
                    let offset = info.DataOffset + (start + int64 done') * int64 blockAlign
                    let got = source.ReadAt(offset, Span<byte>(bytes, 0, byteCount))
                    if got < byteCount then
                        raise (IOException(sprintf "%s: the file shrank while being read (wanted %d bytes at %d, got %d)" name byteCount offset got))
                    if info.BigEndian then SampleCodec.swapInPlace bps (Span<byte>(bytes, 0, byteCount))
                    let src = ReadOnlySpan<byte>(bytes, 0, byteCount)
                    if channels = 1 then
                        let dst = Span<float32>(samples.[0], done', frames)
                        SampleCodec.decode info.Format src dst
                        if isFloat then checkFinite name info src (Span.op_Implicit dst) (start + int64 done')
                    else
                        let inter = Span<float32>(scratch, 0, frames * channels)
                        SampleCodec.decode info.Format src inter
                        if isFloat then checkFinite name info src (Span.op_Implicit inter) (start + int64 done')
                        if mix then
                            let dst = samples.[0]
                            let norm = 1.0f / float32 channels
                            for f in 0 .. frames - 1 do
                                let mutable sum = 0.0f
                                let b = f * channels
                                for c in 0 .. channels - 1 do
                                    sum <- sum + inter.[b + c]
                                dst.[done' + f] <- sum * norm
                        else
                            for c in 0 .. channels - 1 do
                                let dst = samples.[c]
                                let mutable j = c
                                for f in 0 .. frames - 1 do
                                    dst.[done' + f] <- inter.[j]
                                    j <- j + channels
                    done' <- done' + frames
            finally
                ArrayPool<byte>.Shared.Return bytes
                if channels > 1 then ArrayPool<float32>.Shared.Return scratch
        { SampleRate = info.SampleRate; Samples = samples }

    /// The (first frame, frame count) of a range read from `frames` frames of `channels` channels at `sampleRate` Hz, as
    /// every reader takes it (librosa.load's offset and duration): the offset rounded to a frame, the duration clipped
    /// to the end. ArgumentOutOfRangeException naming `name` for a negative or infinite offset or a negative duration;
    /// AudioFormatException naming it when the range holds more samples than one read decodes (AudioLimits.MaxSamples).
    let internal frameRangeOf name (sampleRate: int) (channels: int) (frames: int64) (offsetSeconds: float) (durationSeconds: float option) =
        if not (offsetSeconds >= 0.0) || Double.IsInfinity offsetSeconds then
            raise (ArgumentOutOfRangeException("offsetSeconds", offsetSeconds, sprintf "%s: offset must be a finite number of seconds >= 0" name))
        let startFrame = Math.Round(offsetSeconds * float sampleRate)
        let start = if startFrame >= float frames then frames else int64 startFrame
        let stop =
            match durationSeconds with
            | None -> frames
            | Some d when d >= 0.0 ->
                let n = Math.Round(d * float sampleRate)
                if n >= float (frames - start) then frames else start + int64 n
            | Some d ->
                raise (ArgumentOutOfRangeException("durationSeconds", d, sprintf "%s: duration must be >= 0 seconds" name))
        if stop - start > AudioLimits.maxFrames channels then raise (AudioLimits.tooLong name channels (stop - start))
        start, int (stop - start)

    let private frameRange name (info: WavInfo) offsetSeconds durationSeconds =
        frameRangeOf name info.SampleRate info.Channels info.Frames offsetSeconds durationSeconds

    let private withSource (name: string) (stream: Stream) (body: HeadedSource -> 'T) : 'T =
        if stream.CanSeek then
            use headed = new HeadedSource(StreamSource stream)
            body headed
        else
            use copy = new MemoryStream()
            stream.CopyTo copy
            use headed = new HeadedSource(StreamSource copy)
            body headed

    let private withFileAt (start: int64) (path: string) (body: HeadedSource -> 'T) : 'T =
        use handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read)
        use headed = new HeadedSource(if start = 0L then FileSource handle :> ByteSource else OffsetSource(FileSource handle, start) :> ByteSource)
        body headed

    let private withFile (path: string) (body: HeadedSource -> 'T) : 'T = withFileAt 0L path body

    /// Reads every float sample of the data chunk in 64 KiB blocks (nothing is kept) and raises
    /// AudioFormatException at the first non-finite one; integer PCM needs no scan.
    let private scanFinite (name: string) (source: HeadedSource) (info: WavInfo) =
        if SampleCodec.isFloat info.Format && info.Frames > 0L then
            let blockAlign = info.Channels * SampleCodec.bytesPerSample info.Format
            let framesPerBlock = max 1 (65536 / blockAlign)
            let bytes = ArrayPool<byte>.Shared.Rent(framesPerBlock * blockAlign)
            let values = ArrayPool<float32>.Shared.Rent(framesPerBlock * info.Channels)
            try
                let mutable frame = 0L
                while frame < info.Frames do
                    let frames = int (min (int64 framesPerBlock) (info.Frames - frame))
                    let byteCount = frames * blockAlign
                    let got = source.ReadAt(info.DataOffset + frame * int64 blockAlign, Span<byte>(bytes, 0, byteCount))
                    if got < byteCount then
                        raise (IOException(sprintf "%s: the file shrank while being read (wanted %d bytes, got %d)" name byteCount got))
                    if info.BigEndian then SampleCodec.swapInPlace (SampleCodec.bytesPerSample info.Format) (Span<byte>(bytes, 0, byteCount))
                    let raw = ReadOnlySpan<byte>(bytes, 0, byteCount)
                    let decoded = Span<float32>(values, 0, frames * info.Channels)
                    SampleCodec.decode info.Format raw decoded
                    checkFinite name info raw (Span.op_Implicit decoded) frame
                    frame <- frame + int64 frames
            finally
                ArrayPool<byte>.Shared.Return bytes
                ArrayPool<float32>.Shared.Return values

    /// Parses the header (strict: a truncated data chunk raises AudioFormatException) and decodes frames
    /// [round(offset * sr), round((offset + duration) * sr)) clipped to the file, mixed to one channel when mix.
    let private readSource (strict: bool) (mix: bool) (offsetSeconds: float) (durationSeconds: float option) (name: string) (source: HeadedSource) : WavInfo * Audio =
        let info = parse strict name source
        let start, count = frameRange name info offsetSeconds durationSeconds
        info, decode name source info start count mix

    /// Reads and validates the header of the WAV file at path (reads no samples). A truncated data chunk
    /// gives the whole frames present and a Warning. Raises AudioFormatException for malformed or unsupported
    /// files and FileNotFoundException for a missing one. (AudioFile.readInfo reads every format.)
    let readInfo (path: string) : WavInfo = withFile path (parse false path)

    /// The header of a WAV file held in a stream (left open); name is used in error messages.
    let internal readInfoStream (name: string) (stream: Stream) : WavInfo = withSource name stream (parse false name)

    /// readInfo; when strict, a truncated data chunk raises AudioFormatException instead of giving a Warning.
    let internal readInfoWith (strict: bool) (path: string) : WavInfo = withFile path (parse strict path)

    /// readInfoWith for a WAV file that starts `start` bytes into the file (behind an ID3v2 tag).
    let internal readInfoAt (start: int64) (strict: bool) (path: string) : WavInfo = withFileAt start path (parse strict path)

    /// What a dataset scan needs to know of a file: the header (readInfoWith strict) and, for float data, a
    /// pass over every sample (64 KiB at a time, nothing kept) so that NaN or infinite samples are found before
    /// training. Raises AudioFormatException for malformed files, truncated ones when strict, and non-finite samples.
    let internal inspectAt (start: int64) (strict: bool) (path: string) : WavInfo =
        withFileAt start path (fun source ->
            let info = parse strict path source
            scanFinite path source info
            info)

    /// inspect for a WAV file held in a stream (left open); name is used in error messages.
    let internal inspectStream (strict: bool) (name: string) (stream: Stream) : WavInfo =
        withSource name stream (fun source ->
            let info = parse strict name source
            scanFinite name source info
            info)

    /// The one WAV read behind AudioFile.read, for a file: header and frames [round(offset * sr),
    /// round((offset + duration) * sr)) clipped to the file (every channel, or their mean when mix), read only where
    /// the header and the range lie. A placeholder data size reads to the end of the file; a truncated data chunk gives
    /// the whole frames present and a Warning (strict: AudioFormatException); AudioFormatException for malformed or
    /// unsupported files and NaN or infinite samples in the range ("non-finite samples").
    let internal readFileAt (start: int64) (strict: bool) (mix: bool) (offsetSeconds: float) (durationSeconds: float option) (path: string) : WavInfo * Audio =
        withFileAt start path (readSource strict mix offsetSeconds durationSeconds path)

    /// readFileAt 0: a WAV file from its first byte.
    let internal readFile (strict: bool) (mix: bool) (offsetSeconds: float) (durationSeconds: float option) (path: string) : WavInfo * Audio =
        readFileAt 0L strict mix offsetSeconds durationSeconds path

    /// readFile for a WAV file held in a stream (left open; a non-seekable stream is buffered first); name is used
    /// in error messages.
    let internal readStreamWith (strict: bool) (mix: bool) (offsetSeconds: float) (durationSeconds: float option) (name: string) (stream: Stream) : WavInfo * Audio =
        withSource name stream (readSource strict mix offsetSeconds durationSeconds name)

    /// A WAV file held in a stream (left open; a non-seekable stream is buffered first) mixed down to one channel (the
    /// mean of the channels, as librosa.to_mono); name is used in error messages. Files are read with AudioFile.read.
    /// Raises AudioFormatException for malformed or unsupported data and NaN or infinite samples.
    let readStreamMono (name: string) (stream: Stream) : Audio = snd (readStreamWith false true 0.0 None name stream)

    let private validate (audio: Audio) =
        if isNull (box audio.Samples) || audio.Samples.Length = 0 then
            invalidArg "audio" "audio must have at least one channel"
        if audio.Samples.Length > MaxChannels then
            invalidArg "audio" (sprintf "at most %d channels can be written, audio has %d" MaxChannels audio.Samples.Length)
        if audio.SampleRate <= 0 then
            invalidArg "audio" (sprintf "sample rate must be positive, was %d" audio.SampleRate)
        let n = audio.Samples.[0].Length
        audio.Samples
        |> Array.iteri (fun c s ->
            if s.Length <> n then
                invalidArg "audio" (sprintf "channel %d has %d frames, channel 0 has %d" c s.Length n))
        n

    /// Writes audio to a stream as a WAV file laid out per options (PCM values are rounded to nearest and
    /// clipped; float formats are written as given). Float files carry a fact chunk.
    let writeStreamWith (options: WavWriteOptions) (stream: Stream) (audio: Audio) : unit =
        let frames = validate audio
        let channels = audio.Samples.Length
        let bps = SampleCodec.bytesPerSample options.Format
        let blockAlign = channels * bps
        let dataBytes = int64 frames * int64 blockAlign
        // Every format but integer PCM carries cbSize and a fact chunk (float, G.711), as the WAVE specification asks.
        let isFloat = options.Format <> PcmU8 && options.Format <> Pcm16 && options.Format <> Pcm24 && options.Format <> Pcm32
        let extensible = options.Extensible || channels > 2
        let fmtSize = if extensible then 40 elif isFloat then 18 else 16
        let factSize = if isFloat then 12 else 0
        let pad = int (dataBytes &&& 1L)
        let plainTotal = 12L + 8L + int64 fmtSize + int64 factSize + 8L + dataBytes + int64 pad
        let rf64 = options.Rf64 || plainTotal - 8L > int64 UInt32.MaxValue
        let total = plainTotal + (if rf64 then 36L else 0L)
        let headerSize = int (total - dataBytes - int64 pad)
        let header = Array.zeroCreate<byte> headerSize
        let mutable p = 0
        let putId (id: string) =
            for i in 0..3 do
                header.[p + i] <- byte id.[i]
            p <- p + 4
        let put16 (v: int) =
            BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan p, uint16 v)
            p <- p + 2
        let put32 (v: uint32) =
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan p, v)
            p <- p + 4
        let put64 (v: int64) =
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan p, v)
            p <- p + 8
        let clamp32 (v: int64) = if v > int64 UInt32.MaxValue then UInt32.MaxValue else uint32 v
        if rf64 then
            putId "RF64"
            put32 UInt32.MaxValue
            putId "WAVE"
            putId "ds64"
            put32 28u
            put64 (total - 8L)
            put64 dataBytes
            put64 (int64 frames)
            put32 0u
        else
            putId "RIFF"
            put32 (uint32 (total - 8L))
            putId "WAVE"
        putId "fmt "
        put32 (uint32 fmtSize)
        let code =
            match options.Format with
            | Float32 | Float64 -> 3
            | SampleFormat.ALaw -> 6
            | SampleFormat.MuLaw -> 7
            | _ -> 1
        put16 (if extensible then 0xFFFE else code)
        put16 channels
        put32 (uint32 audio.SampleRate)
        put32 (clamp32 (int64 audio.SampleRate * int64 blockAlign))
        put16 blockAlign
        put16 (8 * bps)
        if extensible then
            put16 22
            put16 (8 * bps)
            put32 (if channels = 1 then 0x4u elif channels = 2 then 0x3u else 0u)
            put16 code
            for b in guidTail do
                header.[p] <- b
                p <- p + 1
        elif isFloat then
            put16 0
        if isFloat then
            putId "fact"
            put32 4u
            put32 (clamp32 (int64 frames))
        putId "data"
        put32 (if rf64 then UInt32.MaxValue else uint32 dataBytes)
        stream.Write(header, 0, headerSize)
        if frames > 0 then
            let framesPerBlock = max 1 (65536 / blockAlign)
            let bytes = ArrayPool<byte>.Shared.Rent(framesPerBlock * blockAlign)
            let inter = ArrayPool<float32>.Shared.Rent(framesPerBlock * channels)
            try
                let mutable done' = 0
                while done' < frames do
                    let n = min framesPerBlock (frames - done')
                    for c in 0 .. channels - 1 do
                        let src = audio.Samples.[c]
                        let mutable j = c
                        for f in 0 .. n - 1 do
                            inter.[j] <- src.[done' + f]
                            j <- j + channels
                    SampleCodec.encode options.Format (ReadOnlySpan<float32>(inter, 0, n * channels)) (Span<byte>(bytes, 0, n * blockAlign))
                    stream.Write(bytes, 0, n * blockAlign)
                    done' <- done' + n
            finally
                ArrayPool<byte>.Shared.Return bytes
                ArrayPool<float32>.Shared.Return inter
        if pad = 1 then stream.WriteByte 0uy

    /// Writes audio to a stream as a WAV file (plain RIFF; WAVE_FORMAT_EXTENSIBLE above 2 channels).
    let writeStream (stream: Stream) (format: SampleFormat) (audio: Audio) : unit =
        writeStreamWith { Format = format; Extensible = false; Rf64 = false } stream audio

    /// Writes audio to path as a WAV file in the given format (see writeStream), replacing any file there.
    let write (path: string) (format: SampleFormat) (audio: Audio) : unit =
        validate audio |> ignore
        use stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 65536)
        writeStream stream format audio
