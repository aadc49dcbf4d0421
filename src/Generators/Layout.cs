using System.Text;

namespace Hybrid.Generators
{
    /// <summary>The generator's own naming rule; every layout rule is shared with the run time
    /// (Features.Schemas/Shared/LayoutRules.cs, linked into this project).</summary>
    internal static class Layout
    {
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
    }
}
