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

        test "auto picks cuda when a CUDA device exists, else an OpenCL GPU or accelerator, else managed, and reports its choice" {
            let available = Engines.Available()
            let expected =
                if Seq.contains "cuda" available then "cuda"
                elif Engines.OpenClDevices() |> Seq.exists (fun d -> d.Qualifies && d.Kind <> "CPU") then "opencl"
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

        openclRequired "the opencl engine's test lists run here (PoCL's CPU device or an OpenCL GPU qualifies)"

        test "opencl runs on a qualifying device, a GPU before a CPU, with every kernel compiled; auto passes a CPU-only OpenCL device over" {
            let devices = Engines.OpenClDevices() |> List.ofSeq
            match ilgpuEngines |> List.tryFind (fun (n, _) -> n = "opencl") with
            | None -> skiptest $"no qualifying OpenCL device (found: {devices})"
            | Some (_, opencl) ->
                let e = opencl.Value :?> Hybrid.Dsp.Ilgpu.IlgpuEngine
                Expect.equal e.Name "opencl" "name"
                let best = devices |> List.filter _.Qualifies |> List.sortBy (fun d -> match d.Kind with "GPU" -> 0 | "accelerator" -> 1 | _ -> 2) |> List.head
                Expect.stringContains e.DeviceName best.Name "the engine runs on the best qualifying device"
                Expect.stringContains e.DeviceName $"OpenCL {best.Kind} device" "the device name says OpenCL and the kind"
                Expect.isGreaterThanOrEqual (e.LoadedKernels |> Seq.filter (fun k -> k.StartsWith "nn.") |> Seq.length) 20 "network kernels compiled when created"
                Expect.isGreaterThanOrEqual (e.LoadedKernels |> Seq.filter (fun k -> k.StartsWith "scattering.") |> Seq.length) 7 "DSP kernels compiled when created"
                if not (Seq.contains "cuda" (Engines.Available())) && devices |> List.forall (fun d -> not d.Qualifies || d.Kind = "CPU") then
                    let auto, warnings = createWithWarnings "auto"
                    use _ = auto
                    Expect.equal auto.Name "managed" "auto keeps the managed engine over a CPU OpenCL device"
                    Expect.exists warnings (fun w -> w.Contains "CPU" && w.Contains "name 'opencl' to use it") $"auto says why, got {warnings}"
        }

        test "every OpenCL device the loader reports says whether it qualifies and, if not, why" {
            for d in Engines.OpenClDevices() do
                Expect.isNotEmpty d.Name "device name"
                Expect.contains [ "GPU"; "CPU"; "accelerator" ] d.Kind "kind"
                Expect.equal (d.Reason = "") d.Qualifies $"a reason exactly when {d} does not qualify"
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
