namespace Hybrid.Dsp.Managed;

/// <summary>IDspOps on the managed engine (implementation in progress).</summary>
internal sealed class ManagedDsp : IDspOps
{
    private readonly ManagedEngine _engine;

    internal ManagedDsp(ManagedEngine engine) => _engine = engine;

    public void Fft(Tensor input, Tensor output, bool inverse) => throw new NotImplementedException();

    public void Rfft(Tensor input, Tensor output) => throw new NotImplementedException();

    public void Irfft(Tensor input, Tensor output) => throw new NotImplementedException();

    public void Stft(StftConfig config, Tensor clips, Tensor output, SpectrumKind kind) => throw new NotImplementedException();

    public void Istft(StftConfig config, Tensor spectrum, Tensor output) => throw new NotImplementedException();

    public void Mel(MelConfig config, int nFft, Tensor spectrogram, Tensor output) => throw new NotImplementedException();

    public void PowerToDb(DbConfig config, Tensor input, Tensor output) => throw new NotImplementedException();

    public void AmplitudeToDb(DbConfig config, Tensor input, Tensor output) => throw new NotImplementedException();

    public void Mfcc(int nMfcc, float lifter, Tensor logMel, Tensor output) => throw new NotImplementedException();

    public void Delta(int width, int order, Tensor input, Tensor output) => throw new NotImplementedException();

    public void SpectralCentroid(int sampleRate, int nFft, Tensor s, Tensor output) => throw new NotImplementedException();

    public void SpectralBandwidth(int sampleRate, int nFft, float p, Tensor s, Tensor output) => throw new NotImplementedException();

    public void SpectralRolloff(int sampleRate, int nFft, float rollPercent, Tensor s, Tensor output) => throw new NotImplementedException();

    public void SpectralFlatness(float amin, float power, Tensor s, Tensor output) => throw new NotImplementedException();

    public void ZeroCrossingRate(int frameLength, int hopLength, bool center, Tensor clips, Tensor output) => throw new NotImplementedException();

    public void Rms(int frameLength, int hopLength, bool center, PadMode padMode, Tensor clips, Tensor output) => throw new NotImplementedException();

    public void Chroma(int sampleRate, int nFft, int nChroma, float tuning, Tensor s, Tensor output) => throw new NotImplementedException();

}
