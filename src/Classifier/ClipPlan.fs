namespace Hybrid.Classifier

open System
open Hybrid.Features
open Hybrid.Features.Schemas

/// Silence trimming of each recording before it is cut into clips (librosa.effects.trim at the clip plan's rate): the
/// utterance is located, and the extraction then centres it in the model's clip, at training and at prediction time.
type Trim =
    { /// Frames whose RMS is more than this many dB below the loudest frame's are silence (librosa's top_db).
      TopDb: float
      /// Samples per RMS frame (librosa's frame_length).
      FrameLength: int
      /// Samples between frames (librosa's hop_length).
      HopLength: int }

/// Parsing and formatting `--trim`.
[<RequireQualifiedAccess>]
module Trim =
    /// `none`, or `TOP_DB:FRAME_LENGTH:HOP_LENGTH` (e.g. `30:256:64`), as `--trim` takes it and model files record it.
    let format (trim: Trim option) =
        match trim with
        | None -> "none"
        | Some t -> sprintf "%s:%d:%d" (t.TopDb.ToString("R", Globalization.CultureInfo.InvariantCulture)) t.FrameLength t.HopLength

    /// Parses `none` or `TOP_DB:FRAME_LENGTH:HOP_LENGTH`. Raises ArgumentException naming --trim unless top_db lies in
    /// (0, 120] dB and the frame length and hop are positive sample counts of at most 65,536.
    let parse (text: string) : Trim option =
        let fail () =
            invalidArg "trim" (sprintf "--trim '%s': expected none or TOP_DB:FRAME_LENGTH:HOP_LENGTH (top_db in (0, 120] dB, frame and hop lengths in samples at the model's rate, 1 to 65536; e.g. 30:256:64)" text)
        match text.Trim().ToLowerInvariant() with
        | "none" -> None
        | t ->
            match t.Split ':' with
            | [| db; frame; hop |] ->
                match Double.TryParse(db, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture), Int32.TryParse frame, Int32.TryParse hop with
                | (true, d), (true, f), (true, h) when d > 0.0 && d <= 120.0 && f >= 1 && f <= 65536 && h >= 1 && h <= 65536 ->
                    Some { TopDb = d; FrameLength = f; HopLength = h }
                | _ -> fail ()
            | _ -> fail ()

    /// `trim` given at 8 kHz with its frame and hop scaled to `sampleRate` Hz (the same durations; at least 1 sample).
    let atRate (sampleRate: int) (trim: Trim) : Trim =
        let scale n = max 1 (int (Math.Round(float n * float sampleRate / 8000.0)))
        { trim with FrameLength = scale trim.FrameLength; HopLength = scale trim.HopLength }

/// How recordings become model input clips, resolved for a dataset; recorded in model files and replayed by `predict`.
type ClipPlan =
    { /// Rate every recording is resampled to, in Hz.
      SampleRate: int
      /// Samples of one model input clip: the schema's fixed length, else the duration in samples.
      ClipSamples: int
      /// Recordings are padded or cut (from the start) to this many samples before windowing (None: kept whole).
      RecordingSamples: int option
      /// (window, hop) in samples each recording is cut into (None: one clip per recording).
      Segment: (int * int) option
      /// Silence trimmed from each recording's start and end first (None: kept whole).
      Trim: Trim option
      /// Each recording (after trimming) scaled to this RMS level in dB relative to full scale (Clip.rmsNormalize; None:
      /// kept at its level).
      Loudness: float option }

/// Cutting recordings into model input clips.
[<RequireQualifiedAccess>]
module ClipPlan =
    /// A recording as the plan cuts it into windows: its silence trimmed first when the plan says so
    /// (Clip.trimInterval; a recording with nothing above the threshold is kept whole), its level set when it says so
    /// (Clip.rmsNormalize), then padded or cut to RecordingSamples. Returns the samples, the offset of their first sample
    /// in `samples` and how many of them are the recording's own (the rest is padding).
    let private prepare (plan: ClipPlan) (samples: float32[]) : float32[] * int * int =
        let start, stop =
            match plan.Trim with
            | Some t ->
                let start, stop = Clip.trimInterval t.TopDb t.FrameLength t.HopLength samples
                if stop > start && (start > 0 || stop < samples.Length) then start, stop else 0, samples.Length
            | None -> 0, samples.Length
        let trimmed = if start = 0 && stop = samples.Length then samples else samples.[start .. stop - 1]
        let levelled =
            match plan.Loudness with
            | Some dbfs -> Clip.rmsNormalize dbfs trimmed
            | None -> trimmed
        let x =
            match plan.RecordingSamples with
            | Some n -> Clip.fit n Clip.Start levelled
            | None -> levelled
        x, start, min x.Length levelled.Length

    /// (start, length) in samples of each window of a prepared recording of `n` samples: the whole recording without
    /// segments or when it is no longer than one window; else windows of the segment length every hop samples, the
    /// last one ending at the recording's end so that the tail is covered.
    let private windowStarts (plan: ClipPlan) (n: int) : (int * int)[] =
        match plan.Segment with
        | None -> [| 0, n |]
        | Some (length, _) when n <= length -> [| 0, n |]
        | Some (length, hop) ->
            let count = 1 + (n - length + hop - 1) / hop
            Array.init count (fun w -> min (w * hop) (n - length), length)

    /// The clips of one recording (samples at plan.SampleRate): its silence trimmed first when the plan says so
    /// (Clip.trimInterval; a recording with nothing above the threshold is kept whole), its level set when it says so
    /// (Clip.rmsNormalize) and its length set to RecordingSamples when the plan has one; then the recording itself
    /// without segments; else windows of the segment length every hop samples, the last one ending at the recording's
    /// end so that the tail is covered, or the whole recording when it is no longer than one window. Each clip is later
    /// padded or cut (centred) to ClipSamples by the extraction. `spans` says where each clip lies in the recording.
    let windows (plan: ClipPlan) (samples: float32[]) : float32[][] =
        let x, _, _ = prepare plan samples
        windowStarts plan x.Length |> Array.map (fun (start, length) -> if start = 0 && length = x.Length then x else Array.sub x start length)

    /// Where each clip of `windows plan samples` lies in the recording `samples` (at plan.SampleRate): (first sample,
    /// end sample, exclusive), one pair per clip in the same order. Trimmed silence is accounted for (a clip of a
    /// trimmed recording starts where the kept part does), and the zeros RecordingSamples pads with are not part of a
    /// span (a clip wholly in that padding is an empty span at the recording's end).
    let spans (plan: ClipPlan) (samples: float32[]) : (int * int)[] =
        let x, offset, own = prepare plan samples
        windowStarts plan x.Length
        |> Array.map (fun (start, length) -> offset + min start own, offset + min (start + length) own)

    /// A recording as the plan reads it, and the reader's warning for a file read only in part (a truncated
    /// recording: its whole frames): every channel averaged and resampled to plan.SampleRate (AudioFile.readWithInfo,
    /// librosa.load(path, sr=plan.SampleRate)). Raises AudioFormatException for a file that cannot be read or holds no
    /// audio frames, IOException or UnauthorizedAccessException when it cannot be opened, ArgumentOutOfRangeException
    /// when the file's rate is beyond what Resample.resample down-samples to plan.SampleRate.
    let loadWithWarning (plan: ClipPlan) (path: string) : float32[] * string option =
        let info, audio = AudioFile.readWithInfo { AudioFile.defaults with SampleRate = Some plan.SampleRate } path
        let samples = audio.Samples.[0]
        // As the dataset scan does: a recording without frames is not classified (it would be silence).
        if samples.Length = 0 then raise (AudioFormatException(path, "holds no audio frames"))
        samples, info.Warning

    /// loadWithWarning without the warning.
    let load (plan: ClipPlan) (path: string) : float32[] = fst (loadWithWarning plan path)

    /// The model input clips of the recording at `path`: `load`, then `windows`.
    let clips (plan: ClipPlan) (path: string) : float32[][] = windows plan (load plan path)

    let private seconds (plan: ClipPlan) (samples: int) = float samples / float plan.SampleRate

    /// One line for logs and reports, e.g. "8000 Hz, clips of 1.024 s, windows of 1.024 s every 0.512 s".
    let describe (plan: ClipPlan) =
        sprintf "%d Hz, clips of %g s%s%s%s%s" plan.SampleRate (seconds plan plan.ClipSamples)
            (match plan.RecordingSamples with Some n -> sprintf ", recordings cut to %g s" (seconds plan n) | None -> "")
            (match plan.Segment with
             | Some (l, h) -> sprintf ", windows of %g s every %g s averaged per recording" (seconds plan l) (seconds plan h)
             | None -> "")
            (match plan.Trim with
             | Some t -> sprintf ", silence trimmed (top_db %g, frames of %d every %d samples)" t.TopDb t.FrameLength t.HopLength
             | None -> "")
            (match plan.Loudness with
             | Some dbfs -> sprintf ", levelled to %g dBFS RMS" dbfs
             | None -> "")

    /// The longest and the median recording of `items` in seconds (1 s each for no items).
    let internal durationsOf (items: Item[]) =
        let durations = items |> Array.map (fun i -> i.Duration) |> Array.sort
        if durations.Length = 0 then 1.0, 1.0 else Array.last durations, durations.[durations.Length / 2]

    /// The rule that tells long recordings (environmental clips, music) from short ones (digits, keywords): a median
    /// over 2 s and over 1.5 clips of `clipSeconds`.
    let internal longerThanClip (median: float) (clipSeconds: float) = median > max 2.0 (1.5 * clipSeconds)

    /// Resolves the plan for a schema and a dataset's items: the rate from `sampleRate` or the schema's (a rate
    /// other than the schema's raises ArgumentException: the schema's filters are built for its rate); for a
    /// schema that takes any clip length, clips of `duration` seconds (default: the longest item, at most 5 s), or
    /// of the window length with windows;
    /// windows of `segment` seconds every `hop` seconds (default half a window) when asked, and by default for a
    /// fixed-length schema when the median item is longer than 2 s and than 1.5 times its clip (environmental clips
    /// and music tracks are then averaged over windows of the schema's clip, half overlapping, instead of being cut
    /// to one clip; short keyword and digit clips stay one clip each). A `segment` longer than the longest item (or
    /// than `duration`) raises ArgumentException naming --segment and its largest useful value. `trim` is kept as given.
    let resolve (schema: FeatureSchemaInfo) (sampleRate: int option) (duration: float option) (segment: float option) (hop: float option) (trim: Trim option) (items: Item[]) : ClipPlan =
        let schemaRate = schema.SampleRate
        let rate =
            match sampleRate with
            | Some r -> r
            | None when schemaRate > 0 -> schemaRate
            | None -> items |> Array.countBy (fun i -> i.SampleRate) |> Array.maxBy snd |> fst
        if rate <= 0 then invalidArg "sr" (sprintf "--sr must be positive, was %d" rate)
        if schemaRate > 0 && rate <> schemaRate then
            invalidArg "sr" (sprintf "--sr %d differs from the %d Hz that schema '%s' is defined at; choose a schema at that rate or leave --sr out" rate schemaRate schema.Name)
        let positive name (v: float) =
            if not (v > 0.0 && v < 3600.0) then invalidArg name (sprintf "--%s must lie in (0, 3600) seconds, was %g" name v)
            v
        let samples (s: float) = max 1 (int (Math.Round(s * float rate)))
        let longest, median = durationsOf items
        let clipSeconds = duration |> Option.map (positive "duration") |> Option.defaultValue (min longest 5.0)
        let fixedClip = schema.ClipSamples > 0
        let clip = if fixedClip then schema.ClipSamples else samples clipSeconds
        // Windows longer than every recording (after --duration) would each be a whole recording: refused rather
        // than accepted as a no-op.
        match segment with
        | Some s ->
            let span = match duration with Some d -> min d longest | None -> longest
            if s > span then
                invalidArg "segment"
                    (sprintf "--segment %g s is longer than %s (%g s), so no recording would be cut into windows; use at most %g s"
                        s (match duration with Some d when d < longest -> "--duration" | _ -> "the longest recording") span span)
        | None -> ()
        let segment =
            match segment |> Option.map (positive "segment"), hop |> Option.map (positive "segment-hop") with
            | Some s, h ->
                let w = samples s
                Some(w, h |> Option.map samples |> Option.defaultValue (max 1 (w / 2)))
            | None, h when fixedClip && longerThanClip median (float schema.ClipSamples / float rate) ->
                Some(clip, h |> Option.map samples |> Option.defaultValue (max 1 (clip / 2)))
            | None, Some _ -> invalidArg "segment-hop" "--segment-hop needs --segment"
            | None, None -> None
        let clip =
            match segment with
            | Some (window, _) when not fixedClip -> window
            | _ -> clip
        { ClipPlan.SampleRate = rate; ClipSamples = clip
          RecordingSamples = (if segment.IsSome then duration |> Option.map samples else None)
          Segment = segment; Trim = trim; Loudness = None }

/// How `predict` prepares recordings exactly as training did: recorded in model files as training settings
