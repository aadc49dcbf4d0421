namespace Hybrid.Features

open System

/// The bounds every audio reader enforces, whatever a file's header says. soundfile and librosa have none; these
/// keep a damaged or hostile header from making a reader allocate, or decode, without bound.
module AudioLimits =
    /// The lowest sample rate any reader accepts, in Hz.
    [<Literal>]
    let MinSampleRate = 1

    /// The highest sample rate any reader accepts, in Hz: 768 kHz, the highest rate of FLAC's test suite and of
    /// professional converters.
    [<Literal>]
    let MaxSampleRate = 768000

    /// The most channels a file may declare (libsndfile's SF_MAX_CHANNELS).
    [<Literal>]
    let MaxChannels = 1024

    /// The most samples (frames x the file's channels) one read decodes, and one count of a compressed file's
    /// frames: 2^30, 4 GiB of float32 (6.2 hours of mono or 3.1 hours of stereo at 48 kHz). A longer read raises
    /// AudioFormatException; read a range (offset and duration) instead.
    [<Literal>]
    let MaxSamples = 1073741824L

    /// Raises AudioFormatException naming `path` when `rate` (Hz, as the header `where` declares it) lies outside
    /// MinSampleRate .. MaxSampleRate.
    let checkRate (path: string) (where: string) (rate: int64) : unit =
        if rate < int64 MinSampleRate || rate > int64 MaxSampleRate then
            raise (
                AudioFormatException(
                    path,
                    sprintf "%s declares a sample rate of %d Hz, outside the %d Hz .. %d kHz every reader accepts" where rate MinSampleRate (MaxSampleRate / 1000)))

    /// Raises AudioFormatException naming `path` when `channels` (as the header `where` declares them) lie outside
    /// 1 .. MaxChannels.
    let checkChannels (path: string) (where: string) (channels: int64) : unit =
        if channels < 1L || channels > int64 MaxChannels then
            raise (AudioFormatException(path, sprintf "%s declares %d channels (expected 1 to %d)" where channels MaxChannels))

    /// The most frames of `channels` channels one read may return (MaxSamples / channels).
    let maxFrames (channels: int) : int64 = MaxSamples / int64 (max 1 channels)

    /// The AudioFormatException for a read or count that passes MaxSamples.
    let tooLong (path: string) (channels: int) (frames: int64) : exn =
        AudioFormatException(
            path,
            sprintf "%s frames of %d channel%s exceed the %d samples (2^30, 4 GiB of float32) one read holds (AudioLimits.MaxSamples); read a range with an offset and a duration"
                (if frames = Int64.MaxValue then "more than " + string (maxFrames channels) else string frames) channels (if channels = 1 then "" else "s") MaxSamples)
