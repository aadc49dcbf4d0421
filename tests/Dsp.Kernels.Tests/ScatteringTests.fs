/// Scattering1D: kymatio 0.4 parity of the filter bank metadata, the coefficients and the log-scattering means on
/// the managed engine and the ILGPU engines, the filter bank's properties, parameter validation, FsCheck properties of
/// the transform, and the ILGPU kernels' equivalence with the managed engine on random batches.
module Hybrid.DspKernelsTests.ScatteringTests

open System
open System.IO
open System.Text
open System.Text.Json
open Expecto
open FsCheck
open FsCheck.FSharp
open Hybrid.Dsp
open Hybrid.Dsp.Managed
open Hybrid.TestSupport
open Hybrid.DspKernelsTests.IlgpuFixture

/// Reads a little-endian float64 or float32 C-order .npy as (shape, values as float).
let readNpy (path: string) =
    let bytes = File.ReadAllBytes path
    if bytes.Length < 10 || bytes[0] <> 0x93uy || Encoding.ASCII.GetString(bytes, 1, 5) <> "NUMPY" then
        failwithf "%s: not a .npy file" path
    let major = int bytes[6]
    let headerLength, start =
        if major = 1 then int (BitConverter.ToUInt16(bytes, 8)), 10 else BitConverter.ToInt32(bytes, 8), 12
    let header = Encoding.ASCII.GetString(bytes, start, headerLength)
    let field (key: string) =
        let i = header.IndexOf key
        if i < 0 then failwithf "%s: header lacks %s" path key
        header.Substring(i + key.Length)
    let descr = (field "'descr':").Trim().Split('\'').[1]
    if (field "'fortran_order':").TrimStart().StartsWith "True" then failwithf "%s: Fortran order" path
    let shapeText = field "'shape':"
    let shapeText = shapeText.Substring(shapeText.IndexOf '(' + 1, shapeText.IndexOf ')' - shapeText.IndexOf '(' - 1)
    let shape = shapeText.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries) |> Array.map int
    let count = Array.fold (*) 1 shape
    let data = start + headerLength
    let values =
        match descr with
        | "<f8" -> Array.init count (fun i -> BitConverter.ToDouble(bytes, data + 8 * i))
        | "<f4" -> Array.init count (fun i -> float (BitConverter.ToSingle(bytes, data + 4 * i)))
        | d -> failwithf "%s: unsupported dtype %s" path d
    shape, values

/// One reference configuration of the kymatio folder.
type KymatioCase =
    { Name: string
      Config: ScatteringConfig
      Length: int
      Signals: float32[]
      Rows: int
      RowNames: string[]
      Scattering: int[] * float[]
      LogMean: int[] * float[]
      Meta: JsonElement }

/// Loads every configuration listed in index.json.
let loadKymatio (folder: string) =
    let index = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "index.json"))).RootElement
    let signalShape, signals = readNpy (Path.Combine(folder, index.GetProperty("signals").GetProperty("file").GetString() |> nonNull))
    [ for c in index.GetProperty("configs").EnumerateArray() ->
        let str (k: string) = c.GetProperty(k).GetString() |> nonNull
        let length = c.GetProperty("shape").GetInt32()
        let t = match c.TryGetProperty "T" with | true, v -> Nullable(v.GetInt32()) | _ -> Nullable()
        let rows = signalShape[0]
        let cut = Array.init (rows * length) (fun i -> float32 signals[(i / length) * signalShape[1] + i % length])
        { Name = str "name"
          Config = ScatteringConfig(c.GetProperty("J").GetInt32(), c.GetProperty("Q").GetInt32(), t)
          Length = length
          Signals = cut
          Rows = rows
          RowNames = [| for n in index.GetProperty("signals").GetProperty("rows").EnumerateArray() -> n.GetString() |> nonNull |]
          Scattering = readNpy (Path.Combine(folder, str "scattering"))
          LogMean = readNpy (Path.Combine(folder, str "log_mean"))
          Meta = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, str "meta"))).RootElement } ]

/// Runs Scattering1D on an engine for host clips [rows, length]; returns [rows, paths, frames] and the bank.
let scatterOn (engine: Engine) (config: ScatteringConfig) (clips: float32[]) rows length =
    let bank = Filters.Scattering1D(config, length)
    use x = engine.FromHost(ReadOnlySpan clips, rows, length)
    use y = engine.Allocate(rows, bank.Paths.Count, bank.Frames)
    engine.Dsp.Scattering1D(config, x, y)
    y.ToArray(), bank

let managed = lazy (new ManagedEngine() :> Engine)

/// log(|S| + 1e-6) averaged over frames, order 0 dropped: [rows, paths - 1].
let logMean (s: float32[]) rows paths frames =
    Array.init (rows * (paths - 1)) (fun i ->
        let r, p = i / (paths - 1), i % (paths - 1) + 1
        let mutable acc = 0.0
        for f in 0 .. frames - 1 do
            acc <- acc + log (abs (float s[(r * paths + p) * frames + f]) + 1e-6)
        acc / float frames)

/// The chirp row's reference was computed from the float64 chirp before it was stored as float32 in signals.npy:
/// kymatio 0.4 itself, run on the stored float32 row (numpy backend, float64), differs from its own reference
/// log-mean by up to 1.10e-3 (fsdd) and 1.42e-3 (q1_t256) on that row, from the quantisation noise floor (~2e-9)
/// on frames where the chirp is far from a filter's band; our output equals that run to within 1e-6 relative.
/// The chirp row is therefore held to 2e-3; every other row to 1e-3.
let chirpLogMeanTolerance = 2e-3

/// Checks S against kymatio: per path, relative L2 error at most 1e-3 wherever the path holds at least 1e-6 of
/// the signal's energy (a path's energy is T times the sum of its squared coefficients, each frame standing for T
/// samples), and the log-scattering means within 1e-3 absolute. Returns the worst relative error seen.
let checkAgainst (case: KymatioCase) (s: float32[]) (bank: ScatteringFilterBank) =
    let shape, reference = case.Scattering
    let rows, paths, frames = shape[0], shape[1], shape[2]
    Expect.equal [| rows; bank.Paths.Count; bank.Frames |] shape $"{case.Name}: output shape"
    let t = float (1 <<< bank.Log2T)
    let mutable worst = 0.0
    for r in 0 .. rows - 1 do
        let mutable signalEnergy = 0.0
        for i in 0 .. case.Length - 1 do
            signalEnergy <- signalEnergy + float case.Signals[r * case.Length + i] ** 2.0
        for p in 0 .. paths - 1 do
            let mutable e = 0.0
            let mutable d = 0.0
            for f in 0 .. frames - 1 do
                let i = (r * paths + p) * frames + f
                e <- e + reference[i] * reference[i]
                d <- d + (float s[i] - reference[i]) ** 2.0
            if t * e >= 1e-6 * signalEnergy then
                let rel = sqrt (d / e)
                worst <- max worst rel
                if rel > 1e-3 then failtestf "%s row %d path %d: relative L2 error %g, expected <= 1e-3" case.Name r p rel
    let lmShape, lmRef = case.LogMean
    let lm = logMean s rows paths frames
    Expect.equal lmShape [| rows; paths - 1 |] "log-mean shape"
    for r in 0 .. rows - 1 do
        let tolerance = if case.RowNames[r] = "chirp" then chirpLogMeanTolerance else 1e-3
        for p in 0 .. paths - 2 do
            let i = r * (paths - 1) + p
            let d = abs (lm[i] - lmRef[i])
            if d > tolerance then
                failtestf "%s row %d (%s) path %d: log-mean %g, kymatio %g (difference %g, expected <= %g)"
                    case.Name r case.RowNames[r] (p + 1) lm[i] lmRef[i] d tolerance
    worst

let private metaValue (e: JsonElement) = if e.ValueKind = JsonValueKind.Null then nan else e.GetDouble()

/// Checks the engine's own log-scattering time average (IDspOps.ScatteringLogMean, reduced on the device by the
/// ILGPU engines) against kymatio's log-mean, with checkAgainst's tolerances.
let checkLogMean (engine: Engine) (case: KymatioCase) =
    let lmShape, lmRef = case.LogMean
    use x = engine.FromHost(ReadOnlySpan case.Signals, case.Rows, case.Length)
    use y = engine.Allocate(lmShape)
    engine.Dsp.ScatteringLogMean(case.Config, 1e-6, x, y)
    let lm = y.ToArray()
    let paths = lmShape[1]
    for r in 0 .. case.Rows - 1 do
        let tolerance = if case.RowNames[r] = "chirp" then chirpLogMeanTolerance else 1e-3
        for p in 0 .. paths - 1 do
            let i = r * paths + p
            let d = abs (float lm[i] - lmRef[i])
            if d > tolerance then
                failtestf "%s row %d (%s) path %d: ScatteringLogMean %g, kymatio %g (difference %g, expected <= %g)"
                    case.Name r case.RowNames[r] (p + 1) lm[i] lmRef[i] d tolerance

/// Runs every reference configuration on an engine and checks its coefficients and its log-scattering means against
/// kymatio (<see cref="checkAgainst"/>, <see cref="checkLogMean"/>).
let matchesKymatio (engine: Lazy<Engine>) (folder: string) =
    for case in loadKymatio folder do
        let s, bank = scatterOn engine.Value case.Config case.Signals case.Rows case.Length
        checkAgainst case s bank |> ignore
        checkLogMean engine.Value case

let parity =
    testList "kymatio parity" [
        TestData.testWithKymatio "the filter bank has kymatio's paths, in its order, with its xi, sigma and j" (fun folder ->
            for case in loadKymatio folder do
                let bank = Filters.Scattering1D(case.Config, case.Length)
                let order = [| for o in case.Meta.GetProperty("order").EnumerateArray() -> o.GetInt32() |]
                Expect.equal (bank.Paths |> Seq.map _.Order |> Array.ofSeq) order $"{case.Name}: path orders"
                for key in [ "xi"; "sigma"; "j" ] do
                    case.Meta.GetProperty(key).EnumerateArray()
                    |> Seq.iteri (fun p row ->
                        let v = [| for x in row.EnumerateArray() -> metaValue x |]
                        let path = bank.Paths[p]
                        let ours =
                            match key with
                            | "xi" -> [| path.Xi1; path.Xi2 |]
                            | "sigma" -> [| path.Sigma1; path.Sigma2 |]
                            | _ -> [| (if path.J1 < 0 then nan else float path.J1); (if path.J2 < 0 then nan else float path.J2) |]
                        for o in 0 .. 1 do
                            let a, b = ours[o], v[o]
                            if Double.IsNaN a <> Double.IsNaN b || (not (Double.IsNaN a) && abs (a - b) > 1e-12 * max 1.0 (abs b)) then
                                failtestf "%s path %d %s[%d]: expected %g, was %g" case.Name p key o b a))
        TestData.testWithKymatio "managed: every configuration matches kymatio (per-path relative L2 <= 1e-3, log-mean within 1e-3)" (matchesKymatio managed)
    ]

/// The same parity test on every ILGPU engine of this machine (ilgpu-cpu always, opencl and cuda where present).
let ilgpuParity =
    ilgpuList "kymatio parity on ILGPU" [
        for name, engine in ilgpuEngines ->
            testList name [
                TestData.testWithKymatio $"{name}: every configuration matches kymatio (per-path relative L2 <= 1e-3, log-mean within 1e-3)" (matchesKymatio engine) ]
    ]

/// Littlewood-Paley sum of the first-order wavelets, sum_n |psi_n(k)|^2, at the padded length.
let littlewoodPaley (bank: ScatteringFilterBank) =
    let n = bank.PaddedLength
    Array.init n (fun k -> bank.Psi1 |> Seq.sumBy (fun p -> p.Fourier[k] * p.Fourier[k]))

/// The constant-Q band, from one octave above the lowest constant-Q centre (the Q-th wavelet above it) to the highest
/// centre; None when the constant-Q wavelets span less than an octave. Wavelets whose bandwidth is above the
/// constant-bandwidth floor sigma0 / 2^J are constant-Q; below them kymatio places Q - 1 constant-bandwidth filters,
/// and the sum dips to about 0.4 of its peak around the elbow between the two regions, by design.
let constantQBand (bank: ScatteringFilterBank) =
    let floor = bank.Psi1 |> Seq.map _.Sigma |> Seq.min
    let geo = bank.Psi1 |> Seq.filter (fun p -> p.Sigma > floor * (1.0 + 1e-9)) |> Seq.map _.Xi |> Array.ofSeq |> Array.sort
    let q = bank.Config.Q
    if geo.Length > q then Some(geo[q], Array.max geo) else None

/// Ripple bound of the constant-Q band. Neighbouring wavelets meet at r = sqrt(1/2) of their peak, so their spacing is
/// Delta = 2 sigma sqrt(2 ln(1/r)); the sum of the squared Gaussians is a Gaussian of width sigma / sqrt 2 sampled at
/// spacing Delta, whose Poisson expansion has relative ripple 2a with a = exp(-pi^2 / (8 ln(1/r))) = 0.0285: so the
/// normalised sum stays within [(1 - 2a) / (1 + 2a), 1] = [0.893, 1] as Q grows (eps = 0.107). Geometric spacing
/// skews neighbouring widths by 2^(1/Q); kymatio's filters (J 2..8) reach 0.855 at Q = 3, 0.869 at Q = 4 and 0.887
/// at Q = 12, and we allow eps = 0.15 for Q >= 3. For Q = 1 and 2 the Gaussian-sum argument does not hold
/// (neighbours an octave or half an octave apart): the minimum is 0.703 (Q = 1) and 0.821 (Q = 2); we allow eps = 0.32.
let lpEpsilon q = if q >= 3 then 0.15 else 0.32

let properties =
    let config = Properties.config 12
    testList "properties" [
        testPropertyWithConfig config "the first-order Littlewood-Paley sum, normalised by its peak, stays within [1 - eps, 1] over the constant-Q band" <|
            fun (jSeed: PositiveInt) (qSeed: PositiveInt) ->
                let j = 2 + jSeed.Get % 7
                let q = 1 + qSeed.Get % 16
                // a long signal, so that the padded length samples the filters finely (>= 4096 bins)
                let bank = Filters.Scattering1D(ScatteringConfig(j, q, MaxOrder = 1), 2048)
                let lp = littlewoodPaley bank
                match constantQBand bank with
                | None -> ()
                | Some(lo, hi) ->
                    let n = bank.PaddedLength
                    let band = [| for k in 0 .. n / 2 do if float k / float n >= lo && float k / float n <= hi then lp[k] |]
                    let peak = Array.max lp
                    let ratio = if band.Length = 0 then 1.0 else Array.min band / peak
                    if ratio < 1.0 - lpEpsilon q then
                        failtestf "J=%d Q=%d: minimum %g of the normalised sum over [%g, %g], expected >= %g" j q ratio lo hi (1.0 - lpEpsilon q)

        testPropertyWithConfig config "the first-order decomposition preserves a band-limited signal's energy within the Littlewood-Paley bounds" <|
            fun (seed: int) ->
                // x: a real signal whose spectrum lies in the constant-Q band; by Parseval the energy of
                // {x * psi_n} over both signs of frequency is sum_k |X_k|^2 (LP(k) + LP(-k)) / N.
                let bank = Filters.Scattering1D(ScatteringConfig(5, 8, MaxOrder = 1), 1024)
                let n = bank.PaddedLength
                let lo, hi = (constantQBand bank).Value
                let rnd = Random seed
                let re = Array.zeroCreate n
                let im = Array.zeroCreate n
                for k in 1 .. n / 2 - 1 do
                    let f = float k / float n
                    if f >= lo && f <= hi then
                        re[k] <- rnd.NextDouble() - 0.5
                        im[k] <- rnd.NextDouble() - 0.5
                        re[n - k] <- re[k]
                        im[n - k] <- -im[k]
                let energyOf (xr: float[]) (xi: float[]) = Array.fold2 (fun acc a b -> acc + a * a + b * b) 0.0 xr xi
                let total = energyOf re im
                let mutable decomposed = 0.0
                for p in bank.Psi1 do
                    // x * psi_n in time (inverse DFT of the product), its energy summed directly.
                    let yr = Array.init n (fun k -> re[k] * p.Fourier[k])
                    let yi = Array.init n (fun k -> im[k] * p.Fourier[k])
                    DoubleDft.Inverse(yr, yi)
                    // psi_n and its mirror (the conjugate wavelet) see the two halves of a real signal's spectrum
                    decomposed <- decomposed + 2.0 * float n * energyOf yr yi
                let lp = littlewoodPaley bank
                let both = Array.init n (fun k -> lp[k] + lp[(n - k) % n])
                let inBand = [| for k in 1 .. n / 2 - 1 do if float k / float n >= lo && float k / float n <= hi then both[k] |]
                let ratio = decomposed / total
                let a, b = Array.min inBand, Array.max inBand
                if ratio < a - 1e-9 || ratio > b + 1e-9 then failtestf "energy ratio %g outside [%g, %g]" ratio a b
                // and the bounds themselves: within eps of the peak (so the energy is kept to within 15%)
                if a / b < 1.0 - lpEpsilon 8 then failtestf "bounds [%g, %g] further apart than eps" a b

        testPropertyWithConfig config "averaged coefficients move by at most 0.5 tau / T (relative L2) under a shift of tau <= T/16" <|
            fun (seed: int) (shiftSeed: PositiveInt) ->
                // phi is a Gaussian of time width sigma_t = T / (2 pi 0.1); a shift tau changes S by at most
                // ||phi(. - tau) - phi||_1 <= tau ||phi'||_1 = tau 2 phi(0) = 0.80 tau / sigma_t = 0.50 tau / T of its size.
                let t = 64
                let cfg = ScatteringConfig(6, 4, t, MaxOrder = 2)
                let length = 1024
                let tau = 1 + shiftSeed.Get % (t / 16)
                let rnd = Random seed
                // a burst in the middle, zero near the edges so that the shift moves no signal across them
                let x = Array.init length (fun i -> if i >= 256 && i < 768 then float32 (rnd.NextDouble() - 0.5) else 0.0f)
                let shifted = Array.init length (fun i -> if i >= tau then x[i - tau] else 0.0f)
                let s0, _ = scatterOn managed.Value cfg x 1 length
                let s1, _ = scatterOn managed.Value cfg shifted 1 length
                let num = Array.fold2 (fun acc (a: float32) (b: float32) -> acc + float (a - b) ** 2.0) 0.0 s0 s1
                let den = s0 |> Array.sumBy (fun a -> float a ** 2.0)
                let rel = sqrt (num / den)
                let bound = 0.5 * float tau / float t
                if rel > bound then failtestf "shift %d: relative change %g above %g" tau rel bound

        testPropertyWithConfig config "a batch gives each clip the coefficients it gets alone" <|
            fun (seed: int) (countSeed: PositiveInt) ->
                let rows = 1 + countSeed.Get % 6
                let length = 300
                let cfg = ScatteringConfig(4, 3, 32)
                let rnd = Random seed
                let x = Array.init (rows * length) (fun _ -> float32 (rnd.NextDouble() - 0.5))
                let batched, bank = scatterOn managed.Value cfg x rows length
                let per = bank.Paths.Count * bank.Frames
                for r in 0 .. rows - 1 do
                    let alone, _ = scatterOn managed.Value cfg x[r * length .. (r + 1) * length - 1] 1 length
                    Expect.equal batched[r * per .. (r + 1) * per - 1] alone $"clip {r} of {rows}"

        testPropertyWithConfig config "order 1 is linear in scale: S(a x) = |a| S(x) (and order 0, a plain low-pass, S0(a x) = a S0(x))" <|
            fun (seed: int) (scale: NormalFloat) ->
                let a = let v = scale.Get % 20.0 in if abs v < 1e-3 then 1.5 else v
                let length = 256
                let cfg = ScatteringConfig(4, 4, MaxOrder = 1)
                let rnd = Random seed
                let x = Array.init length (fun _ -> float32 (rnd.NextDouble() - 0.5))
                let sx, _ = scatterOn managed.Value cfg x 1 length
                let sax, _ = scatterOn managed.Value cfg (x |> Array.map (fun v -> float32 a * v)) 1 length
                let peak = sx |> Array.map abs |> Array.max
                Array.iteri2 (fun i (u: float32) (v: float32) ->
                    let expected = (if i < sx.Length / (1 + (Filters.Scattering1D(cfg, length)).Psi1.Count) then a else abs a) * float u
                    if abs (float v - expected) > 1e-5 * abs a * float peak then
                        failtestf "coefficient %d: S(a x) = %g, |a| S(x) = %g (a = %g)" i v expected a) sx sax
    ]

let validation =
    let throws name (f: unit -> unit) (parameter: string) (fragment: string) =
        testCase name (fun () ->
            let e = Expect.throwsC f id
            match e with
            | :? ArgumentException as a ->
                Expect.equal a.ParamName parameter "parameter named"
                Expect.stringContains a.Message fragment "message states the limits"
            | other -> failtestf "expected ArgumentException, was %s" (other.GetType().Name))
    let run cfg length () =
        use x = managed.Value.Allocate(2, length)
        use y = managed.Value.Allocate(2, 1, 1)
        managed.Value.Dsp.Scattering1D(cfg, x, y)
    testList "parameter validation" [
        throws "J below 1 is refused" (run (ScatteringConfig(0, 4)) 1024) "J" "at least 1"
        throws "2^J above the length is refused" (run (ScatteringConfig(11, 4)) 1024) "J" "2^J at most the signal length (1024)"
        throws "Q below 1 is refused" (run (ScatteringConfig(4, 0)) 1024) "Q" "1..64"
        throws "T not a power of two is refused" (run (ScatteringConfig(4, 4, 100)) 1024) "T" "power of two in 1..1024"
        throws "T above the length is refused" (run (ScatteringConfig(4, 4, 2048)) 1024) "T" "power of two in 1..1024"
        throws "max_order 3 is refused" (run (ScatteringConfig(4, 4, MaxOrder = 3)) 1024) "MaxOrder" "1 or 2"
        throws "an output of the wrong shape is refused" (run (ScatteringConfig(4, 4)) 1024) "output" "expected shape"
        for name, engine in ("managed", managed) :: ilgpuEngines do
            let logMean epsilon (outShape: int[]) () =
                use x = engine.Value.Allocate(2, 256)
                use y = engine.Value.Allocate(outShape)
                engine.Value.Dsp.ScatteringLogMean(ScatteringConfig(4, 2), epsilon, x, y)
            let paths = (Filters.Scattering1D(ScatteringConfig(4, 2), 256)).Paths.Count
            throws $"{name}: a log-mean epsilon of 0 is refused" (logMean 0.0 [| 2; paths - 1 |]) "epsilon" "positive and finite"
            throws $"{name}: a log-mean output with order 0's row is refused" (logMean 1e-6 [| 2; paths |]) "output" $"[2, {paths - 1}]"
        testCase "a clip of odd length that is not a power of two runs (Bluestein-built filters, reflect padding)" (fun () ->
            let length = 777
            let x = Array.init length (fun i -> float32 (sin (0.3 * float i)))
            let s, bank = scatterOn managed.Value (ScatteringConfig(5, 2)) x 1 length
            Expect.equal s.Length (bank.Paths.Count * bank.Frames) "output size"
            Expect.isTrue (s |> Array.forall Single.IsFinite) "finite coefficients"
            Expect.isGreaterThan (Array.max s) 0.0f "non-zero")
    ]

/// Largest difference between an engine's coefficients and the managed engine's, relative to the largest managed
/// coefficient of the same path and clip (paths below 1e-12 of the clip's largest coefficient compared absolutely).
let worstDifference (expected: float32[]) (actual: float32[]) rows paths frames =
    let mutable worst = 0.0
    for r in 0 .. rows - 1 do
        let clipPeak = expected[r * paths * frames .. (r + 1) * paths * frames - 1] |> Array.map (abs >> float) |> Array.max
        for p in 0 .. paths - 1 do
            let at = (r * paths + p) * frames
            let peak = max (expected[at .. at + frames - 1] |> Array.map (abs >> float) |> Array.max) (1e-12 * clipPeak)
            for f in 0 .. frames - 1 do
                worst <- max worst (abs (float actual[at + f] - float expected[at + f]) / max peak Double.Epsilon)
    worst

/// Both engines compute in double precision and round to float32 at the end, so they agree to float32's rounding.
let equivalenceTolerance = 1e-6

let equivalence =
    let config = Properties.config 6
    ilgpuList "ILGPU scattering equals managed" [
        test "CompileKernels loads every scattering kernel the transform and its log-mean launch (what a GPU engine compiles when created)" {
            let e = engine.Value :?> Hybrid.Dsp.Ilgpu.IlgpuEngine
            e.CompileKernels()
            let before = Set.ofSeq e.LoadedKernels
            Expect.isGreaterThanOrEqual (before |> Set.filter (fun k -> k.StartsWith "scattering.") |> Set.count) 7 "scattering kernels loaded"
            let cfg = ScatteringConfig(3, 2, 8)
            let x = randomSignal 3 (2 * 64)
            scatterOn e cfg x 2 64 |> ignore
            use input = e.FromHost(ReadOnlySpan x, 2, 64)
            use means = e.Allocate(2, (Filters.Scattering1D(cfg, 64)).Paths.Count - 1)
            e.Dsp.ScatteringLogMean(cfg, 1e-6, input, means)
            Expect.isEmpty (Set.difference (Set.ofSeq e.LoadedKernels) before) "kernels first loaded by the transform after CompileKernels"
        }
        for name, engine in ilgpuEngines do
          testList name [
            for cfg, rows, length in
                [ ScatteringConfig(4, 3, 32), 3, 300
                  ScatteringConfig(3, 2, 8), 5, 33
                  ScatteringConfig(5, 8, MaxOrder = 1), 2, 1000
                  ScatteringConfig(1, 1, 2), 2, 31 ] do
                testCase $"{name}: J={cfg.J} Q={cfg.Q} T={cfg.Averaging} max_order={cfg.MaxOrder} on {rows} clips of {length} samples" (fun () ->
                    let x = randomSignal (length + rows) (rows * length)
                    let expected, bank = scatterOn managed.Value cfg x rows length
                    let actual, _ = scatterOn engine.Value cfg x rows length
                    let worst = worstDifference expected actual rows bank.Paths.Count bank.Frames
                    if worst > equivalenceTolerance then failtestf "largest difference %g of the path's peak, expected <= %g" worst equivalenceTolerance)
            testPropertyWithConfig config $"{name}: random batches of random configurations equal managed" <|
                fun (seed: int) (a: PositiveInt) (b: PositiveInt) (c: PositiveInt) ->
                    let j = 1 + a.Get % 5
                    let length = (1 <<< j) + b.Get % 400
                    let log2T = b.Get % (j + 1)
                    let cfg = ScatteringConfig(j, 1 + c.Get % 6, 1 <<< log2T, 1 + c.Get % 2)
                    let rows = 1 + a.Get % 4
                    let x = randomSignal seed (rows * length)
                    let expected, bank = scatterOn managed.Value cfg x rows length
                    let actual, _ = scatterOn engine.Value cfg x rows length
                    let worst = worstDifference expected actual rows bank.Paths.Count bank.Frames
                    if worst > equivalenceTolerance then
                        failtestf "J=%d Q=%d T=%d max_order=%d, %d clips of %d: largest difference %g of the path's peak" j cfg.Q cfg.Averaging cfg.MaxOrder rows length worst ]
    ]

[<Tests>]
let tests = testList "Scattering" [ parity; ilgpuParity; equivalence; properties; testSequencedGroup "ilgpu-cpu" validation ]
