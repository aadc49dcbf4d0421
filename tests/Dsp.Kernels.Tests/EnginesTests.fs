/// Engine selection: names, availability, auto's choice and report, GPU fallback to managed, unknown names.
module Hybrid.DspKernelsTests.EnginesTests

open System
open Expecto
open Hybrid.Dsp
open Hybrid.DspKernelsTests.IlgpuFixture

let private createWithWarnings name =
    let warnings = ResizeArray<string>()
    let e = Engines.Create(name, Action<string>(fun w -> warnings.Add w))
    e, List.ofSeq warnings

[<Tests>]
let tests =
    IlgpuFixture.ilgpuList "Engines" [
        test "managed and ilgpu-cpu are always available" {
            let names = Engines.Available()
            Expect.contains names "managed" "managed available"
            Expect.contains names "ilgpu-cpu" "ilgpu-cpu available"
        }

        test "auto picks cuda when a CUDA device exists, else opencl, else managed, and reports its choice" {
            let available = Engines.Available()
            let expected =
                if Seq.contains "cuda" available then "cuda"
                elif Seq.contains "opencl" available then "opencl"
                else "managed"
            let e, warnings = createWithWarnings "auto"
            use _ = e
            Expect.equal e.Name expected "auto's pick"
            Expect.exists warnings (fun w -> w.Contains "auto" && w.Contains $"'{expected}'") $"a line reports the pick, got {warnings}"
        }

        test "a GPU engine asked for by name without a usable device is an error naming the cause; only auto falls back" {
            let available = Engines.Available()
            for gpu in [ "cuda"; "opencl" ] do
                if not (Seq.contains gpu available) then
                    let e = Expect.throwsC (fun () -> Engines.Create(gpu, Action<string>(ignore)) |> ignore) id
                    Expect.isTrue (e :? ArgumentException) $"{gpu}: ArgumentException, was {e.GetType().Name}"
                    Expect.stringContains e.Message $"engine '{gpu}' is unavailable (" $"{gpu}: names the engine and the cause"
                    Expect.stringContains e.Message "use 'auto'" $"{gpu}: says how to fall back"
        }

        test "names are case-insensitive and managed creates the managed engine silently" {
            let e, warnings = createWithWarnings "Managed"
            use _ = e
            Expect.equal e.Name "managed" "name"
            Expect.isEmpty warnings "no warnings"
        }

        test "an unknown engine name is rejected listing the valid names" {
            throwsArgument "unknown engine" [ "'tpu'"; "auto"; "managed"; "cuda"; "opencl"; "ilgpu-cpu" ] (fun () -> Engines.Create("tpu") |> ignore)
        }
    ]
