namespace Hybrid.Classifier

open System
open System.Text

/// A sequential network description: a per-sample input shape and a list of layers whose shapes have been checked
/// (build it with `Net.sequential`). It holds no weights; `Model.create` instantiates it on an engine.
[<Sealed>]
type Net internal (inputShape: int[], layers: Layer list, shapes: int[][]) =
    /// Per-sample input shape (no batch axis).
    member _.InputShape = Array.copy inputShape
    /// The layers, first to last.
    member _.Layers = layers
    /// Per-sample output shape of each layer.
    member _.LayerOutputShapes = shapes |> Array.map Array.copy
    /// Per-sample output shape of the network ([classes] for a classifier).
    member _.OutputShape = if shapes.Length = 0 then Array.copy inputShape else Array.copy shapes[shapes.Length - 1]
    member internal _.InputOf(i: int) = if i = 0 then inputShape else shapes[i - 1]
    /// Number of input elements per sample.
    member _.SampleSize = Array.fold (*) 1 inputShape

/// Building and describing networks.
[<RequireQualifiedAccess>]
module Net =
    /// A sequential network for per-sample inputs of `inputShape` (e.g. [1; 40; 65] for one-channel 40 x 65 images,
    /// [13] for 13 features). Infers every layer's output shape and raises ArgumentException naming the first layer
    /// whose settings or input shape are invalid.
    let sequential (inputShape: int list) (layers: Layer list) : Net =
        let input = Array.ofList inputShape
        if input.Length = 0 || input |> Array.exists (fun d -> d < 1) then
            invalidArg "inputShape" (sprintf "Input shape must have at least one axis and positive sizes, was %s." (Shapes.describe input))
        if List.isEmpty layers then invalidArg "layers" "A network needs at least one layer."
        let shapes =
            layers
            |> List.mapi (fun i l -> i, l)
            |> List.scan (fun shape (i, l: Layer) -> l.Kind.Output(sprintf "layer %d (%O)" i l, shape)) input
            |> List.tail
            |> Array.ofList
        Net(input, layers, shapes)

    /// Appends a layer to a network (`net --> Layers.relu`); shapes are checked again.
    let append (layer: Layer) (net: Net) = sequential (List.ofArray net.InputShape) (net.Layers @ [ layer ])

    /// (trainable, non-trainable) parameter counts of each layer, first to last (Keras' counts: BatchNorm's running
    /// statistics are non-trainable).
    let layerParameters (net: Net) : (int64 * int64) list =
        net.Layers |> List.mapi (fun i (l: Layer) -> l.Kind.Parameters(net.InputOf i))

    /// (trainable, non-trainable) parameter counts; BatchNorm's running statistics are non-trainable, as in Keras.
    let parameterCounts (net: Net) =
        layerParameters net
        |> List.fold (fun (a, b) (x, y) -> a + x, b + y) (0L, 0L)

    /// Keras' names of the layers, first to last: each kind's lower-case name, numbered from the second layer of a
    /// kind on (conv2d, conv2d_1, conv2d_2, ...).
    let layerNames (net: Net) : string list =
        let counters = Collections.Generic.Dictionary<string, int>()
        net.Layers
        |> List.map (fun (l: Layer) ->
            let baseName = l.TypeName.ToLowerInvariant()
            let k = match counters.TryGetValue baseName with | true, c -> c | _ -> 0
            counters[baseName] <- k + 1
            if k = 0 then baseName else sprintf "%s_%d" baseName k)

    /// A Keras-like model summary: one row per layer (name and type, output shape with None as batch axis, parameter
    /// count), then total, trainable and non-trainable parameter counts.
    let summary (net: Net) : string =
        let sb = StringBuilder()
        let shapes = net.LayerOutputShapes
        let rows =
            List.zip3 net.Layers (layerNames net) (layerParameters net)
            |> List.mapi (fun i ((l: Layer), name, (trainable, fixedCount)) ->
                let shape = "(None, " + String.Join(", ", shapes[i]) + ")"
                sprintf "%s (%s)" name l.TypeName, shape, trainable + fixedCount)
        let w1 = max 28 (rows |> List.map (fun (a, _, _) -> a.Length + 2) |> List.max)
        let w2 = max 22 (rows |> List.map (fun (_, b, _) -> b.Length + 2) |> List.max)
        let line (c: char) = String(c, w1 + w2 + 12)
        sb.AppendLine(line '_') |> ignore
        sb.AppendLine(" Layer (type)".PadRight(w1) + "Output Shape".PadRight(w2) + "Param #") |> ignore
        sb.AppendLine(line '=') |> ignore
        rows
        |> List.iteri (fun i (a, b, c) ->
            sb.AppendLine((" " + a).PadRight(w1) + b.PadRight(w2) + string c) |> ignore
            sb.AppendLine(if i = rows.Length - 1 then line '=' else "") |> ignore)
        let trainable, fixedCount = parameterCounts net
        sb.AppendLine(sprintf "Total params: %d" (trainable + fixedCount)) |> ignore
        sb.AppendLine(sprintf "Trainable params: %d" trainable) |> ignore
        sb.AppendLine(sprintf "Non-trainable params: %d" fixedCount) |> ignore
        sb.Append(line '_').ToString()

/// The composition operator: `Net.sequential [1; 40; 65] [ Layers.conv2d 32 (3, 3) Same ] --> Layers.relu`.
[<AutoOpen>]
module NetOperators =
    /// Appends a layer to a network (shapes are checked).
    let (-->) (net: Net) (layer: Layer) = Net.append layer net
