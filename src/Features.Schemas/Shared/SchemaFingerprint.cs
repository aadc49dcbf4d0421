// Shared source (see LayoutRules.cs): a schema's fingerprint, computed by the generator for a declaration and by the
// run time for a variant or a one-member schema from the same text. netstandard2.0 and net10.0.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Hybrid.Features.Schemas
{
    /// <summary>The fingerprint of a laid-out schema: equal fingerprints mean interchangeable feature rows.</summary>
    internal static class SchemaFingerprint
    {
        /// <summary>
        /// SHA-256 (lower-case hex) of <see cref="CanonicalText"/>, the same on every runtime and culture.
        /// </summary>
        public static string Compute(LayoutParameters p, IReadOnlyList<LayoutMember> members, IReadOnlyList<int> shape, string? pcen)
        {
            using (var sha = SHA256.Create())
            {
                var hash = sha.ComputeHash(Encoding.UTF8.GetBytes(CanonicalText(p, members, shape, pcen)));
                var sb = new StringBuilder(64);
                foreach (var b in hash) sb.Append(b.ToString("x2", CultureInfo.InvariantCulture));
                return sb.ToString();
            }
        }

        /// <summary>
        /// The canonical text a fingerprint hashes: every resolved DSP parameter, the shape and each member's layout
        /// and options, doubles as their IEEE-754 bit patterns. The schema's C# and registry names are not part of
        /// it. <paramref name="pcen"/> is the run-time PCEN line's value (null: none; no attribute declares PCEN).
        /// </summary>
        public static string CanonicalText(LayoutParameters p, IReadOnlyList<LayoutMember> members, IReadOnlyList<int> shape, string? pcen)
        {
            var sb = new StringBuilder();
            void Line(string key, string value) => sb.Append(key).Append('=').Append(value).Append('\n');
            string Bool(bool b) => b ? "1" : "0";
            Line("format", "hybrid-feature-schema/1");
            Line("sr", LayoutRules.Invariant(p.SampleRate));
            Line("clip_samples", LayoutRules.Invariant(p.ClipSamples));
            Line("n_fft", LayoutRules.Invariant(p.NFft));
            Line("hop_length", LayoutRules.Invariant(p.HopLength));
            Line("win_length", LayoutRules.Invariant(p.WinLength));
            Line("window", LayoutRules.Invariant(p.Window));
            Line("center", Bool(p.Center));
            Line("pad_mode", LayoutRules.Invariant(p.PadMode));
            Line("n_mels", LayoutRules.Invariant(p.NMels));
            Line("fmin", Bits(p.FMin));
            Line("fmax", Bits(p.FMax));
            Line("htk", Bool(p.Htk));
            Line("norm", LayoutRules.Invariant(p.Norm));
            Line("power", Bits(p.Power));
            Line("top_db", Bits(p.TopDb));
            Line("n_mfcc", LayoutRules.Invariant(p.NMfcc));
            Line("lifter", Bits(p.Lifter));
            Line("tuning", Bits(p.Tuning));
            Line("roll_percent", Bits(p.RollPercent));
            // Mel bands in dB at a power other than 2 follow librosa's rule for that power (power_to_db of
            // S^(2/power): amplitude_to_db at power 1) rather than power_to_db of S; their rows changed with the
            // rule, so their fingerprints do too.
            if (p.Power != 2.0)
            {
                foreach (var m in members)
                {
                    if (m.Kind == FeatureKind.MelBands && m.Decibels)
                    {
                        Line("mel_db", "power_to_db(S^(2/power))");
                        break;
                    }
                }
            }
            // Only when set, so that the fingerprints of schemas that do not estimate tuning or use PCEN stay as they were.
            if (p.EstimateTuning) Line("estimate_tuning", Bool(true));
            if (pcen != null) Line("pcen", pcen);
            var dims = new List<string>();
            foreach (var d in shape) dims.Add(LayoutRules.Invariant(d));
            Line("shape", string.Join(",", dims));
            foreach (var m in members)
            {
                Line("member", string.Join("|",
                    m.Kind.ToString(), m.Statistic.ToString(), m.Column, LayoutRules.Invariant(m.Offset), LayoutRules.Invariant(m.Width),
                    LayoutRules.Invariant(m.Rows), LayoutRules.Invariant(m.Frames), Bool(m.Pooled), Bool(m.Decibels), LayoutRules.Invariant(m.DeltaOrder),
                    LayoutRules.Invariant(m.DeltaWidth), LayoutRules.Invariant(m.FrameLength), LayoutRules.Invariant(m.HopLength))
                    + (m.Scattering is { } sc
                        ? " scattering " + LayoutRules.Invariant(sc.J) + " " + LayoutRules.Invariant(sc.Q) + " " + LayoutRules.Invariant(sc.T) + " " + LayoutRules.Invariant(sc.MaxOrder) + " " + Bits(sc.LogEpsilon) + " " + Bool(sc.PeakNormalize)
                            // Only when set, so that the fingerprints of whole-clip statistics stay as they were.
                            + (sc.Segments != 1 ? " segments " + LayoutRules.Invariant(sc.Segments) : "")
                        : ""));
            }
            return sb.ToString();
        }

        /// <summary>A double as the hex of its IEEE-754 bit pattern (the fingerprint's spelling of every real).</summary>
        public static string Bits(double d) => BitConverter.DoubleToInt64Bits(d).ToString("x16", CultureInfo.InvariantCulture);
    }
}
