namespace Hybrid.Features

open System
open System.Buffers
open System.Runtime.InteropServices
open System.Text

/// libsndfile, found at run time (FLAC; Ogg Opus and Ogg FLAC; MPEG-2.5 8 kHz layer III, which NLayer mis-decodes).
/// Only the handful of entry points needed to read.
module internal SndFile =
    [<Struct; StructLayout(LayoutKind.Sequential)>]
    type SfInfo =
        val mutable Frames: int64
        val mutable SampleRate: int
        val mutable Channels: int
        val mutable Format: int
        val mutable Sections: int
        val mutable Seekable: int

    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type OpenFn = delegate of path: byte[] * mode: int * info: byref<SfInfo> -> nativeint
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type StrErrorFn = delegate of file: nativeint -> nativeint
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type ErrorFn = delegate of file: nativeint -> int
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type ReadFloatFn = delegate of file: nativeint * buffer: nativeint * frames: int64 -> int64
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type CloseFn = delegate of file: nativeint -> int

    type Api =
        { Open: OpenFn
          StrError: StrErrorFn
          Error: ErrorFn
          ReadFloat: ReadFloatFn
          Close: CloseFn }

    let private names = [ "libsndfile.so.1"; "libsndfile.so"; "libsndfile.1.dylib"; "libsndfile.dylib"; "sndfile.dll"; "libsndfile-1.dll"; "sndfile" ]

    /// The library's entry points, or None when no libsndfile can be loaded.
    let api: Lazy<Api option> =
        lazy (
            names
            |> List.tryPick (fun name ->
                match NativeLibrary.TryLoad name with
                | true, handle -> Some handle
                | _ -> None)
            |> Option.map (fun h ->
                let get (name: string) : 'D = Marshal.GetDelegateForFunctionPointer<'D>(NativeLibrary.GetExport(h, name))
                { Open = get "sf_open"; StrError = get "sf_strerror"; Error = get "sf_error"; ReadFloat = get "sf_readf_float"; Close = get "sf_close" }))

    /// The exception for a file that needs libsndfile where none was found.
    let missing (path: string) (what: string) =
        AudioFormatException(
            path,
            sprintf "reading %s needs the system library libsndfile, which was not found; install it (Debian/Ubuntu: apt-get install libsndfile1; Fedora: dnf install libsndfile; macOS: brew install libsndfile) or convert the file to WAV (ffmpeg -i in.flac out.wav)" what)

    /// libsndfile's major formats this reader takes, with their container names.
    let private containers = dict [ 0x170000, "FLAC"; 0x200000, "Ogg"; 0x230000, "MPEG" ]

    let private subtypes =
        dict [ 0x0060, "Vorbis"; 0x0064, "Opus"; 0x0001, "8-bit PCM"; 0x0002, "16-bit PCM"; 0x0003, "24-bit PCM"
               0x0080, "MPEG layer I"; 0x0081, "MPEG layer II"; 0x0082, "MPEG layer III" ]

    /// A file read front to back through libsndfile's sf_readf_float (never seeking: a damaged seek table or block
    /// size does not matter); a stream that stops with an error ends the clip with a Warning.
    [<Sealed>]
    type Decoder(meta: AudioFileInfo, api: Api, file: nativeint) =
        inherit FrameDecoder(meta)
        let mutable closed = false
        override this.Read dst =
            let frames = int64 (dst.Length / meta.Channels)
            if frames <= 0L || closed then 0
            else
                let count = int frames * meta.Channels
                let buffer = ArrayPool<float32>.Shared.Rent count
                let pin = GCHandle.Alloc(buffer, GCHandleType.Pinned)
                let got =
                    try
                        let got = api.ReadFloat.Invoke(file, pin.AddrOfPinnedObject(), frames)
                        if got > 0L then ReadOnlySpan<float32>(buffer, 0, int got * meta.Channels).CopyTo dst
                        got
                    finally
                        pin.Free()
                        ArrayPool<float32>.Shared.Return buffer
                if got <= 0L then
                    if api.Error.Invoke file <> 0 then
                        let message = Marshal.PtrToStringUTF8(api.StrError.Invoke file) |> Option.ofObj |> Option.defaultValue "unknown error"
                        this.Warning <- Some(sprintf "libsndfile stopped decoding early: %s; read the frames decoded before it" message)
                    0
                else int got
        override _.Dispose() =
            if not closed then
                closed <- true
                api.Close.Invoke file |> ignore

    /// Opens path through libsndfile, accepting only the major formats FLAC and Ogg (`what` names the codec for the
    /// message when libsndfile is missing). Raises AudioFormatException with libsndfile's reason when it cannot
    /// read the file, and for rates or channel counts outside AudioLimits.
    let openFile (path: string) (what: string) : FrameDecoder =
        match api.Value with
        | None -> raise (missing path what)
        | Some api ->
            let mutable info = SfInfo()
            let file = api.Open.Invoke(Encoding.UTF8.GetBytes(path + "\000"), 0x10, &info)
            if file = 0n then
                let message = Marshal.PtrToStringUTF8(api.StrError.Invoke 0n) |> Option.ofObj |> Option.defaultValue "unknown error"
                raise (AudioFormatException(path, sprintf "libsndfile cannot read it as %s: %s" what message))
            try
                let major = info.Format &&& 0x0FFF0000
                let container =
                    match containers.TryGetValue major with
                    | true, name -> name
                    | _ -> raise (AudioFormatException(path, sprintf "libsndfile reads it as format 0x%06X, not as %s" major what))
                AudioLimits.checkChannels path "the stream header" (int64 info.Channels)
                AudioLimits.checkRate path "the stream header" (int64 info.SampleRate)
                let subtype =
                    match subtypes.TryGetValue(info.Format &&& 0xFFFF) with
                    | true, name -> name
                    | _ -> sprintf "subtype 0x%04X" (info.Format &&& 0xFFFF)
                let meta =
                    { Path = path
                      Container = (match container with "Ogg" -> "Ogg " + subtype | "MPEG" -> "MP3" | c -> c)
                      Encoding = (if container = "FLAC" then "FLAC (" + subtype + ")" else subtype)
                      SampleRate = info.SampleRate; Channels = info.Channels; Frames = -1L; Warning = None }
                new Decoder(meta, api, file) :> FrameDecoder
            with _ ->
                api.Close.Invoke file |> ignore
                reraise ()
