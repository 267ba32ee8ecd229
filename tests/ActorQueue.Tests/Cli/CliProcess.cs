using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace ActorQueue.Tests.Cli;

/// <summary>What a run of the built <c>actorqueue</c> command printed and returned.</summary>
public sealed record CliResult(int ExitCode, string Output, string Errors)
{
    /// <summary>Exactly the bytes the command wrote to stdout.</summary>
    public byte[] OutputBytes { get; init; } = [];
}

/// <summary>Runs the built CLI (<c>src/Cli/bin/&lt;configuration&gt;/net10.0/actorqueue.dll</c>) as its own process.</summary>
public static class CliProcess
{
    private static readonly Lazy<string> Dll = new(Locate);

    /// <summary>The words before the CLI's dll: <c>env --default-signal=INT,QUIT dotnet</c> where <c>env</c> knows the option, else <c>dotnet</c>.</summary>
    private static readonly Lazy<string[]> Launcher = new(() => DefaultSignalWorks() ? ["env", "--default-signal=INT,QUIT", "dotnet"] : ["dotnet"]);

    /// <summary>The program <see cref="StartInfo"/> runs (<c>env</c> or <c>dotnet</c>), for a test that runs it through a shell's <c>exec</c>.</summary>
    public static string Program => Launcher.Value[0];

    private static bool DefaultSignalWorks()
    {
        try
        {
            using var probe = Process.Start(new ProcessStartInfo("env") { ArgumentList = { "--default-signal=INT,QUIT", "true" }, UseShellExecute = false, RedirectStandardError = true })!;
            probe.StandardError.ReadToEnd();
            probe.WaitForExit();
            return probe.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // no env at all
        }
    }

    /// <summary>
    /// <c>env --default-signal=INT,QUIT dotnet DLL args</c>: the command with SIGINT and SIGQUIT at their defaults, as a
    /// terminal's foreground job has them, whatever this test host inherited. A host started in the background of a
    /// non-interactive shell (<c>dotnet test ... &amp;</c> in a script) ignores both; children inherit an ignored signal,
    /// and .NET then leaves SIGINT and SIGQUIT ignored (it registers no handler for them), so the runner never saw the
    /// signals the tests send it: no "interrupted" line, no exit, seen as an intermittent hang. An <c>env</c> without
    /// <c>--default-signal</c> (coreutils before 8.31, busybox) runs <c>dotnet</c> directly, as before (<see cref="Program"/>).
    /// </summary>
    public static ProcessStartInfo StartInfo(string workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo(Launcher.Value[0])
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var word in Launcher.Value.Skip(1))
        {
            start.ArgumentList.Add(word);
        }

        start.ArgumentList.Add(Dll.Value);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return start;
    }

    /// <summary>
    /// The command as the leader of its own session and process group (through util-linux's <c>setsid</c>, which execs
    /// in place), as a shell starts a foreground job: a signal to <c>-pid</c> then reaches it and everything that shares
    /// its group, which is what a terminal's Ctrl-C does.
    /// </summary>
    public static ProcessStartInfo GroupLeaderStartInfo(string workingDirectory, params string[] args)
    {
        var start = StartInfo(workingDirectory, args);
        start.FileName = "setsid";
        start.ArgumentList.Insert(0, Program);
        return start;
    }

    /// <summary>
    /// The command run by <c>sh -c SCRIPT sh COMMAND...</c>, so the script's redirections apply to it: the script ends
    /// with <c>exec "$@"</c> and its redirections (<c>exec "$@" &gt; out.txt 2&gt;&amp;1</c>).
    /// </summary>
    public static ProcessStartInfo ThroughShell(string workingDirectory, string script, params string[] args)
    {
        var start = StartInfo(workingDirectory, args);
        start.ArgumentList.Insert(0, start.FileName);
        foreach (var word in new[] { "-c", script, "sh" }.Reverse())
        {
            start.ArgumentList.Insert(0, word);
        }

        start.FileName = "sh";
        return start;
    }

    public static Task<CliResult> RunAsync(string workingDirectory, string? stdin, params string[] args) =>
        RunAsync(StartInfo(workingDirectory, args), stdin is null ? null : Encoding.UTF8.GetBytes(stdin));

    /// <summary>Runs the command to completion, feeding it <paramref name="stdin"/> (nothing when <c>null</c>).</summary>
    public static async Task<CliResult> RunAsync(ProcessStartInfo start, byte[]? stdin)
    {
        using var process = Process.Start(start)!;
        var output = new MemoryStream();
        var copying = process.StandardOutput.BaseStream.CopyToAsync(output);
        var errors = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.BaseStream.WriteAsync(stdin);
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
            throw new TimeoutException($"actorqueue {string.Join(' ', start.ArgumentList)} did not finish within 90 s");
        }

        await copying;
        var bytes = output.ToArray();
        return new CliResult(process.ExitCode, Encoding.UTF8.GetString(bytes), await errors) { OutputBytes = bytes };
    }

    /// <summary>Whether a thread of process <paramref name="pid"/> waits in a FIFO's open for the other end.</summary>
    public static bool WaitsForFifoPartner(int pid)
    {
        try
        {
            return Directory.GetDirectories($"/proc/{pid}/task").Any(task => File.ReadAllText(Path.Combine(task, "wchan")) == "wait_for_partner");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false; // a thread (or the process) ended meanwhile
        }
    }

    /// <summary>Whether process <paramref name="pid"/> has <paramref name="path"/> open.</summary>
    public static bool HasOpen(int pid, string path)
    {
        try
        {
            return Directory.GetFiles($"/proc/{pid}/fd").Any(fd =>
            {
                try
                {
                    return new FileInfo(fd).LinkTarget == path;
                }
                catch (IOException)
                {
                    return false; // closed meanwhile
                }
            });
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false; // it ended
        }
    }

    /// <summary>Sends <paramref name="signal"/> (<c>INT</c>, <c>TERM</c>, ...) to a process, or to its whole process group.</summary>
    public static async Task SignalAsync(int pid, string signal, bool wholeGroup = false)
    {
        var target = (wholeGroup ? -pid : pid).ToString(CultureInfo.InvariantCulture);
        using var kill = Process.Start("kill", [$"-{signal}", "--", target]);
        await kill.WaitForExitAsync();
        Assert.True(kill.ExitCode == 0, $"kill -{signal} {target} failed");
    }

    /// <summary>The built command, to run as <c>dotnet DLL ...</c>.</summary>
    public static string DllPath => Dll.Value;

    /// <summary>The repository's root: the directory above the test binaries that holds ActorQueue.sln.</summary>
    public static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ActorQueue.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("ActorQueue.sln not found above " + AppContext.BaseDirectory);
    }

    private static string Locate()
    {
        var testBin = AppContext.BaseDirectory;
        var configuration = testBin.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        var dll = Path.Combine(RepositoryRoot(), "src", "Cli", "bin", configuration, "net10.0", "actorqueue.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("Build src/Cli first", dll);
    }
}
