/// Row sources: row files read a batch at a time, streaming training equal to in-memory training, bounded reads.
module Hybrid.ClassifierTests.RowsTests

open System
open System.IO
open Expecto
open Hybrid.Dsp.Managed
open Hybrid.Classifier
open Hybrid.ClassifierTests.Support

let private cnn () =
    Net.sequential [ 1; 8; 8 ]
        [ Layers.conv2d 4 (3, 3) Same; BatchNorm(0.5, 1e-3); Layers.relu; Layers.maxPool2d 2
          Layers.flatten; Layers.dropout 0.2; Layers.dense 4 ]

let private images seed count =
    let rng = Random(seed: int)
    { Inputs = uniform rng (count * 64); Labels = Array.init count (fun i -> (i * 7 + seed) % 4) }

/// Writes `examples` to a row file with its rows in reverse physical order (so logical and physical order differ),
/// and returns the file and the logical -> physical map.
let private reversedFile (dir: string) (name: string) (examples: Examples) =
    let n = examples.Labels.Length
    let path = Path.Combine(dir, name)
    do
        use writer = new RowFile.Writer(path, 64)
        for i in n - 1 .. -1 .. 0 do writer.Append(Array.sub examples.Inputs (i * 64) 64)
    path, Array.init n (fun i -> n - 1 - i)

let private withDir (body: string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), "hybrid-rows-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory dir |> ignore
    try body dir finally Directory.Delete(dir, true)

/// Trains `rows ()` for `options` uninterrupted, then killed after epoch 2 and resumed from its checkpoints under
/// `dir`, asserts the two end bit for bit alike, and gives the uninterrupted run's weights.
let private resumesBitForBit engine (dir: string) (rows: unit -> RowSource) (options: FitOptions) =
    let run (checkpoints: string) callback =
        let model = Model.create engine 9 (cnn ())
        use source = rows ()
        Training.fitRows { options with CheckpointDir = Some checkpoints; Callback = callback } model source None |> ignore
        model.Snapshot()
    let reference = run (Path.Combine(dir, "whole")) ignore
    let kill = function EpochEnd r when r.Epoch = 2 -> raise (OperationCanceledException "killed") | _ -> ()
    Expect.throwsT<OperationCanceledException> (fun () -> run (Path.Combine(dir, "cut")) kill |> ignore) "killed"
    let resumed = run (Path.Combine(dir, "cut")) ignore
    Array.iteri2 (fun i x y -> bitEqual (sprintf "tensor %d" i) x y) reference resumed
    reference

/// SpecAugment masks of 8 x 8 images drawn from (seed, epoch, row), as the façade's training rows draw them.
let private masked (seed: int) (masks: Hybrid.Features.Augmentation list) =
    fun (epoch: int) (row: int) (dest: float32[]) (offset: int) -> Hybrid.Features.Augment.imageRow seed (sprintf "%d/%d" epoch row) 8 8 [||] masks dest offset

[<Tests>]
let tests =
    testList "Rows" [
        testCase "a row file reads back the rows asked for, in the order asked, through its prepare step" (fun () ->
            withDir (fun dir ->
                let data = images 1 9
                let path, physical = reversedFile dir "rows.f32" data
                use source = new RowFile(path, 64, data.Labels, physical, fun dest rows -> for i in 0 .. rows * 64 - 1 do dest.[i] <- dest.[i] * 2.0f)
                let order = [| 4; 0; 8; 3 |]
                let dest = Array.zeroCreate<float32> (3 * 64)
                source.Read(order, 1, 3, dest)
                let expected = Array.concat [ for i in [ 0; 8; 3 ] -> Array.sub data.Inputs (i * 64) 64 |> Array.map (fun v -> v * 2.0f) ]
                bitEqual "rows 0, 8, 3 doubled" expected dest
                Expect.equal source.PeakRowsHeld 3 "three rows held"
                Expect.throwsT<ArgumentException> (fun () -> new RowFile(path, 64, data.Labels, Array.append physical [| 9 |], fun _ _ -> ()) |> ignore) "a row beyond the file is refused"
                Expect.throwsT<ArgumentException> (fun () -> new RowFile(path, 60, Array.zeroCreate 9, Array.init 9 id, fun _ _ -> ()) |> ignore) "a file that is not whole rows is refused"))

        testCase "training streamed from row files equals training on the same rows in memory, bit for bit" (fun () ->
            withDir (fun dir ->
                use engine = new ManagedEngine(2)
                let train, validation = images 2 23, images 3 7
                let options = { FitOptions.defaults with Epochs = 4; BatchSize = 5; Optimizer = Optimizer.adam 0.01; Seed = 11; Schedule = Cosine 0.1 }
                let memory = Model.create engine 5 (cnn ())
                let expected = Training.fit options memory train (Some validation)
                let trainPath, trainMap = reversedFile dir "train.f32" train
                let validationPath, validationMap = reversedFile dir "validation.f32" validation
                use trainRows = new RowFile(trainPath, 64, train.Labels, trainMap, fun _ _ -> ())
                use validationRows = new RowFile(validationPath, 64, validation.Labels, validationMap, fun _ _ -> ())
                let streamed = Model.create engine 5 (cnn ())
                let actual = Training.fitRows options streamed trainRows (Some(validationRows :> RowSource))
                Array.iteri2 (fun i x y -> bitEqual (sprintf "tensor %d" i) x y) (memory.Snapshot()) (streamed.Snapshot())
                Expect.equal (actual.History |> List.map (fun r -> r.TrainLoss, r.ValidationLoss)) (expected.History |> List.map (fun r -> r.TrainLoss, r.ValidationLoss)) "same losses"
                // The batch source never held more than one batch of the 23 training rows.
                Expect.equal trainRows.PeakRowsHeld 5 "at most a batch of rows held"
                Expect.isLessThanOrEqual validationRows.PeakRowsHeld 7 "validation read in one chunk of its 7 rows"))

        testCase "transformed rows: a per-(epoch, row) transform (SpecAugment masks here), whatever the batch order, over the inner rows" (fun () ->
            let data = { Inputs = Array.init (6 * 64) (fun i -> float32 (i + 1)); Labels = Array.zeroCreate 6 }
            let masks = [ Hybrid.Features.FrequencyMask 3; Hybrid.Features.TimeMask 3 ]
            use source = new TransformedRows(new ExampleRows(data, 64), masked 7 masks)
            let read (order: int[]) =
                let dest = Array.zeroCreate<float32> (order.Length * 64)
                source.Read(order, 0, order.Length, dest)
                [ for i in 0 .. order.Length - 1 -> order.[i], Array.sub dest (i * 64) 64 ] |> Map.ofList
            source.BeginEpoch 0
            let first = read [| 0 .. 5 |]
            Expect.equal (read [| 5; 3; 1; 0; 2; 4 |]) first "same epoch, another order: the same rows"
            for row in 0 .. 5 do
                first.[row] |> Array.iteri (fun j v -> if v <> 0.0f then Expect.equal v (float32 (row * 64 + j + 1)) "unmasked values are the inner row's")
            Expect.isGreaterThan (first |> Map.toSeq |> Seq.sumBy (fun (_, r) -> r |> Array.filter ((=) 0.0f) |> Array.length)) 0 "something masked"
            source.BeginEpoch 1
            Expect.notEqual (read [| 0 .. 5 |]) first "another epoch: other masks")

        testCase "a killed run on masked rows resumes from its checkpoint with the same weights as an uninterrupted one" (fun () ->
            withDir (fun dir ->
                use engine = new ManagedEngine(2)
                let train = images 6 20
                let masks = [ Hybrid.Features.FrequencyMask 2; Hybrid.Features.TimeMask 2 ]
                let options = { FitOptions.defaults with Epochs = 4; BatchSize = 6; Optimizer = Optimizer.adam 0.01; Seed = 2 }
                let reference = resumesBitForBit engine dir (fun () -> new TransformedRows(new ExampleRows(train, 64), masked 3 masks)) options
                let unmasked =
                    let model = Model.create engine 9 (cnn ())
                    Training.fit options model train None |> ignore
                    model.Snapshot()
                Expect.isFalse (Array.forall2 (fun (a: float32[]) (b: float32[]) -> a = b) reference unmasked) "the masks changed training"))

        testCase "pooled rows: each row reads one of its choices, the same for an epoch whatever the batch order, drawn afresh and evenly per epoch" (fun () ->
            let data = { Inputs = Array.init (16 * 64) (fun i -> float32 (i / 64)); Labels = Array.init 16 (fun i -> i % 4) }
            // Rows 0-3 are themselves; rows 4-7 choose among rows 4+i, 8+i and 12+i (one label each: i % 4).
            let choices = [| for i in 0 .. 3 -> [| i |]
                             for i in 0 .. 3 -> [| 4 + i; 8 + i; 12 + i |] |]
            use source = new PooledRows(new ExampleRows(data, 64), choices, 5)
            Expect.equal source.Count 8 "one logical row per choice list"
            Expect.equal source.Labels [| 0; 1; 2; 3; 0; 1; 2; 3 |] "the first choice's labels"
            let read (order: int[]) =
                let dest = Array.zeroCreate<float32> (order.Length * 64)
                source.Read(order, 0, order.Length, dest)
                [ for i in 0 .. order.Length - 1 -> order.[i], int dest.[i * 64] ] |> Map.ofList
            Expect.equal (read [| 0 .. 7 |]) (Map.ofList [ for i in 0 .. 7 -> i, choices.[i].[0] ]) "before the first epoch: the first choices"
            let counts = Array.zeroCreate<int> 16
            let epochs = 300
            for epoch in 0 .. epochs - 1 do
                source.BeginEpoch epoch
                let rows = read [| 0 .. 7 |]
                Expect.equal (read [| 7; 2; 5; 0; 4; 1; 6; 3 |]) rows "same epoch, another order: the same rows"
                for KeyValue (i, r) in rows do
                    Expect.contains choices.[i] r (sprintf "epoch %d: row %d reads one of its choices" epoch i)
                    Expect.equal (r % 4) (i % 4) "with its label"
                    counts.[r] <- counts.[r] + 1
            // 300 draws of 3 versions per row: 100 expected each, the standard deviation 8.2; 60..140 is ~5 sigma.
            for r in 4 .. 15 do
                Expect.isTrue (counts.[r] >= 60 && counts.[r] <= 140) (sprintf "row %d drawn %d times of %d epochs" r counts.[r] epochs)
            source.BeginEpoch 3
            let third = read [| 0 .. 7 |]
            source.BeginEpoch 4
            source.BeginEpoch 3
            Expect.equal (read [| 0 .. 7 |]) third "an epoch's draw depends only on the seed and the epoch"
            Expect.throwsT<ArgumentException> (fun () -> new PooledRows(new ExampleRows(data, 64), [| [||] |], 5) |> ignore) "a row with no choice"
            Expect.throwsT<ArgumentException> (fun () -> new PooledRows(new ExampleRows(data, 64), [| [| 16 |] |], 5) |> ignore) "a choice outside the rows")

        testCase "a killed run on pooled rows resumes from its checkpoint with the same weights as an uninterrupted one" (fun () ->
            withDir (fun dir ->
                use engine = new ManagedEngine(2)
                let train = images 6 30
                // Ten originals and ten slots drawing from two versions each (rows 10-19 and 20-29 share labels).
                let train = { train with Labels = Array.init 30 (fun i -> (i % 10) % 4) }
                let choices = [| for i in 0 .. 9 -> [| i |]
                                 for i in 0 .. 9 -> [| 10 + i; 20 + i |] |]
                let options = { FitOptions.defaults with Epochs = 4; BatchSize = 5; Optimizer = Optimizer.adam 0.01; Seed = 2 }
                let reference = resumesBitForBit engine dir (fun () -> new PooledRows(new ExampleRows(train, 64), choices, 3)) options
                let fixedCopies =
                    let model = Model.create engine 9 (cnn ())
                    use source = new PooledRows(new ExampleRows(train, 64), choices |> Array.map (fun c -> [| c.[0] |]), 3)
                    Training.fitRows options model source None |> ignore
                    model.Snapshot()
                Expect.isFalse (Array.forall2 (fun (a: float32[]) (b: float32[]) -> a = b) reference fixedCopies) "drawing from the pool changed training"))

        testCase "predicting from a row source equals Model.predict on the rows in memory" (fun () ->
            withDir (fun dir ->
                use engine = new ManagedEngine(2)
                let data = images 4 300
                let model = Model.create engine 3 (cnn ())
                let path, physical = reversedFile dir "rows.f32" data
                use source = new RowFile(path, 64, data.Labels, physical, fun _ _ -> ())
                let expected = Model.predict model data.Inputs
                let actual = Rows.predict model source
                bitEqual "probabilities" (Seq.cast<float32> expected |> Array.ofSeq) (Seq.cast<float32> actual |> Array.ofSeq)
                Expect.equal source.PeakRowsHeld 256 "read 256 rows at a time (of 300)"))
    ]
