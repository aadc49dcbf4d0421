namespace Hybrid.Features

open System
open System.Buffers
open System.Buffers.Binary
open System.IO
open System.Runtime.InteropServices
open System.Text

/// What an audio file of any supported format declares (read without decoding the samples, except for MP3,
/// whose frame headers are walked to count its frames).
type AudioFileInfo =
    { /// The file.
      Path: string
      /// Container: "WAV", "Sun AU", "AIFF", "AIFC", "MP3", "Ogg Vorbis" or "FLAC".
      Container: string
      /// Sample encoding as stored (e.g. "16-bit PCM", "mu-law", "32-bit float", "Vorbis").
      Encoding: string
      /// Frames per second (Hz).
      SampleRate: int
      /// Interleaved channels per frame.
      Channels: int
      /// Whole frames that can be read.
      Frames: int64
      /// A problem the reader worked around (a truncated data chunk: the whole frames present are read); None
      /// for a clean file. Strict reading raises AudioFormatException instead.
      Warning: string option }
    /// Length in seconds.
    member this.Duration = float this.Frames / float this.SampleRate

/// A sample encoding of the uncompressed containers (AU, AIFF/AIFC) read by AudioFile's own readers.
type internal RawEncoding =
    | S8
    | U8
    | S16 of bigEndian: bool
    | S24 of bigEndian: bool
    | S32 of bigEndian: bool
    | F32 of bigEndian: bool
    | F64 of bigEndian: bool
    | MuLaw
    | ALaw

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

    let isFloat =
        function
        | F32 _ | F64 _ -> true
        | _ -> false

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

    /// G.711 mu-law code to a 16-bit linear value (ITU-T G.711).
    let muLaw (code: byte) =
        let u = ~~~(int code) &&& 0xFF
        let t = (((u &&& 0x0F) <<< 3) + 0x84) <<< ((u &&& 0x70) >>> 4)
        if u &&& 0x80 <> 0 then 0x84 - t else t - 0x84

    /// G.711 A-law code to a 16-bit linear value (ITU-T G.711).
    let aLaw (code: byte) =
        let a = int code ^^^ 0x55
        let seg = (a &&& 0x70) >>> 4
        let t =
            match seg with
            | 0 -> ((a &&& 0x0F) <<< 4) + 8
            | 1 -> ((a &&& 0x0F) <<< 4) + 0x108
            | s -> (((a &&& 0x0F) <<< 4) + 0x108) <<< (s - 1)
        if a &&& 0x80 <> 0 then t else -t

    let private muTable = Array.init 256 (fun i -> float32 (muLaw (byte i)) / 32768.0f)
    let private aTable = Array.init 256 (fun i -> float32 (aLaw (byte i)) / 32768.0f)

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

/// An opened file that decodes interleaved float32 frames on request.
[<AbstractClass>]
type internal FrameReader(info: AudioFileInfo) =
    member _.Info = info
    /// Decodes frames [start, start + dst.Length / channels) into dst (interleaved); raises AudioFormatException
    /// for non-finite samples.
    abstract Read: start: int64 * dst: Span<float32> -> unit
    abstract Dispose: unit -> unit
    /// Raises AudioFormatException ("non-finite samples") at the first NaN or infinity of decoded interleaved
    /// frames that start at frame start.
    static member CheckFinite(info: AudioFileInfo, decoded: Span<float32>, start: int64) =
        let i = SampleCodec.firstNonFinite (Span.op_Implicit decoded)
        if i >= 0 then
            let v = decoded.[i]
            let what = if Single.IsNaN v then "NaN" elif v > 0.0f then "+inf" else "-inf"
            raise (
                AudioFormatException(
                    info.Path,
                    sprintf "non-finite samples: %s at frame %d, channel %d (features of NaN or infinite audio are meaningless; repair or drop the file)"
                        what (start + int64 (i / info.Channels)) (i % info.Channels)))
    interface IDisposable with
        member this.Dispose() = this.Dispose()

/// Uncompressed samples at a fixed offset of a file (AU, AIFF/AIFC).
[<Sealed>]
type internal RawFrameReader(info: AudioFileInfo, handle: Microsoft.Win32.SafeHandles.SafeFileHandle, dataOffset: int64, enc: RawEncoding) =
    inherit FrameReader(info)
    override _.Read(start, dst) =
        let channels = info.Channels
        let bps = RawCodec.bytesPerSample enc
        let total = dst.Length
        let block = 16384
        let bytes = ArrayPool<byte>.Shared.Rent(block * bps)
        try
            let mutable done' = 0
            while done' < total do
                let n = min block (total - done')
                let want = n * bps
                let offset = dataOffset + start * int64 (channels * bps) + int64 done' * int64 bps
                let mutable got = 0
                let mutable finished = false
                while not finished && got < want do
                    let r = RandomAccess.Read(handle, Span<byte>(bytes, got, want - got), offset + int64 got)
                    if r <= 0 then finished <- true else got <- got + r
                if got < want then
                    raise (IOException(sprintf "%s: the file shrank while being read (wanted %d bytes at %d, got %d)" info.Path want offset got))
                let out = dst.Slice(done', n)
                RawCodec.decode enc (ReadOnlySpan<byte>(bytes, 0, want)) out
                done' <- done' + n
        finally
            ArrayPool<byte>.Shared.Return bytes
        if RawCodec.isFloat enc then FrameReader.CheckFinite(info, dst, start)
    override _.Dispose() = handle.Dispose()

/// libsndfile, found at run time (FLAC). Only the handful of entry points needed to read.
module internal SndFile =
    [<Struct; StructLayout(LayoutKind.Sequential)>]
    type SfInfo =
        val mutable Frames: int64
        val mutable SampleRate: int
        val mutable Channels: int
        val mutable Format: int
        val mutable Sections: int
        val mutable Seekable: int

    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type OpenFn = delegate of path: byte[] * mode: int * info: byref<SfInfo> -> nativeint
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type StrErrorFn = delegate of file: nativeint -> nativeint
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type SeekFn = delegate of file: nativeint * frames: int64 * whence: int -> int64
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type ReadFloatFn = delegate of file: nativeint * buffer: nativeint * frames: int64 -> int64
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type CloseFn = delegate of file: nativeint -> int

    type Api =
        { Open: OpenFn
          StrError: StrErrorFn
          Seek: SeekFn
          ReadFloat: ReadFloatFn
          Close: CloseFn }

    let private names = [ "libsndfile.so.1"; "libsndfile.so"; "libsndfile.1.dylib"; "libsndfile.dylib"; "sndfile.dll"; "libsndfile-1.dll"; "sndfile" ]

    /// The library's entry points, or None when no libsndfile can be loaded.
    let api: Lazy<Api option> =
        lazy (
            names
            |> List.tryPick (fun name ->
                match NativeLibrary.TryLoad name with
                | true, handle -> Some handle
                | _ -> None)
            |> Option.map (fun h ->
                let get (name: string) : 'D = Marshal.GetDelegateForFunctionPointer<'D>(NativeLibrary.GetExport(h, name))
                { Open = get "sf_open"; StrError = get "sf_strerror"; Seek = get "sf_seek"; ReadFloat = get "sf_readf_float"; Close = get "sf_close" }))

    let missing (path: string) =
        AudioFormatException(
            path,
            "reading FLAC needs the system library libsndfile, which was not found; install it (Debian/Ubuntu: apt-get install libsndfile1; Fedora: dnf install libsndfile; macOS: brew install libsndfile) or convert the file to WAV (ffmpeg -i in.flac out.wav)")

/// FLAC (or anything else libsndfile reads) through libsndfile.
[<Sealed>]
type internal SndFileReader(info: AudioFileInfo, api: SndFile.Api, file: nativeint) =
    inherit FrameReader(info)
    override _.Read(start, dst) =
        if dst.Length > 0 then
            if api.Seek.Invoke(file, start, 0) < 0L then
                raise (AudioFormatException(info.Path, sprintf "libsndfile could not seek to frame %d" start))
            let frames = int64 (dst.Length / info.Channels)
            let buffer = ArrayPool<float32>.Shared.Rent dst.Length
            let pin = GCHandle.Alloc(buffer, GCHandleType.Pinned)
            try
                let got = api.ReadFloat.Invoke(file, pin.AddrOfPinnedObject(), frames)
                if got < frames then
                    raise (AudioFormatException(info.Path, sprintf "libsndfile read %d of %d frames at frame %d" got frames start))
                ReadOnlySpan<float32>(buffer, 0, dst.Length).CopyTo dst
            finally
                pin.Free()
                ArrayPool<float32>.Shared.Return buffer
            FrameReader.CheckFinite(info, dst, start)
    override _.Dispose() = api.Close.Invoke file |> ignore

/// A decoder that only reads forward (MP3 through NLayer, Ogg Vorbis through NVorbis): a range is reached by
/// decoding from the current position (or, behind it, from a freshly opened decoder) and dropping the frames
/// before it, so that every read gives exactly the samples a read from the start would (the libraries' own
/// seeking is not sample-exact).
[<Sealed>]
type internal ForwardReader(info: AudioFileInfo, reopen: unit -> IDisposable * (float32[] -> int -> int -> int)) =
    inherit FrameReader(info)
    let mutable current = reopen ()
    let mutable position = 0L
    /// Reads up to count floats into buffer at offset; returns how many (fewer only at the end).
    let fill (buffer: float32[]) (offset: int) (count: int) =
        let _, read = current
        let mutable got = 0
        let mutable finished = false
        while not finished && got < count do
            let n = read buffer (offset + got) (count - got)
            if n <= 0 then finished <- true else got <- got + n
        got
    override _.Read(start, dst) =
        if dst.Length > 0 then
            let channels = info.Channels
            if start < position then
                (fst current).Dispose()
                current <- reopen ()
                position <- 0L
            let buffer = ArrayPool<float32>.Shared.Rent(max dst.Length (4096 * channels))
            try
                while position < start do
                    let frames = int (min (start - position) 4096L)
                    let got = fill buffer 0 (frames * channels)
                    position <- if got < frames * channels then start else position + int64 frames
                let got = fill buffer 0 dst.Length
                position <- position + int64 (got / channels)
                // The frame count comes from headers; a decoder that stops short leaves zeros.
                Array.Clear(buffer, got, dst.Length - got)
                ReadOnlySpan<float32>(buffer, 0, dst.Length).CopyTo dst
            finally
                ArrayPool<float32>.Shared.Return buffer
            FrameReader.CheckFinite(info, dst, start)
    override _.Dispose() = (fst current).Dispose()

/// Reading audio of every supported format through one API: WAV (Wav), Sun .au/.snd and AIFF/AIFC (small readers
/// of our own), FLAC (the system's libsndfile, found at run time), MP3 (NLayer) and Ogg Vorbis (NVorbis). Info
/// without decoding, range reads, mono mix and resampling work the same for each; every unreadable file raises
/// AudioFormatException naming it, and so do NaN or infinite samples.
module AudioFile =
    let private fail path problem = raise (AudioFormatException(path, problem))

    /// File extensions (lower case, with the dot) that dataset scans pick up and the readers accept.
    let supportedExtensions = [| ".wav"; ".wave"; ".au"; ".snd"; ".aif"; ".aiff"; ".aifc"; ".flac"; ".mp3"; ".ogg"; ".oga" |]

    /// True when the path's extension is one of supportedExtensions (case-insensitive).
    let isSupported (path: string) =
        let ext = (nonNull (Path.GetExtension path)).ToLowerInvariant()
        Array.contains ext supportedExtensions

    let private readExactly (handle: Microsoft.Win32.SafeHandles.SafeFileHandle) (offset: int64) (count: int) =
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

    /// Sun/NeXT .au: a big-endian 24-byte header (magic, data offset, data size or 0xFFFFFFFF, encoding, rate,
    /// channels) then the samples.
    let private openAu (strict: bool) (path: string) : FrameReader =
        let handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read)
        try
            let length = RandomAccess.GetLength handle
            let h, got = readExactly handle 0L 24
            if got < 24 then fail path (sprintf "file is %d bytes long, too short for a Sun AU header (24 bytes)" length)
            let be (i: int) = BinaryPrimitives.ReadUInt32BigEndian(ReadOnlySpan<byte>(h, i, 4))
            if be 0 <> 0x2e736e64u then fail path "not a Sun AU file: it does not start with '.snd'"
            let offset, size, code, rate, channels = be 4, be 8, be 12, be 16, be 20
            if offset < 24u || int64 offset > length then fail path (sprintf "data offset %d lies outside the header or the file (%d bytes)" offset length)
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
            if channels = 0u || channels > uint32 Wav.MaxChannels then fail path (sprintf "AU header declares %d channels (expected 1 to %d)" channels Wav.MaxChannels)
            if rate = 0u || rate > uint32 Int32.MaxValue then fail path (sprintf "AU header declares an impossible sample rate of %d Hz" rate)
            let blockAlign = int channels * RawCodec.bytesPerSample enc
            let available = length - int64 offset
            let declared = if size = UInt32.MaxValue then None else Some(int64 size)
            let frames, warning = rawFrames path strict declared available blockAlign
            let info =
                { Path = path; Container = "Sun AU"; Encoding = RawCodec.describe enc; SampleRate = int rate; Channels = int channels
                  Frames = frames; Warning = warning }
            new RawFrameReader(info, handle, int64 offset, enc) :> FrameReader
        with _ ->
            handle.Dispose()
            reraise ()

    /// IEEE 754 80-bit extended (AIFF's sample rate) to a double.
    let private extended (b: ReadOnlySpan<byte>) =
        let exponent = (int (b.[0] &&& 0x7Fuy) <<< 8) ||| int b.[1]
        let mantissa = BinaryPrimitives.ReadUInt64BigEndian(b.Slice 2)
        if exponent = 0 && mantissa = 0UL then 0.0
        else
            let v = float mantissa * Math.Pow(2.0, float (exponent - 16383 - 63))
            if b.[0] &&& 0x80uy <> 0uy then -v else v

    /// AIFF and AIFC: big-endian FORM chunks; COMM gives channels, frames, bits and the 80-bit rate (AIFC: the
    /// compression type), SSND the samples after its offset field.
    let private openAiff (strict: bool) (path: string) : FrameReader =
        let handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read)
        try
            let length = RandomAccess.GetLength handle
            let h, got = readExactly handle 0L 12
            let id (b: byte[]) (i: int) = Encoding.ASCII.GetString(b, i, 4)
            if got < 12 || id h 0 <> "FORM" then fail path "not an AIFF file: it does not start with 'FORM'"
            let form = id h 8
            if form <> "AIFF" && form <> "AIFC" then fail path (sprintf "FORM type is '%s', expected 'AIFF' or 'AIFC'" form)
            let mutable pos = 12L
            let mutable comm = None
            let mutable ssnd = None
            while (comm.IsNone || ssnd.IsNone) && pos + 8L <= length do
                let c, _ = readExactly handle pos 8
                let name = id c 0
                let size = int64 (BinaryPrimitives.ReadUInt32BigEndian(ReadOnlySpan<byte>(c, 4, 4)))
                let body = pos + 8L
                if name = "COMM" then
                    if size < 18L || body + size > length then fail path (sprintf "COMM chunk is %d bytes (at least 18 expected, within the file)" size)
                    let b, _ = readExactly handle body (int (min size 64L))
                    let channels = int (BinaryPrimitives.ReadInt16BigEndian(ReadOnlySpan<byte>(b, 0, 2)))
                    let frames = int64 (BinaryPrimitives.ReadUInt32BigEndian(ReadOnlySpan<byte>(b, 2, 4)))
                    let bits = int (BinaryPrimitives.ReadInt16BigEndian(ReadOnlySpan<byte>(b, 6, 2)))
                    let rate = extended (ReadOnlySpan<byte>(b, 8, 10))
                    let compression = if form = "AIFC" && size >= 22L then id b 18 else "NONE"
                    comm <- Some(channels, frames, bits, rate, compression)
                elif name = "SSND" then
                    let b, n = readExactly handle body 8
                    if n < 8 then fail path "SSND chunk is cut off before its offset field"
                    let offset = int64 (BinaryPrimitives.ReadUInt32BigEndian(ReadOnlySpan<byte>(b, 0, 4)))
                    ssnd <- Some(body + 8L + offset, size - 8L - offset, size)
                pos <- body + size + (size &&& 1L)
            match comm, ssnd with
            | None, _ -> fail path "no COMM chunk before the end of the file"
            | _, None -> fail path "no SSND chunk before the end of the file"
            | Some(channels, frames, bits, rate, compression), Some(dataOffset, dataSize, ssndSize) ->
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
                if channels < 1 || channels > Wav.MaxChannels then fail path (sprintf "COMM chunk declares %d channels (expected 1 to %d)" channels Wav.MaxChannels)
                if not (rate >= 1.0 && rate <= float Int32.MaxValue) then fail path (sprintf "COMM chunk declares an impossible sample rate of %g Hz" rate)
                if abs (rate - Math.Round rate) > 1e-6 then fail path (sprintf "sample rate %g Hz is not a whole number of hertz" rate)
                let blockAlign = channels * RawCodec.bytesPerSample enc
                // A streaming writer (ffmpeg to a pipe) leaves 0 or 0xFFFFFFFF as the frame count and SSND size it could
                // not fill in: the samples then run to the end of the file, in whole frames, as WAV placeholders do.
                let placeholder = (frames = 0L || frames = 0xFFFFFFFFL) && (ssndSize = 0L || ssndSize = 0xFFFFFFFFL)
                let available =
                    if placeholder then max 0L (length - dataOffset)
                    else max 0L (min (max 0L dataSize) (length - dataOffset))
                let declared = if placeholder then None else Some(frames * int64 blockAlign)
                let frames, warning = rawFrames path strict declared available blockAlign
                let info =
                    { Path = path; Container = (if form = "AIFC" then "AIFC" else "AIFF"); Encoding = RawCodec.describe enc
                      SampleRate = int (Math.Round rate); Channels = channels; Frames = frames; Warning = warning }
                new RawFrameReader(info, handle, dataOffset, enc) :> FrameReader
        with _ ->
            handle.Dispose()
            reraise ()

    let private openSndFile (path: string) : FrameReader =
        match SndFile.api.Value with
        | None -> raise (SndFile.missing path)
        | Some api ->
            let mutable info = SndFile.SfInfo()
            let file = api.Open.Invoke(Encoding.UTF8.GetBytes(path + "\000"), 0x10, &info)
            if file = 0n then
                let message = Marshal.PtrToStringUTF8(api.StrError.Invoke 0n) |> Option.ofObj |> Option.defaultValue "unknown error"
                fail path (sprintf "libsndfile cannot read it: %s" message)
            if info.Channels < 1 || info.SampleRate < 1 then
                api.Close.Invoke file |> ignore
                fail path (sprintf "libsndfile reports %d channels at %d Hz" info.Channels info.SampleRate)
            let meta =
                { Path = path; Container = "FLAC"; Encoding = "FLAC"; SampleRate = info.SampleRate; Channels = info.Channels
                  Frames = max 0L info.Frames; Warning = None }
            new SndFileReader(meta, api, file) :> FrameReader

    /// Which reader a file needs: by its first bytes where they say, else by its extension.
    let private kindOf (path: string) =
        let head =
            try
                use s = File.OpenRead path
                let b = Array.zeroCreate<byte> 12
                let n = s.Read(b, 0, 12)
                Encoding.ASCII.GetString(b, 0, n)
            with :? IOException | :? UnauthorizedAccessException -> ""
        if head.StartsWith "RIFF" || head.StartsWith "RF64" || head.StartsWith "BW64" then "wav"
        elif head.StartsWith ".snd" then "au"
        elif head.StartsWith "FORM" then "aiff"
        elif head.StartsWith "fLaC" then "flac"
        elif head.StartsWith "OggS" then "ogg"
        elif head.StartsWith "ID3" then "mp3"
        else
            match (nonNull (Path.GetExtension path)).ToLowerInvariant() with
            | ".au" | ".snd" -> "au"
            | ".aif" | ".aiff" | ".aifc" -> "aiff"
            | ".flac" -> "flac"
            | ".ogg" | ".oga" -> "ogg"
            | ".mp3" -> "mp3"
            | _ -> "wav"

    let private wavInfo (path: string) (w: WavInfo) =
        { Path = path; Container = "WAV"; Encoding = sprintf "%A" w.Format; SampleRate = w.SampleRate; Channels = w.Channels
          Frames = w.Frames; Warning = w.Warning }

    let private openMp3 (path: string) : FrameReader =
        let create () =
            try new NLayer.MpegFile(path)
            with e when not (e :? IOException || e :? UnauthorizedAccessException) -> fail path (sprintf "not a readable MP3 file: %s" e.Message)
        let file = create ()
        let info =
            try
                if file.SampleRate < 1 || file.Channels < 1 then fail path "no MPEG audio frames found"
                { Path = path; Container = "MP3"; Encoding = "MPEG audio"; SampleRate = file.SampleRate; Channels = file.Channels
                  Frames = file.Length / (4L * int64 file.Channels); Warning = None }
            finally
                file.Dispose()
        new ForwardReader(info, fun () ->
            let f = create ()
            f :> IDisposable, (fun buffer offset count -> f.ReadSamples(buffer, offset, count))) :> FrameReader

    let private openOgg (path: string) : FrameReader =
        let create () =
            try new NVorbis.VorbisReader(path)
            with e when not (e :? IOException || e :? UnauthorizedAccessException) -> fail path (sprintf "not a readable Ogg Vorbis file: %s" e.Message)
        let file = create ()
        let info =
            try
                if file.SampleRate < 1 || file.Channels < 1 then fail path "no Vorbis stream found"
                { Path = path; Container = "Ogg Vorbis"; Encoding = "Vorbis"; SampleRate = file.SampleRate; Channels = file.Channels
                  Frames = max 0L file.TotalSamples; Warning = None }
            finally
                file.Dispose()
        new ForwardReader(info, fun () ->
            let f = create ()
            f :> IDisposable, (fun buffer offset count -> f.ReadSamples(buffer, offset, count))) :> FrameReader

    let private openReader (strict: bool) (path: string) : FrameReader =
        if not (File.Exists path) then raise (FileNotFoundException(sprintf "%s: no such file" path, path))
        match kindOf path with
        | "au" -> openAu strict path
        | "aiff" -> openAiff strict path
        | "flac" -> openSndFile path
        | "mp3" -> openMp3 path
        | "ogg" -> openOgg path
        | _ -> Wav.readInfoWith strict path |> ignore; fail path "not a WAV file" 

    /// Decodes frames [start, start + count) of an open reader into channel-major arrays (mixed to one channel when
    /// mix), in blocks.
    let private decodeRange (reader: FrameReader) (start: int64) (count: int) (mix: bool) : Audio =
        let info = reader.Info
        let channels = info.Channels
        let outputs = if mix || channels = 1 then 1 else channels
        let samples = Array.init outputs (fun _ -> Array.zeroCreate<float32> count)
        let block = max 1 (16384 / channels)
        let inter = ArrayPool<float32>.Shared.Rent(block * channels)
        try
            let mutable done' = 0
            while done' < count do
                let n = min block (count - done')
                let span = Span<float32>(inter, 0, n * channels)
                reader.Read(start + int64 done', span)
                if outputs = 1 && channels > 1 then
                    let norm = 1.0f / float32 channels
                    for f in 0 .. n - 1 do
                        let mutable sum = 0.0f
                        for c in 0 .. channels - 1 do
                            sum <- sum + inter.[f * channels + c]
                        samples.[0].[done' + f] <- sum * norm
                else
                    for c in 0 .. outputs - 1 do
                        let dst = samples.[c]
                        for f in 0 .. n - 1 do
                            dst.[done' + f] <- inter.[f * channels + c]
                done' <- done' + n
        finally
            ArrayPool<float32>.Shared.Return inter
        { SampleRate = info.SampleRate; Samples = samples }

    let private frameRange (path: string) (info: AudioFileInfo) offsetSeconds durationSeconds =
        Wav.frameRangeOf path info.SampleRate info.Frames offsetSeconds durationSeconds

    let private readWith (strict: bool) (mix: bool) (path: string) (offsetSeconds: float) (durationSeconds: float option) : AudioFileInfo * Audio =
        match kindOf path with
        | "wav" when File.Exists path ->
            let w, audio =
                if offsetSeconds = 0.0 && durationSeconds.IsNone then
                    if mix then Wav.readMonoWithInfo strict path else Wav.readWithInfo strict path
                else
                    let w = Wav.readInfoWith strict path
                    w, (if mix then Wav.readRangeMono path offsetSeconds durationSeconds else Wav.readRange path offsetSeconds durationSeconds)
            wavInfo path w, audio
        | _ ->
            use reader = openReader strict path
            let start, count = frameRange path reader.Info offsetSeconds durationSeconds
            reader.Info, decodeRange reader start count mix

    /// Reads the header of any supported file (no samples decoded; MP3 frame headers are walked). A truncated
    /// data region gives the whole frames present and a Warning; when strict it raises AudioFormatException.
    /// Raises AudioFormatException for malformed or unsupported files (FLAC without libsndfile: how to get it) and
    /// FileNotFoundException for a missing one.
    let readInfoWith (strict: bool) (path: string) : AudioFileInfo =
        match kindOf path with
        | "wav" when File.Exists path -> wavInfo path (Wav.readInfoWith strict path)
        | _ ->
            use reader = openReader strict path
            reader.Info

    /// readInfoWith false.
    let readInfo (path: string) : AudioFileInfo = readInfoWith false path

    /// What a dataset scan needs: the header (readInfoWith strict) and a pass over every sample of formats that can
    /// hold NaN or infinities (float WAV/AU/AIFF, FLAC, MP3, Ogg), in blocks with nothing kept. Raises
    /// AudioFormatException for malformed files, truncated ones when strict, and non-finite samples.
    let inspect (strict: bool) (path: string) : AudioFileInfo =
        match kindOf path with
        | "wav" when File.Exists path -> wavInfo path (Wav.inspect strict path)
        | _ ->
            use reader = openReader strict path
            let info = reader.Info
            let needsScan = not (info.Encoding.Contains "PCM" || info.Encoding = "mu-law" || info.Encoding = "A-law")
            if needsScan then
                let block = max 1 (16384 / info.Channels)
                let buffer = ArrayPool<float32>.Shared.Rent(block * info.Channels)
                try
                    let mutable frame = 0L
                    while frame < info.Frames do
                        let n = int (min (int64 block) (info.Frames - frame))
                        reader.Read(frame, Span<float32>(buffer, 0, n * info.Channels))
                        frame <- frame + int64 n
                finally
                    ArrayPool<float32>.Shared.Return buffer
            info

    /// Every channel of the file with its header (whose Warning tells a truncated file); strict refuses truncation.
    let readWithInfo (strict: bool) (path: string) : AudioFileInfo * Audio = readWith strict false path 0.0 None

    /// readWithInfo mixed down to one channel (the mean of the channels, as librosa.to_mono).
    let readMonoWithInfo (strict: bool) (path: string) : AudioFileInfo * Audio = readWith strict true path 0.0 None

    /// Every channel of any supported file (soundfile.read transposed). Raises AudioFormatException for unreadable
    /// files and NaN or infinite samples.
    let read (path: string) : Audio = snd (readWith false false path 0.0 None)

    /// read mixed down to one channel.
    let readMono (path: string) : Audio = snd (readWith false true path 0.0 None)

    /// Frames [round(offset * sr), round((offset + duration) * sr)) clipped to the file (librosa.load's offset and
    /// duration): uncompressed formats and FLAC read only that range; MP3 and Ogg decode from the start and drop
    /// the frames before it.
    let readRange (path: string) (offsetSeconds: float) (durationSeconds: float option) : Audio =
        snd (readWith false false path offsetSeconds durationSeconds)

    /// readRange mixed down to one channel.
    let readRangeMono (path: string) (offsetSeconds: float) (durationSeconds: float option) : Audio =
        snd (readWith false true path offsetSeconds durationSeconds)

    /// librosa.load(path, sr=sampleRate, mono=True): one channel at sampleRate Hz (band-limited resampling when
    /// the file's rate differs).
    let load (sampleRate: int) (path: string) : float32[] =
        let audio = readMono path
        let samples = audio.Samples.[0]
        if audio.SampleRate = sampleRate then samples else Resample.resample audio.SampleRate sampleRate samples
