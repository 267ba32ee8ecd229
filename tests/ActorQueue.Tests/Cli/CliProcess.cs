using System.Diagnostics;

namespace ActorQueue.Tests.Cli;

/// <summary>What a run of the built <c>actorqueue</c> command printed and returned.</summary>
public sealed record CliResult(int ExitCode, string Output, string Errors);

/// <summary>Runs the built CLI (<c>src/Cli/bin/&lt;configuration&gt;/net10.0/actorqueue.dll</c>) as its own process.</summary>
public static class CliProcess
{
    private static readonly Lazy<string> Dll = new(Locate);

    public static ProcessStartInfo StartInfo(string workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Dll.Value);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return start;
    }

    public static async Task<CliResult> RunAsync(string workingDirectory, string? stdin, params string[] args)
    {
        using var process = Process.Start(StartInfo(workingDirectory, args))!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }

        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"actorqueue {string.Join(' ', args)} did not finish within 90 s");
        }

        return new CliResult(process.ExitCode, await output, await errors);
    }

    private static string Locate()
    {
        var testBin = AppContext.BaseDirectory;
        var configuration = testBin.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        var dir = new DirectoryInfo(testBin);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ActorQueue.sln")))
        {
            dir = dir.Parent;
        }

        var dll = Path.Combine(dir?.FullName ?? throw new InvalidOperationException("ActorQueue.sln not found above " + testBin),
            "src", "Cli", "bin", configuration, "net10.0", "actorqueue.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("Build src/Cli first", dll);
    }
}
