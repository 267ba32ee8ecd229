using System.Diagnostics;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>
/// <c>tests/ActorQueue.DurableHost</c>, a durable queue of ints named <c>kill-test</c> in a process of its own (see its
/// Program.cs for the modes and the log it writes), and that log read back.
/// </summary>
internal static class DurableHostProcess
{
    /// <summary>The queue name the host opens.</summary>
    public const string QueueName = "kill-test";

    /// <summary>Starts the host with <paramref name="args"/> (mode, database, log, …).</summary>
    public static Process Start(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(HostDll());
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return Process.Start(info) ?? throw new InvalidOperationException("could not start the durable host");
    }

    /// <summary>The whole lines of the host's log so far (a kill can leave the last one half written).</summary>
    public static List<string> Lines(string path)
    {
        if (!File.Exists(path))
        {
            return [];
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        var lines = reader.ReadToEnd().Split('\n').ToList();
        lines.RemoveAt(lines.Count - 1);
        return lines;
    }

    private static string HostDll()
    {
        var testBin = AppContext.BaseDirectory;
        var configuration = testBin.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        var dir = new DirectoryInfo(testBin);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ActorQueue.sln")))
        {
            dir = dir.Parent;
        }

        var dll = Path.Combine(dir?.FullName ?? throw new InvalidOperationException("ActorQueue.sln not found above " + testBin),
            "tests", "ActorQueue.DurableHost", "bin", configuration, "net10.0", "ActorQueue.DurableHost.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("Build tests/ActorQueue.DurableHost first", dll);
    }
}
