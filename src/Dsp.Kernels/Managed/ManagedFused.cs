using System.Runtime.CompilerServices;

namespace Hybrid.Dsp.Managed;

/// <summary>
/// The fused mel chain of the managed engine (<see cref="IDspOps.LogMelSpectrogram"/> and the MFCC from clips): one
/// parallel loop over clips in which each worker takes a clip through STFT, mel filter bank, power_to_db and, for MFCC,
/// the DCT while its spectrogram (n_fft/2+1 x frames floats, 33 KB for 1 s at 8 kHz with n_fft 256) sits in the
/// worker's cache-resident <see cref="Workspace"/>. The unfused chain writes a batch-sized spectrogram to memory and
/// reads it back in a second loop, then the mel bands twice more, so on a machine whose cores share a memory bus it is
/// bound by that bus; the fused pass moves only the clips in and the features out.
/// Every value is computed by the same code in the same order as <see cref="Stft"/>, <see cref="Mel"/>,
/// <see cref="PowerToDb"/> and <see cref="Mfcc(int, float, Tensor, Tensor)"/>: the frame groups of
/// <see cref="StftBlock"/>, each mel and DCT sum a chain of fused multiply-adds in increasing bin order
/// (BandedRows), and the dB pass over a clip's whole [n_mels, frames] row, whose SIMD and scalar-tail
/// elements are the same as the unfused pass's (it splits a clip only at multiples of eight values). The results are
/// therefore bitwise equal, whatever the thread count.
/// </summary>
internal sealed partial class ManagedDsp
{
    public void LogMelSpectrogram(StftConfig stft, MelConfig mel, DbConfig db, Tensor clips, Tensor output, SpectrumKind kind = SpectrumKind.Power)
    {
        var (batch, frames) = IDspOps.MelChainCheck(stft, mel, db, clips, output, mel?.NMels ?? 0, null, kind);
        if (!FusesClips(batch, stft, frames))
        {
            Chain(stft, mel!, db, kind, clips, frames, output, 0, 0f, null);
            return;
        }
        FusedMelChain(stft, mel!, db, kind, ManagedEngine.Expect(clips, nameof(clips)), frames,
            ManagedEngine.Expect(output, nameof(output)), null, null, 0);
    }

    public void Mfcc(StftConfig stft, MelConfig mel, DbConfig db, int nMfcc, float lifter, Tensor clips, Tensor output,
        Tensor? logMel = null, SpectrumKind kind = SpectrumKind.Power)
    {
        var (batch, frames) = IDspOps.MelChainCheck(stft, mel, db, clips, output, nMfcc, logMel, kind);
        if (!FusesClips(batch, stft, frames))
        {
            Chain(stft, mel!, db, kind, clips, frames, logMel, nMfcc, lifter, output);
            return;
        }
        var dct = DctMatrix(nMfcc, mel!.NMels, lifter);
        FusedMelChain(stft, mel, db, kind, ManagedEngine.Expect(clips, nameof(clips)), frames,
            logMel is null ? null : ManagedEngine.Expect(logMel, nameof(logMel)), ManagedEngine.Expect(output, nameof(output)), dct, nMfcc);
    }

    /// <summary>The largest spectrogram of one clip (floats) that the fused pass keeps in a worker's scratch: 1 MiB, about
    /// a core's L2 cache. Past it the spectrogram goes to memory anyway and the fused pass saves nothing (a 30 s track at
    /// n_fft 2048 has 5.3 MB: W2 measured slower fused than chained at 1 thread).</summary>
    private const int FusedSpectrumLimit = 1 << 18;

    /// <summary>Whether a batch is fused clip by clip: when one clip's spectrogram fits <see cref="FusedSpectrumLimit"/>
    /// and there is one thread or the batch gives every thread at least four clips. Other batches (a few long tracks)
    /// take <see cref="Chain"/>, which fuses STFT and mel per frame block and splits each clip's frames across the
    /// threads; both give the same values.</summary>
    private bool FusesClips(int batch, StftConfig stft, int frames) =>
        (long)stft.Bins * frames <= FusedSpectrumLimit && (_engine.MaxThreads == 1 || batch >= 4 * _engine.MaxThreads);

    /// <summary>The chain for batches too small to spread clip by clip (a few long tracks): the STFT and mel filter
    /// bank fused per frame block (<see cref="StftMelBlocks"/>, every clip's frames split across the threads), then
    /// PowerToDb over the bands (and Mfcc into <paramref name="mfcc"/> when given). The whole spectrogram is never
    /// stored (W2's 30 s track at n_fft 2048 has 5.3 MB); for MFCC without <paramref name="logMel"/> the log-mel comes
    /// from the shared array pool rather than a fresh allocation per call.</summary>
    private void Chain(StftConfig stft, MelConfig mel, DbConfig db, SpectrumKind kind, Tensor clips, int frames, Tensor? logMel,
        int nMfcc, float lifter, Tensor? mfcc)
    {
        var batch = clips.Shape[0];
        var pool = System.Buffers.ArrayPool<float>.Shared;
        var bandsData = logMel is null ? pool.Rent(checked(batch * mel.NMels * frames)) : null;
        try
        {
            var bands = logMel ?? _engine.Wrap(bandsData!, batch, mel.NMels, frames);
            StftMelBlocks(stft, mel, kind, ManagedEngine.Expect(clips, nameof(clips)), frames, ManagedEngine.Expect(bands, nameof(logMel)));
            PowerToDb(db, bands, bands);
            if (mfcc is not null) Mfcc(nMfcc, lifter, bands, mfcc);
        }
        finally
        {
            if (bandsData is not null) pool.Return(bandsData);
        }
    }

    /// <summary>The most floats of one frame block's spectrogram (bins x block frames) in a worker's scratch: 256 KB,
    /// so the block is still in the core's cache when the mel filter bank reads it.</summary>
    private const int BlockSpectrumLimit = 1 << 16;

    /// <summary>Mel bands (power) of every clip without storing its spectrogram: work items are (clip, frame block)
    /// pairs, each transforming its frames (<see cref="StftBlock"/>) into the worker's block scratch and applying the
    /// filter bank to them (BandedRows over the block).
    /// Blocks are at most <see cref="FramesPerBlock"/> frames, halved (down to 8) while bins x frames passes
    /// <see cref="BlockSpectrumLimit"/> or the batch would give a thread fewer than sixteen blocks: with threads taking
    /// blocks one at a time, the threads' idle time at the loop's end is about half a block each, so a loop of k blocks a
    /// thread loses about 1/(2k) of its time (a 16-core machine with W2's two tracks had 5 blocks a thread at 4: about
    /// 10%; now 3%; 2 threads keep 32-frame blocks). Every frame's spectrum
    /// and every band's sum are computed as by <see cref="Stft"/> then <see cref="Mel"/>, so the bands are bitwise theirs.</summary>
    private void StftMelBlocks(StftConfig stft, MelConfig mel, SpectrumKind kind, ManagedTensor clips, int frames, ManagedTensor bands)
    {
        int batch = clips.Shape[0], samples = clips.Shape[1], bins = stft.Bins, nMels = mel.NMels;
        if (batch == 0 || frames == 0) return;
        var window = Filters.Window(stft.Window, stft.Win, stft.NFft);
        var plan = RealFftPlan.Get(stft.NFft);
        var bank = Filters.Mel(mel, stft.NFft);
        var support = Support(bank, nMels, bins);
        var width = FramesPerBlock;
        while (width > 8 && ((long)bins * width > BlockSpectrumLimit || (long)batch * ((frames + width - 1) / width) < 16L * _engine.MaxThreads))
            width /= 2;
        var blocks = (frames + width - 1) / width;
        ForRanges(batch * blocks, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (u0, u1) =>
        {
            var ws = Workspace.Current;
            var buf = ws.Vectors(0, plan.BufferLength);
            var scratch = ws.Vectors(1, plan.ScratchLength);
            var segment = ws.Floats(0, (FramesPerBlock - 1) * stft.Hop + stft.NFft);
            var block = ws.FloatArray(1, bins * width);
            var all = clips.Span;
            var output = bands.Span;
            for (var u = u0; u < u1; u++)
            {
                int c = u / blocks, f0 = (u % blocks) * width, f1 = Math.Min(frames, f0 + width);
                StftBlock(stft, window, plan, all.Slice(c * samples, samples), 0, f0, f1, segment, buf, scratch,
                    new SpectrumSink(block, 0, bins, width, kind, f0));
                BandedRows(bank, support, nMels, bins, block.AsSpan(0, bins * width), width, 0,
                    output.Slice(c * nMels * frames, nMels * frames), frames, f0, f1);
            }
        });
    }

    /// <summary>Clip by clip: STFT into the worker's spectrogram scratch, mel bands into <paramref name="logMel"/> (or
    /// scratch when only MFCCs are wanted), dB in place with the clip's top_db floor, and the DCT into
    /// <paramref name="mfcc"/> when <paramref name="dct"/> is given. Without MFCCs, <paramref name="logMel"/> is the
    /// output.</summary>
    private void FusedMelChain(StftConfig stft, MelConfig mel, DbConfig db, SpectrumKind kind, ManagedTensor clips, int frames,
        ManagedTensor? logMel, ManagedTensor? mfcc, float[]? dct, int nMfcc)
    {
        var (amin, scale, offset) = DbConstants(db, 10f);
        int batch = clips.Shape[0], samples = clips.Shape[1], bins = stft.Bins, nMels = mel.NMels, nFft = stft.NFft;
        if (batch == 0) return;
        var window = Filters.Window(stft.Window, stft.Win, nFft);
        var plan = RealFftPlan.Get(nFft);
        var bank = Filters.Mel(mel, nFft);
        var melSupport = Support(bank, nMels, bins);
        var dctSupport = dct is null ? null : Support(dct, nMfcc, nMels);
        float? floor = db.TopDb is { } top ? (float)top : null;
        ForRanges(batch, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (c0, c1) =>
        {
            var ws = Workspace.Current;
            var buf = ws.Vectors(0, plan.BufferLength);
            var scratch = ws.Vectors(1, plan.ScratchLength);
            var segment = ws.Floats(0, (FramesPerBlock - 1) * stft.Hop + nFft);
            var spectrum = ws.FloatArray(1, bins * frames);
            var sink = new SpectrumSink(spectrum, 0, bins, frames, kind);
            var melScratch = logMel is null ? ws.Floats(2, nMels * frames) : default;
            var all = clips.Span;
            for (var c = c0; c < c1; c++)
            {
                var clip = all.Slice(c * samples, samples);
                for (var f0 = 0; f0 < frames; f0 += FramesPerBlock)
                    StftBlock(stft, window, plan, clip, 0, f0, Math.Min(frames, f0 + FramesPerBlock), segment, buf, scratch, sink);
                var bands = logMel is null ? melScratch : logMel.Span.Slice(c * nMels * frames, nMels * frames);
                BandedRows(bank, melSupport, nMels, bins, spectrum.AsSpan(0, bins * frames), bands, frames, 0, frames);
                var max = ToDbSegment(bands, bands, false, amin, scale, offset, 10f);
                if (floor is { } f) ClampBelow(bands, max - f);
                if (dct is not null)
                    BandedRows(dct, dctSupport!, nMfcc, nMels, bands, mfcc!.Span.Slice(c * nMfcc * frames, nMfcc * frames), frames, 0, frames);
            }
        });
    }
}
