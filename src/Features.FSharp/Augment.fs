namespace Hybrid.Features

open System
open System.Globalization
open System.Text.RegularExpressions

/// One augmentation; its `--augment` spelling is given. Random amounts are drawn per item. All but the two masks act
/// on the waveform (Augment.apply); the masks and VTLP act on the feature image of each training row (Augment.imageRow).
type Augmentation =
    /// `noise:C`: x + C * N(0, 1) per sample (the additive noise of the Speech Commands 1D-conv write-up).
    | Noise of coefficient: float
    /// `snr:DB` or `snr:LO-HI`: white Gaussian noise at a signal-to-noise ratio (dB) drawn from [LO, HI].
    | NoiseSnr of lowDb: float * highDb: float
    /// `pink:DB` or `pink:LO-HI`: pink (1/f, -3 dB per octave) noise at an SNR (dB) drawn from [LO, HI]: the spectrum
    /// of room and appliance noise more than white noise has (Paul Kellet's three-pole filter of white noise).
    | PinkNoise of lowDb: float * highDb: float
    /// `brown:DB` or `brown:LO-HI`: brown (1/f^2, -6 dB per octave) noise at an SNR (dB) drawn from [LO, HI] (white
    /// noise through a leaky integrator, pole 0.99): hum- and rumble-heavy backgrounds.
    | BrownNoise of lowDb: float * highDb: float
    /// `background:DB` or `background:LO-HI` (alias `bg`): a random segment of a random background-noise
    /// recording mixed in at an SNR (dB) drawn from [LO, HI].
    | Background of lowDb: float * highDb: float
    /// `shift:S`: time shift by a uniform amount in [-S, S] seconds, zero filled, length kept.
    | Shift of maxSeconds: float
    /// `gain:DB`: gain drawn uniformly from [-DB, DB] decibels.
    | Gain of maxDb: float
    /// `speed:F` or `speed:LO-HI`: speed perturbation by resampling with a factor from [LO, HI] (quantised to
    /// 0.01); a factor f changes the length from n to about n / f, and the pitch with it.
    | Speed of low: float * high: float
    /// `reverb:T` or `reverb:LO-HI`: room reverberation with a reverberation time (RT60, seconds) drawn from [LO, HI]
    /// and a direct-to-reverberant ratio drawn from [0, 12] dB: a Schroeder reverberator (four parallel feedback combs of
    /// 29.7, 37.1, 41.1 and 43.7 ms whose gains give that RT60, then all-pass filters of 5 and 1.7 ms, gain 0.7), its
    /// output scaled to the dry clip's RMS over the ratio and added to it; the clip grows by RT60 / 2 (a 30 dB tail).
    | Reverb of lowSeconds: float * highSeconds: float
    /// `vtlp:LO-HI`: vocal tract length perturbation of a mel-band image while training (Jaitly and Hinton, 2013): the
    /// frequency axis warped by a factor drawn from [LO, HI] for every row and epoch, each band taking the (linearly
    /// interpolated) value of the band at its centre frequency divided by the factor, so formants move as a longer or
    /// shorter vocal tract moves them while pitch and timing stay; bands whose source lies outside the image keep the
    /// edge band.
    | Vtlp of low: float * high: float
    /// `freq-mask:F`: SpecAugment's frequency masking of a [bands, frames] feature image while training (torchaudio's
    /// FrequencyMasking(freq_mask_param=F)): a band of f consecutive rows, f drawn uniformly from 0..F, at a uniform
    /// start, set to 0 (the training mean once features are standardised); drawn afresh for every row and epoch.
    /// Repeat the entry for several masks.
    | FrequencyMask of maxBands: int
    /// `time-mask:T`: SpecAugment's time masking (torchaudio's TimeMasking(time_mask_param=T)): t consecutive frames,
    /// t uniform in 0..T (at most the image's frames), set to 0, like FrequencyMask.
    | TimeMask of maxFrames: int

/// Seeded waveform augmentation. Each item's randomness comes from its own generator seeded by
/// (seed, item key), so results never depend on iteration order or threads; vary the seed per epoch for
/// fresh draws. The building blocks are pure functions of their parameters.
module Augment =

    let private fail fmt = Printf.kprintf (fun m -> raise (DatasetException m)) fmt

    /// Mean of x^2 (0 for an empty array).
    let power (x: float32[]) =
        if x.Length = 0 then 0.0
        else
            let mutable sum = 0.0
            for v in x do
                sum <- sum + float v * float v
            sum / float x.Length

    /// Multiplies by 10^(db / 20).
    let gain (db: float) (x: float32[]) : float32[] =
        let factor = float32 (Math.Pow(10.0, db / 20.0))
        Array.map (fun v -> v * factor) x

    /// Delays by `samples` (negative: advances), filling with zeros; the length is kept.
    let shift (samples: int) (x: float32[]) : float32[] =
        let y = Array.zeroCreate x.Length
        let n = x.Length
        if abs samples < n then
            if samples >= 0 then Array.blit x 0 y samples (n - samples)
            else Array.blit x (-samples) y 0 (n + samples)
        y

    /// The rates `speed` resamples between for `factor` (0.25 to 4): Some (80 * round(100 f), 8,000), or None when the
    /// factor rounds to 1 (speed then copies). Raises ArgumentException for a factor outside [0.25, 4].
    let speedRates (factor: float) : (int * int) option =
        if not (factor >= 0.25 && factor <= 4.0) then
            invalidArg (nameof factor) (sprintf "speed factor must lie in [0.25, 4], was %g" factor)
        let k = int (Math.Round(factor * 100.0))
        if k = 100 then None else Some(80 * k, 8000)

    /// Speeds up by `factor` (0.25 to 4) by band-limited resampling (Resample.resample from 80 * round(100 f)
    /// to 8,000: only the ratio matters; speedRates): the result has about n / factor samples.
    let speed (factor: float) (x: float32[]) : float32[] =
        match speedRates factor with
        | None -> Array.copy x
        | Some (fromRate, toRate) -> Resample.resample fromRate toRate x

    /// signal + s * noise with s chosen so that 10 log10(P(signal) / P(s * noise)) = snrDb. `noise` must be
    /// as long as `signal`; a silent signal or noise is returned unchanged (copied).
    let mixAtSnr (snrDb: float) (signal: float32[]) (noise: float32[]) : float32[] =
        if noise.Length <> signal.Length then
            invalidArg (nameof noise) (sprintf "noise has %d samples, the signal %d" noise.Length signal.Length)
        let ps, pn = power signal, power noise
        if ps = 0.0 || pn = 0.0 then Array.copy signal
        else
            let s = float32 (sqrt (ps / (pn * Math.Pow(10.0, snrDb / 10.0))))
            Array.map2 (fun a b -> a + s * b) signal noise

    /// Room reverberation of `x` at `sampleRate` Hz (see Augmentation.Reverb): a Schroeder reverberator with
    /// reverberation time `rt60` seconds (> 0) mixed at a direct-to-reverberant ratio of `drrDb` dB, the result
    /// `rt60 / 2` seconds longer than `x` (zeros appended before filtering).
    let reverb (sampleRate: int) (rt60: float) (drrDb: float) (x: float32[]) : float32[] =
        if not (rt60 > 0.0 && rt60 <= 10.0) then invalidArg (nameof rt60) (sprintf "reverberation time must lie in (0, 10] s, was %g" rt60)
        let n = x.Length + int (rt60 / 2.0 * float sampleRate)
        let dry = Array.init n (fun i -> if i < x.Length then float x.[i] else 0.0)
        let wet = Array.zeroCreate<float> n
        for ms in [ 29.7; 37.1; 41.1; 43.7 ] do
            let d = max 1 (int (ms / 1000.0 * float sampleRate))
            // A comb's gain that decays 60 dB in rt60 seconds: g^(rt60 / delay) = 10^-3.
            let g = Math.Pow(10.0, -3.0 * (float d / float sampleRate) / rt60)
            let line = Array.zeroCreate<float> n
            for i in 0 .. n - 1 do
                line.[i] <- dry.[i] + (if i >= d then g * line.[i - d] else 0.0)
                wet.[i] <- wet.[i] + 0.25 * line.[i]
        let allPass (ms: float) (y: float[]) =
            let d = max 1 (int (ms / 1000.0 * float sampleRate))
            let out = Array.zeroCreate<float> n
            for i in 0 .. n - 1 do
                let delayed = if i >= d then y.[i - d] else 0.0
                let fed = if i >= d then out.[i - d] else 0.0
                out.[i] <- -0.7 * y.[i] + delayed + 0.7 * fed
            out
        let wet = wet |> allPass 5.0 |> allPass 1.7
        let rms (v: float[]) = sqrt ((v |> Array.sumBy (fun a -> a * a)) / float (max 1 v.Length))
        let dryRms, wetRms = rms dry, rms wet
        let scale = if wetRms = 0.0 then 0.0 else dryRms / wetRms * Math.Pow(10.0, -drrDb / 20.0)
        Array.init n (fun i -> float32 (dry.[i] + scale * wet.[i]))

    let private gaussian (rng: SeededRandom) (n: int) = Array.init n (fun _ -> float32 (rng.NextGaussian()))

    /// Pink noise: white noise through Paul Kellet's three-pole approximation of a 1/f filter.
    let private pink (rng: SeededRandom) (n: int) =
        let mutable b0, b1, b2 = 0.0, 0.0, 0.0
        Array.init n (fun _ ->
            let w = rng.NextGaussian()
            b0 <- 0.99765 * b0 + w * 0.0990460
            b1 <- 0.96300 * b1 + w * 0.2965164
            b2 <- 0.57000 * b2 + w * 1.0526913
            float32 (b0 + b1 + b2 + w * 0.1848))

    /// Brown noise: white noise through a leaky integrator (pole 0.99).
    let private brown (rng: SeededRandom) (n: int) =
        let mutable y = 0.0
        Array.init n (fun _ ->
            y <- 0.99 * y + rng.NextGaussian()
            float32 y)

    /// A segment of `length` samples from a random noise recording at a random offset, looping when short.
    let private noiseSegment (rng: SeededRandom) (noises: float32[][]) (length: int) =
        let usable = noises |> Array.filter (fun n -> n.Length > 0)
        if usable.Length = 0 then
            fail "background-noise augmentation needs noise recordings (e.g. a _background_noise_ folder); none were given"
        let clip = usable.[rng.NextInt usable.Length]
        let offset = rng.NextInt clip.Length
        Array.init length (fun i -> clip.[(offset + i) % clip.Length])

    /// Applies the augmentations in order to one item's mono samples at `sampleRate` Hz, drawing every random
    /// amount from a generator seeded by (seed, key) (key: Item.Key). `noises` are background recordings at the
    /// same rate (see loadNoise), needed only by Background. The input is not modified.
    let apply (seed: int) (key: string) (noises: float32[][]) (sampleRate: int) (augmentations: Augmentation list) (x: float32[]) : float32[] =
        let rng = SeededRandom.ForKey(seed, "augment/" + key)
        let step (x: float32[]) augmentation =
            match augmentation with
            | Noise c ->
                let noise = gaussian rng x.Length
                Array.map2 (fun a b -> a + float32 c * b) x noise
            | NoiseSnr (lo, hi) ->
                let snr = rng.Uniform(lo, hi)
                mixAtSnr snr x (gaussian rng x.Length)
            | PinkNoise (lo, hi) ->
                let snr = rng.Uniform(lo, hi)
                mixAtSnr snr x (pink rng x.Length)
            | BrownNoise (lo, hi) ->
                let snr = rng.Uniform(lo, hi)
                mixAtSnr snr x (brown rng x.Length)
            | Background (lo, hi) ->
                let snr = rng.Uniform(lo, hi)
                mixAtSnr snr x (noiseSegment rng noises x.Length)
            | Shift maxSeconds ->
                let most = int (Math.Round(maxSeconds * float sampleRate))
                shift (rng.NextInt(2 * most + 1) - most) x
            | Gain maxDb -> gain (rng.Uniform(-maxDb, maxDb)) x
            | Speed (lo, hi) -> speed (rng.Uniform(lo, hi)) x
            | Reverb (lo, hi) ->
                let rt60 = rng.Uniform(lo, hi)
                reverb sampleRate rt60 (rng.Uniform(0.0, 12.0)) x
            | FrequencyMask _ | TimeMask _ | Vtlp _ -> x
        augmentations |> List.fold step x |> fun y -> if obj.ReferenceEquals(y, x) then Array.copy x else y

    /// True for the augmentations that act on feature images rather than waveforms: the masks and VTLP.
    let isImage augmentation =
        match augmentation with
        | FrequencyMask _ | TimeMask _ | Vtlp _ -> true
        | _ -> false

    /// The waveform augmentations of a list (the image ones left out), in order.
    let waveform (augmentations: Augmentation list) = augmentations |> List.filter (isImage >> not)

    /// Fractional source bands of a VTLP warp by `alpha`: for each band (centre frequency `centres.[b]` in Hz, ascending)
    /// the position, in bands, of the frequency centres.[b] / alpha, clamped to the image (0 .. bands - 1). Raises
    /// ArgumentException for fewer than two centres or a factor that is not positive.
    let vtlpSources (centres: float[]) (alpha: float) : float[] =
        if centres.Length < 2 then invalidArg (nameof centres) "VTLP needs at least two band centre frequencies"
        if not (alpha > 0.0) then invalidArg (nameof alpha) (sprintf "the warp factor must be positive, was %g" alpha)
        let last = centres.Length - 1
        centres
        |> Array.map (fun f ->
            let target = f / alpha
            if target <= centres.[0] then 0.0
            elif target >= centres.[last] then float last
            else
                let k = Array.FindLastIndex(centres, fun c -> c <= target)
                float k + (target - centres.[k]) / (centres.[k + 1] - centres.[k]))

    /// Applies the image augmentations of `augmentations` in order (other entries are skipped) to the [bands, frames]
    /// image stored row-major at dest.[offset ..], drawing factors, widths and starts from a generator seeded by
    /// (seed, key) (e.g. the epoch and the row: fresh draws each epoch, independent of batch order and threads).
    /// `centres` are the bands' centre frequencies in Hz (VTLP warps by them; the masks ignore them). Masked values
    /// become 0. Raises ArgumentException when the image does not fit in dest, or for VTLP without one centre per band.
    let imageRow (seed: int) (key: string) (bands: int) (frames: int) (centres: float[]) (augmentations: Augmentation list) (dest: float32[]) (offset: int) =
        if bands < 1 || frames < 1 || offset < 0 || offset + bands * frames > dest.Length then
            invalidArg (nameof dest) (sprintf "a %d x %d image at offset %d does not fit in %d values" bands frames offset dest.Length)
        let rng = SeededRandom.ForKey(seed, "mask/" + key)
        let span (most: int) (size: int) =
            let width = rng.NextInt(min most size + 1)
            let start = rng.NextInt(size - width + 1)
            start, width
        for augmentation in augmentations do
            match augmentation with
            | FrequencyMask most ->
                let start, width = span most bands
                Array.Fill(dest, 0.0f, offset + start * frames, width * frames)
            | TimeMask most ->
                let start, width = span most frames
                if width > 0 then
                    for b in 0 .. bands - 1 do
                        Array.Fill(dest, 0.0f, offset + b * frames + start, width)
            | Vtlp (lo, hi) ->
                if centres.Length <> bands then
                    invalidArg (nameof centres) (sprintf "VTLP needs one centre frequency per band: %d for %d bands" centres.Length bands)
                let sources = vtlpSources centres (rng.Uniform(lo, hi))
                let image = Array.sub dest offset (bands * frames)
                for b in 0 .. bands - 1 do
                    let p = sources.[b]
                    let k = min (bands - 2) (int (Math.Floor p))
                    let w = float32 (p - float k)
                    for t in 0 .. frames - 1 do
                        dest.[offset + b * frames + t] <- (1.0f - w) * image.[k * frames + t] + w * image.[(k + 1) * frames + t]
            | _ -> ()

    /// Reads background-noise recordings as mono at `sampleRate` Hz (resampled when needed).
    let loadNoise (sampleRate: int) (paths: string[]) : float32[][] =
        paths
        |> Hybrid.Features.Threads.map (fun path -> (AudioFile.read { AudioFile.defaults with SampleRate = Some sampleRate } path).Samples.[0])

    let private number = @"-?\d+(?:\.\d+)?"
    let private range = Regex(sprintf "^(%s)(?:-(%s))?$" number number, RegexOptions.CultureInvariant)

    /// Parses an `--augment` list such as `noise:0.005,shift:0.1,gain:6,speed:0.9-1.1,snr:20,background:10-20`.
    /// Raises DatasetException naming the bad entry and what was expected.
    let parse (text: string) : Augmentation list =
        let expected = "expected noise:C, snr:DB[-DB], pink:DB[-DB], brown:DB[-DB], background:DB[-DB], shift:SECONDS, gain:DB, speed:F[-F], reverb:SECONDS[-SECONDS], vtlp:F-F, freq-mask:BANDS or time-mask:FRAMES"
        text.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
        |> Array.map (fun entry ->
            let name, value =
                match entry.IndexOf ':' with
                | -1 -> fail "augmentation '%s' has no value (%s)" entry expected
                | i -> entry.Substring(0, i).Trim().ToLowerInvariant(), entry.Substring(i + 1).Trim()
            let m = range.Match value
            if not m.Success then fail "augmentation '%s': '%s' is not a number or LO-HI range (%s)" entry value expected
            let lo = Double.Parse(m.Groups.[1].Value, CultureInfo.InvariantCulture)
            let hi = if m.Groups.[2].Success then Double.Parse(m.Groups.[2].Value, CultureInfo.InvariantCulture) else lo
            if hi < lo then fail "augmentation '%s': range %g-%g is reversed" entry lo hi
            let single () =
                if m.Groups.[2].Success then fail "augmentation '%s' takes one value, not a range" entry
                if lo < 0.0 then fail "augmentation '%s' must not be negative" entry
                lo
            match name with
            | "noise" -> Noise(single ())
            | "snr" -> NoiseSnr(lo, hi)
            | "background" | "bg" -> Background(lo, hi)
            | "pink" -> PinkNoise(lo, hi)
            | "brown" -> BrownNoise(lo, hi)
            | "shift" -> Shift(single ())
            | "reverb" ->
                if not (lo > 0.0 && hi <= 10.0) then fail "augmentation '%s': reverberation times must lie in (0, 10] seconds" entry
                Reverb(lo, hi)
            | "gain" -> Gain(single ())
            | "speed" ->
                if lo < 0.25 || hi > 4.0 then fail "augmentation '%s': speed factors must lie in [0.25, 4]" entry
                Speed(lo, hi)
            | "vtlp" ->
                if not (lo > 0.0 && hi <= 4.0) then fail "augmentation '%s': warp factors must lie in (0, 4]" entry
                Vtlp(lo, hi)
            | "freq-mask" | "time-mask" ->
                let most = single ()
                if most <> Math.Floor most || most < 1.0 || most > 100000.0 then
                    fail "augmentation '%s' takes a whole number of %s of at least 1" entry (if name = "freq-mask" then "bands" else "frames")
                if name = "freq-mask" then FrequencyMask(int most) else TimeMask(int most)
            | _ -> fail "unknown augmentation '%s' (%s)" name expected)
        |> List.ofArray

    /// The `--augment` spelling of a list (parse's inverse).
    let format (augmentations: Augmentation list) : string =
        let g (v: float) = v.ToString("R", CultureInfo.InvariantCulture)
        let r lo hi = if lo = hi then g lo else g lo + "-" + g hi
        augmentations
        |> List.map (function
            | Noise c -> "noise:" + g c
            | NoiseSnr (lo, hi) -> "snr:" + r lo hi
            | Background (lo, hi) -> "background:" + r lo hi
            | PinkNoise (lo, hi) -> "pink:" + r lo hi
            | BrownNoise (lo, hi) -> "brown:" + r lo hi
            | Shift s -> "shift:" + g s
            | Gain d -> "gain:" + g d
            | Speed (lo, hi) -> "speed:" + r lo hi
            | Reverb (lo, hi) -> "reverb:" + r lo hi
            | Vtlp (lo, hi) -> "vtlp:" + r lo hi
            | FrequencyMask f -> "freq-mask:" + string f
            | TimeMask t -> "time-mask:" + string t)
        |> String.concat ","
