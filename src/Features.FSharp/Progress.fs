/// Progress reporting for long work: a redrawn bar on a terminal, plain lines when output is redirected.
module Hybrid.Features.Progress

open System
open System.Diagnostics

/// A progress sink: call Report with the number of units done so far, then Finish once.
type Reporter =
    abstract Report: completed: int -> unit
    abstract Finish: unit -> unit

/// Reports nothing (for library calls and tests).
let silent =
    { new Reporter with
        member _.Report _ = ()
        member _.Finish() = () }

let private format (seconds: float) =
    if seconds < 60.0 then sprintf "%.1fs" seconds else sprintf "%dm%02ds" (int seconds / 60) (int seconds % 60)

/// The console reporter for `total` units labelled `label`. On a terminal it redraws one bar line on standard error
/// at most 10 times a second; when standard error is redirected it prints a plain line every 10%.
let console (label: string) (total: int) : Reporter =
    let watch = Stopwatch.StartNew()
    let gate = obj ()
    let mutable lastDraw = -1000L
    let mutable lastDecile = -1
    let mutable finished = false
    let interactive = not Console.IsErrorRedirected
    let draw completed final =
        let fraction = if total <= 0 then 1.0 else min 1.0 (float completed / float total)
        let elapsed = watch.Elapsed.TotalSeconds
        if interactive then
            let width = 30
            let filled = int (fraction * float width)
            let eta = if fraction > 0.0 && not final then sprintf " eta %s" (format (elapsed / fraction - elapsed)) else ""
            eprintf "\r%s [%s%s] %3.0f%% %d/%d %s%s   " label (String('#', filled)) (String('.', width - filled)) (fraction * 100.0) completed total (format elapsed) eta
            if final then eprintfn ""
        else
            let decile = int (fraction * 10.0)
            if decile > lastDecile || final then
                lastDecile <- decile
                eprintfn "%s: %d/%d (%.0f%%) %s" label completed total (fraction * 100.0) (format elapsed)
    { new Reporter with
        member _.Report completed =
            lock gate (fun () ->
                if not finished then
                    let now = watch.ElapsedMilliseconds
                    if not interactive || now - lastDraw >= 100L || completed >= total then
                        lastDraw <- now
                        draw completed false)
        member _.Finish() =
            lock gate (fun () ->
                if not finished then
                    finished <- true
                    draw total true) }

/// Makes the reporter of each piece of long work from its label and unit count.
type Renderer = string -> int -> Reporter

let private renderers = Collections.Generic.Stack<Renderer>()

/// Renders every reporter `create` makes with `renderer` until the returned value is disposed (then the previous
/// renderer is back). The library reports through `create` and never draws on its own; an application such as the
/// hybrid command draws its progress bars here (with Spectre.Console on a terminal). Renderers nest; the innermost
/// one is used. Not meant to be changed from several threads at once.
let renderWith (renderer: Renderer) : IDisposable =
    lock renderers (fun () -> renderers.Push renderer)
    { new IDisposable with
        member _.Dispose() = lock renderers (fun () -> if renderers.Count > 0 then renderers.Pop() |> ignore) }

/// A reporter for `total` units labelled `label`, made by the renderer in place (renderWith), else `console`'s.
let create (label: string) (total: int) : Reporter =
    let renderer = lock renderers (fun () -> if renderers.Count > 0 then renderers.Peek() else console)
    renderer label total
