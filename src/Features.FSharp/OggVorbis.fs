namespace Hybrid.Features

open System
open System.Buffers.Binary
open System.Collections.Generic
open NVorbis
open NVorbis.Contracts

/// One Ogg packet's bytes as NVorbis reads them. No granule position and no end-of-stream flag reach NVorbis: its
/// trimming by them trusts the header (a final granule far below the samples decoded makes it loop forever), so the
/// end is trimmed by VorbisDecoder instead, within what the last packet can hold.
[<Sealed>]
type internal OggPacket(bytes: byte[], resync: bool) as this =
    inherit DataPacket()
    let mutable read = 0
    do this.IsResync <- resync
    member _.Bytes = bytes
    override _.TotalBits = bytes.Length * 8
    override _.ReadNextByte() =
        if read < bytes.Length then
            read <- read + 1
            int bytes.[read - 1]
        else -1
    override _.Reset() =
        read <- 0
        base.Reset()

/// One page of an Ogg stream (RFC 3533), its CRC checked.
[<Struct>]
type internal OggPage =
    { At: int
      Flags: byte
      Granule: int64
      Serial: int
      Sequence: uint32
      Segments: int
      Body: int
      Length: int }
    member p.Continued = p.Flags &&& 1uy <> 0uy
    member p.First = p.Flags &&& 2uy <> 0uy
    member p.Last = p.Flags &&& 4uy <> 0uy

/// Ogg pages and packets (RFC 3533), read by Hybrid itself: pages with a bad CRC are skipped as lost, as libogg
/// does; a gap in a stream's page sequence drops the packet it cut and flags the next one as a resync.
module internal Ogg =
    let private crcTable =
        Array.init 256 (fun i ->
            let mutable r = uint32 i <<< 24
            for _ in 0..7 do
                r <- if r &&& 0x80000000u <> 0u then (r <<< 1) ^^^ 0x04C11DB7u else r <<< 1
            r)

    /// The page at data.[at] when its header, segment table, body and CRC are all there and right.
    let tryPage (data: byte[]) (at: int) : OggPage voption =
        if at < 0 || at + 27 > data.Length || data.[at] <> byte 'O' || data.[at + 1] <> byte 'g' || data.[at + 2] <> byte 'g'
           || data.[at + 3] <> byte 'S' || data.[at + 4] <> 0uy then
            ValueNone
        else
            let segments = int data.[at + 26]
            if at + 27 + segments > data.Length then ValueNone
            else
                let mutable body = 0
                for i in 0 .. segments - 1 do
                    body <- body + int data.[at + 27 + i]
                let length = 27 + segments + body
                if at + length > data.Length then ValueNone
                else
                    let stored = BinaryPrimitives.ReadUInt32LittleEndian(ReadOnlySpan<byte>(data, at + 22, 4))
                    let mutable crc = 0u
                    for i in 0 .. length - 1 do
                        let b = if i >= 22 && i < 26 then 0uy else data.[at + i]
                        crc <- (crc <<< 8) ^^^ crcTable.[int ((crc >>> 24) ^^^ uint32 b)]
                    if crc <> stored then ValueNone
                    else
                        ValueSome
                            { At = at; Flags = data.[at + 5]; Granule = BinaryPrimitives.ReadInt64LittleEndian(ReadOnlySpan<byte>(data, at + 6, 8))
                              Serial = BinaryPrimitives.ReadInt32LittleEndian(ReadOnlySpan<byte>(data, at + 14, 4))
                              Sequence = BinaryPrimitives.ReadUInt32LittleEndian(ReadOnlySpan<byte>(data, at + 18, 4))
                              Segments = segments; Body = at + 27 + segments; Length = length }

    /// The next good page at or after `from` (skipping damaged bytes), if any.
    let nextPage (data: byte[]) (from: int) : OggPage voption =
        let mutable p = from
        let mutable found = ValueNone
        while found.IsNone && p + 27 <= data.Length do
            match tryPage data p with
            | ValueSome page -> found <- ValueSome page
            | ValueNone ->
                let next = data.AsSpan(p + 1).IndexOf("OggS"B)
                p <- if next < 0 then data.Length else p + 1 + next
        found

    /// The packets of logical stream `serial`, front to back, until its end-of-stream page or the end of the data.
    /// The last packet completed on a page carries the page's granule position.
    [<Sealed>]
    type Packets(data: byte[], serial: int, comment: byte[] option) =
        let queue = Queue<OggPacket>()
        let partial = List<struct (int * int)>()
        let mutable position = 0
        let mutable expected = ValueNone
        let mutable finished = false
        let mutable resync = false
        let mutable skipContinuation = false
        let mutable endGranule = ValueNone
        let mutable lastGranule = 0L
        let mutable endStarted = false
        let mutable handed = 0
        let complete () =
            let total = partial |> Seq.sumBy (fun (struct (_, n)) -> n)
            let bytes = Array.zeroCreate<byte> total
            let mutable at = 0
            for struct (offset, n) in partial do
                Buffer.BlockCopy(data, offset, bytes, at, n)
                at <- at + n
            partial.Clear()
            bytes
        /// Reads pages until a packet is queued or the stream ends.
        let fill () =
            while queue.Count = 0 && not finished do
                match nextPage data position with
                | ValueNone ->
                    finished <- true
                | ValueSome page ->
                    position <- page.At + page.Length
                    if page.Serial = serial then
                        match expected with
                        | ValueSome s when s <> page.Sequence ->
                            // A lost page: the packet it cut is dropped, and the decoder told to resynchronise.
                            partial.Clear()
                            resync <- true
                        | _ -> ()
                        expected <- ValueSome(page.Sequence + 1u)
                        // A packet left unfinished by the previous page is dropped; a continuation of nothing is skipped.
                        if not page.Continued && partial.Count > 0 then partial.Clear()
                        skipContinuation <- page.Continued && partial.Count = 0
                        let completed = List<byte[]>()
                        let mutable offset = page.Body
                        for i in 0 .. page.Segments - 1 do
                            let lacing = int data.[page.At + 27 + i]
                            if not skipContinuation then partial.Add(struct (offset, lacing))
                            offset <- offset + lacing
                            if lacing < 255 then
                                if skipContinuation then skipContinuation <- false
                                else completed.Add(complete ())
                        for packet in completed do
                            queue.Enqueue(OggPacket(packet, resync))
                            resync <- false
                        if page.Last then
                            finished <- true
                            endStarted <- true
                            if page.Granule <> -1L then endGranule <- ValueSome(struct (lastGranule, page.Granule))
                        elif page.Granule <> -1L then lastGranule <- page.Granule
        /// The next packet without consuming it, or None at the end.
        member _.Peek() =
            fill ()
            if queue.Count > 0 then Some(queue.Peek()) else None
        /// The granule positions of the page before the stream's end-of-stream page (0 when none has one) and of the
        /// end-of-stream page, once it has been read (ValueNone before, and for a stream without one, e.g. a file cut
        /// short).
        member _.EndGranule = endGranule
        /// Whether the packets of the end-of-stream page have begun to be handed out.
        member _.EndStarted = endStarted
        /// The next packet, or None at the end (the second, the comment header, replaced by `comment` when given).
        member _.Next() =
            fill ()
            if queue.Count > 0 then
                handed <- handed + 1
                let packet = queue.Dequeue()
                match comment with
                | Some bytes when handed = 2 -> Some(OggPacket(bytes, false))
                | _ -> Some packet
            else None
        interface IPacketProvider with
            member _.CanSeek = false
            member _.StreamSerial = serial
            member this.GetNextPacket() = match this.Next() with Some p -> p :> IPacket | None -> Unchecked.defaultof<IPacket>
            member this.PeekNextPacket() = match this.Peek() with Some p -> p :> IPacket | None -> Unchecked.defaultof<IPacket>
            member _.SeekTo(_, _, _) = raise (NotSupportedException "the stream is read front to back")
            member _.GetGranuleCount() = raise (NotSupportedException "lengths come from decoding")

/// NVorbis's StreamDecoder over the packets of one Vorbis stream (no clipping, as libvorbis). The end-of-stream
/// page's granule position G trims the end as libsndfile and ffmpeg trim it, but only within that page: when the
/// granule P of the page before it (0 for none) and the frames decoded D satisfy P <= G < D, and never back past the
/// frames decoded since that page began, which are held until the end (frames before it are passed on as they are
/// decoded). A granule that claims more frames than are decoded never pads: the length is what decoding gives.
[<Sealed>]
type internal VorbisDecoder(info: AudioFileInfo, decoder: StreamDecoder, packets: Ogg.Packets) =
    inherit FrameDecoder(info)
    let channels = info.Channels
    /// Frames per call to NVorbis, so that the end-of-stream page is noticed within a packet or two of its start.
    let step = 512
    let mutable buffer = Array.zeroCreate<float32> (2 * step * channels)
    /// Frames of buffer already passed on, and frames in it.
    let mutable start = 0
    let mutable count = 0
    let mutable decoded = 0L
    let mutable ended = false
    let mutable trim = 0
    /// Decodes up to `step` more frames into buffer; at the end, works out the trim.
    let next () =
        if (count + step) * channels > buffer.Length then
            Array.Copy(buffer, start * channels, buffer, 0, (count - start) * channels)
            count <- count - start
            start <- 0
            if (count + step) * channels > buffer.Length then Array.Resize(&buffer, 2 * (count + step) * channels)
        let want = step * channels
        let at = count * channels
        let mutable got = 0
        let mutable finished = false
        while not finished && got < want do
            let n =
                try
                    decoder.Read(Span<float32>(buffer, at + got, want - got), 0, want - got)
                with
                | :? AudioFormatException -> reraise ()
                | e -> raise (AudioFormatException(info.Path, sprintf "Ogg Vorbis decoder (NVorbis) failed: %s: %s" (e.GetType().Name) e.Message, e))
            if n <= 0 then finished <- true else got <- got + n
        let frames = got / channels
        count <- count + frames
        decoded <- decoded + int64 frames
        if finished then
            ended <- true
            match packets.EndGranule with
            | ValueSome(struct (before, g)) when before <= g && g < decoded -> trim <- int (min (decoded - g) (int64 (count - start)))
            | _ -> ()
    /// Frames that can be passed on: all before the last page; of its frames, those the trim leaves once it ends.
    let releasable () = if ended then count - trim - start elif packets.EndStarted then 0 else count - start
    override _.Read dst =
        let want = dst.Length / channels
        let mutable written = 0
        while written < want && not (ended && releasable () <= 0) do
            let n = releasable ()
            if n > 0 then
                let m = min n (want - written)
                ReadOnlySpan<float32>(buffer, start * channels, m * channels).CopyTo(dst.Slice(written * channels))
                start <- start + m
                written <- written + m
            else next ()
        written
    override _.Dispose() = decoder.Dispose()

/// Ogg Vorbis: Ogg pages read by Hybrid, the three Vorbis headers checked against libvorbis's limits (and bounds that
/// keep a forged codebook from allocating gigabytes), audio decoded by NVorbis; the length is what decoding gives.
module internal OggVorbis =
    /// LSB-first bit reader over a packet (Vorbis I, section 2.1.4); past the end it reports the packet as too short.
    [<Sealed>]
    type private Bits(bytes: byte[], start: int, fail: string -> exn) =
        let mutable bit = int64 start * 8L
        member _.Left = int64 bytes.Length * 8L - bit
        member this.Read(count: int) : int64 =
            if int64 count > this.Left then raise (fail "the setup header ends inside a codebook")
            let mutable v = 0L
            for i in 0 .. count - 1 do
                let b = bit + int64 i
                if (int bytes.[int (b >>> 3)] >>> int (b &&& 7L)) &&& 1 <> 0 then v <- v ||| (1L <<< i)
            bit <- bit + int64 count
            v
        member this.Skip(count: int64) =
            if count > this.Left then raise (fail "the setup header ends inside a codebook's values")
            bit <- bit + count

    let private ilog (v: int64) =
        let mutable n = 0
        let mutable x = v
        while x > 0L do
            n <- n + 1
            x <- x >>> 1
        n

    /// The most codebook elements (entries x (dimensions + 16), over every codebook) a setup header may declare: 2^23,
    /// a thousand times what libvorbis's encoders use, about 128 MB of NVorbis tables.
    [<Literal>]
    let MaxCodebookElements = 8388608L

    let private startsWith (bytes: byte[]) (prefix: byte[]) =
        bytes.Length >= prefix.Length && ReadOnlySpan<byte>(bytes, 0, prefix.Length).SequenceEqual(ReadOnlySpan<byte> prefix)

    /// Checks the identification, comment and setup headers; returns (channels, rate, whether the comment header's
    /// lengths hold together).
    let private checkHeaders (path: string) (id: byte[]) (comment: byte[]) (setup: byte[]) =
        let bad problem = AudioFormatException(path, "Ogg Vorbis " + problem) :> exn
        if id.Length < 30 || not (startsWith id "\001vorbis"B) then raise (bad "identification header is missing or too short")
        if BinaryPrimitives.ReadUInt32LittleEndian(ReadOnlySpan<byte>(id, 7, 4)) <> 0u then raise (bad "identification header has a version other than 0")
        let channels = int id.[11]
        let rate = int64 (BinaryPrimitives.ReadUInt32LittleEndian(ReadOnlySpan<byte>(id, 12, 4)))
        AudioLimits.checkChannels path "the Vorbis identification header" (int64 channels)
        AudioLimits.checkRate path "the Vorbis identification header" rate
        let b0, b1 = int id.[28] &&& 15, int id.[28] >>> 4
        if b0 < 6 || b1 > 13 || b0 > b1 then raise (bad (sprintf "identification header declares block sizes 2^%d and 2^%d (64 <= short <= long <= 8192 expected)" b0 b1))
        if id.[29] &&& 1uy = 0uy then raise (bad "identification header lacks its framing bit")
        if not (startsWith comment "\003vorbis"B) then raise (bad "comment header is missing")
        // The comment header's lengths, checked; a damaged one is replaced (its text does not touch the audio).
        let commentOk =
            let mutable at = 7
            let field () =
                if at + 4 > comment.Length then Int64.MaxValue
                else
                    let n = int64 (BinaryPrimitives.ReadUInt32LittleEndian(ReadOnlySpan<byte>(comment, at, 4)))
                    at <- at + 4
                    n
            let vendor = field ()
            if vendor > int64 (comment.Length - at) then false
            else
                at <- at + int vendor
                let count = field ()
                if count > int64 (comment.Length - at) / 4L then false
                else
                    let mutable ok = true
                    let mutable i = 0L
                    while ok && i < count do
                        let n = field ()
                        if n > int64 (comment.Length - at) then ok <- false else at <- at + int n
                        i <- i + 1L
                    ok
        if not (startsWith setup "\005vorbis"B) then raise (bad "setup header is missing")
        let bits = Bits(setup, 7, fun p -> bad p)
        let books = bits.Read 8 + 1L
        let mutable elements = 0L
        for book in 0L .. books - 1L do
            if bits.Read 24 <> 0x564342L then raise (bad (sprintf "codebook %d lacks its sync pattern" book))
            let dims = bits.Read 16
            let entries = bits.Read 24
            if dims < 1L || entries < 1L || ilog dims + ilog entries > 24 then
                raise (bad (sprintf "codebook %d declares %d entries of %d dimensions (libvorbis refuses more than 2^24 values)" book entries dims))
            elements <- elements + entries * (dims + 16L)
            if elements > MaxCodebookElements then
                raise (bad (sprintf "setup header's codebooks declare more than %d elements (2^23; real encoders use a thousandth of that)" MaxCodebookElements))
            if bits.Read 1 = 1L then
                let mutable length = bits.Read 5 + 1L
                let mutable i = 0L
                while i < entries do
                    if length > 32L then raise (bad (sprintf "codebook %d has codeword lengths above 32 bits" book))
                    i <- i + bits.Read(ilog (entries - i))
                    length <- length + 1L
                if i > entries then raise (bad (sprintf "codebook %d assigns lengths to more than its %d entries" book entries))
            else
                let sparse = bits.Read 1 = 1L
                for _ in 1L .. entries do
                    if not sparse || bits.Read 1 = 1L then bits.Read 5 |> ignore
            match bits.Read 4 with
            | 0L -> ()
            | (1L | 2L) as lookup ->
                bits.Skip 64L
                let valueBits = bits.Read 4 + 1L
                bits.Skip 1L
                let values =
                    if lookup = 2L then entries * dims
                    else
                        let mutable r = int64 (Math.Floor(Math.Exp(Math.Log(float entries) / float dims)))
                        if Math.Floor(Math.Pow(float (r + 1L), float dims)) <= float entries then r <- r + 1L
                        r
                bits.Skip(values * valueBits)
            | other -> raise (bad (sprintf "codebook %d has lookup type %d (0, 1 or 2 expected)" book other))
        channels, int rate, commentOk

    /// What a stream's first packet says it holds, for the message when no Vorbis stream is found.
    let private codecOf (bytes: byte[]) =
        if startsWith bytes "OpusHead"B then "Opus"
        elif startsWith bytes [| 0x7Fuy; byte 'F'; byte 'L'; byte 'A'; byte 'C' |] then "FLAC"
        elif startsWith bytes "Speex   "B then "Speex"
        elif startsWith bytes (Array.append [| 0x80uy |] "theora"B) then "Theora video"
        elif startsWith bytes "fishead\000"B then "a Skeleton index"
        elif startsWith bytes "\001vorbis"B then "Vorbis"
        else "an unknown codec"

    /// The (serial, first bytes of the first packet) of every stream that begins in the file, in order (beginning-of-
    /// stream pages come first in an Ogg file: RFC 3533, section 4).
    let private beginnings (data: byte[]) =
        let firsts = List<struct (int * byte[])>()
        let mutable at = 0
        let mutable scanning = true
        while scanning do
            match Ogg.nextPage data at with
            | ValueSome page when page.First ->
                let n = if page.Segments > 0 then min 64 (int data.[page.At + 27]) else 0
                firsts.Add(struct (page.Serial, data.[page.Body .. page.Body + n - 1]))
                at <- page.At + page.Length
            | ValueSome page when firsts.Count = 0 -> at <- page.At + page.Length
            | _ -> scanning <- false
        firsts

    /// The codec of every stream that begins in the Ogg file whose bytes are `data` ("Vorbis", "Opus", "FLAC", ...).
    let codecs (data: byte[]) : string list =
        [ for struct (_, head) in beginnings data -> codecOf head ]

    /// Opens the first Vorbis stream of the Ogg file at path, whose bytes are `data` (other multiplexed streams and
    /// later chained ones are ignored, as libsndfile does). Raises AudioFormatException naming the codec when the file
    /// holds no Vorbis stream, and for headers outside libvorbis's limits or AudioLimits.
    let openData (path: string) (data: byte[]) : FrameDecoder =
        let fail problem = raise (AudioFormatException(path, problem))
        let firsts = beginnings data
        match firsts |> Seq.tryFind (fun (struct (_, head)) -> startsWith head "\001vorbis"B) with
        | None ->
            if firsts.Count = 0 then fail "no Ogg page found (not an Ogg file, or every page is damaged)"
            let found = firsts |> Seq.map (fun (struct (_, head)) -> codecOf head) |> Seq.distinct |> String.concat ", "
            fail (sprintf "the Ogg file holds %s, not Vorbis: Hybrid reads Ogg Vorbis itself and Ogg Opus or FLAC only through libsndfile (convert it: ffmpeg -i in.ogg out.wav)" found)
        | Some(struct (serial, _)) ->
            let packets = Ogg.Packets(data, serial, None)
            let headerPacket (name: string) =
                match packets.Next() with
                | Some p -> p.Bytes
                | None -> fail (sprintf "Ogg Vorbis stream ends before its %s header" name)
            let id = headerPacket "identification"
            let comment = headerPacket "comment"
            let setup = headerPacket "setup"
            let channels, rate, commentOk = checkHeaders path id comment setup
            let emptyComment = Array.concat [ "\003vorbis"B; Array.zeroCreate 8; [| 1uy |] ]
            let replay = Ogg.Packets(data, serial, (if commentOk then None else Some emptyComment))
            let decoder =
                try
                    new StreamDecoder(replay)
                with e ->
                    raise (AudioFormatException(path, sprintf "Ogg Vorbis decoder (NVorbis) refused the headers: %s: %s" (e.GetType().Name) e.Message, e))
            decoder.ClipSamples <- false
            let info =
                { Path = path; Container = "Ogg Vorbis"; Encoding = "Vorbis"; SampleRate = rate; Channels = channels; Frames = -1L; Warning = None }
            new VorbisDecoder(info, decoder, replay)
