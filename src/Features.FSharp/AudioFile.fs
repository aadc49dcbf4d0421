namespace Hybrid.Features

open System
open System.IO
open System.Text

/// Reading audio of every supported format through one API, librosa.load's (AudioFile.read): WAV/RF64 (Wav), Sun
/// .au/.snd and AIFF/AIFC (readers of our own), MPEG audio layers I-III (.mp3, .mp2: frames found by Hybrid, decoded
/// by NLayer), Ogg Vorbis (Ogg pages read by Hybrid, decoded by NVorbis) and FLAC (the system's libsndfile, found at
/// run time, which also reads Ogg Opus and Ogg FLAC). The format is recognised by content (an ID3v2 tag in front is
/// looked behind), else by extension. Lengths come from the data: headers' counts are only hints. Every unreadable
/// file raises AudioFormatException naming it (and the codec, for a failure inside a decoding library), and so do NaN
/// or infinite samples; no read decodes or keeps more than AudioLimits.MaxSamples samples.
module AudioFile =
    let private fail path problem = raise (AudioFormatException(path, problem))

    /// File extensions (lower case, with the dot) that dataset scans pick up and the readers accept.
    let supportedExtensions =
        [| ".wav"; ".wave"; ".rf64"; ".au"; ".snd"; ".aif"; ".aiff"; ".aifc"; ".flac"; ".mp3"; ".mp2"; ".mpa"; ".ogg"; ".oga" |]

    /// True when the path's extension is one of supportedExtensions (case-insensitive).
    let isSupported (path: string) =
        let ext = (nonNull (Path.GetExtension path)).ToLowerInvariant()
        Array.contains ext supportedExtensions

    /// The options of librosa.load(path, sr=None, mono=True, offset=0.0, duration=None): the file's own rate, one
    /// channel (the mean of the channels), the whole file, truncated recordings read with a Warning.
    let defaults: ReadOptions = { SampleRate = None; Mono = true; Offset = 0.0; Duration = None; Strict = false }

    type private Kind =
        | WavFile
        | AuFile
        | AiffFile
        | FlacFile
        | OggFile
        | MpegFile

    /// Up to `count` bytes of the file at `offset`.
    let private bytesAt (path: string) (offset: int64) (count: int) =
        use stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.RandomAccess)
        if offset >= stream.Length then [||]
        else
            stream.Position <- offset
            let buffer = Array.zeroCreate<byte> (int (min (int64 count) (stream.Length - offset)))
            stream.ReadExactly(buffer, 0, buffer.Length)
            buffer

    let private startsWith (bytes: byte[]) (at: int) (text: string) =
        at + text.Length <= bytes.Length && Encoding.ASCII.GetString(bytes, at, text.Length) = text

    /// The container whose magic number starts head at `at`, if any.
    let private magicAt (head: byte[]) (at: int) =
        if startsWith head at "RIFF" || startsWith head at "RF64" || startsWith head at "BW64" || startsWith head at "RIFX" then Some WavFile
        elif startsWith head at ".snd" then Some AuFile
        elif startsWith head at "FORM" then Some AiffFile
        elif startsWith head at "fLaC" then Some FlacFile
        elif startsWith head at "OggS" then Some OggFile
        else None

    /// Which reader a file needs and where its container starts: by its content (magic numbers; behind ID3v2 tags,
    /// those of WAV, AU, AIFF, FLAC or Ogg, else MPEG audio; else a run of MPEG frames at the start), else by its
    /// extension. None for a file that is none of them. FLAC, Ogg and MPEG readers skip a tag themselves (start 0).
    let private kindOf (path: string) : (Kind * int64) option =
        let length = FileInfo(path).Length
        let head = bytesAt path 0L 65536
        let whole = int64 head.Length = length
        match magicAt head 0 with
        | Some kind -> Some(kind, 0L)
        | None when startsWith head 0 "ID3" ->
            let tags = max 10 (Mpeg.id3v2Length head 0)
            match magicAt (bytesAt path (int64 tags) 4) 0 with
            | Some((WavFile | AuFile | AiffFile) as kind) -> Some(kind, int64 tags)
            | Some kind -> Some(kind, 0L)
            | None -> Some(MpegFile, 0L)
        | None when Mpeg.startsStream head 0 whole -> Some(MpegFile, 0L)
        | None ->
            match (nonNull (Path.GetExtension path)).ToLowerInvariant() with
            | ".wav" | ".wave" | ".rf64" -> Some(WavFile, 0L)
            | ".au" | ".snd" -> Some(AuFile, 0L)
            | ".aif" | ".aiff" | ".aifc" -> Some(AiffFile, 0L)
            | ".flac" -> Some(FlacFile, 0L)
            | ".ogg" | ".oga" -> Some(OggFile, 0L)
            | ".mp3" | ".mp2" | ".mpa" -> Some(MpegFile, 0L)
            | _ -> None

    /// The kind, FileNotFoundException for a missing file, AudioFormatException for an unrecognised one.
    let private kindOrFail (path: string) =
        if not (File.Exists path) then raise (FileNotFoundException(sprintf "%s: no such file" path, path))
        match kindOf path with
        | Some kind -> kind
        | None ->
            let head = bytesAt path 0L 4
            let shown = head |> Array.map (fun b -> if b >= 32uy && b < 127uy then string (char b) else sprintf "\\x%02X" b) |> String.concat ""
            fail path (sprintf "not a recognised audio file: it starts with '%s' (WAV/RF64, Sun AU, AIFF/AIFC, FLAC, Ogg Vorbis and MPEG audio are recognised by their content)" shown)

    /// The whole file (the compressed readers parse it in memory: never more than its own size is held).
    let private readAll (path: string) =
        let length = FileInfo(path).Length
        if length > int64 Array.MaxLength then fail path (sprintf "compressed files over %d bytes are not read (this one has %d)" Array.MaxLength length)
        File.ReadAllBytes path

    /// Opens any format except WAV.
    let private openDecoder (kind: Kind, start: int64) (strict: bool) (path: string) : FrameDecoder =
        match kind with
        | AuFile -> RawFormats.openAu start strict path
        | AiffFile -> RawFormats.openAiff start strict path
        | FlacFile -> SndFile.openFile path "FLAC"
        | MpegFile ->
            let decoder = Mpeg.openData strict path (readAll path)
            // NLayer takes the Huffman region boundary of short blocks at sample 36 for every rate; MPEG-2.5 at 8 kHz
            // puts it at 72 (ISO/IEC 13818-3 as mpg123 reads it), so NLayer's decode of such streams is wrong wherever
            // a short block occurs. They go to libsndfile (mpg123) where it is installed.
            if decoder.Info.Encoding = "MPEG-2.5 layer III" && decoder.Info.SampleRate = 8000 && SndFile.api.Value.IsSome then
                decoder.Dispose()
                SndFile.openFile path "MPEG audio"
            else decoder
        | OggFile ->
            let data = readAll path
            let codecs = OggVorbis.codecs data
            if not (List.contains "Vorbis" codecs) && (List.contains "Opus" codecs || List.contains "FLAC" codecs) && SndFile.api.Value.IsSome then
                SndFile.openFile path ("Ogg " + String.concat ", " codecs)
            else OggVorbis.openData path data
        | WavFile -> invalidOp "WAV files are read by Wav"

    let private wavEncoding =
        function
        | PcmU8 -> "unsigned 8-bit PCM"
        | Pcm16 -> "16-bit PCM"
        | Pcm24 -> "24-bit PCM"
        | Pcm32 -> "32-bit PCM"
        | Float32 -> "32-bit float"
        | Float64 -> "64-bit float"
        | SampleFormat.MuLaw -> "mu-law"
        | SampleFormat.ALaw -> "A-law"

    let private wavInfo (path: string) (w: WavInfo) =
        { Path = path; Container = "WAV"; Encoding = wavEncoding w.Format; SampleRate = w.SampleRate; Channels = w.Channels
          Frames = w.Frames; Warning = w.Warning }

    /// A decoder's header with the frame count `frames` and any warning met while decoding; strict refuses a warning,
    /// and a decoder that stopped with an error before its first frame is an error.
    let private finish (strict: bool) (decoder: FrameDecoder) (frames: int64) =
        match decoder.Warning with
        | Some w when frames = 0L && decoder.Info.Warning.IsNone -> fail decoder.Info.Path (sprintf "no frame could be decoded (%s)" w)
        | Some w when strict && decoder.Info.Warning.IsNone -> fail decoder.Info.Path (w + " (strict reading refuses it)")
        | w -> { decoder.Info with Frames = frames; Warning = w }

    let private checkOptions (options: ReadOptions) =
        match options.SampleRate with
        | Some r when r < AudioLimits.MinSampleRate || r > AudioLimits.MaxSampleRate ->
            raise (ArgumentOutOfRangeException("SampleRate", r, sprintf "sample rates must lie in %d .. %d Hz" AudioLimits.MinSampleRate AudioLimits.MaxSampleRate))
        | _ -> ()
        if not (options.Offset >= 0.0) || Double.IsInfinity options.Offset then
            raise (ArgumentOutOfRangeException("Offset", options.Offset, "offset must be a finite number of seconds >= 0"))
        match options.Duration with
        | Some d when not (d >= 0.0) -> raise (ArgumentOutOfRangeException("Duration", d, "duration must be >= 0 seconds"))
        | _ -> ()

    /// librosa.load: frames [round(Offset * sr), round((Offset + Duration) * sr)) of the file at path, clipped to its
    /// end (sr the file's rate), every channel or their mean (Mono), resampled to SampleRate when given, with the
    /// file's header. Result: Audio.Samples is [channels][frames] (one channel when Mono), float32 scaled as soundfile
    /// scales (integers / 2^(bits-1); float data as stored), Audio.SampleRate the result's rate in Hz; the info's
    /// Frames is the whole file's length (a range read of Ogg Vorbis or FLAC decodes on to the end to count it).
    /// WAV, AU and AIFF read only the header and the range; compressed formats decode from the start (never seeking)
    /// and drop the frames before the range. A recording cut off mid-write gives its whole frames and a Warning
    /// (Strict: AudioFormatException). Raises AudioFormatException naming the file for malformed, unsupported or
    /// damaged files (a decoding library's failure names the codec), sample rates outside AudioLimits, NaN or infinite
    /// samples ("non-finite samples") and reads past AudioLimits.MaxSamples; FileNotFoundException for a missing file;
    /// ArgumentOutOfRangeException for a negative or infinite Offset, a negative Duration or a SampleRate outside
    /// AudioLimits (and Resample.resample's limit on down-sampling ratios).
    let readWithInfo (options: ReadOptions) (path: string) : AudioFileInfo * Audio =
        checkOptions options
        let info, audio =
            match kindOrFail path with
            | WavFile, start ->
                let w, audio = Wav.readFileAt start options.Strict options.Mono options.Offset options.Duration path
                wavInfo path w, audio
            | kind ->
                use decoder = openDecoder kind options.Strict path
                let rate = decoder.Info.SampleRate
                let start = int64 (min 9.2e18 (Math.Round(options.Offset * float rate)))
                let count = options.Duration |> Option.map (fun d -> int64 (min 9.2e18 (Math.Round(d * float rate))))
                let skipped, samples = Decoding.range decoder start count options.Mono
                let got = int64 samples.[0].Length
                let frames =
                    match decoder.KnownFrames, count with
                    | ValueSome n, _ -> n
                    | ValueNone, Some c when got = c && skipped = start -> start + got + Decoding.count decoder
                    | ValueNone, _ -> skipped + got
                finish options.Strict decoder frames, { SampleRate = rate; Samples = samples }
        match options.SampleRate with
        | Some r when r <> audio.SampleRate ->
            info, { SampleRate = r; Samples = audio.Samples |> Array.map (Resample.resample audio.SampleRate r) }
        | _ -> info, audio

    /// readWithInfo without the header: librosa.load(path, sr, mono, offset, duration) with `options` (AudioFile.defaults
    /// is librosa's sr=None, mono=True). Shapes, units and exceptions as readWithInfo.
    let read (options: ReadOptions) (path: string) : Audio = snd (readWithInfo options path)

    /// The header of any supported file, with its length: WAV, AU and AIFF read the header only; MP3 walks its frame
    /// headers; Ogg Vorbis and FLAC are decoded to count their frames (every block checked for NaN and infinities).
    /// A truncated recording gives its whole frames and a Warning. Raises AudioFormatException for malformed or
    /// unsupported files (FLAC without libsndfile: how to get it) and FileNotFoundException for a missing one.
    let readInfo (path: string) : AudioFileInfo =
        match kindOrFail path with
        | WavFile, start -> wavInfo path (Wav.readInfoAt start false path)
        | kind ->
            use decoder = openDecoder kind false path
            match decoder.KnownFrames with
            | ValueSome n -> decoder.Info
            | ValueNone -> finish false decoder (Decoding.count decoder)

    /// What a dataset scan needs: the header (strict: truncated recordings refused) and a decode of every sample
    /// (nothing kept) so that damaged data and NaN or infinite samples are found before training (integer WAV data
    /// needs no pass). Raises AudioFormatException for malformed, damaged or unsupported files, truncated ones when
    /// strict, non-finite samples and files past AudioLimits.MaxSamples; FileNotFoundException for a missing file.
    let inspect (strict: bool) (path: string) : AudioFileInfo =
        match kindOrFail path with
        | WavFile, start -> wavInfo path (Wav.inspectAt start strict path)
        | kind ->
            use decoder = openDecoder kind strict path
            finish strict decoder (Decoding.count decoder)
