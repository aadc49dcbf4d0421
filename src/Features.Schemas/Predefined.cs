namespace Hybrid.Features.Schemas;

/// <summary>
/// The music-genre write-up's table (GTZAN at 22,050 Hz): the means over time of chroma_stft (pooled over the
/// 12 bins), rms ("rmse"), spectral centroid, bandwidth and roll-off, zero-crossing rate and 20 MFCCs, with
/// librosa's defaults (n_fft 2048, hop 512; chroma with each clip's estimated tuning, chroma_stft's tuning=None). Header: chroma_stft rmse spectral_centroid spectral_bandwidth
/// rolloff zero_crossing_rate mfcc1 ... mfcc20 (26 columns). Registered as "genre".
/// </summary>
[FeatureSchema("genre", SampleRate = 22050, EstimateTuning = true)]
public sealed partial record GenreFeatures
{
    /// <summary>Mean chroma over 12 bins and all frames (np.mean(chroma_stft)).</summary>
    [Chroma(Statistic.Mean)]
    public partial float ChromaStft { get; }

    /// <summary>Mean frame RMS.</summary>
    [Rms(Statistic.Mean)]
    public partial float Rmse { get; }

    /// <summary>Mean spectral centroid in Hz.</summary>
    [SpectralCentroid(Statistic.Mean)]
    public partial float SpectralCentroid { get; }

    /// <summary>Mean spectral bandwidth in Hz.</summary>
    [SpectralBandwidth(Statistic.Mean)]
    public partial float SpectralBandwidth { get; }

    /// <summary>Mean 85 % roll-off frequency in Hz.</summary>
    [SpectralRolloff(Statistic.Mean)]
    public partial float Rolloff { get; }

    /// <summary>Mean zero-crossing rate.</summary>
    [ZeroCrossingRate(Statistic.Mean)]
    public partial float ZeroCrossingRate { get; }

    /// <summary>Means of MFCC 1..20 over frames.</summary>
    [Mfcc(20, Statistic.Mean)]
    public partial ReadOnlyMemory<float> Mfcc { get; }
}

/// <summary>
/// The UrbanSound8K write-up's vector: the mean over time of 40 MFCCs at 22,050 Hz
/// (np.mean(librosa.feature.mfcc(y, sr, n_mfcc=40).T, axis=0)); columns mfcc1..mfcc40. Registered as "mfcc-mean40".
/// </summary>
[FeatureSchema("mfcc-mean40", SampleRate = 22050, NMfcc = 40)]
public sealed partial record MfccMean40Features
{
    /// <summary>Means of MFCC 1..40 over frames.</summary>
    [Mfcc(40, Statistic.Mean)]
    public partial ReadOnlyMemory<float> Mfcc { get; }
}

/// <summary>
/// A log-mel "image" for FSDD: clips of 8,192 samples at 8 kHz, n_fft 256, hop 128, 40 Slaney mel bands,
/// power_to_db with top_db 80 per clip; shape [40, 65] (mels x frames), columns log_mel{mel}_{frame}.
/// Registered as "logmel-fsdd".
/// </summary>
[FeatureSchema("logmel-fsdd", SampleRate = 8000, ClipSamples = 8192, NFft = 256, HopLength = 128, NMels = 40)]
public sealed partial record LogMelFsddFeatures
{
    /// <summary>Log-power mel spectrogram, [40, 65] row-major.</summary>
    [MelBands(Statistic.TimeSeries)]
    public partial ReadOnlyMemory<float> LogMel { get; }
}

/// <summary>
/// The raw waveform of 8,192 samples at 8 kHz for 1-D convolutional models; shape [8192], columns
/// waveform1..waveform8192. Registered as "raw8192".
/// </summary>
[FeatureSchema("raw8192", SampleRate = 8000, ClipSamples = 8192)]
public sealed partial record Raw8192Features
{
    /// <summary>The clip's samples.</summary>
    [Waveform(8192)]
    public partial ReadOnlyMemory<float> Waveform { get; }
}

/// <summary>
/// kymatio's spoken-digit example (FSDD at 8 kHz): each clip divided by its peak absolute value, shaped to 8,192
/// samples (centred with zero padding, or cut, by the caller), then the log-scattering time average of Scattering1D
/// with J = 8, Q = 12, T = 2^J: mean over frames of log(|S| + 1e-6) for every path but order 0; shape [336],
/// columns scattering1..scattering336 (kymatio's path order). Registered as "scattering-fsdd".
/// </summary>
[FeatureSchema("scattering-fsdd", SampleRate = 8000, ClipSamples = 8192)]
public sealed partial record ScatteringFsddFeatures
{
    /// <summary>Log-scattering means of paths 1..336 (first order, then second order).</summary>
    [Scattering(8, 12, Statistic.LogMean, PeakNormalize = true)]
    public partial ReadOnlyMemory<float> Scattering { get; }
}

/// <summary>
/// <see cref="ScatteringFsddFeatures"/> with the spread over time beside the average: the same Scattering1D (J = 8,
/// Q = 12, T = 2^J of peak-normalised 8,192-sample clips at 8 kHz), mean and population standard deviation over
/// frames of log(|S| + 1e-6) for every path but order 0; shape [672] (336 means, then 336 deviations).
/// Registered as "scattering-fsdd-std".
/// </summary>
[FeatureSchema("scattering-fsdd-std", SampleRate = 8000, ClipSamples = 8192)]
public sealed partial record ScatteringFsddStdFeatures
{
    /// <summary>Log-scattering means of paths 1..336.</summary>
    [Scattering(8, 12, Statistic.LogMean, PeakNormalize = true)]
    public partial ReadOnlyMemory<float> Mean { get; }

    /// <summary>Standard deviations over frames of the log-scattering of paths 1..336.</summary>
    [Scattering(8, 12, Statistic.LogStd, PeakNormalize = true)]
    public partial ReadOnlyMemory<float> Std { get; }
}

/// <summary>
/// <see cref="ScatteringFsddFeatures"/> averaged over four equal parts of the clip instead of the whole clip, so that
/// the row keeps the digit's coarse temporal order: the same Scattering1D (J = 8, Q = 12, T = 2^J of peak-normalised
/// 8,192-sample clips at 8 kHz, 32 frames), mean of log(|S| + 1e-6) over each run of 8 frames (256 ms) for every path
/// but order 0; shape [1344], path-major (path 1's four parts, then path 2's, ...). Registered as "scattering-fsdd-parts4".
/// </summary>
[FeatureSchema("scattering-fsdd-parts4", SampleRate = 8000, ClipSamples = 8192)]
public sealed partial record ScatteringFsddParts4Features
{
    /// <summary>Log-scattering means of paths 1..336 over each quarter of the frames.</summary>
    [Scattering(8, 12, Statistic.LogMean, PeakNormalize = true, Segments = 4)]
    public partial ReadOnlyMemory<float> Scattering { get; }
}

/// <summary>
/// <see cref="ScatteringFsddParts4Features"/> with the whole clip's spread: log-scattering means over each quarter of
/// the frames ([1344], path-major) then the standard deviation over all frames of log(|S| + 1e-6) ([336]); shape
/// [1680]. Registered as "scattering-fsdd-parts4-std".
/// </summary>
[FeatureSchema("scattering-fsdd-parts4-std", SampleRate = 8000, ClipSamples = 8192)]
public sealed partial record ScatteringFsddParts4StdFeatures
{
    /// <summary>Log-scattering means of paths 1..336 over each quarter of the frames.</summary>
    [Scattering(8, 12, Statistic.LogMean, PeakNormalize = true, Segments = 4)]
    public partial ReadOnlyMemory<float> Mean { get; }

    /// <summary>Standard deviations over all frames of the log-scattering of paths 1..336.</summary>
    [Scattering(8, 12, Statistic.LogStd, PeakNormalize = true)]
    public partial ReadOnlyMemory<float> Std { get; }
}

/// <summary>
/// The registry of feature schemas, by the names <c>--schema</c>, <c>--features</c> and model files use. Every valid
/// <c>[FeatureSchema]</c> type registers itself when its assembly is initialised (the generator emits a module
/// initializer calling <see cref="Register"/>): the predefined schemas of this assembly (genre, mfcc-mean40,
/// logmel-fsdd, raw8192, scattering-fsdd and its variants) and those of any user assembly once it is loaded (<see cref="LoadAssembly"/>).
/// </summary>
public static class Schemas
{
    private static readonly object Gate = new();
    private static readonly List<FeatureSchemaInfo> Registered = new();
    private static FeatureSchemaInfo[] _snapshot = Array.Empty<FeatureSchemaInfo>();

    /// <summary>Every registered schema: the predefined ones first, then those of user assemblies in the order
    /// they were loaded.</summary>
    public static IReadOnlyList<FeatureSchemaInfo> All => Volatile.Read(ref _snapshot);

    /// <summary>The registered names, in the order of <see cref="All"/>.</summary>
    public static IReadOnlyList<string> Names => All.Select(s => s.Name).ToArray();

    /// <summary>Registers a schema under its name (called by generated module initializers). Registering the same
    /// type again does nothing. A second type under a name already taken (a predefined schema's or another loaded
    /// assembly's) is not registered but remembered as a clash, and the name is refused from then on:
    /// <see cref="ByName"/> and <see cref="TryGetByName"/> of it, and <see cref="LoadAssembly"/> of the second type's
    /// assembly, throw <see cref="SchemaNameConflictException"/> naming both types and their assemblies (names select
    /// schemas and must be unique across the loaded assemblies; the generator's HYB014 and HYB015 catch the same at
    /// compile time within a project and against its references). Never throws for a non-null argument, so that a
    /// module initializer cannot fail.</summary>
    public static void Register(FeatureSchemaInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        lock (Gate)
        {
            var existing = Registered.FirstOrDefault(s => SameName(s, info));
            if (existing is null)
            {
                Registered.Add(info);
                Volatile.Write(ref _snapshot, Registered.ToArray());
            }
            else if (existing.SchemaType != info.SchemaType && !Clashes.Any(c => c.SchemaType == info.SchemaType))
                Clashes.Add(info);
        }
    }

    /// <summary>The schema registered as <paramref name="name"/> (case-insensitive); throws
    /// <see cref="ArgumentException"/> listing the known names otherwise, and <see cref="SchemaNameConflictException"/>
    /// naming both types and their assemblies when two loaded types declare the name (see <see cref="Register"/>).</summary>
    public static FeatureSchemaInfo ByName(string name) =>
        TryGetByName(name, out var info)
            ? info
            : throw new ArgumentException($"Unknown feature schema '{name}'; expected one of: {string.Join(", ", Names)} (schemas declared in your own assembly are found once it is loaded, e.g. with --schemas PATH.dll).", nameof(name));

    /// <summary>Looks a schema up by name (case-insensitive): false when no loaded assembly declares it. Throws
    /// <see cref="SchemaNameConflictException"/> naming both types and their assemblies when two loaded types declare
    /// the name (a user's schema named like a predefined one, or two user assemblies' schemas), rather than choosing
    /// one of them.</summary>
    public static bool TryGetByName(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out FeatureSchemaInfo? info)
    {
        ArgumentNullException.ThrowIfNull(name);
        info = All.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase));
        if (info is not null) ThrowIfClashing(info);
        return info is not null;
    }

    private static bool SameName(FeatureSchemaInfo a, FeatureSchemaInfo b) => string.Equals(a.Name, b.Name, StringComparison.OrdinalIgnoreCase);

    private static readonly List<FeatureSchemaInfo> Clashes = new();
    private static readonly HashSet<string> ProbedFolders = new(StringComparer.Ordinal);

    private static void ThrowIfClashing(FeatureSchemaInfo info)
    {
        FeatureSchemaInfo? clash;
        lock (Gate) clash = Clashes.FirstOrDefault(c => SameName(c, info));
        if (clash is not null)
        {
            var owner = All.First(s => SameName(s, clash));
            throw new SchemaNameConflictException(clash.Name, owner.SchemaType, clash.SchemaType,
                $"Feature schema name '{clash.Name}' is declared by both {Describe(owner.SchemaType)} and {Describe(clash.SchemaType)}; names select schemas and must be unique across the loaded assemblies{(IsPredefined(owner) ? $" ('{owner.Name}' is predefined: give {clash.SchemaType.Name} another name)" : "")}.");
        }
    }

    /// <summary>
    /// Loads the assembly at <paramref name="path"/> (a .dll that declares <c>[FeatureSchema]</c> types and references
    /// Hybrid.Features.Schemas), runs its module initializer so that its schemas register, and returns them in
    /// declaration order. Loading the same assembly twice returns the same schemas. Its own dependencies are looked up
    /// beside it. Throws <see cref="ArgumentException"/> naming the path when the file does not exist, is not a .NET
    /// assembly, or declares no feature schemas; <see cref="SchemaNameConflictException"/> when one of its schema names is
    /// already taken by another assembly's schema (a predefined one included).
    /// </summary>
    public static IReadOnlyList<FeatureSchemaInfo> LoadAssembly(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
            throw new ArgumentException($"Schema assembly '{path}' does not exist.", nameof(path));
        System.Reflection.Assembly assembly;
        try
        {
            _ = System.Reflection.AssemblyName.GetAssemblyName(full); // throws BadImageFormatException for a non-.NET file
            assembly = Context.Assemblies.FirstOrDefault(a => !a.IsDynamic && string.Equals(a.Location, full, StringComparison.Ordinal))
                ?? LoadFrom(full);
        }
        catch (BadImageFormatException e)
        {
            throw new ArgumentException($"Schema assembly '{path}' is not a .NET assembly: {e.Message}", nameof(path), e);
        }
        System.Runtime.CompilerServices.RuntimeHelpers.RunModuleConstructor(assembly.ManifestModule.ModuleHandle);
        var found = All.Where(s => s.SchemaType.Assembly == assembly).ToArray();
        FeatureSchemaInfo[] clashing;
        lock (Gate) clashing = Clashes.Where(c => c.SchemaType.Assembly == assembly).ToArray();
        foreach (var c in clashing) ThrowIfClashing(c);
        if (found.Length == 0)
            throw new ArgumentException($"Schema assembly '{path}' declares no feature schemas ([FeatureSchema] partial records built with the Hybrid.Features.Schemas package).", nameof(path));
        return found;
    }

    /// <summary>The file name of the assembly that defines <paramref name="info"/> (what a model file records so
    /// that <c>predict --schemas</c> can be pointed at it), e.g. "MySchemas.dll".</summary>
    public static string AssemblyFileOf(FeatureSchemaInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        return info.SchemaType.Assembly.GetName().Name + ".dll";
    }

    /// <summary>True when <paramref name="info"/> is one of this library's predefined schemas.</summary>
    public static bool IsPredefined(FeatureSchemaInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        return info.SchemaType.Assembly == typeof(Schemas).Assembly;
    }

    /// <summary>The load context holding this assembly (the default one unless Hybrid itself was loaded into another):
    /// user assemblies are loaded into it, so that they bind to this copy of the registry.</summary>
    private static System.Runtime.Loader.AssemblyLoadContext Context =>
        System.Runtime.Loader.AssemblyLoadContext.GetLoadContext(typeof(Schemas).Assembly) ?? System.Runtime.Loader.AssemblyLoadContext.Default;

    private static System.Reflection.Assembly LoadFrom(string full)
    {
        var folder = Path.GetDirectoryName(full)!;
        lock (Gate)
        {
            if (ProbedFolders.Add(folder))
                Context.Resolving += (context, name) =>
                {
                    var candidate = Path.Combine(folder, name.Name + ".dll");
                    return File.Exists(candidate) ? context.LoadFromAssemblyPath(candidate) : null;
                };
        }
        try
        {
            return Context.LoadFromAssemblyPath(full);
        }
        catch (FileLoadException e)
        {
            throw new ArgumentException($"Schema assembly '{full}' could not be loaded: {e.Message}", nameof(full), e);
        }
    }

    private static string Describe(Type t) => $"'{t.FullName}' ({t.Assembly.GetName().Name})";
}

/// <summary>
/// Raised when two loaded types declare one feature schema name (a user's schema named like a predefined one, or two
/// assemblies' schemas): by <see cref="Schemas.ByName"/> and <see cref="Schemas.TryGetByName"/> of the name and by
/// <see cref="Schemas.LoadAssembly"/> of the second type's assembly. The message names both types and their assemblies.
/// </summary>
public sealed class SchemaNameConflictException : InvalidOperationException
{
    /// <summary>Creates the exception for <paramref name="name"/>, registered by <paramref name="registered"/> and
    /// declared again by <paramref name="refused"/>.</summary>
    public SchemaNameConflictException(string name, Type registered, Type refused, string message)
        : base(message)
    {
        Name = name;
        Registered = registered;
        Refused = refused;
    }

    /// <summary>The schema name both types declare.</summary>
    public string Name { get; }

    /// <summary>The type registered under the name first (a predefined schema's, or the first loaded assembly's).</summary>
    public Type Registered { get; }

    /// <summary>The type declaring the name again, which was not registered.</summary>
    public Type Refused { get; }
}
