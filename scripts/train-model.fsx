// Train and evaluate a model in a few lines, then classify a recording with the saved model.
// Run: dotnet fsi scripts/train-model.fsx [EPOCHS]   (after `dotnet fsi build.fsx build`)
#load "_references.fsx"
open System.IO
open Hybrid.Classifier

let epochs = fsi.CommandLineArgs |> Array.tryItem 1 |> Option.map int |> Option.defaultValue 30
let out = Path.Combine(Path.GetTempPath(), "hybrid-script-run")
let result =
    Experiment.train
        { Experiment.defaults with
            Data = [ _references.fsddFolder () ]; Model = "mlp"; Epochs = Some epochs
            Device = "managed"; Out = Some out; Progress = false; Plots = false }
printfn "%s on %s: test accuracy %.4f after %.1f s of training" result.Model result.Split result.TestAccuracy result.TrainSeconds
printfn "%s" (Net.summary (fst (ModelFile.inspect (Path.Combine(out, "model.hnn")))))
let sample = Path.Combine(_references.fsddFolder (), "recordings", "4_theo_2.wav")
for p in Inference.predict "managed" ignore (Path.Combine(out, "model.hnn")) [ sample ] do
    printfn "%s -> %s (p = %.3f)" (Path.GetFileName p.Path) p.Label (p.Probabilities |> List.find (fun (l, _) -> l = p.Label) |> snd)
