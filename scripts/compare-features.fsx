// Compare features across digits and speakers: mean MFCC vectors per digit, and how far apart they are.
// Run: dotnet fsi scripts/compare-features.fsx   (after `dotnet fsi build.fsx build`)
#load "_references.fsx"
open System
open Hybrid.Dsp
open Hybrid.Features
open Hybrid.Features.Schemas

let dataset = Dataset.openFolder false (_references.fsddFolder ())
let items = dataset.Items |> Array.filter (fun i -> i.Index = Some 0)
printfn "%d recordings (index 0 of every digit and speaker)" items.Length
use engine = Engines.Create("managed")
let schema = Schemas.ByName "mfcc-mean40"
// Whole recordings (the schema accepts any clip length), through the same extraction path as `features` and `train`.
let rows = Extraction.rows engine schema (items |> Array.map (fun i -> (AudioFile.read { AudioFile.defaults with SampleRate = Some schema.SampleRate } i.Path).Samples.[0]))
// Standardise each column so the loudness coefficient (mfcc1) does not dominate the distances.
Normalization.applyInPlace (Normalization.fit Normalization.PerColumn schema.Length rows) schema.Length rows
let rowOf i = rows.[i * schema.Length .. (i + 1) * schema.Length - 1]
let distance (a: float32[]) (b: float32[]) = Array.fold2 (fun acc x y -> acc + float ((x - y) * (x - y))) 0.0 a b |> sqrt
let centroid label =
    let members = [| for i in 0 .. items.Length - 1 do if items.[i].Label = label then rowOf i |]
    Array.init schema.Length (fun k -> members |> Array.averageBy (fun r -> r.[k]))
let centroids = dataset.Labels |> Array.map centroid
printfn "columns: %s ... %s" schema.Names.[0] schema.Names.[schema.Length - 1]
printfn "distance between digit centroids (standardised MFCC means):"
printfn "     %s" (String.Join("", dataset.Labels |> Array.map (sprintf "%7s")))
for a in 0 .. centroids.Length - 1 do
    printfn "%4s %s" dataset.Labels.[a] (String.Join("", [| for b in 0 .. centroids.Length - 1 -> sprintf "%7.2f" (distance centroids.[a] centroids.[b]) |]))
let nearest = [| for i in 0 .. items.Length - 1 -> dataset.Labels.[centroids |> Array.mapi (fun k c -> k, distance (rowOf i) c) |> Array.minBy snd |> fst] |]
let correct = Array.fold2 (fun n (item: Item) p -> if item.Label = p then n + 1 else n) 0 items nearest
printfn "nearest-centroid labels agree with the truth for %d of %d recordings" correct items.Length
