namespace Hybrid.Features

open System
open System.Buffers.Binary
open System.Collections.Generic
open System.IO
open NLayer

/// One MPEG audio frame header (ISO/IEC 11172-3 and 13818-3, and MPEG 2.5 for layer III), validated.
[<Struct>]
type internal MpegHeader =
    { Version: MpegVersion
      Layer: MpegLayer
      HasCrc: bool
      BitRateIndex: int
      SampleRateIndex: int
      ChannelMode: MpegChannelMode
      ModeExtension: int
      Copyright: bool
      /// Hz.
      SampleRate: int
      /// Bits per second.
      BitRate: int
      /// Bytes of the whole frame, header included.
      Length: int
      /// Samples per channel the frame decodes to.
      Samples: int }
    member h.Channels = if h.ChannelMode = MpegChannelMode.Mono then 1 else 2
    /// Whether a frame with header o can follow this one in the same stream: same version, layer, rate and channels.
    member h.Continues(o: MpegHeader) =
        o.Version = h.Version && o.Layer = h.Layer && o.SampleRateIndex = h.SampleRateIndex && o.Channels = h.Channels
    /// Bytes of layer III side information after the header (and CRC).
    member h.SideInfo =
        if h.Version = MpegVersion.Version1 then (if h.Channels = 1 then 17 else 32) else (if h.Channels = 1 then 9 else 17)

/// A frame of the file as NLayer's MpegFrameDecoder reads it: the header's fields and the frame's bits after the
/// header and CRC. Bits past the frame's end raise InvalidDataException, the decoder's "damaged frame" signal.
[<Sealed>]
type internal MpegFrameView(data: byte[]) =
    let mutable offset = 0
    let mutable header = Unchecked.defaultof<MpegHeader>
    let mutable readOffset = 0
    let mutable bucket = 0UL
    let mutable bits = 0
    member _.Set(at: int, h: MpegHeader) =
        offset <- at
        header <- h
    interface IMpegFrame with
        member _.SampleRate = header.SampleRate
        member _.SampleRateIndex = header.SampleRateIndex
        member _.FrameLength = header.Length
        member _.BitRate = header.BitRate
        member _.Version = header.Version
        member _.Layer = header.Layer
        member _.ChannelMode = header.ChannelMode
        member _.ChannelModeExtension = header.ModeExtension
        member _.SampleCount = header.Samples
        member _.BitRateIndex = header.BitRateIndex
        member _.IsCopyrighted = header.Copyright
        member _.HasCrc = header.HasCrc
        member _.IsCorrupted = false
        member _.Reset() =
            readOffset <- if header.HasCrc then 6 else 4
            bucket <- 0UL
            bits <- 0
        member _.ReadBits(count: int) =
            if count < 1 || count > 32 then raise (ArgumentOutOfRangeException("count"))
            while bits < count do
                if readOffset >= header.Length then raise (InvalidDataException "the frame ended before its data did")
                bucket <- (bucket <<< 8) ||| uint64 data.[offset + readOffset]
                readOffset <- readOffset + 1
                bits <- bits + 8
            let v = int ((bucket >>> (bits - count)) &&& ((1UL <<< count) - 1UL))
            bits <- bits - count
            v

/// NLayer's frame decoder over the frames the walk accepted, with the LAME tag's gapless trimming applied. A frame
/// NLayer cannot decode is silence of its length, as mpg123 conceals one: InvalidDataException is NLayer's own signal
/// for that (a bit reservoir that starts before the stream, a frame too short for its data); any other exception it
/// raises on a frame is concealed the same way and reported in the Warning (the first, and how many).
[<Sealed>]
type internal MpegDecoder(info: AudioFileInfo, data: byte[], frames: int[], headers: MpegHeader[], first: int64, stop: int64) =
    inherit FrameDecoder(info)
    let channels = info.Channels
    let decoder = MpegFrameDecoder()
    let view = MpegFrameView(data)
    let pcm = Array.zeroCreate<float32> (1152 * 2)
    let mutable next = 0
    let mutable pcmLength = 0
    let mutable pcmPosition = 0
    /// Output frame (counted from the first decoded sample) of pcm.[pcmPosition].
    let mutable position = 0L
    let mutable failures = 0
    let mutable firstFailure = ""
    /// Decodes the next frame into pcm: exactly its sample count, silence where NLayer finds the frame damaged.
    let decodeNext (this: FrameDecoder) =
        let h = headers.[next]
        let n = h.Samples * channels
        Array.Clear(pcm, 0, pcm.Length)
        view.Set(frames.[next], h)
        try
            decoder.DecodeFrame(view, pcm, 0) |> ignore
        with
        | :? InvalidDataException ->
            decoder.Reset()
            Array.Clear(pcm, 0, pcm.Length)
        | e ->
            decoder.Reset()
            Array.Clear(pcm, 0, pcm.Length)
            failures <- failures + 1
            if failures = 1 then firstFailure <- sprintf "frame %d at byte %d: %s: %s" next frames.[next] (e.GetType().Name) e.Message
            let message = sprintf "damaged MPEG frames decoded as silence: %d (the MPEG audio decoder, NLayer, failed first on %s)" failures firstFailure
            this.Warning <- Some(match info.Warning with Some w -> w + "; " + message | None -> message)
        pcmLength <- n
        pcmPosition <- 0
        next <- next + 1
    override _.KnownFrames = ValueSome(stop - first)
    override this.Read dst =
        let want = dst.Length / channels
        let mutable written = 0
        let mutable finished = false
        while not finished && written < want && position < stop do
            if pcmPosition = pcmLength then
                if next >= frames.Length then finished <- true else decodeNext this
            else
                let available = (pcmLength - pcmPosition) / channels
                if position < first then
                    let drop = int (min (int64 available) (first - position))
                    pcmPosition <- pcmPosition + drop * channels
                    position <- position + int64 drop
                else
                    let n = int (min (int64 (min available (want - written))) (stop - position))
                    ReadOnlySpan<float32>(pcm, pcmPosition, n * channels).CopyTo(dst.Slice(written * channels))
                    pcmPosition <- pcmPosition + n * channels
                    position <- position + int64 n
                    written <- written + n
        written
    override _.Dispose() = ()

/// MPEG audio (layers I, II and III of MPEG-1, 2 and 2.5): frames found by their headers, decoded by NLayer.
/// Nothing is taken from a header alone: the stream is the longest run of frames that follow one another (same
/// version, layer, rate and channels), re-synchronised over damaged or foreign bytes; its length is the frames
/// present (never a Xing or VBRI count), and the LAME tag's encoder delay and padding trim it as mpg123 does.
module internal Mpeg =
    let private bitRates =
        [| [| [| 0; 32; 64; 96; 128; 160; 192; 224; 256; 288; 320; 352; 384; 416; 448 |]
              [| 0; 32; 48; 56; 64; 80; 96; 112; 128; 160; 192; 224; 256; 320; 384 |]
              [| 0; 32; 40; 48; 56; 64; 80; 96; 112; 128; 160; 192; 224; 256; 320 |] |]
           [| [| 0; 32; 48; 56; 64; 80; 96; 112; 128; 144; 160; 176; 192; 224; 256 |]
              [| 0; 8; 16; 24; 32; 40; 48; 56; 64; 80; 96; 112; 128; 144; 160 |]
              [| 0; 8; 16; 24; 32; 40; 48; 56; 64; 80; 96; 112; 128; 144; 160 |] |] |]

    let private baseRates = [| 44100; 48000; 32000 |]

    /// mpg123's decoder delay: layer III output starts 529 samples after the encoder's input.
    [<Literal>]
    let DecoderDelay = 529

    /// The header at data.[at], when it is a valid frame header (free-format bit rates, reserved fields and MPEG-1
    /// layer II's forbidden bit rate and mode pairs are not) of a frame long enough for its own side information.
    let tryHeader (data: byte[]) (at: int) : MpegHeader voption =
        if at < 0 || at + 4 > data.Length then ValueNone
        else
            let h = BinaryPrimitives.ReadUInt32BigEndian(ReadOnlySpan<byte>(data, at, 4))
            let versionBits = int (h >>> 19) &&& 3
            let layerBits = int (h >>> 17) &&& 3
            let bitRateIndex = int (h >>> 12) &&& 15
            let rateIndex = int (h >>> 10) &&& 3
            if h &&& 0xFFE00000u <> 0xFFE00000u || versionBits = 1 || layerBits = 0 || bitRateIndex = 0 || bitRateIndex = 15
               || rateIndex = 3 || int h &&& 3 = 2 then
                ValueNone
            else
                let version = match versionBits with 0 -> MpegVersion.Version25 | 2 -> MpegVersion.Version2 | _ -> MpegVersion.Version1
                let layer = enum<MpegLayer> (4 - layerBits)
                let mode = enum<MpegChannelMode> (int (h >>> 6) &&& 3)
                let sampleRate = baseRates.[rateIndex] / (match version with MpegVersion.Version1 -> 1 | MpegVersion.Version2 -> 2 | _ -> 4)
                let kbps = bitRates.[if version = MpegVersion.Version1 then 0 else 1].[int layer - 1].[bitRateIndex]
                let bitRate = kbps * 1000
                let padding = int (h >>> 9) &&& 1
                let samples = if layer = MpegLayer.LayerI then 384 elif layer = MpegLayer.LayerIII && version <> MpegVersion.Version1 then 576 else 1152
                let length =
                    if layer = MpegLayer.LayerI then (12 * bitRate / sampleRate + padding) * 4
                    else samples / 8 * bitRate / sampleRate + padding
                let header =
                    { Version = version; Layer = layer; HasCrc = (h &&& 0x10000u) = 0u; BitRateIndex = bitRateIndex
                      SampleRateIndex = rateIndex; ChannelMode = mode; ModeExtension = int (h >>> 4) &&& 3
                      Copyright = (h &&& 8u) <> 0u; SampleRate = sampleRate; BitRate = bitRate; Length = length; Samples = samples }
                let forbiddenLayerII =
                    layer = MpegLayer.LayerII && version = MpegVersion.Version1
                    && ((mode <> MpegChannelMode.Mono && (kbps = 32 || kbps = 48 || kbps = 56 || kbps = 80))
                        || (mode = MpegChannelMode.Mono && kbps >= 224))
                let minimum = 4 + (if header.HasCrc then 2 else 0) + (if layer = MpegLayer.LayerIII then header.SideInfo else 0)
                if forbiddenLayerII || (version = MpegVersion.Version25 && layer <> MpegLayer.LayerIII) || length < minimum then ValueNone
                else ValueSome header

    /// Whether a tag that may sit among or after MPEG frames starts at data.[at] (ID3v1 "TAG", ID3v2, APE, Lyrics3).
    let private tagAt (data: byte[]) (at: int) =
        let starts (s: byte[]) = at + s.Length <= data.Length && ReadOnlySpan<byte>(data, at, s.Length).SequenceEqual(ReadOnlySpan<byte> s)
        starts "TAG"B || starts "ID3"B || starts "APETAGEX"B || starts "LYRICSBEGIN"B

    /// Whether `follow` frames continuing h come after the frame at `at` (fewer when, and only when, allowShort and
    /// the run ends exactly at the end of data or at a tag).
    let private runFrom (data: byte[]) (at: int) (h: MpegHeader) (follow: int) (allowShort: bool) =
        let mutable q = at + h.Length
        let mutable k = 0
        let mutable result = if q > data.Length then ValueSome allowShort else ValueNone // the frame itself is cut off
        while result.IsNone do
            if k >= follow then result <- ValueSome true
            elif q = data.Length || (q < data.Length && tagAt data q) then result <- ValueSome allowShort
            else
                match tryHeader data q with
                | ValueSome n when h.Continues n && q + n.Length <= data.Length ->
                    q <- q + n.Length
                    k <- k + 1
                | ValueSome n when h.Continues n && allowShort -> result <- ValueSome true // a cut-off last frame
                | _ -> result <- ValueSome false
        result.Value

    /// The first offset in [from, upTo] where a frame starts that `follow` continuing frames follow, with its header.
    let private findRun (data: byte[]) (from: int) (upTo: int) (follow: int) (allowShort: bool) (like: MpegHeader voption) =
        let mutable p = from
        let mutable found = ValueNone
        while found.IsNone && p <= upTo && p + 4 <= data.Length do
            if data.[p] = 0xFFuy then
                match tryHeader data p with
                | ValueSome h when (match like with ValueSome l -> l.Continues h | ValueNone -> true) && runFrom data p h follow allowShort ->
                    found <- ValueSome(struct (p, h))
                | _ -> ()
            p <- p + 1
        found

    /// Whether the bytes at data.[at] start an MPEG audio stream: a frame header that three continuing frames follow
    /// (fewer only when the data ends with them and `isWhole`: data is the whole rest of the file).
    let startsStream (data: byte[]) (at: int) (isWhole: bool) =
        match tryHeader data at with
        | ValueSome h -> runFrom data at h 3 isWhole
        | ValueNone -> false

    /// Bytes taken by ID3v2 tags at data.[at] (several may follow one another), 0 when there is none.
    let id3v2Length (data: byte[]) (at: int) =
        let mutable p = at
        let mutable more = true
        while more do
            if p + 10 <= data.Length && data.[p] = byte 'I' && data.[p + 1] = byte 'D' && data.[p + 2] = byte '3'
               && data.[p + 3] < 0xFFuy && data.[p + 4] < 0xFFuy
               && (data.[p + 6] ||| data.[p + 7] ||| data.[p + 8] ||| data.[p + 9]) &&& 0x80uy = 0uy then
                let size = (int data.[p + 6] <<< 21) ||| (int data.[p + 7] <<< 14) ||| (int data.[p + 8] <<< 7) ||| int data.[p + 9]
                let footer = if data.[p + 5] &&& 0x10uy <> 0uy then 10 else 0
                p <- p + 10 + size + footer
            else more <- false
        p - at

    /// What the frame at `at` says when it is an info frame (Xing, Info or VBRI: no audio): ValueSome with, for a
    /// Xing/Info frame with a LAME tag, (encoder delay, padding, frame count if the tag has one); ValueNone for audio.
    /// The tag sits right after the side information (LAME places it there whether or not the header announces a
    /// CRC; the offset after a CRC is tried too).
    let private infoFrame (data: byte[]) (at: int) (h: MpegHeader) : (int * int * int64 option) option voption =
        if h.Layer <> MpegLayer.LayerIII then ValueNone
        else
            let finish = at + h.Length
            let isId (p: int) (s: string) = p + 4 <= finish && data.[p] = byte s.[0] && data.[p + 1] = byte s.[1] && data.[p + 2] = byte s.[2] && data.[p + 3] = byte s.[3]
            let plain = at + 4 + h.SideInfo
            let x = if not (isId plain "Xing" || isId plain "Info") && (isId (plain + 2) "Xing" || isId (plain + 2) "Info") then plain + 2 else plain
            if isId x "Xing" || isId x "Info" then
                if x + 8 > finish then ValueSome None
                else
                    let flags = BinaryPrimitives.ReadUInt32BigEndian(ReadOnlySpan<byte>(data, x + 4, 4))
                    let frames =
                        if flags &&& 1u <> 0u && x + 12 <= finish then Some(int64 (BinaryPrimitives.ReadUInt32BigEndian(ReadOnlySpan<byte>(data, x + 8, 4))))
                        else None
                    let lame =
                        x + 8 + (if flags &&& 1u <> 0u then 4 else 0) + (if flags &&& 2u <> 0u then 4 else 0)
                        + (if flags &&& 4u <> 0u then 100 else 0) + (if flags &&& 8u <> 0u then 4 else 0)
                    let named =
                        lame + 24 <= finish
                        && Seq.forall (fun i -> Char.IsAsciiLetterOrDigit(char data.[lame + i])) [ 0..3 ]
                        && Char.IsAsciiLetter(char data.[lame])
                    if named then
                        let delay = (int data.[lame + 21] <<< 4) ||| (int data.[lame + 22] >>> 4)
                        let padding = ((int data.[lame + 22] &&& 0x0F) <<< 8) ||| int data.[lame + 23]
                        ValueSome(Some(delay, padding, frames))
                    else ValueSome None
            elif isId (at + 36) "VBRI" then ValueSome None
            else ValueNone

    let private describe (h: MpegHeader) =
        let version = match h.Version with MpegVersion.Version1 -> "1" | MpegVersion.Version2 -> "2" | _ -> "2.5"
        let layer = match h.Layer with MpegLayer.LayerI -> "I" | MpegLayer.LayerII -> "II" | _ -> "III"
        sprintf "MPEG-%s layer %s" version layer

    /// Opens the MPEG audio stream of the file at path, whose bytes are `data` (leading ID3v2 tags are skipped):
    /// walks every frame (resynchronising over damaged or foreign bytes), skips the Xing/Info/VBRI frame, and
    /// decodes with NLayer. A cut-off last frame is dropped with a Warning (strict: AudioFormatException). Raises
    /// AudioFormatException when no run of frames is found or a rate lies outside AudioLimits.
    let openData (strict: bool) (path: string) (data: byte[]) : FrameDecoder =
        let fail problem = raise (AudioFormatException(path, problem))
        let span = data
        let from = id3v2Length span 0
        // As mpg123 does, a stream starts at the first header that a continuing header follows (content detection,
        // for files without an MPEG extension, asks for three: startsStream).
        match findRun span from (data.Length - 4) 1 true ValueNone with
        | ValueNone -> fail "no MPEG audio frames found (no frame header followed by frames of the same stream)"
        | ValueSome(struct (start, reference)) ->
            AudioLimits.checkRate path "the MPEG frame header" (int64 reference.SampleRate)
            let offsets = List<int>()
            let headers = List<MpegHeader>()
            let mutable pos = start
            let mutable cut = -1
            while pos + 4 <= data.Length do
                match tryHeader span pos with
                | ValueSome h when reference.Continues h ->
                    if pos + h.Length <= data.Length then
                        offsets.Add pos
                        headers.Add h
                        pos <- pos + h.Length
                    else
                        cut <- pos
                        pos <- data.Length
                | _ ->
                    match findRun span (pos + 1) (data.Length - 4) 1 true (ValueSome reference) with
                    | ValueSome(struct (q, _)) -> pos <- q
                    | ValueNone -> pos <- data.Length
            let gapless =
                if offsets.Count > 0 then
                    match infoFrame data offsets.[0] headers.[0] with
                    | ValueSome tag ->
                        offsets.RemoveAt 0
                        headers.RemoveAt 0
                        tag
                    | ValueNone -> None
                else None
            let total = headers |> Seq.sumBy (fun h -> int64 h.Samples)
            // mpg123's gapless trimming: the encoder delay and the decoder's own delay dropped at the start; the end at
            // the tag's frame count less the padding (a hint: never past the frames present).
            let first, stop =
                match gapless with
                | Some(delay, padding, frames) ->
                    let stop =
                        match frames with
                        | Some n -> min total (n * int64 reference.Samples - int64 padding + int64 DecoderDelay)
                        | None -> total
                    min stop (int64 (delay + DecoderDelay)), stop
                | None -> 0L, total
            if offsets.Count = 0 then
                fail (if cut >= 0 then sprintf "holds no whole MPEG frame: the only one (at byte %d) is cut off" cut else "holds no MPEG audio frame besides its Xing/VBRI header")
            let warning =
                if cut >= 0 then
                    let message = sprintf "truncated file: the last MPEG frame (at byte %d) is cut off; read the %d whole frames present" cut offsets.Count
                    if strict then fail (message + " (strict reading refuses it)")
                    Some message
                else None
            let info =
                { Path = path; Container = (match reference.Layer with MpegLayer.LayerI -> "MP1" | MpegLayer.LayerII -> "MP2" | _ -> "MP3")
                  Encoding = describe reference; SampleRate = reference.SampleRate
                  Channels = reference.Channels; Frames = stop - first; Warning = warning }
            new MpegDecoder(info, data, offsets.ToArray(), headers.ToArray(), first, stop)
