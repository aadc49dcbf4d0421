using Hybrid.Dsp.Ilgpu;
using Hybrid.Dsp.Managed;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace Hybrid.Dsp;

/// <summary>
/// Engine discovery and selection: <c>managed</c> (SIMD + multithreaded C#), <c>cuda</c> and <c>opencl</c> (ILGPU
/// kernels on the first such device), <c>ilgpu-cpu</c> (the same kernels on ILGPU's CPU simulator, for tests), and
/// <c>auto</c> (cuda, then opencl, then managed).
/// </summary>
public static class Engines
{
    /// <summary>Every name <see cref="Create"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["auto", "managed", "cuda", "opencl", "ilgpu-cpu"];

    /// <summary>
    /// Creates the engine called <paramref name="name"/> (case-insensitive). Only <c>auto</c> falls back: it tries
    /// cuda, then opencl, then takes the managed engine, and <paramref name="warn"/> receives a line naming its pick
    /// and why the GPUs were passed over. An engine asked for by name that cannot be used (its device is missing, fails
    /// to initialise, or cannot compile the kernels) is an error. Without <paramref name="warn"/> the lines go to
    /// standard error.
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
                    var (engine, failure) = TryCreateGpu(key);
                    if (engine is not null) return engine;
                    throw new ArgumentException(
                        $"engine '{key}' is unavailable ({failure}); use 'auto' to fall back to 'managed' when no GPU can be used.", nameof(name));
                }
            case "auto":
                {
                    var reasons = new List<string>();
                    foreach (var gpu in new[] { "cuda", "opencl" })
                    {
                        var (engine, failure) = TryCreateGpu(gpu);
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

    /// <summary>The engine names that can be created on this machine without falling back (managed and ilgpu-cpu always).</summary>
    public static IReadOnlyList<string> Available()
    {
        var names = new List<string>();
        if (HasDevice(b => b.Cuda(), ctx => ctx.GetCudaDevices().Count)) names.Add("cuda");
        if (HasDevice(b => b.OpenCL(), ctx => ctx.GetCLDevices().Count)) names.Add("opencl");
        names.Add("managed");
        names.Add("ilgpu-cpu");
        return names;
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

    /// <summary>Creates a cuda or opencl engine and compiles every kernel, or returns why it could not.</summary>
    private static (Engine? Engine, string Failure) TryCreateGpu(string kind)
    {
        try
        {
            return (CreateIlgpu(kind, compile: true), "");
        }
        catch (Exception e)
        {
            return (null, $"{e.GetType().Name}: {e.Message}");
        }
    }

    private static IlgpuEngine CreateIlgpu(string kind, bool compile)
    {
        Context? context = null;
        Accelerator? accelerator = null;
        try
        {
            context = kind switch
            {
                "cuda" => Context.Create(b => b.Cuda().EnableAlgorithms()),
                "opencl" => Context.Create(b => b.OpenCL().EnableAlgorithms()),
                _ => Context.Create(b => b.CPU(CPUDevice.Default).EnableAlgorithms()),
            };
            accelerator = kind switch
            {
                "cuda" => context.GetCudaDevices().Count > 0
                    ? context.CreateCudaAccelerator(0)
                    : throw new InvalidOperationException("no CUDA device found"),
                "opencl" => context.GetCLDevices().Count > 0
                    ? context.CreateCLAccelerator(0)
                    : throw new InvalidOperationException("no OpenCL device with the features ILGPU needs was found"),
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
