namespace Hybrid.Classifier

open System
open System.IO
open System.Text.Json
open Hybrid.Dsp

/// Training state saved after each epoch (weights, optimizer slots, best weights, history, early-stopping state).
type internal CheckpointState =
    { EpochsDone: int
      OptimizerStep: int
      History: EpochReport list
      Best: float option
      BestEpoch: int option
      Wait: int
      Stopped: bool
      Seed: int }

/// Checkpoint files (`checkpoint.hnn`, the model-file container of kind "checkpoint"): written after each epoch by
/// `Training.fitRows`' checkpoint callback and by the data-parallel trainer, read back to resume.
module internal Checkpoint =
    /// The checkpoint's file name inside a checkpoint folder.
    let fileName = "checkpoint.hnn"

    let private writeOptional (w: Utf8JsonWriter) (name: string) (v: float option) =
        match v with
        | Some x -> w.WriteNumber(name, x)
        | None -> w.WriteNull name

    /// Writes `checkpoint.hnn` (atomically) with the weights, the optimizer slots and, when given, the best weights
    /// (a device snapshot of `model.SnapshotTo`), in that order; every float comes from one device-to-host copy
    /// (`Engine.ReadTensors`), the same floats as each tensor's own read.
    let write (dir: string) (model: Model) (state: CheckpointState) (slots: Tensor[]) (best: Tensor option) =
        let tensors = model.Tensors
        let blocks =
            [ for name, t in tensors -> name, "weight", t.Shape ]
            @ [ for i, t in Array.indexed slots -> sprintf "slot%d" i, "optimizer", t.Shape ]
            @ (match best with
               | Some _ -> [ for name, t in tensors -> name, "best", t.Shape ]
               | None -> [])
        let header =
            HeaderJson.toBytes (fun w ->
                w.WriteStartObject()
                w.WriteString("format", "hybrid-nn")
                w.WriteString("kind", "checkpoint")
                w.WriteString("libraryVersion", Container.libraryVersion)
                Architecture.write w model.Net
                w.WriteNumber("seed", state.Seed)
                w.WriteNumber("epochsDone", state.EpochsDone)
                w.WriteNumber("optimizerStep", state.OptimizerStep)
                w.WriteNumber("wait", state.Wait)
                w.WriteBoolean("stopped", state.Stopped)
                match state.Best with
                | Some b -> w.WriteString("bestBits", string (BitConverter.DoubleToInt64Bits b))
                | None -> w.WriteNull "bestBits"
                match state.BestEpoch with
                | Some e -> w.WriteNumber("bestEpoch", e)
                | None -> w.WriteNull "bestEpoch"
                w.WriteStartArray "history"
                for r in state.History do
                    w.WriteStartObject()
                    w.WriteNumber("epoch", r.Epoch)
                    w.WriteNumber("trainLoss", r.TrainLoss)
                    w.WriteNumber("trainAccuracy", r.TrainAccuracy)
                    writeOptional w "validationLoss" r.ValidationLoss
                    writeOptional w "validationAccuracy" r.ValidationAccuracy
                    w.WriteNumber("learningRate", r.LearningRate)
                    w.WriteNumber("seconds", r.Seconds)
                    w.WriteEndObject()
                w.WriteEndArray()
                ModelFile.writeBlocks w blocks
                w.WriteEndObject())
        let floats =
            model.Engine.ReadTensors(Array.concat [ model.SavedTensors; slots; Option.toArray best ])
        Container.write (Path.Combine(dir, fileName)) header [ floats ]

    /// Reads a checkpoint written for `model`'s architecture and `seed`, restores weights and optimizer slots, and
    /// returns the saved state and the best weights (every saved tensor in `model.Tensors` order, one array, the
    /// layout of `model.SnapshotTo`).
    let read (dir: string) (model: Model) (seed: int) (slots: Tensor[]) =
        let path = Path.Combine(dir, fileName)
        let parse (header: byte[]) (count: int) =
            use doc = HeaderJson.parse path header
            let root = doc.RootElement
            if HeaderJson.string path root "kind" <> "checkpoint" then HeaderJson.bad path "kind is not 'checkpoint'."
            let net = Architecture.read path root
            if net.Layers <> model.Net.Layers || net.InputShape <> model.Net.InputShape then
                Container.fail path "the checkpoint was written for another architecture; delete it or use another checkpoint folder."
            let fileSeed = HeaderJson.int path root "seed"
            if fileSeed <> seed then
                Container.fail path (sprintf "the checkpoint was written with seed %d, this fit uses seed %d." fileSeed seed)
            let blocks = ModelFile.readBlocks path root count
            let optional (e: JsonElement) name =
                match HeaderJson.tryProp e name with
                | Some v when v.ValueKind = JsonValueKind.Number -> Some(v.GetDouble())
                | _ -> None
            let history =
                HeaderJson.array path root "history"
                |> List.map (fun e ->
                    { Epoch = HeaderJson.int path e "epoch"
                      TrainLoss = HeaderJson.float path e "trainLoss"
                      TrainAccuracy = HeaderJson.float path e "trainAccuracy"
                      ValidationLoss = optional e "validationLoss"
                      ValidationAccuracy = optional e "validationAccuracy"
                      LearningRate = HeaderJson.float path e "learningRate"
                      Seconds = HeaderJson.float path e "seconds" })
            let best =
                match HeaderJson.tryProp root "bestBits" with
                | Some v when v.ValueKind = JsonValueKind.String ->
                    match Int64.TryParse(match v.GetString() with null -> "" | s -> s) with
                    | true, bits -> Some(BitConverter.Int64BitsToDouble bits)
                    | _ -> HeaderJson.bad path "bestBits is not an integer."
                | _ -> None
            let state =
                { EpochsDone = HeaderJson.int path root "epochsDone"
                  OptimizerStep = HeaderJson.int path root "optimizerStep"
                  History = history
                  Best = best
                  BestEpoch = (match HeaderJson.tryProp root "bestEpoch" with Some _ -> Some(HeaderJson.int path root "bestEpoch") | None -> None)
                  Wait = HeaderJson.int path root "wait"
                  Stopped = (HeaderJson.prop path root "stopped").ValueKind = JsonValueKind.True
                  Seed = fileSeed }
            state, blocks
        let (state, blocks), floats = Container.read path parse
        let tensors = model.Tensors
        let weightBlocks = blocks |> List.filter (fun (_, r, _) -> r = "weight")
        let slotBlocks = blocks |> List.filter (fun (_, r, _) -> r = "optimizer")
        let bestBlocks = blocks |> List.filter (fun (_, r, _) -> r = "best")
        if weightBlocks.Length <> tensors.Length || slotBlocks.Length <> slots.Length
           || (bestBlocks.Length <> 0 && bestBlocks.Length <> tensors.Length) then
            Container.fail path "the checkpoint's tensors do not match this model and optimizer (was the optimizer changed?)."
        let mutable offset = 0
        let take (shape: int[]) (expected: int[]) =
            if shape <> expected then
                Container.fail path (sprintf "a checkpoint tensor has shape %s, expected %s." (Shapes.describe shape) (Shapes.describe expected))
            let n = Array.fold (*) 1 shape
            let values = floats[offset .. offset + n - 1]
            offset <- offset + n
            values
        for (_, _, shape), (_, t) in List.zip weightBlocks (List.ofArray tensors) do
            t.CopyFrom(ReadOnlySpan<float32>(take shape t.Shape), 0L)
        for (_, _, shape), t in List.zip slotBlocks (List.ofArray slots) do
            t.CopyFrom(ReadOnlySpan<float32>(take shape t.Shape), 0L)
        let best =
            if bestBlocks.IsEmpty then None
            else Some(Array.concat [| for (_, _, shape), (_, t) in List.zip bestBlocks (List.ofArray tensors) -> take shape t.Shape |])
        state, best
