namespace Hybrid.Classifier

open System
open Hybrid.Dsp

/// The best epoch's weights, kept on the model's engine (one flat tensor of every saved tensor, the layout of
/// `Model.SnapshotTo`, allocated on first use) until they are restored or written into a checkpoint.
type internal BestWeights(model: Model) =
    let store = lazy (model.Engine.Allocate [| int model.SavedLength |])
    let mutable held = false

    /// The held weights ([Model.SavedLength] on the model's engine), None until an epoch or a checkpoint gave some.
    member _.Tensor = if held then Some store.Value else None

    /// Copies the model's weights now, without leaving the device (no host read).
    member _.Snapshot() =
        model.SnapshotTo store.Value
        held <- true

    /// Takes weights read from a checkpoint ([Model.SavedLength] floats in `Model.SnapshotTo`'s layout).
    member _.Load(values: float32[]) =
        store.Value.CopyFrom(ReadOnlySpan<float32>(values), 0L)
        held <- true

    /// Copies the held weights back into the model; does nothing when none are held.
    member _.Restore() =
        if held then model.RestoreFrom store.Value

    interface IDisposable with
        member _.Dispose() =
            if store.IsValueCreated then
                // Copies from the snapshot may still be queued on a device engine: let them finish first.
                model.Engine.Synchronize()
                store.Value.Dispose()

/// What a fit's callbacks share (Keras' model and logs): the model and its trainer, the history so far and the
/// early-stopping state that a checkpoint carries, fresh or read from a checkpoint before the first epoch.
type internal FitState =
    { Model: Model
      Trainer: Trainer
      /// The fit's seed (recorded in checkpoints).
      Seed: int
      /// Every finished epoch's report, those before a resume included.
      mutable History: EpochReport list
      /// Epochs finished, those before a resume included.
      mutable EpochsDone: int
      /// The monitor's best value so far.
      mutable Best: float option
      /// The 1-based epoch of `Best`.
      mutable BestEpoch: int option
      /// Epochs since the last improvement.
      mutable Wait: int
      /// Set as soon as a callback asks to stop (Keras' `model.stop_training`): the callbacks after it in the same
      /// epoch see it, and no further epoch starts.
      mutable StopTraining: bool
      BestWeights: BestWeights }

/// A fit callback (Keras' `Callback`): `fitRows` calls `OnTrainBegin` once before the first epoch (after a resume),
/// `OnBatchEnd` after each batch, `OnEpochEnd` after each epoch in the order the callbacks were given (true asks to
/// stop after this epoch) and `OnTrainEnd` once after the last. Every member does nothing by default.
[<AbstractClass>]
type internal Callback() =
    /// Before the first epoch.
    abstract OnTrainBegin: FitState -> unit
    default _.OnTrainBegin _ = ()
    /// After each batch: 1-based epoch and batch, batches per epoch, the batch's mean loss (on a device engine all
    /// of an epoch's batches are reported at its end).
    abstract OnBatchEnd: FitState * epoch: int * batch: int * batches: int * loss: float -> unit
    default _.OnBatchEnd(_, _, _, _, _) = ()
    /// After each epoch, its report already in `History`; returns true to stop training after it.
    abstract OnEpochEnd: FitState * EpochReport -> bool
    default _.OnEpochEnd(_, _) = false
    /// After the last epoch (also when a resumed fit had none left to run).
    abstract OnTrainEnd: FitState -> unit
    default _.OnTrainEnd _ = ()

/// The callbacks `Training.fitRows` builds from its options.
module internal Callbacks =
    /// Early stopping (Keras' EarlyStopping): an epoch improves when its monitored value beats the best one by more than
    /// `MinDelta` (the first epoch always does; a missing validation metric is NaN, which never improves); it then
    /// becomes `Best`/`BestEpoch` and `Wait` returns to 0, otherwise `Wait` grows and training stops when it reaches
    /// `Patience`.
    let earlyStopping (settings: EarlyStopping) =
        { new Callback() with
            member _.OnEpochEnd(state, report) =
                let value, higherIsBetter =
                    match settings.Monitor with
                    | ValidationLoss -> report.ValidationLoss |> Option.defaultValue nan, false
                    | ValidationAccuracy -> report.ValidationAccuracy |> Option.defaultValue nan, true
                    | TrainingLoss -> report.TrainLoss, false
                let improved =
                    match state.Best with
                    | None -> true
                    | Some b -> if higherIsBetter then value > b + settings.MinDelta else value < b - settings.MinDelta
                if improved then
                    state.Best <- Some value
                    state.BestEpoch <- Some report.Epoch
                    state.Wait <- 0
                    false
                else
                    state.Wait <- state.Wait + 1
                    state.Wait >= settings.Patience }

    /// Restore-best-weights (Keras' EarlyStopping(restore_best_weights=True)); runs after `earlyStopping`: snapshots
    /// the weights on the device when the epoch just ended became `BestEpoch`, and puts the best weights held (this
    /// fit's, or a resumed checkpoint's) back into the model at the end of training.
    let restoreBestWeights () =
        { new Callback() with
            member _.OnEpochEnd(state, report) =
                if state.BestEpoch = Some report.Epoch then state.BestWeights.Snapshot()
                false
            member _.OnTrainEnd state = state.BestWeights.Restore() }

    /// Checkpointing (Keras' BackupAndRestore): after every epoch writes `checkpoint.hnn` in `dir` (atomically; one
    /// device-to-host read) with the weights, optimizer slots and step, history, early-stopping state and the best
    /// weights held; runs after the callbacks that change that state.
    let checkpoint (dir: string) =
        { new Callback() with
            member _.OnEpochEnd(state, _) =
                let saved: CheckpointState =
                    { EpochsDone = state.EpochsDone
                      OptimizerStep = state.Trainer.State.Step
                      History = state.History
                      Best = state.Best
                      BestEpoch = state.BestEpoch
                      Wait = state.Wait
                      Stopped = state.StopTraining
                      Seed = state.Seed }
                Checkpoint.write dir state.Model saved state.Trainer.State.Tensors state.BestWeights.Tensor
                false }

    /// Passes batch and epoch ends to `FitOptions.Callback` (an epoch's end after its checkpoint was written).
    let progress (callback: Progress -> unit) =
        { new Callback() with
            member _.OnBatchEnd(_, epoch, batch, batches, loss) = callback (BatchEnd(epoch, batch, batches, loss))
            member _.OnEpochEnd(_, report) =
                callback (EpochEnd report)
                false }
