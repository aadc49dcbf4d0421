using System;
using System.Collections.Generic;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Hybrid.Generators
{
    /// <summary>Column naming, frame counting and the fingerprint: pure functions of the model.</summary>
    internal static class Layout
    {
        public static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

        public static string Invariant(double value) => value.ToString("R", CultureInfo.InvariantCulture);

        /// <summary>"SpectralCentroid" → "spectral_centroid", "Mfcc40" → "mfcc40", "ZCR" → "zcr".</summary>
        public static string SnakeCase(string name)
        {
            var sb = new StringBuilder(name.Length + 8);
            for (var i = 0; i < name.Length; i++)
            {
                var c = name[i];
                if (char.IsUpper(c))
                {
                    var previousLower = i > 0 && (char.IsLower(name[i - 1]) || char.IsDigit(name[i - 1]));
                    var acronymEnd = i > 0 && char.IsUpper(name[i - 1]) && i + 1 < name.Length && char.IsLower(name[i + 1]);
                    if ((previousLower || acronymEnd) && sb.Length > 0 && sb[sb.Length - 1] != '_') sb.Append('_');
                    sb.Append(char.ToLowerInvariant(c));
                }
                else sb.Append(c);
            }
            return sb.ToString();
        }

        /// <summary>librosa's frame count (centred frames pad frame_length / 2 on both sides); 0 when too short.</summary>
        public static int FrameCount(int frameLength, int hop, bool center, int samples)
        {
            var padded = (long)samples + (center ? 2 * (frameLength / 2) : 0);
            return padded < frameLength ? 0 : (int)(1 + (padded - frameLength) / hop);
        }

        /// <summary>Paths of kymatio 0.4's Scattering1D (order 0, every first-order wavelet, the second-order pairs with
        /// j2 &gt; j1) for J, Q first-order wavelets per octave and max_order; mirrors Filters.Scattering1D (the Andén
        /// filter bank with sigma0 0.1, r_psi sqrt(1/2), alpha 5), which checks the count at run time.</summary>
        public static int ScatteringPathCount(int j, int q, int maxOrder)
        {
            var first = ScatteringScales(j, q);
            var count = 1 + first.Count;
            if (maxOrder == 2)
            {
                var second = ScatteringScales(j, 1);
                foreach (var j1 in first)
                    foreach (var j2 in second)
                        if (j2 > j1) count++;
            }
            return count;
        }

        private static List<int> ScatteringScales(int j, int q)
        {
            var scales = new List<int>();
            void Add(double x, double s)
            {
                var upper = System.Math.Min(System.Math.Abs(x) + 5.0 * s, 0.5);
                scales.Add((int)System.Math.Floor(-System.Math.Log(upper) / System.Math.Log(2.0)) - 1);
            }
            var xi = System.Math.Max(1.0 / (1.0 + System.Math.Pow(2.0, 3.0 / q)), 0.35);
            var factor = 1.0 / System.Math.Pow(2, 1.0 / q);
            var sigma = xi * ((1 - factor) / (1 + factor)) * (1.0 / System.Math.Sqrt(2 * System.Math.Log(1.0 / System.Math.Sqrt(0.5))));
            var sigmaMin = 0.1 / System.Math.Pow(2, j);
            var step = System.Math.Pow(2, 1.0 / q);
            if (sigma <= sigmaMin) xi = sigma;
            else
            {
                Add(xi, sigma);
                while (sigma > sigmaMin * step)
                {
                    xi /= step;
                    sigma /= step;
                    Add(xi, sigma);
                }
            }
            var elbow = xi;
            for (var k = 0; k < q - 1; k++)
            {
                xi -= 1.0 / q * elbow;
                Add(xi, sigmaMin);
            }
            return scales;
        }

        /// <summary>True for members whose rows are numbered (MFCC, deltas, mel bands, per-bin chroma).</summary>
        public static bool HasNumberedRows(MemberModel m) =>
            m.Kind == FeatureKind.Mfcc || m.Kind == FeatureKind.MfccDelta || m.Kind == FeatureKind.MelBands || m.Kind == FeatureKind.Scattering
            || (m.Kind == FeatureKind.Chroma && !m.Pooled);

        /// <summary>
        /// Columns of a member in row order: a scalar statistic is "name"; numbered rows with a statistic are
        /// name1..nameR; a one-row time series (or the waveform) is name1..nameT; a numbered-row time series is
        /// name{r}_{t}, row-major (all 1-based).
        /// </summary>
        public static IEnumerable<string> ColumnNames(MemberModel m)
        {
            if (m.Statistic != Statistic.TimeSeries)
            {
                if (m.Width == 1 && !HasNumberedRows(m)) yield return m.Column;
                else
                    for (var r = 1; r <= m.Width; r++) yield return m.Column + Invariant(r);
                yield break;
            }
            var frames = m.Frames < 1 ? 1 : m.Frames;
            if (!HasNumberedRows(m))
            {
                for (var t = 1; t <= m.Width; t++) yield return m.Column + Invariant(t);
                yield break;
            }
            for (var i = 0; i < m.Width; i++)
                yield return m.Column + Invariant(i / frames + 1) + "_" + Invariant(i % frames + 1);
        }

        /// <summary>
        /// SHA-256 (lower-case hex) of a canonical text listing every resolved DSP parameter, the shape and each
        /// member's layout and options. Doubles enter as their IEEE-754 bit patterns, so the text, and the hash,
        /// are the same on every runtime and culture. The schema's C# and registry names are not part of it.
        /// </summary>
        public static string Fingerprint(ParametersModel p, EquatableArray<MemberModel> members, EquatableArray<int> shape)
        {
            var text = CanonicalText(p, members, shape);
            using (var sha = SHA256.Create())
            {
                var hash = sha.ComputeHash(Encoding.UTF8.GetBytes(text));
                var sb = new StringBuilder(64);
                foreach (var b in hash) sb.Append(b.ToString("x2", CultureInfo.InvariantCulture));
                return sb.ToString();
            }
        }

        public static string CanonicalText(ParametersModel p, EquatableArray<MemberModel> members, EquatableArray<int> shape)
        {
            var sb = new StringBuilder();
            void Line(string key, string value) => sb.Append(key).Append('=').Append(value).Append('\n');
            string Bits(double d) => BitConverter.DoubleToInt64Bits(d).ToString("x16", CultureInfo.InvariantCulture);
            string Bool(bool b) => b ? "1" : "0";
            Line("format", "hybrid-feature-schema/1");
            Line("sr", Invariant(p.SampleRate));
            Line("clip_samples", Invariant(p.ClipSamples));
            Line("n_fft", Invariant(p.NFft));
            Line("hop_length", Invariant(p.HopLength));
            Line("win_length", Invariant(p.WinLength));
            Line("window", Invariant(p.Window));
            Line("center", Bool(p.Center));
            Line("pad_mode", Invariant(p.PadMode));
            Line("n_mels", Invariant(p.NMels));
            Line("fmin", Bits(p.FMin));
            Line("fmax", Bits(p.FMax));
            Line("htk", Bool(p.Htk));
            Line("norm", Invariant(p.Norm));
            Line("power", Bits(p.Power));
            Line("top_db", Bits(p.TopDb));
            Line("n_mfcc", Invariant(p.NMfcc));
            Line("lifter", Bits(p.Lifter));
            Line("tuning", Bits(p.Tuning));
            Line("roll_percent", Bits(p.RollPercent));
            // Mel bands in dB at a power other than 2 follow librosa's rule for that power (power_to_db of
            // S^(2/power): amplitude_to_db at power 1) rather than power_to_db of S; their rows changed with the
            // rule, so their fingerprints do too. Mirrored in Features.Schemas/SchemaLayout.cs.
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
            // Only when set, so that the fingerprints of schemas that do not estimate tuning stay as they were.
            if (p.EstimateTuning) Line("estimate_tuning", Bool(true));
            var dims = new List<string>();
            foreach (var d in shape) dims.Add(Invariant(d));
            Line("shape", string.Join(",", dims));
            foreach (var m in members)
            {
                Line("member", string.Join("|",
                    m.Kind.ToString(), m.Statistic.ToString(), m.Column, Invariant(m.Offset), Invariant(m.Width),
                    Invariant(m.Rows), Invariant(m.Frames), Bool(m.Pooled), Bool(m.Decibels), Invariant(m.DeltaOrder),
                    Invariant(m.DeltaWidth), Invariant(m.FrameLength), Invariant(m.HopLength))
                    + (m.Scattering is { } sc
                        ? " scattering " + Invariant(sc.J) + " " + Invariant(sc.Q) + " " + Invariant(sc.T) + " " + Invariant(sc.MaxOrder) + " " + Bits(sc.LogEpsilon) + " " + Bool(sc.PeakNormalize)
                            // Only when set, so that the fingerprints of whole-clip statistics stay as they were.
                            + (sc.Segments != 1 ? " segments " + Invariant(sc.Segments) : "")
                        : ""));
            }
            return sb.ToString();
        }
    }
}
