// A user's own feature schema, declared here and extracted from a few recordings.
// Usage: dotnet run -- RECORDINGS_FOLDER   (e.g. FSDD's recordings/, 8 kHz WAV files)
using Hybrid.Dsp;
using Hybrid.Features;
using Hybrid.Features.Schemas;

var folder = args.Length > 0 ? args[0] : "recordings";
var files = Directory.GetFiles(folder, "*.wav").OrderBy(f => f, StringComparer.Ordinal).Take(6).ToArray();
using var engine = Engines.Create("managed");

// One batch [clips, samples]: each recording cut or zero-padded to the schema's clip length.
var batch = new float[files.Length * DigitTimbre.Info.Parameters.ClipSamples];
for (var i = 0; i < files.Length; i++)
{
    var samples = AudioFile.read(AudioFile.defaults, files[i]).Samples[0];
    var n = Math.Min(samples.Length, DigitTimbre.Info.Parameters.ClipSamples);
    Array.Copy(samples, 0, batch, i * DigitTimbre.Info.Parameters.ClipSamples, n);
}
using var clips = engine.FromHost(batch, files.Length, DigitTimbre.Info.Parameters.ClipSamples);
var rows = DigitTimbre.Extract(engine, clips);

Console.WriteLine($"schema {DigitTimbre.SchemaName}: {DigitTimbre.Length} columns, fingerprint {DigitTimbre.Fingerprint[..12]}");
foreach (var (file, row) in files.Zip(rows))
    Console.WriteLine($"{Path.GetFileName(file)}: rms {row.Rms:F4}, mfcc1 {row.Mfcc.Span[0]:F2}, mfcc_std1 {row.MfccStd.Span[0]:F2}");

/// <summary>The timbre of a spoken digit: means and standard deviations of 13 MFCCs and the mean RMS, at 8 kHz.</summary>
[FeatureSchema("digit-timbre", SampleRate = 8000, ClipSamples = 6000, NFft = 256, HopLength = 128, NMels = 40)]
public sealed partial record DigitTimbre
{
    [Mfcc(13, Statistic.Mean)] public partial ReadOnlyMemory<float> Mfcc { get; }
    [Mfcc(13, Statistic.Std, Column = "mfcc_std")] public partial ReadOnlyMemory<float> MfccStd { get; }
    [Rms(Statistic.Mean)] public partial float Rms { get; }
}
