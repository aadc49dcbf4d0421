namespace Hybrid.Features

open System

/// Shaping of one mono clip: fixed length, level normalisation and silence trimming.
/// Every function returns a new array and leaves its input unchanged.
module Clip =
    /// Where fit keeps a clip's content: from the first sample, or centred.
    type Align =
        /// Keep the first samples; pad zeros (or cut) at the end.
        | Start
        /// Keep the content centred: pad floor((T - n) / 2) zeros in front (kymatio's FSDD example),
        /// or cut floor((n - T) / 2) samples from the front.
        | Center

    let private requirePositive (name: string) (value: int) =
        if value <= 0 then raise (ArgumentOutOfRangeException(name, value, sprintf "%s must be positive" name))

    let private requireSamples (samples: float32[]) =
        if isNull (box samples) then nullArg "samples"

    /// Zero-pads or cuts samples to exactly length samples (length >= 0), aligned as align says.
    let fit (length: int) (align: Align) (samples: float32[]) : float32[] =
        if length < 0 then raise (ArgumentOutOfRangeException("length", length, "length must be >= 0"))
        requireSamples samples
        let n = samples.Length
        let result = Array.zeroCreate<float32> length
        match align with
        | Start -> Array.blit samples 0 result 0 (min n length)
        | Center ->
            if n >= length then Array.blit samples ((n - length) / 2) result 0 length
            else Array.blit samples 0 result ((length - n) / 2) n
        result

    /// Scales samples so that the largest magnitude is 1 (x / max|x|, as kymatio's FSDD example does).
    /// An all-zero (or empty) clip is returned as a copy.
    let peakNormalize (samples: float32[]) : float32[] =
        requireSamples samples
        let mutable peak = 0.0f
        for x in samples do
            peak <- max peak (abs x)
        if peak = 0.0f then Array.copy samples
        else
            let gain = 1.0f / peak
            Array.map (fun x -> x * gain) samples

    /// Root mean square of samples (0 for an empty clip), accumulated in double precision.
    let rms (samples: float32[]) : float =
        requireSamples samples
        if samples.Length = 0 then 0.0
        else
            let mutable sum = 0.0
            for x in samples do
                sum <- sum + float x * float x
            sqrt (sum / float samples.Length)

    /// Scales samples so that their RMS level is targetDbfs dB relative to full scale (20 log10 rms;
    /// -20 gives rms 0.1). The result is not clipped. An all-zero clip is returned as a copy.
    let rmsNormalize (targetDbfs: float) (samples: float32[]) : float32[] =
        if Double.IsNaN targetDbfs || Double.IsInfinity targetDbfs then
            raise (ArgumentOutOfRangeException("targetDbfs", targetDbfs, "target level must be finite"))
        let level = rms samples
        if level = 0.0 then Array.copy samples
        else
            let gain = float32 (Math.Pow(10.0, targetDbfs / 20.0) / level)
            Array.map (fun x -> x * gain) samples

    /// RMS of each frame, as librosa.feature.rms(y, frame_length, hop_length, center=True,
    /// pad_mode='constant'): frame t covers samples [t*hop - frameLength/2, t*hop - frameLength/2 + frameLength)
    /// with zeros outside the clip; 1 + (n + 2*(frameLength/2) - frameLength) / hop frames.
    let frameRms (frameLength: int) (hopLength: int) (samples: float32[]) : float[] =
        requirePositive "frameLength" frameLength
        requirePositive "hopLength" hopLength
        requireSamples samples
        let n = samples.Length
        let half = frameLength / 2
        let span = n + 2 * half - frameLength
        if span < 0 then [||]
        else
            // Prefix sums of squares make every frame O(1).
            let prefix = Array.zeroCreate<float> (n + 1)
            for i in 0 .. n - 1 do
                prefix.[i + 1] <- prefix.[i] + float samples.[i] * float samples.[i]
            Array.init (1 + span / hopLength) (fun t ->
                let a = Math.Clamp(t * hopLength - half, 0, n)
                let b = Math.Clamp(t * hopLength - half + frameLength, 0, n)
                sqrt (max 0.0 (prefix.[b] - prefix.[a]) / float frameLength))

    /// The interval [start, stop) of samples that is not silent, as librosa.effects.trim(y, top_db,
    /// ref=np.max, frame_length, hop_length) computes it: a frame is silent when its RMS is more than
    /// topDb dB below the loudest frame's (levels floored at -100 dB, amplitude_to_db's amin 1e-5);
    /// start is the first loud frame times hopLength, stop is (last loud frame + 1) times hopLength,
    /// capped at the clip's length. An all-zero clip is kept whole, as in librosa; (0, 0) comes back only
    /// when no frame is loud, which needs topDb <= 0.
    let trimInterval (topDb: float) (frameLength: int) (hopLength: int) (samples: float32[]) : int * int =
        if Double.IsNaN topDb then raise (ArgumentOutOfRangeException("topDb", topDb, "topDb must be a number"))
        let levels = frameRms frameLength hopLength samples
        let toDb (x: float) = 10.0 * log10 (max 1e-10 (x * x))
        let reference = toDb (Array.fold max 0.0 levels)
        let loud (x: float) = toDb x - reference > -topDb
        match Array.tryFindIndex loud levels, Array.tryFindIndexBack loud levels with
        | Some first, Some last -> first * hopLength, min samples.Length ((last + 1) * hopLength)
        | _ -> 0, 0

    /// Cuts leading and trailing silence (librosa.effects.trim with frame_length 2048, hop_length 512;
    /// topDb 60 is librosa's default). Returns the kept samples.
    let trim (topDb: float) (samples: float32[]) : float32[] =
        let start, stop = trimInterval topDb 2048 512 samples
        samples.[start .. stop - 1]
