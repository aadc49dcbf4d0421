// Shared source: compiled into Hybrid.Features.Schemas (public) and linked into the generator, Hybrid.Generators
// (internal, HYBRID_GENERATOR), so that the kinds and statistics the generator writes into generated code are the
// run time's by construction. C# that compiles for netstandard2.0 and net10.0.
namespace Hybrid.Features.Schemas
{
    /// <summary>What a schema member computes (one per feature attribute).</summary>
#if HYBRID_GENERATOR
    internal
#else
    public
#endif
    enum FeatureKind
    {
        /// <summary>librosa.feature.spectral_centroid.</summary>
        SpectralCentroid,
        /// <summary>librosa.feature.spectral_bandwidth.</summary>
        SpectralBandwidth,
        /// <summary>librosa.feature.spectral_rolloff.</summary>
        SpectralRolloff,
        /// <summary>librosa.feature.spectral_flatness.</summary>
        SpectralFlatness,
        /// <summary>librosa.feature.zero_crossing_rate.</summary>
        ZeroCrossingRate,
        /// <summary>librosa.feature.rms.</summary>
        Rms,
        /// <summary>librosa.feature.chroma_stft.</summary>
        Chroma,
        /// <summary>librosa.feature.mfcc.</summary>
        Mfcc,
        /// <summary>librosa.feature.delta of the MFCCs.</summary>
        MfccDelta,
        /// <summary>librosa.feature.melspectrogram (optionally in dB).</summary>
        MelBands,
        /// <summary>The raw waveform.</summary>
        Waveform,
        /// <summary>kymatio's 1-D scattering transform (Scattering1D).</summary>
        Scattering,
        /// <summary>|STFT|^power (librosa.stft, then np.abs(...) ** power): n_fft / 2 + 1 rows. Run-time schemas only
        /// (<c>features --transform stft</c>); no attribute declares it.</summary>
        Spectrogram,
    }

    /// <summary>How a feature's frames are summarised in a schema row.</summary>
#if HYBRID_GENERATOR
    internal
#else
    public
#endif
    enum Statistic
    {
        /// <summary>Arithmetic mean over frames (numpy.mean along time).</summary>
        Mean,
        /// <summary>Population standard deviation over frames (numpy.std, ddof 0).</summary>
        Std,
        /// <summary>Smallest value over frames.</summary>
        Min,
        /// <summary>Largest value over frames.</summary>
        Max,
        /// <summary>Every frame kept: a [rows, frames] block in row-major order (a 2-D "image").</summary>
        TimeSeries,
        /// <summary>Mean over frames of log(|v| + epsilon) (kymatio's spoken-digit classifier input); scattering only.</summary>
        LogMean,
        /// <summary>Population standard deviation over frames of log(|v| + epsilon) (the spread that <see cref="LogMean"/>
        /// discards); scattering only.</summary>
        LogStd,
    }
}
