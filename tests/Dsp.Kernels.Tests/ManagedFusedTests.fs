/// The managed engine's fused mel chain (IDspOps.LogMelSpectrogram and the MFCC from clips): bitwise equal to the
/// unfused Stft -> Mel -> PowerToDb (-> Mfcc) chain for several configurations (odd n_fft, hop and clip lengths,
/// magnitude spectra, no centring, ref and top_db), on 1, 2 and 8 threads, for batches that take the fused path and
/// batches that fall back to the chain (whose STFT and mel fuse per frame block: W2's long tracks); and its argument
/// checks.
module Hybrid.DspKernelsTests.ManagedFusedTests

open System
open Expecto
open Hybrid.Dsp
open Hybrid.Dsp.Managed
open Hybrid.DspKernelsTests.IlgpuFixture

/// One configuration of the chain: STFT, mel bank, dB settings, spectrum kind, clip length.
type private Case =
    { Name: string
      Stft: StftConfig
      Mel: MelConfig
      Db: DbConfig
      Kind: SpectrumKind
      Samples: int }

let private cases =
    [ { Name = "FSDD (n_fft 256, hop 128, 40 mels to 4 kHz, top_db 80)"
        Stft = StftConfig(256, 128)
        Mel = MelConfig(8000, 40, 0.0, Nullable 4000.0)
        Db = DbConfig()
        Kind = SpectrumKind.Power
        Samples = 8192 }
      { Name = "odd sizes (n_fft 255, hop 77, win 200, Hamming, reflect, 33 mels, ref 0.5, top_db 20)"
        Stft = StftConfig(255, 77, 200, WindowKind.Hamming, true, PadMode.Reflect)
        Mel = MelConfig(16000, 33, 50.0, Nullable 7000.0)
        Db = DbConfig(Ref = 0.5, TopDb = Nullable 20.0)
        Kind = SpectrumKind.Power
        Samples = 1001 }
      { Name = "magnitude spectrum, edge padding, HTK mels without norm, no top_db, amin 1e-5"
        Stft = StftConfig(400, 160, Window = WindowKind.Blackman, PadMode = PadMode.Edge)
        Mel = MelConfig(16000, 26, Htk = true, Norm = MelNorm.None)
        Db = DbConfig(Amin = 1e-5, TopDb = Nullable())
        Kind = SpectrumKind.Magnitude
        Samples = 3001 }
      { Name = "no centring, more than one block of 128 frames, top_db 0"
        Stft = StftConfig(64, 16, Center = false)
        Mel = MelConfig(8000, 20)
        Db = DbConfig(TopDb = Nullable 0.0)
        Kind = SpectrumKind.Power
        Samples = 4000 }
      { Name = "W2-like long clips (n_fft 2048, hop 512, 128 mels, 6 s at 22,050 Hz: too long to fuse clip by clip, so STFT and mel fuse per frame block of 32 frames, the last one short)"
        Stft = StftConfig(2048, 512)
        Mel = MelConfig(22050, 128)
        Db = DbConfig()
        Kind = SpectrumKind.Power
        Samples = 133_000 } ]

/// Clips of noise at several levels, one of them silent (every value at amin, so top_db has nothing to clip), one
/// with a loud burst (so top_db clips most of it).
let private clips (batch: int) (samples: int) =
    let noise = Reference.noise (batch * 31 + samples) (batch * samples)
    Array.init (batch * samples) (fun i ->
        let clip, t = i / samples, i % samples
        match clip % 4 with
        | 0 -> 0.0f
        | 1 -> noise.[i] * 1e-3f
        | 2 -> if t > samples / 3 && t < samples / 2 then noise.[i] else noise.[i] * 1e-4f
        | _ -> noise.[i])

/// The unfused chain on a managed engine of `threads` threads: log-mel and 13 MFCCs with lifter `lifter`.
let private chain (threads: int) (c: Case) (lifter: float32) (x: float32[]) (batch: int) =
    use e = new ManagedEngine(threads)
    let frames = c.Stft.FrameCount c.Samples
    use input = upload e x [| batch; c.Samples |]
    use spectrum = e.Allocate(batch, c.Stft.Bins, frames)
    use bands = e.Allocate(batch, c.Mel.NMels, frames)
    use db = e.Allocate(batch, c.Mel.NMels, frames)
    use mfcc = e.Allocate(batch, 13, frames)
    e.Dsp.Stft(c.Stft, input, spectrum, c.Kind)
    e.Dsp.Mel(c.Mel, c.Stft.NFft, spectrum, bands)
    e.Dsp.PowerToDb(c.Db, bands, db)
    e.Dsp.Mfcc(13, lifter, db, mfcc)
    db.ToArray(), mfcc.ToArray()

/// The fused operations on a managed engine of `threads` threads: LogMelSpectrogram, the MFCC alone and the MFCC with
/// its log-mel.
let private fused (threads: int) (c: Case) (lifter: float32) (x: float32[]) (batch: int) =
    use e = new ManagedEngine(threads)
    let frames = c.Stft.FrameCount c.Samples
    use input = upload e x [| batch; c.Samples |]
    use logMel = e.Allocate(batch, c.Mel.NMels, frames)
    use mfccAlone = e.Allocate(batch, 13, frames)
    use logMelBeside = e.Allocate(batch, c.Mel.NMels, frames)
    use mfcc = e.Allocate(batch, 13, frames)
    e.Dsp.LogMelSpectrogram(c.Stft, c.Mel, c.Db, input, logMel, c.Kind)
    e.Dsp.Mfcc(c.Stft, c.Mel, c.Db, 13, lifter, input, mfccAlone, null, c.Kind)
    e.Dsp.Mfcc(c.Stft, c.Mel, c.Db, 13, lifter, input, mfcc, logMelBeside, c.Kind)
    logMel.ToArray(), mfccAlone.ToArray(), logMelBeside.ToArray(), mfcc.ToArray()

/// Expects two arrays to hold the same bits, naming the first index that differs.
let private bitwise (expected: float32[]) (actual: float32[]) (what: string) =
    Expect.equal actual.Length expected.Length $"{what}: length"
    let differs = Array.tryFindIndex id (Array.map2 (fun (a: float32) (b: float32) -> BitConverter.SingleToInt32Bits a <> BitConverter.SingleToInt32Bits b) expected actual)
    match differs with
    | Some i -> failtestf "%s: expected %.9g at index %d, was %.9g (bitwise equality)" what expected.[i] i actual.[i]
    | None -> ()

/// Runs `f` and returns the exception of type 'E it raises; fails the test when it raises nothing or another type.
let private raises<'E when 'E :> exn> (f: unit -> unit) : 'E =
    try
        f ()
        failtestf "expected %s, nothing was raised" typeof<'E>.Name
    with
    | :? 'E as e -> e
    | e when (e :? Expecto.AssertException) -> raise e
    | e -> failtestf "expected %s, was %s: %s" typeof<'E>.Name (e.GetType().Name) e.Message

[<Tests>]
let tests =
    testList "ManagedFused" [
        for c in cases do
            for lifter in [ 0.0f; 22.0f ] do
                // 40 clips take the fused path on 1, 2 and 8 threads; 3 clips fall back to the chain on 2 and 8.
                for batch in [ 3; 40 ] do
                    test $"LogMelSpectrogram and Mfcc from clips equal the unfused chain bit for bit on 1, 2 and 8 threads: {c.Name}, lifter {lifter}, {batch} clips" {
                        let x = clips batch c.Samples
                        let expectedDb, expectedMfcc = chain 1 c lifter x batch
                        Expect.isTrue (expectedDb |> Array.forall Single.IsFinite) "the chain's dB values are finite"
                        for threads in [ 1; 2; 8 ] do
                            let chainDb, chainMfcc = chain threads c lifter x batch
                            bitwise expectedDb chainDb $"chain log-mel on {threads} threads"
                            bitwise expectedMfcc chainMfcc $"chain MFCC on {threads} threads"
                            let logMel, mfccAlone, logMelBeside, mfcc = fused threads c lifter x batch
                            bitwise expectedDb logMel $"LogMelSpectrogram on {threads} threads"
                            bitwise expectedMfcc mfccAlone $"Mfcc from clips on {threads} threads"
                            bitwise expectedDb logMelBeside $"Mfcc's log-mel on {threads} threads"
                            bitwise expectedMfcc mfcc $"Mfcc with log-mel on {threads} threads"
                    }

        test "top_db clips each clip at its own maximum in the fused pass" {
            let c = cases.[1]
            let batch = 8
            let x = clips batch c.Samples
            let logMel, _, _, _ = fused 2 c 0.0f x batch
            let row = c.Mel.NMels * c.Stft.FrameCount c.Samples
            for b in 0 .. batch - 1 do
                let values = logMel.[b * row .. (b + 1) * row - 1]
                let top = Array.max values
                Expect.isGreaterThanOrEqual (Array.min values) (top - 20.0f) $"clip {b}: its minimum is at least its maximum - top_db"
        }

        test "the fused operations refuse a Complex kind, a wrong output shape and a wrong log-mel shape, naming the argument" {
            use e = new ManagedEngine(2)
            let c = cases.[0]
            let frames = c.Stft.FrameCount c.Samples
            use x = e.Allocate(2, c.Samples)
            use out = e.Allocate(2, c.Mel.NMels, frames)
            use wrong = e.Allocate(2, c.Mel.NMels, frames + 1)
            use mfcc = e.Allocate(2, 13, frames)
            let complex = raises<ArgumentException> (fun () -> e.Dsp.LogMelSpectrogram(c.Stft, c.Mel, c.Db, x, out, SpectrumKind.Complex))
            Expect.equal complex.ParamName "kind" "names kind"
            let shape = raises<ArgumentException> (fun () -> e.Dsp.LogMelSpectrogram(c.Stft, c.Mel, c.Db, x, wrong))
            Expect.stringContains shape.Message $"[2, {c.Mel.NMels}, {frames}]" "gives the expected shape"
            let logMel = raises<ArgumentException> (fun () -> e.Dsp.Mfcc(c.Stft, c.Mel, c.Db, 13, 0.0f, x, mfcc, wrong))
            Expect.equal logMel.ParamName "logMel" "names logMel"
            let amin = raises<ArgumentOutOfRangeException> (fun () -> e.Dsp.LogMelSpectrogram(c.Stft, c.Mel, DbConfig(Amin = 0.0), x, out))
            Expect.stringContains amin.Message "amin" "names amin"
        } ]
