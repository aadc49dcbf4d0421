namespace Hybrid.Features

open System
open System.Buffers
open System.Collections.Generic

/// What an audio file of any supported format holds: its header's rate and channels, and its length in frames. For
/// WAV, AU and AIFF the length is the header's, checked against the file's size; for MP3 it comes from walking the
/// frames actually present; for Ogg Vorbis and FLAC from decoding the file (their headers' counts are only hints).
type AudioFileInfo =
    { /// The file.
      Path: string
      /// Container: "WAV", "Sun AU", "AIFF", "AIFC", "MP3", "MP2" or "MP1" (MPEG-1, 2 or 2.5 audio of that layer),
      /// "Ogg Vorbis", "FLAC", or (through libsndfile) "Ogg Opus" and "Ogg FLAC".
      Container: string
      /// Sample encoding as stored (e.g. "16-bit PCM", "mu-law", "32-bit float", "MPEG-1 layer III", "Vorbis").
      Encoding: string
      /// Frames per second (Hz), within AudioLimits.MinSampleRate .. MaxSampleRate.
      SampleRate: int
      /// Interleaved channels per frame, within 1 .. AudioLimits.MaxChannels.
      Channels: int
      /// Whole frames that can be read.
      Frames: int64
      /// A problem the reader worked around (a truncated data chunk or last MPEG frame, a FLAC stream that ends early:
      /// the whole frames present are read); None for a clean file. Strict reading raises AudioFormatException instead.
      Warning: string option }
    /// Length in seconds.
    member this.Duration = float this.Frames / float this.SampleRate

/// How AudioFile.read reads a file: librosa.load's parameters (sr, mono, offset, duration), plus strictness.
type ReadOptions =
    { /// Rate of the result in Hz (band-limited resampling, Resample.resample, when it differs from the file's); None
      /// keeps the file's own rate (librosa's sr=None).
      SampleRate: int option
      /// Mix the channels down to one, their mean (librosa's mono=True, librosa.to_mono); false keeps every channel.
      Mono: bool
      /// Start of the range in seconds, >= 0 (rounded to the nearest frame at the file's rate).
      Offset: float
      /// Length of the range in seconds, >= 0, clipped to the end of the file; None reads to the end.
      Duration: float option
      /// Refuse a file the reader would otherwise read with a Warning (a recording cut off mid-write).
      Strict: bool }

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

/// An opened audio file that decodes interleaved float32 frames front to back. Uncompressed formats also seek.
[<AbstractClass>]
type internal FrameDecoder(info: AudioFileInfo) =
    let mutable warning = info.Warning
    /// The header as opened (Frames: the exact count when KnownFrames, else a hint that nothing relies on).
    member _.Info = info
    /// A problem found while decoding (e.g. a stream that ends early), or the header's Warning.
    member _.Warning
        with get () = warning
        and set (value: string option) = warning <- value
    /// The exact frame count when the header, checked against the file's size, gives it (uncompressed formats).
    abstract KnownFrames: int64 voption
    default _.KnownFrames = ValueNone
    /// Decodes the next frames into dst (interleaved; room for dst.Length / channels frames); returns how many frames
    /// were decoded, 0 at the end. Raises AudioFormatException naming the file (and the codec) for damaged data.
    abstract Read: dst: Span<float32> -> int
    /// Moves exactly to frame `frame` where the format allows it (uncompressed data): true; false when the caller
    /// has to decode and drop the frames before it.
    abstract TrySeek: frame: int64 -> bool
    default _.TrySeek _ = false
    abstract Dispose: unit -> unit
    interface IDisposable with
        member this.Dispose() = this.Dispose()

/// The read loop every decoder shares: ranges, mono mix, the sample cap and the finiteness check.
module internal Decoding =
    /// Frames decoded per block (about 64 KiB of float32 per block whatever the channel count).
    let private blockFrames (channels: int) = max 1 (16384 / channels)

    /// Raises AudioFormatException ("non-finite samples") at the first NaN or infinity of decoded interleaved frames
    /// that start at frame `start`.
    let checkFinite (info: AudioFileInfo) (decoded: ReadOnlySpan<float32>) (start: int64) =
        let i = SampleCodec.firstNonFinite decoded
        if i >= 0 then
            let v = decoded.[i]
            let what = if Single.IsNaN v then "NaN" elif v > 0.0f then "+inf" else "-inf"
            raise (
                AudioFormatException(
                    info.Path,
                    sprintf "non-finite samples: %s at frame %d, channel %d (features of NaN or infinite audio are meaningless; repair or drop the file)"
                        what (start + int64 (i / info.Channels)) (i % info.Channels)))

    /// Decodes every frame (nothing kept, every block checked for NaN and infinities) and returns their count.
    /// Raises AudioFormatException past AudioLimits.MaxSamples.
    let count (decoder: FrameDecoder) : int64 =
        let info = decoder.Info
        let channels = info.Channels
        let cap = AudioLimits.maxFrames channels
        let block = blockFrames channels
        let buffer = ArrayPool<float32>.Shared.Rent(block * channels)
        try
            let mutable total = 0L
            let mutable finished = false
            while not finished do
                let n = decoder.Read(Span<float32>(buffer, 0, block * channels))
                if n <= 0 then finished <- true
                else
                    checkFinite info (ReadOnlySpan<float32>(buffer, 0, n * channels)) total
                    total <- total + int64 n
                    if total > cap then raise (AudioLimits.tooLong info.Path channels Int64.MaxValue)
            total
        finally
            ArrayPool<float32>.Shared.Return buffer

    /// Decodes and drops `frames` frames; returns how many there were (fewer at the end).
    let private skip (decoder: FrameDecoder) (frames: int64) =
        let channels = decoder.Info.Channels
        let block = blockFrames channels
        let buffer = ArrayPool<float32>.Shared.Rent(block * channels)
        try
            let mutable done' = 0L
            let mutable finished = false
            while not finished && done' < frames do
                let want = int (min (int64 block) (frames - done'))
                let n = decoder.Read(Span<float32>(buffer, 0, want * channels))
                if n <= 0 then finished <- true else done' <- done' + int64 n
            done'
        finally
            ArrayPool<float32>.Shared.Return buffer

    /// Moves `frames` interleaved frames from frame `from` of inter into the outputs at `at` (every channel, or their
    /// mean into one output when mix).
    let private scatter (inter: float32[]) (from: int) (frames: int) (channels: int) (mix: bool) (outputs: float32[][]) (at: int) =
        if mix && channels > 1 then
            let norm = 1.0f / float32 channels
            let dst = outputs.[0]
            for f in 0 .. frames - 1 do
                let mutable sum = 0.0f
                let b = (from + f) * channels
                for c in 0 .. channels - 1 do
                    sum <- sum + inter.[b + c]
                dst.[at + f] <- sum * norm
        else
            for c in 0 .. outputs.Length - 1 do
                let dst = outputs.[c]
                let mutable j = from * channels + c
                for f in 0 .. frames - 1 do
                    dst.[at + f] <- inter.[j]
                    j <- j + channels

    /// Output chunks of this many frames are filled while a length is unknown, then joined: peak memory twice the
    /// result, and nothing allocated ahead of the frames actually decoded.
    let private chunkFrames = 65536

    /// Frames [start, start + count) of the decoder (count None: to the end), as one array per channel or one holding
    /// their mean when mix, with the frames before them that the decoder held (start, or fewer when it ends before);
    /// a decoder that ends early ends the result. Every block is checked for NaN and infinities. Raises
    /// AudioFormatException when the range passes AudioLimits.MaxSamples.
    let range (decoder: FrameDecoder) (start: int64) (count: int64 option) (mix: bool) : int64 * float32[][] =
        let info = decoder.Info
        let channels = info.Channels
        let outputs = if mix || channels = 1 then 1 else channels
        let cap = AudioLimits.maxFrames channels
        let wanted = defaultArg count Int64.MaxValue
        let skipped = if decoder.TrySeek start then start else skip decoder start
        let reached = skipped = start
        let block = blockFrames channels
        let inter = ArrayPool<float32>.Shared.Rent(block * channels)
        try
            match decoder.KnownFrames with
            | ValueSome total ->
                let n = if reached then max 0L (min wanted (total - start)) else 0L
                if n > cap then raise (AudioLimits.tooLong info.Path channels n)
                let result = Array.init outputs (fun _ -> Array.zeroCreate<float32> (int n))
                let mutable done' = 0
                while int64 done' < n do
                    let want = min block (int n - done')
                    let got = decoder.Read(Span<float32>(inter, 0, want * channels))
                    if got <= 0 then
                        raise (IO.IOException(sprintf "%s: the file shrank while being read (frame %d of %d)" info.Path (start + int64 done') total))
                    checkFinite info (ReadOnlySpan<float32>(inter, 0, got * channels)) (start + int64 done')
                    scatter inter 0 got channels mix result done'
                    done' <- done' + got
                skipped, result
            | ValueNone ->
                let chunks = List<float32[][]>()
                let mutable inChunk = chunkFrames
                let mutable total = 0L
                let mutable finished = not reached
                while not finished && total < wanted do
                    let want = int (min (int64 block) (wanted - total))
                    let got = decoder.Read(Span<float32>(inter, 0, want * channels))
                    if got <= 0 then finished <- true
                    else
                        if total + int64 got > cap then raise (AudioLimits.tooLong info.Path channels (if count.IsSome then wanted else Int64.MaxValue))
                        checkFinite info (ReadOnlySpan<float32>(inter, 0, got * channels)) (start + total)
                        let mutable from = 0
                        while from < got do
                            if inChunk = chunkFrames then
                                chunks.Add(Array.init outputs (fun _ -> Array.zeroCreate<float32> chunkFrames))
                                inChunk <- 0
                            let n = min (got - from) (chunkFrames - inChunk)
                            let chunk = chunks.[chunks.Count - 1]
                            scatter inter from n channels mix chunk inChunk
                            inChunk <- inChunk + n
                            from <- from + n
                        total <- total + int64 got
                let result = Array.init outputs (fun _ -> Array.zeroCreate<float32> (int total))
                for i in 0 .. chunks.Count - 1 do
                    let n = if i = chunks.Count - 1 then inChunk else chunkFrames
                    for c in 0 .. outputs - 1 do
                        Array.Copy(chunks.[i].[c], 0, result.[c], i * chunkFrames, n)
                skipped, result
        finally
            ArrayPool<float32>.Shared.Return inter
