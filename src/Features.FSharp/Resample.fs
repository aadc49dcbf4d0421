namespace Hybrid.Features

open System
open System.Buffers
open System.Collections.Concurrent
open System.Numerics
open System.Runtime.InteropServices
open System.Threading.Tasks

/// Band-limited sample-rate conversion by windowed-sinc polyphase filtering (Smith's bandlimited
/// interpolation, as resampy and libsoxr do). The rate ratio toRate/fromRate is reduced to L/M with the
/// gcd; output sample n sits at input time n*M/L and is a dot product of the input with one of L phases
/// of a Kaiser-windowed sinc low-pass. Phases are computed once per (L, M) and cached.
///
/// Design at the lower of the two rates (its Nyquist frequency is "Nyquist" below): pass band up to
/// 0.9 x Nyquist (ripple under 0.001 dB), stop band from 1.0 x Nyquist (attenuation at least 80 dB), so
/// nothing above the new Nyquist aliases into the output and upsampling leaves no images.
module Resample =
    /// Cut-off (-6 dB point) as a fraction of the lower Nyquist frequency.
    [<Literal>]
    let Rolloff = 0.95

    /// Kaiser window shape parameter: beta = 0.1102 (A - 8.7) for a stop band of A = 90 dB.
    [<Literal>]
    let KaiserBeta = 8.96

    /// Half-length of the filter in samples of the lower rate (Kaiser's length formula for 90 dB over a
    /// transition band of 0.1 x Nyquist gives 57).
    [<Literal>]
    let HalfWidth = 60

    /// Tables larger than this many coefficients (rate pairs with a huge reduced L) are not kept: their
    /// phases are computed for each output sample instead.
    let private maxTableCoefficients = 1 <<< 22

    /// Zeroth-order modified Bessel function of the first kind, by its power series.
    let private besselI0 (x: float) =
        let q = x * x / 4.0
        let mutable term = 1.0
        let mutable sum = 1.0
        let mutable k = 1.0
        while term > 1e-17 * sum do
            term <- term * q / (k * k)
            sum <- sum + term
            k <- k + 1.0
        sum

    /// Steps per input sample of the fine kernel table used when the phase table is too large.
    let private fineSteps = 1024

    /// A polyphase filter for one reduced ratio L/M.
    type private Filter =
        { L: int
          M: int
          /// Taps on each side of the output position, in input samples.
          K: int
          /// Stored taps per phase: 2K rounded up to a whole number of SIMD vectors (the rest are zero).
          Taps: int
          /// L x Taps coefficients, or empty when the table would be too large.
          Table: float32[]
          /// Without a table: the kernel at d = j / fineSteps input samples, j = 0 .. K * fineSteps + 1,
          /// linearly interpolated per output sample (error below -110 dB).
          Fine: float[]
          /// Cut-off in cycles per input sample.
          Cutoff: float
          /// Half-length of the window in input samples.
          Width: float }

    /// The Kaiser-windowed sinc at d input samples from the output position.
    let private kernel (cutoff: float) (width: float) (i0Beta: float) (d: float) =
        let u = d / width
        if abs u >= 1.0 then 0.0
        else
            let x = 2.0 * cutoff * d
            let sinc = if x = 0.0 then 1.0 else sin (Math.PI * x) / (Math.PI * x)
            2.0 * cutoff * sinc * besselI0 (KaiserBeta * sqrt (1.0 - u * u)) / i0Beta

    /// Fills dst (Taps long) with phase p's coefficients: dst[j] weighs input sample i - (K-1) + j for
    /// output time i + p/L. Each phase is normalised to unit sum so DC passes exactly.
    let private fillPhase (f: Filter) (i0Beta: float) (p: int) (dst: Span<float32>) =
        let frac = float p / float f.L
        let mutable sum = 0.0
        for j in 0 .. 2 * f.K - 1 do
            let d = frac + float (f.K - 1 - j)
            let v =
                if f.Fine.Length = 0 then kernel f.Cutoff f.Width i0Beta d
                else
                    let x = abs d * float fineSteps
                    let k = int x
                    if k + 1 >= f.Fine.Length then 0.0
                    else
                        let t = x - float k
                        f.Fine.[k] + t * (f.Fine.[k + 1] - f.Fine.[k])
            dst.[j] <- float32 v
            sum <- sum + v
        for j in 2 * f.K .. f.Taps - 1 do
            dst.[j] <- 0.0f
        let norm = float32 (1.0 / sum)
        for j in 0 .. 2 * f.K - 1 do
            dst.[j] <- dst.[j] * norm

    let private design (l: int) (m: int) : Filter =
        let scale = min 1.0 (float l / float m)
        let width = float HalfWidth / scale
        let cutoff = 0.5 * Rolloff * scale
        let k = int (ceil width)
        let w = Vector<float32>.Count
        let taps = (2 * k + w - 1) / w * w
        let i0Beta = besselI0 KaiserBeta
        let f =
            { L = l; M = m; K = k; Taps = taps; Table = [||]; Fine = [||]; Cutoff = cutoff; Width = width }
        if int64 l * int64 taps > int64 maxTableCoefficients then
            { f with Fine = Array.init (k * fineSteps + 2) (fun j -> kernel cutoff width i0Beta (float j / float fineSteps)) }
        else
            let table = Array.zeroCreate<float32> (l * taps)
            for p in 0 .. l - 1 do
                fillPhase f i0Beta p (Span<float32>(table, p * taps, taps))
            { f with Table = table }

    let private cache = ConcurrentDictionary<struct (int * int), Lazy<Filter>>()

    let private filterFor (l: int) (m: int) =
        cache.GetOrAdd(struct (l, m), fun _ -> lazy (design l m)).Value

    /// Dot product of two spans of n floats, n a multiple of Vector<float32>.Count (four accumulators
    /// hide the add latency).
    let private dot (a: ReadOnlySpan<float32>) (b: ReadOnlySpan<float32>) (n: int) =
        let w = Vector<float32>.Count
        let ra = &MemoryMarshal.GetReference a
        let rb = &MemoryMarshal.GetReference b
        let mutable acc0 = Vector<float32>.Zero
        let mutable acc1 = Vector<float32>.Zero
        let mutable acc2 = Vector<float32>.Zero
        let mutable acc3 = Vector<float32>.Zero
        let mutable j = 0
        while j + 4 * w <= n do
            acc0 <- acc0 + Vector.LoadUnsafe(&ra, unativeint j) * Vector.LoadUnsafe(&rb, unativeint j)
            acc1 <- acc1 + Vector.LoadUnsafe(&ra, unativeint (j + w)) * Vector.LoadUnsafe(&rb, unativeint (j + w))
            acc2 <- acc2 + Vector.LoadUnsafe(&ra, unativeint (j + 2 * w)) * Vector.LoadUnsafe(&rb, unativeint (j + 2 * w))
            acc3 <- acc3 + Vector.LoadUnsafe(&ra, unativeint (j + 3 * w)) * Vector.LoadUnsafe(&rb, unativeint (j + 3 * w))
            j <- j + 4 * w
        while j < n do
            acc0 <- acc0 + Vector.LoadUnsafe(&ra, unativeint j) * Vector.LoadUnsafe(&rb, unativeint j)
            j <- j + w
        Vector.Sum((acc0 + acc1) + (acc2 + acc3))

    /// Computes outputs [first, last) from the zero-padded input xp (xp[t] = x[t - (K-1)]).
    let private run (f: Filter) (xp: float32[]) (output: float32[]) (first: int) (last: int) =
        let start = int64 first * int64 f.M
        let mutable i = int (start / int64 f.L)
        let mutable p = int (start % int64 f.L)
        let stepI = f.M / f.L
        let stepP = f.M % f.L
        let scratch = if f.Table.Length = 0 then Array.zeroCreate<float32> f.Taps else [||]
        for n in first .. last - 1 do
            let taps =
                if f.Table.Length = 0 then
                    fillPhase f 1.0 p (Span<float32> scratch)
                    ReadOnlySpan<float32>(scratch)
                else ReadOnlySpan<float32>(f.Table, p * f.Taps, f.Taps)
            output.[n] <- dot taps (ReadOnlySpan<float32>(xp, i, f.Taps)) f.Taps
            i <- i + stepI
            p <- p + stepP
            if p >= f.L then
                p <- p - f.L
                i <- i + 1

    /// The largest down-sampling ratio fromRate / toRate resample accepts: 1000 (the filter then spans 120,000 input
    /// samples and its kernel table 0.5 GB; a larger ratio would exhaust memory designing it).
    [<Literal>]
    let MaxDownsampling = 1000

    /// resample without the rate range check (speed's ratios of 1000 x factor to 1000 may exceed MaxSampleRate).
    let private resampleRates (fromRate: int) (toRate: int) (samples: float32[]) : float32[] =
        if fromRate <= 0 then raise (ArgumentOutOfRangeException("fromRate", fromRate, "sample rates must be positive"))
        if toRate <= 0 then raise (ArgumentOutOfRangeException("toRate", toRate, "sample rates must be positive"))
        if fromRate / toRate > MaxDownsampling then
            raise (ArgumentOutOfRangeException("toRate", toRate, sprintf "down-sampling from %d Hz to %d Hz exceeds the %d:1 resample accepts" fromRate toRate MaxDownsampling))
        if isNull (box samples) then nullArg "samples"
        if fromRate = toRate then Array.copy samples
        else
            let g = int (BigInteger.GreatestCommonDivisor(BigInteger fromRate, BigInteger toRate))
            let l = toRate / g
            let m = fromRate / g
            let n = samples.Length
            let outLength64 = (int64 n * int64 l + int64 m - 1L) / int64 m
            if outLength64 > int64 Array.MaxLength then
                raise (ArgumentException(sprintf "resampling %d samples from %d Hz to %d Hz gives %d samples, more than one array holds" n fromRate toRate outLength64, "samples"))
            let outLength = int outLength64
            let output = Array.zeroCreate<float32> outLength
            if outLength > 0 && n > 0 then
                let f = filterFor l m
                let padded = n + f.Taps + 1
                let xp = ArrayPool<float32>.Shared.Rent padded
                try
                    Array.Clear(xp, 0, padded)
                    Array.blit samples 0 xp (f.K - 1) n
                    let chunk = 8192
                    let chunks = (outLength + chunk - 1) / chunk
                    if chunks > 1 && int64 outLength * int64 f.Taps > 4_000_000L then
                        Threads.forEach chunks (fun c -> run f xp output (c * chunk) (min outLength ((c + 1) * chunk)))
                    else
                        run f xp output 0 outLength
                finally
                    ArrayPool<float32>.Shared.Return xp
            output

    /// The polyphase filter `resample` applies from fromRate to toRate (positive rates that differ), for exporters that
    /// must reproduce it exactly (OnnxExport): the reduced ratio L/M and the 2K taps of each of the L phases. Output
    /// sample n is the sum over j = 0 .. 2K - 1 of phases.[n M mod L].[j] * x[floor(n M / L) + j - (K - 1)], the signal
    /// taken as zero outside its ends, for n = 0 .. ceil(N L / M) - 1. Returns (L, M, phases). Raises
    /// ArgumentOutOfRangeException for a rate that is not positive, ArgumentException for equal rates (resample copies).
    let polyphase (fromRate: int) (toRate: int) : int * int * float32[][] =
        if fromRate <= 0 then raise (ArgumentOutOfRangeException("fromRate", fromRate, "sample rates must be positive"))
        if toRate <= 0 then raise (ArgumentOutOfRangeException("toRate", toRate, "sample rates must be positive"))
        if fromRate = toRate then invalidArg "toRate" (sprintf "equal rates (%d Hz) have no filter: resample copies the signal" toRate)
        let g = int (BigInteger.GreatestCommonDivisor(BigInteger fromRate, BigInteger toRate))
        let l, m = toRate / g, fromRate / g
        let f = filterFor l m
        let phases =
            Array.init l (fun p ->
                if f.Table.Length > 0 then Array.sub f.Table (p * f.Taps) (2 * f.K)
                else
                    let scratch = Array.zeroCreate<float32> f.Taps
                    fillPhase f 1.0 p (Span<float32> scratch)
                    Array.sub scratch 0 (2 * f.K))
        l, m, phases

    /// Resamples a signal from fromRate to toRate (Hz, each within AudioLimits.MinSampleRate .. MaxSampleRate, 1 Hz to
    /// 768 kHz, and fromRate / toRate at most MaxDownsampling), returning ceil(n * toRate / fromRate) samples
    /// (librosa.resample's length). Band-limited: see the module summary. Equal rates return a copy. The signal is
    /// taken as zero outside its ends. Long signals are processed in parallel. Raises ArgumentOutOfRangeException for
    /// a rate outside that range or a larger down-sampling ratio, ArgumentException when the result would exceed one
    /// array.
    let resample (fromRate: int) (toRate: int) (samples: float32[]) : float32[] =
        let check (name: string) (rate: int) =
            if rate < AudioLimits.MinSampleRate || rate > AudioLimits.MaxSampleRate then
                raise (ArgumentOutOfRangeException(name, rate, sprintf "sample rates must lie in %d .. %d Hz" AudioLimits.MinSampleRate AudioLimits.MaxSampleRate))
        check "fromRate" fromRate
        check "toRate" toRate
        resampleRates fromRate toRate samples

    /// Speed perturbation (as Kaldi's and torchaudio's speed augmentation): plays samples factor times
    /// faster, so durations shrink and frequencies rise by factor at the same sample rate. Returns
    /// ceil(n / factor') samples where factor' is factor rounded to a multiple of 0.001 (0.001 to 1000),
    /// which keeps the polyphase table small; implemented as resample (1000 factor') 1000.
    let speed (factor: float) (samples: float32[]) : float32[] =
        if not (factor >= 0.001 && factor <= 1000.0) then
            raise (ArgumentOutOfRangeException("factor", factor, "speed factor must lie in [0.001, 1000]"))
        resampleRates (int (Math.Round(factor * 1000.0))) 1000 samples
