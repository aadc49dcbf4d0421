namespace Hybrid.Generators.Diagnostics
{
    /// <summary>Diagnostic categories of the Hybrid generator.</summary>
    internal static class Categories
    {
        public const string FeatureSchema = "Hybrid.FeatureSchema";
    }
}
