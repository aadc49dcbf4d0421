// Shared source: compiled into Hybrid.Features.Schemas and linked into the generator (Hybrid.Generators, built with
// HYBRID_GENERATOR), as System.Text.Json's generator links its Common files. The layout of a schema (rows, frames,
// widths, offsets, column names, shape) and the checks behind diagnostics HYB004 to HYB009 exist once, here: a schema
// declared in C# and laid out by the generator and the same schema laid out at run time (FeatureSchemaInfo.Create,
// WithParameters) get the same answer by construction. C# that compiles for netstandard2.0 and net10.0.
using System;
using System.Collections.Generic;
using System.Globalization;

namespace Hybrid.Features.Schemas
{
    /// <summary>
    /// The layout rules of feature schemas, shared by the generator and the run time. Wording: <c>declared</c> true
    /// speaks of the attribute's properties (ClipSamples, "0 (n_fft / 4) or positive"), false of resolved librosa
    /// parameters (clip_samples, "positive"), as a run-time caller sets them.
    /// </summary>
    internal static class LayoutRules
    {
        /// <summary>Defined values of WindowKind, PadMode and MelNorm (Hybrid.Dsp), whose numeric values parameters carry.</summary>
        public const int WindowKinds = 4, PadModes = 3, MelNorms = 2;

        public static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

        public static string Invariant(double value) => value.ToString("R", CultureInfo.InvariantCulture);

        /// <summary>librosa's frame count (util.frame after stft's or the framed features' centring, which pads
        /// frame_length // 2 on both sides): 1 + (padded - frame_length) // hop, so 1 + samples // hop for an even
        /// frame length when centred; 0 when the (padded) clip is shorter than one frame.</summary>
        public static int FrameCount(int frameLength, int hop, bool center, int samples)
        {
            var padded = (long)samples + (center ? 2 * (frameLength / 2) : 0);
            return padded < frameLength ? 0 : (int)(1 + (padded - frameLength) / hop);
        }

        /// <summary>True for members whose rows are numbered (MFCC, deltas, mel bands, spectrogram, scattering
        /// paths, per-bin chroma).</summary>
        public static bool HasNumberedRows(FeatureKind kind, bool pooled) =>
            kind == FeatureKind.Mfcc || kind == FeatureKind.MfccDelta || kind == FeatureKind.MelBands || kind == FeatureKind.Spectrogram
            || kind == FeatureKind.Scattering || (kind == FeatureKind.Chroma && !pooled);

        /// <summary>True when the member is one float (a scalar statistic of a one-row feature or pooled chroma).</summary>
        public static bool IsScalar(LayoutMember m) =>
            m.Statistic != Statistic.TimeSeries && m.Kind != FeatureKind.Scattering && (m.Pooled || m.Kind <= FeatureKind.Rms);

        /// <summary>
        /// Columns of a member in row order: a scalar statistic is "name"; numbered rows with a statistic are
        /// name1..nameR; a one-row time series (or the waveform) is name1..nameT; a numbered-row time series is
        /// name{r}_{t}, row-major (all 1-based).
        /// </summary>
        public static IEnumerable<string> ColumnNames(LayoutMember m)
        {
            var numbered = HasNumberedRows(m.Kind, m.Pooled);
            if (m.Statistic != Statistic.TimeSeries)
            {
                if (m.Width == 1 && !numbered) yield return m.Column;
                else
                    for (var r = 1; r <= m.Width; r++) yield return m.Column + Invariant(r);
                yield break;
            }
            var frames = m.Frames < 1 ? 1 : m.Frames;
            if (!numbered)
            {
                for (var t = 1; t <= m.Width; t++) yield return m.Column + Invariant(t);
                yield break;
            }
            for (var i = 0; i < m.Width; i++)
                yield return m.Column + Invariant(i / frames + 1) + "_" + Invariant(i % frames + 1);
        }

        /// <summary>
        /// Checks resolved parameters: every problem, out-of-range values (HYB008, in parameter order) before
        /// conflicts (HYB007). <see cref="LayoutProblem.ParamName"/> is the librosa name, Argument the attribute's.
        /// </summary>
        public static List<LayoutProblem> CheckParameters(LayoutParameters p, bool declared)
        {
            var problems = new List<LayoutProblem>();
            string I(int v) => Invariant(v);
            string D(double v) => Invariant(v);
            void Invalid(bool bad, string argument, string name, string expected, string actual)
            {
                if (bad) problems.Add(new LayoutProblem(LayoutRule.InvalidParameter, name, argument, -1, new[] { name, expected, actual }));
            }
            void Conflict(bool bad, string argument, string name, string message)
            {
                if (bad) problems.Add(new LayoutProblem(LayoutRule.ConflictingParameters, name, argument, -1, new[] { message }));
            }
            Invalid(p.SampleRate <= 0, "SampleRate", "sr", "positive", I(p.SampleRate));
            Invalid(p.ClipSamples < 0, "ClipSamples", "clip_samples", "0 (any length) or positive", I(p.ClipSamples));
            Invalid(p.NFft < 2 || p.NFft > 16384, "NFft", "n_fft", "in 2..16384", I(p.NFft));
            Invalid(p.HopLength < 1, "HopLength", "hop_length", declared ? "0 (n_fft / 4) or positive" : "positive", I(p.HopLength));
            Invalid(p.WinLength < 1, "WinLength", "win_length", declared ? "0 (n_fft) or positive" : "positive", I(p.WinLength));
            Invalid(p.Window < 0 || p.Window >= WindowKinds, "Window", "window", "a defined WindowKind", I(p.Window));
            Invalid(p.PadMode < 0 || p.PadMode >= PadModes, "PadMode", "pad_mode", "a defined PadMode", I(p.PadMode));
            Invalid(p.Norm < 0 || p.Norm >= MelNorms, "Norm", "norm", "a defined MelNorm", I(p.Norm));
            Invalid(p.NMels <= 0, "NMels", "n_mels", "positive", I(p.NMels));
            Invalid(!(p.FMin >= 0) || double.IsInfinity(p.FMin), "FMin", "fmin", "a finite frequency of at least 0 Hz", D(p.FMin));
            Invalid(!(p.FMax > 0) || double.IsInfinity(p.FMax), "FMax", "fmax", declared ? "0 (sr / 2) or a positive finite frequency" : "a positive finite frequency", D(p.FMax));
            Invalid(!(p.Power > 0) || double.IsInfinity(p.Power), "Power", "power", "positive and finite", D(p.Power));
            Invalid(!(p.TopDb > 0), "TopDb", "top_db", declared ? "positive (double.PositiveInfinity keeps everything)" : "positive (or none to keep everything)", D(p.TopDb));
            Invalid(p.NMfcc <= 0, "NMfcc", "n_mfcc", "positive", I(p.NMfcc));
            Invalid(!(p.Lifter >= 0) || double.IsInfinity(p.Lifter), "Lifter", "lifter", "0 or positive", D(p.Lifter));
            Invalid(!(p.Tuning >= -0.5 && p.Tuning < 0.5), "Tuning", "tuning", "in [-0.5, 0.5)", D(p.Tuning));
            Invalid(!(p.RollPercent > 0 && p.RollPercent < 1), "RollPercent", "roll_percent", "in (0, 1)", D(p.RollPercent));
            Conflict(p.HopLength > p.NFft && p.NFft >= 2, "HopLength", "hop_length",
                "hop_length (" + I(p.HopLength) + ") must not exceed n_fft (" + I(p.NFft) + "), or samples would be skipped between frames");
            Conflict(p.WinLength > p.NFft && p.NFft >= 2, "WinLength", "win_length",
                "win_length (" + I(p.WinLength) + ") must not exceed n_fft (" + I(p.NFft) + ")");
            Conflict(p.SampleRate > 0 && p.FMax > p.SampleRate / 2.0, "FMax", "fmax",
                "fmax (" + D(p.FMax) + " Hz) must not exceed the Nyquist frequency sr / 2 (" + D(p.SampleRate / 2.0) + " Hz)");
            Conflict(p.FMin >= 0 && p.FMax > 0 && p.FMin >= p.FMax, "FMin", "fmin",
                "fmin (" + D(p.FMin) + " Hz) must be below fmax (" + D(p.FMax) + " Hz)");
            return problems;
        }

        /// <summary>
        /// Lays one member out for parameters <paramref name="p"/>: its statistic checked against its kind, rows (12
        /// for chroma, n_mels for mel bands, n_fft / 2 + 1 for a spectrogram, <paramref name="count"/> or n_mfcc for
        /// MFCCs and deltas, the scattering paths), ZCR/RMS frame and hop lengths, frames of a time series from the
        /// clip length (<see cref="FrameCount"/>), and the width (1 when the member has a problem). Problems are added
        /// to <paramref name="problems"/> with member index <paramref name="index"/>.
        /// </summary>
        public static LayoutMember LayMember(LayoutParameters p, LayoutMember m, int? count, int index, bool declared, List<LayoutProblem> problems)
        {
            var kind = m.Kind;
            var statistic = m.Statistic;
            var property = m.Property;
            var clip = declared ? "ClipSamples" : "clip_samples";
            var ok = true;
            void Add(LayoutRule rule, string paramName, params string[] args)
            {
                problems.Add(new LayoutProblem(rule, paramName, null, index, args));
                ok = false;
            }
            void Invalid(string paramName, string what, string expected, string actual) =>
                Add(LayoutRule.InvalidParameter, paramName, property + "'s " + what, expected, actual);
            void Conflict(string paramName, string message) => Add(LayoutRule.ConflictingParameters, paramName, "'" + property + "' " + message);
            void Unsupported(string feature, string stat, string hint) => Add(LayoutRule.UnsupportedStatistic, "members", property, feature, stat, hint);

            var pooled = kind == FeatureKind.Chroma && m.Pooled;
            if ((statistic == Statistic.LogMean || statistic == Statistic.LogStd) && kind != FeatureKind.Scattering)
            {
                Unsupported(kind.ToString(), statistic.ToString(), statistic.ToString() + " is for [Scattering]; use Mean, Std, Min, Max or TimeSeries");
                statistic = Statistic.Mean;
            }
            if (kind == FeatureKind.Scattering && statistic != Statistic.LogMean && statistic != Statistic.LogStd && statistic != Statistic.Mean)
            {
                Unsupported("Scattering", statistic.ToString(), "use LogMean (kymatio's log-scattering time average), LogStd or Mean");
                statistic = Statistic.LogMean;
            }
            if (statistic < Statistic.Mean || statistic > Statistic.LogStd)
            {
                Unsupported(kind.ToString(), "(Statistic)" + Invariant((int)statistic), "use Mean, Std, Min, Max or TimeSeries");
                statistic = Statistic.Mean;
            }
            if (pooled && statistic == Statistic.TimeSeries)
                Unsupported("Chroma pooled over bins", "TimeSeries", "set PerBin = true to keep the 12 x frames chroma image");

            int rows;
            switch (kind)
            {
                case FeatureKind.Chroma: rows = 12; break;
                case FeatureKind.Mfcc:
                case FeatureKind.MfccDelta:
                    rows = count ?? p.NMfcc;
                    if (count.HasValue && count.Value <= 0) Add(LayoutRule.CountNotPositive, "n_mfcc", property, "count", Invariant(rows));
                    else if (rows > p.NMels && p.NMels > 0)
                        Conflict("n_mfcc", "asks for " + Invariant(rows) + " MFCCs, but the DCT of n_mels = " + Invariant(p.NMels) + " bands gives at most " + Invariant(p.NMels));
                    break;
                case FeatureKind.MelBands: rows = p.NMels; break;
                case FeatureKind.Spectrogram: rows = p.NFft / 2 + 1; break;
                default: rows = 1; break;
            }
            ScatteringSettings? scattering = null;
            if (kind == FeatureKind.Scattering)
            {
                var s = m.Scattering ?? new ScatteringSettings(0, 0, 0, 2, 1e-6, false, 1);
                int j = s.J, q = s.Q, t = s.T, length = p.ClipSamples;
                if (length <= 0)
                    Conflict(clip, "is a scattering transform, which needs the schema's " + clip + " (the clip length in samples)");
                if (j < 1 || j > 30 || (length > 0 && (1L << j) > length))
                    Invalid(clip, "J", length > 0 ? "at least 1 with 2^J at most " + clip + " (" + Invariant(length) + ")" : "at least 1", Invariant(j));
                if (q < 1 || q > 64) Invalid("members", "Q", "in 1..64", Invariant(q));
                if (t != 0 && (t < 1 || (t & (t - 1)) != 0 || (length > 0 && t > length)))
                    Invalid(clip, "T", "0 (2^J) or a power of two up to " + clip + " (" + Invariant(length) + ")", Invariant(t));
                if (s.MaxOrder != 1 && s.MaxOrder != 2) Invalid("members", "max_order", "1 or 2", Invariant(s.MaxOrder));
                if (!(s.LogEpsilon > 0)) Invalid("members", "log epsilon", "positive", Invariant(s.LogEpsilon));
                // Every clip has at least floor(clip_samples / T) frames (kymatio keeps the frames that cover the signal).
                var least = length > 0 && j >= 1 && j <= 30 ? length / (t != 0 ? t : 1 << j) : 0;
                if (s.Segments != 1 && statistic == Statistic.Mean)
                    Conflict("members", "sets Segments, which needs Statistic.LogMean or Statistic.LogStd");
                else if (s.Segments < 1 || (least > 0 && s.Segments > least))
                    Invalid(clip, "Segments", least > 0 ? "in 1.." + Invariant(least) + " (the frames of " + clip + " / T)" : "at least 1", Invariant(s.Segments));
                scattering = s;
                if (ok)
                {
                    var paths = ScatteringPathCount(j, q, s.MaxOrder);
                    rows = statistic == Statistic.Mean ? paths : (paths - 1) * s.Segments;
                }
            }
            var deltaOrder = kind == FeatureKind.MfccDelta ? m.DeltaOrder : 0;
            var deltaWidth = kind == FeatureKind.MfccDelta ? m.DeltaWidth : 0;
            if (kind == FeatureKind.MfccDelta)
            {
                if (deltaOrder != 1 && deltaOrder != 2) Invalid("members", "order", "1 or 2", Invariant(deltaOrder));
                if (deltaWidth < 3 || deltaWidth % 2 == 0) Invalid("members", "width", "odd and at least 3", Invariant(deltaWidth));
            }
            int frameLength = 0, memberHop = 0;
            if (kind == FeatureKind.ZeroCrossingRate || kind == FeatureKind.Rms)
            {
                if (m.FrameLength < 0) Invalid("members", "frame_length", "0 (n_fft) or positive", Invariant(m.FrameLength));
                if (m.HopLength < 0) Invalid("members", "hop_length", "0 (the schema's hop) or positive", Invariant(m.HopLength));
                frameLength = m.FrameLength > 0 ? m.FrameLength : p.NFft;
                memberHop = m.HopLength > 0 ? m.HopLength : p.HopLength;
            }

            var frames = 0;
            if (kind == FeatureKind.Waveform)
            {
                if (m.Frames <= 0) Add(LayoutRule.CountNotPositive, clip, property, "samples", Invariant(m.Frames));
                frames = m.Frames;
            }
            else if (statistic == Statistic.TimeSeries && ok)
            {
                if (p.ClipSamples <= 0)
                    Conflict(clip, "keeps a time series, which needs the schema's " + clip + " (the clip length in samples) to fix the frame count");
                else
                {
                    var framed = kind == FeatureKind.ZeroCrossingRate || kind == FeatureKind.Rms;
                    int frameLen = framed ? frameLength : p.NFft, hop = framed ? memberHop : p.HopLength;
                    frames = hop > 0 && frameLen > 0 ? FrameCount(frameLen, hop, p.Center, p.ClipSamples) : 0;
                    if (frames < 1 && hop > 0 && frameLen > 0)
                        Conflict(clip, "has no frames: clips of " + Invariant(p.ClipSamples) + " samples are shorter than the frame length " + Invariant(frameLen));
                }
            }
            if (kind == FeatureKind.MfccDelta && ok && p.ClipSamples > 0 && p.HopLength > 0 && p.NFft >= 2)
            {
                var clipFrames = FrameCount(p.NFft, p.HopLength, p.Center, p.ClipSamples);
                if (clipFrames < deltaWidth)
                    Conflict(clip, "has a delta width of " + Invariant(deltaWidth) + ", more than the " + Invariant(clipFrames) + " frames of a clip");
            }

            var width = !ok ? 1 : statistic == Statistic.TimeSeries ? rows * frames : pooled ? 1 : rows;
            return new LayoutMember(property, kind, statistic, m.Column, 0, width < 1 ? 1 : width, rows < 1 ? 1 : rows,
                statistic == Statistic.TimeSeries ? frames : 0, pooled, kind == FeatureKind.MelBands && m.Decibels,
                deltaOrder, deltaWidth, frameLength, memberHop, scattering);
        }

        /// <summary>
        /// Places laid-out members in declaration order (offsets), names their columns (a name produced twice is a
        /// problem, once per member), checks that time series agree on their frame count (the first disagreement is
        /// a problem) and gives the row's shape: [rows, frames] when every member is a time series of one frame
        /// count ([frames] for one row), else [length].
        /// </summary>
        public static (LayoutMember[] Members, string[] Names, int[] Shape) Arrange(IReadOnlyList<LayoutMember> members, List<LayoutProblem> problems)
        {
            var laid = new LayoutMember[members.Count];
            var offset = 0;
            for (var i = 0; i < members.Count; i++)
            {
                laid[i] = members[i] with { Offset = offset };
                offset += members[i].Width;
            }
            var names = new List<string>(offset);
            var owners = new Dictionary<string, string>();
            for (var i = 0; i < laid.Length; i++)
            {
                var reported = false;
                foreach (var column in ColumnNames(laid[i]))
                {
                    if (owners.TryGetValue(column, out var owner))
                    {
                        if (!reported)
                            problems.Add(new LayoutProblem(LayoutRule.DuplicateColumnName, "members", null, i, new[] { column, owner, laid[i].Property }));
                        reported = true;
                    }
                    else owners[column] = laid[i].Property;
                    names.Add(column);
                }
            }
            var first = -1;
            for (var i = 0; i < laid.Length; i++)
            {
                if (laid[i].Statistic != Statistic.TimeSeries || laid[i].Frames <= 0) continue;
                if (first < 0) first = i;
                else if (laid[i].Frames != laid[first].Frames)
                {
                    problems.Add(new LayoutProblem(LayoutRule.FrameCountMismatch, "hop_length", null, i, new[]
                        { laid[first].Property, Invariant(laid[first].Frames), laid[i].Property, Invariant(laid[i].Frames) }));
                    break;
                }
            }
            var allSeries = laid.Length > 0;
            var sameFrames = true;
            var rows = 0;
            foreach (var m in laid)
            {
                allSeries &= m.Statistic == Statistic.TimeSeries;
                sameFrames &= m.Frames == laid[0].Frames;
                rows += m.Rows;
            }
            var shape = !allSeries || !sameFrames ? new[] { offset }
                : rows == 1 ? new[] { laid[0].Frames }
                : new[] { rows, laid[0].Frames };
            return (laid, names.ToArray(), shape);
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
                var upper = Math.Min(Math.Abs(x) + 5.0 * s, 0.5);
                scales.Add((int)Math.Floor(-Math.Log(upper) / Math.Log(2.0)) - 1);
            }
            var xi = Math.Max(1.0 / (1.0 + Math.Pow(2.0, 3.0 / q)), 0.35);
            var factor = 1.0 / Math.Pow(2, 1.0 / q);
            var sigma = xi * ((1 - factor) / (1 + factor)) * (1.0 / Math.Sqrt(2 * Math.Log(1.0 / Math.Sqrt(0.5))));
            var sigmaMin = 0.1 / Math.Pow(2, j);
            var step = Math.Pow(2, 1.0 / q);
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
    }
}
