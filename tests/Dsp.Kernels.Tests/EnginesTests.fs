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

        test "a GPU engine without a usable device falls back to managed with a warning naming the cause" {
            let available = Engines.Available()
            for gpu in [ "cuda"; "opencl" ] do
                if not (Seq.contains gpu available) then
                    let e, warnings = createWithWarnings gpu
                    use _ = e
                    Expect.equal e.Name "managed" $"{gpu} falls back"
                    Expect.exists warnings (fun w -> w.Contains $"'{gpu}'" && w.Contains "unavailable" && w.Contains "(") $"warning for {gpu}: {warnings}"
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
