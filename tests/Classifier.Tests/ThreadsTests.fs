/// The training step under the process-wide thread setting: the reference CNN trained for one batch on a managed
/// engine of 1 thread and of several gives the same predictions (the GEMM splits each product by columns or rows, each
/// element summed by one thread in the serial order; the reductions use fixed blocks).
module Hybrid.ClassifierTests.ThreadsTests

open Expecto
open Hybrid.Classifier
open Hybrid.Dsp

/// Trains the reference CNN (Bench.referenceCnn, seed 7, Adam 1e-3) for one batch of 32 seeded images on a managed
/// engine of `threads` threads; returns its probabilities for 8 more images.
let private oneStep (threads: int) =
    use engine = new Hybrid.Dsp.Managed.ManagedEngine(threads)
    let net = Bench.referenceCnn ()
    let rng = SplitMix(99UL)
    let count, batch = 32, 32
    let inputs = Array.init (count * net.SampleSize) (fun _ -> float32 (rng.NextNormal()))
    let labels = Array.init count (fun _ -> rng.NextInt 10)
    let probe = Array.init (8 * net.SampleSize) (fun _ -> float32 (rng.NextNormal()))
    let model = Model.create engine 7 net
    let trainer = Trainer(model, Optimizer.adam 1e-3, None, 0.0, None)
    trainer.Run(inputs, labels, Training.permutation 0 0 count, count, batch, (fun _ -> 1e-3), uint64, (fun _ _ _ -> ()))
    engine.Synchronize()
    Model.predict model probe

[<Tests>]
let tests =
    testList "Threads" [
        test "one training step of the reference CNN gives the same predictions at 1 and 4 threads" {
            let single = oneStep 1
            let several = oneStep 4
            for i in 0 .. Array2D.length1 single - 1 do
                for j in 0 .. Array2D.length2 single - 1 do
                    Expect.floatClose { absolute = 1e-6; relative = 1e-6 } (float several.[i, j]) (float single.[i, j]) (sprintf "probability [%d, %d]" i j)
        }
    ]
