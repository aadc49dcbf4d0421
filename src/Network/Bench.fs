namespace Hybrid.Classifier

open System.Diagnostics
open Hybrid.Dsp

/// Training-throughput workloads for the `bench` target.
[<RequireQualifiedAccess>]
module Bench =
    /// The reference CNN of issue 5 (the PyTorch anchor) for 1 x 40 x 65 log-mel images and 10 classes:
    /// Conv2D 32 3x3 same, BatchNorm, ReLU, MaxPool 2; Conv2D 64 3x3 same, BatchNorm, ReLU, MaxPool 2; Flatten;
    /// Dense 128, ReLU, Dropout 0.3; Dense 10.
    let referenceCnn () =
        Net.sequential
            [ 1; 40; 65 ]
            [ Layers.conv2d 32 (3, 3) Same
              Layers.batchNorm
              Layers.relu
              Layers.maxPool2d 2
              Layers.conv2d 64 (3, 3) Same
              Layers.batchNorm
              Layers.relu
              Layers.maxPool2d 2
              Layers.flatten
              Layers.dense 128
              Layers.relu
              Layers.dropout 0.3
              Layers.dense 10 ]

    /// Sets up `train-cnn2d` on `engine` (data, model, optimizer, 3 warm-up batches) and returns an action that
    /// trains one more epoch of 2,700 samples (batch 64, a fresh shuffle each call) and returns the sample count.
    let prepareCnn2d (engine: Engine) : unit -> int =
        let count = 2700
        let net = referenceCnn ()
        let rng = SplitMix(12345UL)
        let inputs = Array.init (count * net.SampleSize) (fun _ -> float32 (rng.NextNormal()))
        let labels = Array.init count (fun _ -> rng.NextInt 10)
        let model = Model.create engine 7 net
        let trainer = Trainer(model, Optimizer.adam 1e-3, None, 0.0, None)
        let batch = 64
        let warm = Training.permutation 0 0 count
        trainer.Run(inputs, labels, warm, 3 * batch, batch, (fun _ -> 1e-3), uint64, (fun _ _ _ -> ()))
        engine.Synchronize()
        let mutable epoch = 0
        fun () ->
            epoch <- epoch + 1
            let order = Training.permutation 0 epoch count
            let e = epoch
            trainer.Run(inputs, labels, order, count, batch, (fun _ -> 1e-3), (fun b -> uint64 (e * 100 + b * batch)), (fun _ _ _ -> ()))
            engine.Synchronize()
            count

    /// Workload `train-cnn2d`: trains the reference CNN (Adam 1e-3, batch 64) on 2,700 seeded random images of
    /// 1 x 40 x 65 with random labels; after 3 warm-up batches, times `epochs` full epochs and returns training
    /// samples per second (forward, backward and optimizer step).
    let trainCnn2dWith (engine: Engine) (epochs: int) : float =
        let epoch = prepareCnn2d engine
        let watch = Stopwatch.StartNew()
        let mutable samples = 0
        for _ in 1 .. epochs do
            samples <- samples + epoch ()
        float samples / watch.Elapsed.TotalSeconds

    /// `train-cnn2d` with one timed epoch (2,700 samples): training samples per second on `engine`.
    let trainCnn2d (engine: Engine) : float = trainCnn2dWith engine 1
