// LOCAL COMPILE SHIM ONLY - never committed; replaced by the audio branch's Resample.fs.
namespace Hybrid.Features
module Resample =
    let resample (fromRate: int) (toRate: int) (x: float32[]) : float32[] =
        let n = int (int64 x.Length * int64 toRate / int64 fromRate)
        Array.init n (fun i -> let t = float i * float fromRate / float toRate in let j = int t in if j + 1 < x.Length then x.[j] + float32 (t - float j) * (x.[j+1] - x.[j]) else x.[min j (x.Length-1)])
