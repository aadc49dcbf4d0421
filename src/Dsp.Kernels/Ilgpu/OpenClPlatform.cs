using System.Runtime.InteropServices;
using System.Runtime.Loader;
using ILGPU;
using ILGPU.Backends.OpenCL;
using ILGPU.Runtime.OpenCL;

namespace Hybrid.Dsp.Ilgpu;

/// <summary>
/// One OpenCL device the ICD loader reports, and whether ILGPU's OpenCL back end can run Hybrid's kernels on it (it
/// needs OpenCL C 2.0, or 3.0 with the generic address space).
/// </summary>
/// <param name="Platform">The platform's name (e.g. "Portable Computing Language", "NVIDIA CUDA").</param>
/// <param name="Name">The device's name.</param>
/// <param name="Kind">"GPU", "CPU" or "accelerator".</param>
/// <param name="Version">The device's OpenCL version as ILGPU parsed it (e.g. "CL30").</param>
/// <param name="Qualifies">True when the <c>opencl</c> engine can use the device.</param>
/// <param name="Reason">Why the device does not qualify; empty when it does.</param>
public sealed record OpenClDeviceInfo(string Platform, string Name, string Kind, string Version, bool Qualifies, string Reason)
{
    /// <summary>"name (platform, kind, version)", with the reason when the device does not qualify.</summary>
    public override string ToString() =>
        $"{Name} ({Platform}, {Kind}, {Version}){(Qualifies ? "" : ": " + Reason)}";
}

/// <summary>
/// How Hybrid finds OpenCL: the ICD loader library, PoCL built by <c>scripts/pocl/build-pocl.sh</c> in the user cache,
/// and the choice of device. ocl-icd reads <c>OCL_ICD_VENDORS</c> once, at the process's first OpenCL call, and reads
/// it with the C library's <c>getenv</c> (which <see cref="Environment.SetEnvironmentVariable(string, string)"/> does not
/// reach on Unix), so <see cref="PrepareLoader"/> runs before ILGPU's first OpenCL query and sets it natively.
/// </summary>
internal static class OpenClPlatform
{
    /// <summary>The PoCL version the build script installs (the folder name under the user cache).</summary>
    internal const string PoclVersion = "6.0";

    private static readonly object Gate = new();
    private static bool _prepared;

    /// <summary>The folder the build script installs PoCL into: $XDG_CACHE_HOME/hybrid/pocl-6.0, else ~/.cache/hybrid/pocl-6.0.</summary>
    internal static string PoclPrefix
    {
        get
        {
            var cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            if (string.IsNullOrEmpty(cache))
                cache = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(cache, "hybrid", $"pocl-{PoclVersion}");
        }
    }

    /// <summary>The cached PoCL build's ICD file (it may not exist).</summary>
    internal static string PoclIcd => Path.Combine(PoclPrefix, "etc", "OpenCL", "vendors", "pocl.icd");

    /// <summary>What <see cref="PrepareLoader"/> did, for error messages: empty when it left the loader alone.</summary>
    internal static string LoaderNote { get; private set; } = "";

    /// <summary>
    /// Once per process, before the first OpenCL call: lets ILGPU's "OpenCL" import fall back to the loader's runtime
    /// name (libOpenCL.so.1, when the unversioned development link is absent), and, when neither OCL_ICD_VENDORS nor
    /// OPENCL_VENDOR_PATH is set and the cached PoCL build exists, points the loader at it: at its ICD file alone when
    /// /etc/OpenCL/vendors registers no other platform, else at a folder in the user cache holding the system's ICD
    /// files (other PoCL installations left out) and PoCL's, so a qualifying GPU platform is still seen and preferred.
    /// </summary>
    internal static void PrepareLoader()
    {
        lock (Gate)
        {
            if (_prepared) return;
            _prepared = true;
            if (OperatingSystem.IsLinux()) AssemblyLoadContext.Default.ResolvingUnmanagedDll += ResolveOpenCl;
            try
            {
                PointLoaderAtPocl();
                // ILGPU 1.5.3's OpenCL C writes every int constant as its unsigned bit pattern (-1 as 4294967295), which
                // the int variable it is assigned to turns back into the same value; clang warns about each one and
                // PoCL's compiler prints "1 warning generated." on standard error. PoCL accepts no -Wno-... option, so
                // its warnings are turned off with -w (only PoCL reads this variable).
                if (OperatingSystem.IsLinux() && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("POCL_EXTRA_BUILD_FLAGS")))
                    SetNative("POCL_EXTRA_BUILD_FLAGS", "-w");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                LoaderNote = $"the cached PoCL build could not be registered ({e.Message})";
            }
        }
    }

    private static IntPtr ResolveOpenCl(System.Reflection.Assembly assembly, string name) =>
        name == "OpenCL" && NativeLibrary.TryLoad("libOpenCL.so.1", out var handle) ? handle : IntPtr.Zero;

    /// <summary>True when Hybrid registers the cached PoCL build itself (Linux, the build exists, neither loader
    /// variable is set), so that the loader sees what <see cref="OtherIcds"/> lists besides PoCL.</summary>
    private static bool RegistersPocl() =>
        OperatingSystem.IsLinux()
        && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OCL_ICD_VENDORS"))
        && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OPENCL_VENDOR_PATH"))
        && File.Exists(PoclIcd);

    /// <summary>The ICD files of /etc/OpenCL/vendors other than PoCL installations, in name order.</summary>
    private static List<string> OtherIcds()
    {
        var others = new List<string>();
        const string systemVendors = "/etc/OpenCL/vendors";
        if (Directory.Exists(systemVendors))
            foreach (var icd in Directory.GetFiles(systemVendors, "*.icd").Order(StringComparer.Ordinal))
                if (!File.ReadAllText(icd).Contains("libpocl", StringComparison.Ordinal)) others.Add(icd);
        return others;
    }

    /// <summary>
    /// Whether, before anything is loaded, the only OpenCL platform this process can see is the cached PoCL build (a
    /// CPU device): then <c>auto</c>, which takes only GPUs and accelerators, need not load PoCL and LLVM (about 0.3 s,
    /// more on a busy machine) to pass it over.
    /// </summary>
    internal static bool OnlyCachedPocl()
    {
        try
        {
            return !_prepared && RegistersPocl() && OtherIcds().Count == 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static void PointLoaderAtPocl()
    {
        if (!RegistersPocl()) return;
        var pocl = PoclIcd;
        var others = OtherIcds();
        string target;
        if (others.Count == 0)
        {
            target = pocl;
        }
        else
        {
            target = Path.Combine(Path.GetDirectoryName(PoclPrefix)!, "opencl-vendors");
            Directory.CreateDirectory(target);
            var wanted = others.Append(pocl).ToDictionary(f => Path.GetFileName(f), File.ReadAllText);
            foreach (var stale in Directory.GetFiles(target, "*.icd"))
                if (!wanted.ContainsKey(Path.GetFileName(stale))) File.Delete(stale);
            foreach (var (file, text) in wanted)
            {
                var path = Path.Combine(target, file);
                if (!File.Exists(path) || File.ReadAllText(path) != text) File.WriteAllText(path, text);
            }
        }
        SetNative("OCL_ICD_VENDORS", target);
        LoaderNote = $"OCL_ICD_VENDORS={target} (PoCL {PoclVersion} from {PoclPrefix})";
    }

    /// <summary>Sets a variable in .NET's copy of the environment and in the C library's, which native code reads.</summary>
    private static void SetNative(string name, string value)
    {
        Environment.SetEnvironmentVariable(name, value);
        if (setenv(name, value, 1) != 0)
            throw new IOException($"setenv({name}) failed with error {Marshal.GetLastPInvokeError()}");
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int setenv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);

    /// <summary>True when ILGPU's OpenCL back end can compile for the device (its own default device filter).</summary>
    internal static bool Qualifies(CLDevice device) =>
        device.CLStdVersion >= CLBackend.MinimumVersion && device.Capabilities.GenericAddressSpace;

    /// <summary>"GPU", "CPU" or "accelerator" for a device type bit set.</summary>
    internal static string KindOf(CLDevice device) =>
        device.DeviceType.HasFlag(CLDeviceType.CL_DEVICE_TYPE_GPU) ? "GPU"
        : device.DeviceType.HasFlag(CLDeviceType.CL_DEVICE_TYPE_CPU) ? "CPU"
        : "accelerator";

    /// <summary>Describes a device, with the reason it does not qualify.</summary>
    internal static OpenClDeviceInfo Describe(CLDevice device)
    {
        var qualifies = Qualifies(device);
        var reason = qualifies ? ""
            : device.CLStdVersion < CLBackend.MinimumVersion
                ? $"OpenCL C {device.CLStdVersion} is below the {CLBackend.MinimumVersion} ILGPU needs"
                : "no generic address space (ILGPU's OpenCL back end needs it)";
        return new OpenClDeviceInfo(device.PlatformName, device.Name, KindOf(device), device.DeviceVersion.ToString(), qualifies, reason);
    }

    /// <summary>True when the OpenCL ICD loader library can be loaded.</summary>
    private static bool LoaderPresent()
    {
        foreach (var name in new[] { "libOpenCL.so", "libOpenCL.so.1", "OpenCL" })
            if (NativeLibrary.TryLoad(name, out _)) return true;
        return false;
    }

    /// <summary>A context over every OpenCL device the loader reports, qualifying or not (after <see cref="PrepareLoader"/>).</summary>
    internal static Context CreateContext()
    {
        PrepareLoader();
        return Context.Create(b => b.OpenCL(_ => true).EnableAlgorithms());
    }

    /// <summary>The OpenCL devices of a context, in ILGPU's order (the index <see cref="CLContextExtensions.CreateCLAccelerator"/> takes).</summary>
    internal static List<CLDevice> Devices(Context context)
    {
        var devices = new List<CLDevice>();
        foreach (var device in context.GetCLDevices()) devices.Add(device);
        return devices;
    }

    /// <summary>
    /// The index (among <paramref name="context"/>'s OpenCL devices) of the device the opencl engine runs on: the first
    /// qualifying GPU, else the first qualifying accelerator, else, when <paramref name="allowCpu"/>, the first qualifying
    /// CPU device; or -1 with the reason none was taken.
    /// </summary>
    internal static (int Index, string Failure) Pick(Context context, bool allowCpu)
    {
        var devices = Devices(context);
        foreach (var kind in allowCpu ? new[] { "GPU", "accelerator", "CPU" } : ["GPU", "accelerator"])
            for (var i = 0; i < devices.Count; i++)
                if (KindOf(devices[i]) == kind && Qualifies(devices[i])) return (i, "");
        var found = devices.Select(d => Describe(d).ToString()).ToList();
        if (!allowCpu && devices.Any(d => KindOf(d) == "CPU" && Qualifies(d)))
            return (-1, $"only a CPU OpenCL device qualifies ({string.Join("; ", found)}); the managed engine is the faster CPU path, name 'opencl' to use it");
        var where = LoaderNote.Length > 0 ? $"; {LoaderNote}"
            : File.Exists(PoclIcd) ? ""
            : "; no PoCL build in the user cache: run 'dotnet fsi build.fsx pocl' for a CPU device";
        if (found.Count == 0 && !LoaderPresent())
            return (-1, "no OpenCL ICD loader (libOpenCL.so.1) could be loaded; install your GPU vendor's OpenCL driver or, for a CPU device, run 'dotnet fsi build.fsx pocl' (it installs Debian's ocl-icd-libopencl1)");
        return (-1, found.Count == 0
            ? $"no OpenCL platform found{where}"
            : $"no OpenCL device with the features ILGPU needs (OpenCL C 2.0, or 3.0 with the generic address space): {string.Join("; ", found)}{where}");
    }
}
