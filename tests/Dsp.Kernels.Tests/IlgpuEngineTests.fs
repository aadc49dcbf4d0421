/// The ILGPU engine and its tensors on every ILGPU engine of the machine (zeroed allocation, copies, reshape views, engine checks),
/// and a check that every DSP and network kernel also compiles to PTX for CUDA, so CUDA-only compile errors show up without a GPU.
module Hybrid.DspKernelsTests.IlgpuEngineTests

open System
open System.Reflection
open Expecto
open ILGPU
open ILGPU.Backends.EntryPoints
open ILGPU.Backends.PTX
open ILGPU.Runtime
open ILGPU.Runtime.Cuda
open ILGPU.Runtime.CPU
open Hybrid.Dsp
open Hybrid.Dsp.Ilgpu
open Hybrid.DspKernelsTests.IlgpuFixture

/// The kernel classes of the ILGPU engine: every type of Hybrid.Dsp.Ilgpu whose name ends in "Kernels" (so a new
/// family is checked without being listed here).
let private kernelClasses () =
    typeof<IlgpuEngine>.Assembly.GetTypes()
    |> Array.filter (fun t -> t.Namespace = "Hybrid.Dsp.Ilgpu" && t.Name.EndsWith "Kernels")
    |> Array.sortBy _.Name
    |> Array.toList

/// The name of the class declaring a kernel method.
let private family (m: MethodInfo) =
    match m.DeclaringType with
    | null -> ""
    | t -> t.Name

/// Every kernel entry point of the ILGPU DSP and network operations: static methods named *Kernel on the kernel classes.
let private kernels () =
    kernelClasses ()
    |> List.collect (fun t ->
        t.GetMethods(BindingFlags.Static ||| BindingFlags.NonPublic ||| BindingFlags.Public)
        |> Array.filter (fun m -> m.Name.EndsWith "Kernel" && m.ReturnType = typeof<Void>)
        |> Array.toList)

[<Tests>]
let tests =
    ilgpuList "IlgpuEngine" [
        test "the ilgpu-cpu engine names itself and its device" {
            let e = engine.Value
            Expect.equal e.Name "ilgpu-cpu" "name"
            Expect.isTrue (e.DeviceName.Contains "CPU") $"device name mentions the CPU, was {e.DeviceName}"
        }

        for engineName, engine in ilgpuEngines do
            testList engineName [
                test "allocated tensors are zero-filled even where a previous tensor left data" {
                    let e = engine.Value
                    for _ in 1 .. 3 do
                        let junk = upload e (Array.create 4096 7.0f) [| 4096 |]
                        junk.Dispose()
                        use fresh = e.Allocate(64, 64)
                        Expect.isTrue (fresh.ToArray() |> Array.forall (fun v -> v = 0.0f)) "fresh tensor is zero"
                }

                test "copies to and from the host round-trip at an offset, and a reshape shares storage" {
                    let e = engine.Value
                    use t = e.Allocate(3, 4)
                    t.CopyFrom(ReadOnlySpan<float32>([| 1.0f; 2.0f; 3.0f |]), 5L)
                    let view = t.Reshape(2, 6)
                    Expect.equal view.Shape [| 2; 6 |] "view shape"
                    Expect.equal (view.ToArray()) [| 0.0f; 0.0f; 0.0f; 0.0f; 0.0f; 1.0f; 2.0f; 3.0f; 0.0f; 0.0f; 0.0f; 0.0f |] "view contents"
                    view.CopyFrom(ReadOnlySpan<float32>([| 9.0f |]), 0L)
                    Expect.equal (t.ToArray()).[0] 9.0f "write through the view is visible in the original"
                    throwsArgument "reshape" [ "12 elements" ] (fun () -> t.Reshape(5, 5) |> ignore)
                }

                test "host copies stay exact while other threads' allocations trigger garbage collections (copies pin their spans)" {
                    // ILGPU's pointer-based copies take a span's address as given. Before the tensors pinned it, a collection
                    // during a copy could move the fresh host array away, so the copy read from or wrote to the memory it
                    // left behind: tensors came back all zero, and under this load the process crashed within 20,000 round trips
                    let e = engine.Value
                    let n = 4096
                    let data = Array.init n (fun i -> float32 (i % 97 + 1))
                    use t = e.Allocate n
                    use stop = new Threading.ManualResetEventSlim false
                    let allocator =
                        Threading.Thread(
                            (fun () ->
                                let mutable sink: byte[] = [||]
                                while not stop.IsSet do
                                    sink <- Array.zeroCreate 65536
                                GC.KeepAlive sink),
                            IsBackground = true)
                    let collectionsBefore = GC.CollectionCount 0
                    allocator.Start()
                    let mutable bad = 0
                    try
                        for _ in 1 .. 20000 do
                            t.CopyFrom(ReadOnlySpan<float32>(Array.copy data))
                            let back = Array.zeroCreate<float32> n
                            t.CopyTo(Span<float32> back)
                            if back <> data then bad <- bad + 1
                    finally
                        stop.Set()
                        allocator.Join()
                    Expect.isGreaterThan (GC.CollectionCount 0 - collectionsBefore) 10 "collections happened during the copies"
                    Expect.equal bad 0 "round trips that lost their data"
                }

                test "a tensor from another engine is rejected naming the parameter and the engines" {
                    let e = engine.Value
                    use managed = new Hybrid.Dsp.Managed.ManagedEngine()
                    use foreign = managed.Allocate(1, 64)
                    use out = e.Allocate(1, 33, 2)
                    throwsArgument "foreign tensor" [ "input"; "managed"; engineName ] (fun () -> e.Dsp.Rfft(foreign, out))
                }
            ]

        test "every DSP and network kernel compiles to PTX for sm_70 (CUDA) without a GPU" {
            let found = kernels ()
            let families = kernelClasses () |> List.map _.Name
            for expected in [ "FftKernels"; "StftKernels"; "MelKernels"; "SpectralKernels"; "ScatteringKernels"; "NnElementKernels"; "NnReduceKernels"; "NnGemmKernels"; "NnConvKernels"; "NnPoolKernels"; "NnTrainKernels" ] do
                Expect.contains families expected "kernel class found by reflection"
            for name in families do
                Expect.isTrue (found |> List.exists (fun m -> family m = name)) $"{name} has kernel entry points"
            Expect.isGreaterThanOrEqual (found |> List.filter (fun m -> (family m).StartsWith "Nn") |> List.length) 32 "network kernels found by reflection"
            use context = Context.Create(fun b -> b.CPU().EnableAlgorithms() |> ignore)
            use backend = new PTXBackend(context, CudaCapabilityContext(CudaArchitecture.SM_70), CudaArchitecture.SM_70, CudaInstructionSet.ISA_70, null)
            for m in found do
                let grouped = m.GetParameters().[0].ParameterType <> typeof<Index1D>
                let entry =
                    if grouped then EntryPointDescription.FromExplicitlyGroupedKernel m
                    else EntryPointDescription.FromImplicitlyGroupedKernel m
                let mutable specialization = KernelSpecialization.Empty
                let compiled = backend.Compile(&entry, &specialization) :?> PTXCompiledKernel
                Expect.stringContains compiled.PTXAssembly ".entry" $"PTX of {m.Name}"
        }
    ]
