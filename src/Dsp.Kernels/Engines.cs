using Hybrid.Dsp.Ilgpu;
using Hybrid.Dsp.Managed;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace Hybrid.Dsp;

/// <summary>
/// Engine discovery and selection: <c>managed</c> (SIMD + multithreaded C#), <c>cuda</c> (ILGPU kernels on the first
/// CUDA device), <c>opencl</c> (ILGPU kernels on the best qualifying OpenCL device: a GPU, else an accelerator, else a
/// CPU device such as PoCL's), <c>ilgpu-cpu</c> (the same kernels on ILGPU's CPU simulator, for tests), and <c>auto</c>
/// (cuda, then an OpenCL GPU or accelerator, then managed: a CPU OpenCL device is used only when named, since the
/// managed engine is the faster CPU path).
/// </summary>
public static class Engines
{
    /// <summary>Every name <see cref="Create"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["auto", "managed", "cuda", "opencl", "ilgpu-cpu"];

    /// <summary>
    /// Creates the engine called <paramref name="name"/> (case-insensitive). Only <c>auto</c> falls back: it tries
    /// cuda, then an OpenCL GPU or accelerator, then takes the managed engine, and <paramref name="warn"/> receives a
    /// line naming its pick and why the GPUs were passed over. Before the first OpenCL query the ICD loader is pointed
    /// at PoCL built in the user cache by <c>dotnet fsi build.fsx pocl</c>, when that build exists and neither
    /// OCL_ICD_VENDORS nor OPENCL_VENDOR_PATH is set (docs/architecture.md, "OpenCL"). An engine asked for by name
    /// that cannot be used (its device is missing, fails to initialise, or cannot compile the kernels) is an error.
    /// Without <paramref name="warn"/> the lines go to standard error.
    /// </summary>
    /// <exception cref="ArgumentException">The name is not one of <see cref="Names"/>, or the named GPU engine cannot
    /// be used (the message names the cause and suggests <c>auto</c>).</exception>
    public static Engine Create(string name, Action<string>? warn = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        warn ??= line => Console.Error.WriteLine(line);
        var key = name.Trim().ToLowerInvariant();
        switch (key)
        {
            case "managed":
                return new ManagedEngine();
            case "ilgpu-cpu":
                return CreateIlgpu("ilgpu-cpu", compile: false);
            case "cuda":
            case "opencl":
                {
                    var (engine, failure) = TryCreateGpu(key, allowCpu: true);
                    if (engine is not null) return engine;
                    throw new ArgumentException(
                        $"engine '{key}' is unavailable ({failure}); use 'auto' to fall back to 'managed' when no GPU can be used.", nameof(name));
                }
            case "auto":
                {
                    var reasons = new List<string>();
                    foreach (var gpu in new[] { "cuda", "opencl" })
                    {
                        var (engine, failure) = gpu == "opencl" && OpenClPlatform.OnlyCachedPocl()
                            ? (null, $"only the CPU device of PoCL {OpenClPlatform.PoclVersion} from {OpenClPlatform.PoclPrefix} is registered; the managed engine is the faster CPU path, name 'opencl' to use it")
                            : TryCreateGpu(gpu, allowCpu: false);
                        if (engine is not null)
                        {
                            warn($"engine 'auto' picked '{gpu}' on {engine.DeviceName}.");
                            return engine;
                        }
                        reasons.Add($"{gpu}: {failure}");
                    }
                    var managed = new ManagedEngine();
                    warn($"engine 'auto' picked 'managed' on {managed.DeviceName} ({string.Join("; ", reasons)}).");
                    return managed;
                }
            default:
                throw new ArgumentException($"Unknown engine '{name}'; valid names are {string.Join(", ", Names)}.", nameof(name));
        }
    }

    /// <summary>The engine names that can be created on this machine without falling back (managed and ilgpu-cpu
    /// always; opencl when any OpenCL device qualifies, a CPU device such as PoCL's included).</summary>
    public static IReadOnlyList<string> Available()
    {
        var names = new List<string>();
        if (HasDevice(b => b.Cuda(), ctx => ctx.GetCudaDevices().Count)) names.Add("cuda");
        if (OpenClDevices().Any(d => d.Qualifies)) names.Add("opencl");
        names.Add("managed");
        names.Add("ilgpu-cpu");
        return names;
    }

    /// <summary>
    /// Every OpenCL device the ICD loader reports (after pointing it at the cached PoCL build as
    /// <see cref="Create"/> does), each with whether the <c>opencl</c> engine can use it and why not; empty when there
    /// is no OpenCL loader or platform. Never throws.
    /// </summary>
    public static IReadOnlyList<OpenClDeviceInfo> OpenClDevices()
    {
        try
        {
            using var context = OpenClPlatform.CreateContext();
            return OpenClPlatform.Devices(context).Select(OpenClPlatform.Describe).ToList();
        }
        catch (Exception)
        {
            return [];
        }
    }

    private static bool HasDevice(Action<Context.Builder> configure, Func<Context, int> count)
    {
        try
        {
            using var context = Context.Create(configure);
            return count(context) > 0;
        }
        catch (Exception)
        {
            return false;
        }
    }

    /// <summary>Creates a cuda or opencl engine (on a CPU OpenCL device only when <paramref name="allowCpu"/>) and
    /// compiles every kernel, or returns why it could not.</summary>
    private static (Engine? Engine, string Failure) TryCreateGpu(string kind, bool allowCpu)
    {
        try
        {
            return (CreateIlgpu(kind, compile: true, allowCpu), "");
        }
        catch (Exception e)
        {
            // ILGPU's CLException carries the OpenCL error code; its message does not name it.
            var detail = e is CLException cl ? $"OpenCL error {cl.Error}" : e.Message;
            return (null, $"{e.GetType().Name}: {detail}");
        }
    }

    private static IlgpuEngine CreateIlgpu(string kind, bool compile, bool allowCpu = false)
    {
        Context? context = null;
        Accelerator? accelerator = null;
        try
        {
            context = kind switch
            {
                "cuda" => Context.Create(b => b.Cuda().EnableAlgorithms()),
                "opencl" => OpenClPlatform.CreateContext(),
                _ => Context.Create(b => b.CPU(CPUDevice.Default).EnableAlgorithms()),
            };
            accelerator = kind switch
            {
                "cuda" => context.GetCudaDevices().Count > 0
                    ? context.CreateCudaAccelerator(0)
                    : throw new InvalidOperationException("no CUDA device found"),
                "opencl" => OpenClPlatform.Pick(context, allowCpu) is var (index, failure) && index >= 0
                    ? context.CreateCLAccelerator(index)
                    : throw new InvalidOperationException(failure),
                _ => context.CreateCPUAccelerator(0),
            };
            var engine = new IlgpuEngine(kind, context, accelerator);
            (context, accelerator) = (null, null); // owned by the engine from here on
            if (compile)
            {
                try
                {
                    engine.CompileKernels();
                }
                catch (Exception e)
                {
                    engine.Dispose();
                    throw new InvalidOperationException($"kernel compilation failed: {e.Message}", e);
                }
            }
            return engine;
        }
        catch
        {
            accelerator?.Dispose();
            context?.Dispose();
            throw;
        }
    }
}
