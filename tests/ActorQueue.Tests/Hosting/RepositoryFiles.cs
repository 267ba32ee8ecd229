namespace ActorQueue.Tests.Hosting;

/// <summary>Finds the repository's files from the test's output folder.</summary>
internal static class RepositoryFiles
{
    /// <summary>The folder holding ActorQueue.sln.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>"Release" or "Debug": the configuration the tests were built in, and so the examples.</summary>
    public static string Configuration { get; } =
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ActorQueue.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("ActorQueue.sln not found above " + AppContext.BaseDirectory);
    }
}
